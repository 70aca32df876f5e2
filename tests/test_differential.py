"""Differential test: every public transform against ``torch.func`` in every autograd context.

ftx's top-level ``grad``/``value_and_grad``/``vjp`` run on the autograd engine (the fast
path); everything else runs on ``torch.func``. This file runs each transform, and
compositions of them, through ftx and through the same ``torch.func`` calls under each
autograd context a user can be in, and compares what comes back:

* the values (float64, tight tolerance),
* ``requires_grad`` and the presence of a ``grad_fn`` on every returned tensor,
* whether the result is an inference tensor,
* for results connected to an outer graph, the outer gradient (``torch.autograd.grad``
  of the result with respect to the outer inputs, with ``create_graph=True``) and the
  second-order outer gradient;
* the class of a raised exception.

Each case is called twice in a fresh transform and twice with the same transform object:
the first call of a transformed function is a probe on the ``torch.func`` route, later
calls take the fast path, so both are compared. The documented differences from
``torch.func`` (docs/transforms.md, "Where ftx differs from torch.func") are not
exercised here: they have their own tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.func as tf

import ftx

D = torch.float64


def scalar_f(x: torch.Tensor) -> torch.Tensor:
    return (torch.sin(x) * x**2).sum()


def vector_f(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x) * x.cumsum(0)


def two_arg_f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (torch.exp(x) * y).sum() + (x * y**2).sum()


CT = torch.tensor([0.3, -1.2, 0.7], dtype=D)
V = torch.tensor([1.0, 0.5, -0.25], dtype=D)


def _vag_tf(f: Callable[..., Any]) -> Callable[..., Any]:
    def run(*a: Any) -> Any:
        g, v = tf.grad_and_value(f)(*a)
        return v, g

    return run


# name -> (ftx builder, torch.func builder); a builder maps x (and y) to results.
Case = tuple[Callable[..., Any], Callable[..., Any]]

CASES: dict[str, Case] = {
    "grad": (lambda x, y: ftx.grad(scalar_f)(x), lambda x, y: tf.grad(scalar_f)(x)),
    "grad-argnums": (
        lambda x, y: ftx.grad(two_arg_f, argnums=(0, 1))(x, y),
        lambda x, y: tf.grad(two_arg_f, argnums=(0, 1))(x, y),
    ),
    "value_and_grad": (
        lambda x, y: ftx.value_and_grad(scalar_f)(x),
        lambda x, y: _vag_tf(scalar_f)(x),
    ),
    "grad-has_aux": (
        lambda x, y: ftx.grad(lambda a: (scalar_f(a), a * 2), has_aux=True)(x),
        lambda x, y: tf.grad(lambda a: (scalar_f(a), a * 2), has_aux=True)(x),
    ),
    "vjp": (
        lambda x, y: ftx.vjp(vector_f, x)[1](CT),
        lambda x, y: tf.vjp(vector_f, x)[1](CT),
    ),
    "vjp-out": (
        lambda x, y: ftx.vjp(vector_f, x)[0],
        lambda x, y: tf.vjp(vector_f, x)[0],
    ),
    "vjp-two": (
        lambda x, y: ftx.vjp(two_arg_f, x, y)[1](torch.tensor(1.5, dtype=D)),
        lambda x, y: tf.vjp(two_arg_f, x, y)[1](torch.tensor(1.5, dtype=D)),
    ),
    "jvp": (
        lambda x, y: ftx.jvp(vector_f, (x,), (V,)),
        lambda x, y: tf.jvp(vector_f, (x,), (V,)),
    ),
    "linearize": (
        lambda x, y: ftx.linearize(vector_f, x)[1](V),
        lambda x, y: tf.jvp(vector_f, (x,), (V,))[1],
    ),
    "vmap": (
        lambda x, y: ftx.vmap(torch.outer, in_axes=(0, None))(x[:, None], y),
        lambda x, y: tf.vmap(torch.outer, in_dims=(0, None))(x[:, None], y),
    ),
    "jacfwd": (lambda x, y: ftx.jacfwd(vector_f)(x), lambda x, y: tf.jacfwd(vector_f)(x)),
    "jacrev": (lambda x, y: ftx.jacrev(vector_f)(x), lambda x, y: tf.jacrev(vector_f)(x)),
    "jacobian": (lambda x, y: ftx.jacobian(vector_f)(x), lambda x, y: tf.jacrev(vector_f)(x)),
    "hessian": (lambda x, y: ftx.hessian(scalar_f)(x), lambda x, y: tf.hessian(scalar_f)(x)),
    "hvp": (
        lambda x, y: ftx.hvp(scalar_f, (x,), (V,)),
        lambda x, y: (tf.jvp(tf.grad(scalar_f), (x,), (V,))[1],),
    ),
    "grad-grad": (
        lambda x, y: ftx.grad(lambda s: ftx.grad(lambda t: (t**3).sum())(s).sum())(x),
        lambda x, y: tf.grad(lambda s: tf.grad(lambda t: (t**3).sum())(s).sum())(x),
    ),
    "vmap-grad": (
        lambda x, y: ftx.vmap(ftx.grad(lambda a: torch.sin(a) * a))(x),
        lambda x, y: tf.vmap(tf.grad(lambda a: torch.sin(a) * a))(x),
    ),
    "grad-vmap": (
        lambda x, y: ftx.grad(lambda a: ftx.vmap(torch.sin)(a).sum())(x),
        lambda x, y: tf.grad(lambda a: tf.vmap(torch.sin)(a).sum())(x),
    ),
    "jacfwd-jacrev": (
        lambda x, y: ftx.jacfwd(ftx.jacrev(scalar_f))(x),
        lambda x, y: tf.jacfwd(tf.jacrev(scalar_f))(x),
    ),
    "jvp-grad": (
        lambda x, y: ftx.jvp(ftx.grad(scalar_f), (x,), (V,)),
        lambda x, y: tf.jvp(tf.grad(scalar_f), (x,), (V,)),
    ),
    "vjp-grad": (
        lambda x, y: ftx.vjp(ftx.grad(scalar_f), x)[1](CT),
        lambda x, y: tf.vjp(tf.grad(scalar_f), x)[1](CT),
    ),
    "grad-vjp": (
        lambda x, y: ftx.grad(lambda a: ftx.vjp(vector_f, a)[1](CT)[0].sum())(x),
        lambda x, y: tf.grad(lambda a: tf.vjp(vector_f, a)[1](CT)[0].sum())(x),
    ),
    "grad-closure": (  # y is captured: with y requiring grad the result joins the outer graph
        lambda x, y: ftx.grad(lambda a: (a * y).sin().sum())(x),
        lambda x, y: tf.grad(lambda a: (a * y).sin().sum())(x),
    ),
    "vjp-closure": (
        lambda x, y: ftx.vjp(lambda a: (a * y).sin(), x)[1](CT),
        lambda x, y: tf.vjp(lambda a: (a * y).sin(), x)[1](CT),
    ),
}


def _inputs(rg: bool, inference: bool) -> tuple[torch.Tensor, torch.Tensor]:
    def make() -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.tensor([0.4, -1.1, 2.3], dtype=D)
        y = torch.tensor([1.3, 0.2, -0.6], dtype=D)
        return x, y

    if inference:
        with torch.inference_mode():
            return make()
    x, y = make()
    if rg:
        x.requires_grad_()
        y.requires_grad_()
    return x, y


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


def _no_grad_then_enable() -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(torch.enable_grad())
    return stack


# name -> (context factory, inputs require grad, inputs are inference tensors)
CONTEXTS: dict[str, tuple[Callable[[], Any], bool, bool]] = {
    "default": (_nothing, False, False),
    "requires_grad": (_nothing, True, False),
    "no_grad": (torch.no_grad, False, False),
    "no_grad-requires_grad": (torch.no_grad, True, False),
    "enable_grad-in-no_grad": (_no_grad_then_enable, True, False),
    "inference_mode": (torch.inference_mode, False, False),
    "inference_tensors": (_nothing, False, True),
    "inference_tensors-in-mode": (torch.inference_mode, False, True),
    "set_grad_enabled-false": (lambda: torch.set_grad_enabled(False), True, False),
}


def _leaves(tree: Any) -> list[Any]:
    return ftx.tree.leaves(tree)


def _observe(run: Callable[[], Any], outer: tuple[torch.Tensor, ...]) -> Any:
    """What a user can see of a result: values, autograd flags, outer gradients; or the error."""
    try:
        res = run()
    except Exception as e:  # the class is what is compared
        return ("raise", type(e))
    obs = []
    connected = []
    for leaf in _leaves(res):
        if not isinstance(leaf, torch.Tensor):
            obs.append(("other", leaf))
            continue
        obs.append(
            (
                leaf.detach().clone(),
                leaf.requires_grad,
                leaf.grad_fn is not None,
                leaf.is_inference(),
            )
        )
        if leaf.requires_grad:
            connected.append(leaf)
    grads: list[Any] = []
    ins = [t for t in outer if t.requires_grad]
    if connected and ins and torch.is_grad_enabled():
        total = sum((c * torch.linspace(0.5, 1.5, c.numel(), dtype=c.dtype).view_as(c)).sum()
                    for c in connected)
        g1 = torch.autograd.grad(total, ins, create_graph=True, allow_unused=True)
        grads = [None if g is None else g.detach().clone() for g in g1]
        live = [g for g in g1 if g is not None and g.requires_grad]
        if live:
            s = sum(g.sum() for g in live)
            g2 = torch.autograd.grad(s, ins, allow_unused=True)
            grads += [None if g is None else g.detach().clone() for g in g2]
    return ("ok", obs, grads)


def _same(a: Any, b: Any, where: str) -> None:
    if a[0] == "raise" or b[0] == "raise":
        assert a[0] == b[0], f"{where}: ftx {a} vs torch.func {b}"
        assert a[1] is b[1], f"{where}: ftx raised {a[1]}, torch.func raised {b[1]}"
        return
    _, oa, ga = a
    _, ob, gb = b
    assert len(oa) == len(ob), where
    for k, (x, y) in enumerate(zip(oa, ob)):
        if x[0] == "other" or y[0] == "other":
            assert x == y, where
            continue
        torch.testing.assert_close(x[0], y[0], rtol=1e-12, atol=1e-12, msg=f"{where} leaf {k}")
        assert x[1:] == y[1:], (
            f"{where} leaf {k}: ftx (requires_grad, grad_fn, inference)={x[1:]}, "
            f"torch.func {y[1:]}"
        )
    assert len(ga) == len(gb), f"{where}: outer gradients {len(ga)} vs {len(gb)}"
    for k, (x, y) in enumerate(zip(ga, gb)):
        assert (x is None) == (y is None), f"{where} outer grad {k}"
        if x is not None:
            torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12, msg=f"{where} outer {k}")


@pytest.mark.parametrize("ctx", list(CONTEXTS))
@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch_func(case: str, ctx: str) -> None:
    ftx_run, tf_run = CASES[case]
    make_ctx, rg, inference = CONTEXTS[ctx]
    x, y = _inputs(rg, inference)
    with make_ctx():
        expected = _observe(lambda: tf_run(x, y), (x, y))
        for attempt in range(3):  # the first call probes on torch.func, later ones are fast
            got = _observe(lambda: ftx_run(x, y), (x, y))
            _same(got, expected, f"{case}/{ctx} call {attempt}")


@pytest.mark.parametrize("case", list(CASES))
def test_inside_torch_func_transforms(case: str) -> None:
    """An ftx transform nested in torch.func.vmap and torch.func.grad equals torch.func's."""
    ftx_run, tf_run = CASES[case]
    xs = torch.tensor([[0.4, -1.1, 2.3], [0.9, 0.1, -0.7]], dtype=D)
    y = torch.tensor([1.3, 0.2, -0.6], dtype=D)
    got = tf.vmap(lambda x: ftx_run(x, y))(xs)
    want = tf.vmap(lambda x: tf_run(x, y))(xs)
    for a, b in zip(_leaves(got), _leaves(want)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)

    def total(run: Callable[..., Any]) -> Callable[[torch.Tensor], torch.Tensor]:
        return lambda x: sum(leaf.sum() for leaf in _leaves(run(x, y)))  # type: ignore[return-value]

    for a, b in zip(_leaves(tf.grad(total(ftx_run))(xs[0])),
                    _leaves(tf.grad(total(tf_run))(xs[0]))):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _vjp_fn_pairs() -> list[tuple[str, Callable[..., Any]]]:
    return [("ftx", ftx.vjp), ("torch.func", tf.vjp)]


@pytest.mark.parametrize("build_ctx", ["default", "no_grad", "inference_mode"])
@pytest.mark.parametrize("call_ctx", ["default", "no_grad", "inference_mode"])
@pytest.mark.parametrize("rg", [False, True], ids=["plain", "requires_grad"])
@pytest.mark.parametrize("ct_rg", [False, True], ids=["ct", "ct-requires_grad"])
def test_vjp_fn_contexts(build_ctx: str, call_ctx: str, rg: bool, ct_rg: bool) -> None:
    """``vjp_fn`` built in one context and called in another behaves as torch.func's."""
    ctxs = {"default": _nothing, "no_grad": torch.no_grad, "inference_mode": torch.inference_mode}
    x, _ = _inputs(rg, False)
    ct = CT.clone().requires_grad_(ct_rg)
    results = []
    for _name, vjp in _vjp_fn_pairs():
        for _ in range(2):
            with ctxs[build_ctx]():
                try:
                    _, fn = vjp(vector_f, x)
                except Exception as e:
                    results.append(("raise", type(e)))
                    continue
            with ctxs[call_ctx]():
                results.append(_observe(lambda: fn(ct), (x, ct)))
    want = results[-1]
    for k, got in enumerate(results[:2]):
        _same(got, want, f"vjp built {build_ctx}, called {call_ctx}, try {k}")
