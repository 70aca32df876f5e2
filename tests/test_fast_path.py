"""The top-level fast path (torch.autograd.grad) and the torch.func path give the same results.

Each case runs twice: once as the user gets it at top level (the fast path,
checked to be taken), once with the route forced through ``torch.func``.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch

import ftx
import ftx._internal.pytree as _fasttree
import ftx._transforms.api as _transforms
import ftx._transforms.reverse as _reverse
from ftx._internal import torch_compat as _tc
from tests.helpers import tree_allclose

F64 = torch.float64
Pair = namedtuple("Pair", ["w", "b"])


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64) + 0.5


@contextmanager
def route(name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Force the route and record which engines ran."""
    taken: list[str] = []
    with monkeypatch.context() as m:
        if name == "func":
            m.setattr(_transforms, "transform_active", lambda: True)
        else:  # skip the first-call probe on torch.func (tested in test_differential.py)
            m.setattr(_reverse, "needs_probe", lambda fun: None)
            m.setattr(_tc, "GRAD_FAST_PATH", True)  # also when FTX_SLOW_ROUTES=1 turned it off
        for engine in ("value_and_grad_fast", "value_and_grad_func", "vjp_fast", "vjp_func"):
            real = getattr(_reverse, engine)

            def spy(*a: Any, _real: Any = real, _name: str = engine, **k: Any) -> Any:
                taken.append(_name)
                return _real(*a, **k)

            m.setattr(_reverse, engine, spy)
        yield taken


def both(fn: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Run ``fn`` on the fast route and on the torch.func route; check each route ran."""
    with route("fast", monkeypatch) as taken:
        fast = fn()
    assert taken and all(t.endswith("_fast") for t in taken), taken
    with route("func", monkeypatch) as taken:
        slow = fn()
    assert taken and all(t.endswith("_func") for t in taken), taken
    return fast, slow


def _flags(tree: Any) -> list[bool]:
    return [t.requires_grad for t in ftx.tree.leaves(tree) if isinstance(t, torch.Tensor)]


def same(fast: Any, slow: Any) -> None:
    tree_allclose(fast, slow, rtol=1e-12, atol=1e-14)
    assert _flags(fast) == _flags(slow), (_flags(fast), _flags(slow))


def mlp_loss(p: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    h = torch.tanh(x @ p["l1"]["w"].T + p["l1"]["b"])
    return ((h @ p["l2"]["w"].T + p["l2"]["b"]) ** 2).mean()


PARAMS = {
    "l1": {"w": _x(4, 3, seed=1), "b": _x(4, seed=2)},
    "l2": {"w": _x(2, 4, seed=3), "b": _x(2, seed=4)},
}
X = _x(5, 3, seed=5)

GRAD_CASES: list[tuple[str, Callable[[], Any]]] = [
    ("mlp_dict", lambda: ftx.grad(mlp_loss)(PARAMS, X)),
    ("value_and_grad", lambda: ftx.value_and_grad(mlp_loss, argnums=(0, 1))(PARAMS, X)),
    ("unused", lambda: ftx.grad(lambda a, b, c: (a**2).sum(), argnums=(0, 1, 2))(X, X, X)),
    ("constant_fun", lambda: ftx.grad(lambda a: torch.tensor(2.0, dtype=F64))(X)),
    (
        "has_aux",
        lambda: ftx.value_and_grad(lambda a: ((a**2).sum(), {"a2": a * 2, "k": 7}), 0, True)(X),
    ),
    (
        "allow_int",
        lambda: ftx.grad(lambda a, n: (a * n.to(a.dtype)).sum(), argnums=(0, 1), allow_int=True)(
            X, torch.ones(5, 3, dtype=torch.int64)
        ),
    ),
    ("none_leaves", lambda: ftx.grad(lambda t: (t[0] * 3).sum())((X, None, {"n": None}))),
    ("namedtuple", lambda: ftx.grad(lambda p: (p.w * p.b).sum())(Pair(_x(3), _x(3, seed=9)))),
    (
        "ordered_dict",
        lambda: ftx.grad(lambda d: d["a"].exp().sum())(OrderedDict(a=_x(2), b=_x(2))),
    ),
    ("same_tensor_twice", lambda: ftx.grad(lambda a, b: (a * b).sum(), argnums=(0, 1))(X, X)),
    ("scalar_input", lambda: ftx.grad(lambda a: a.sin() * a)(torch.tensor(0.3, dtype=F64))),
    ("kwargs", lambda: ftx.grad(lambda a, *, k: (a * k).sum())(X, k=torch.tensor(2.0))),
    ("float32", lambda: ftx.grad(mlp_loss)(ftx.tree.map(lambda t: t.float(), PARAMS), X.float())),
]


@pytest.mark.parametrize(("name", "fn"), GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grad_routes_agree(
    name: str, fn: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = both(fn, monkeypatch)
    same(fast, slow)


def _vjp_all(f: Callable[..., Any], *primals: Any, ct: Any) -> Any:
    out, vjp_fn = ftx.vjp(f, *primals)
    return out, vjp_fn(ct), vjp_fn(ct)


VJP_CASES: list[tuple[str, Callable[[], Any]]] = [
    ("vector", lambda: _vjp_all(torch.sin, X, ct=torch.ones(5, 3, dtype=F64))),
    (
        "pytree_out_with_none",
        lambda: _vjp_all(
            lambda a, b: {"y": a * b, "n": None, "s": (a.exp(),)},
            X,
            _x(3),
            ct={"y": torch.ones(5, 3, dtype=F64), "n": None, "s": (X,)},
        ),
    ),
    (
        "unused_and_int",
        lambda: _vjp_all(
            lambda a, b, n: a * 2, X, X, torch.arange(3), ct=torch.ones(5, 3, dtype=F64)
        ),
    ),
    ("has_aux", lambda: ftx.vjp(lambda a: (a.sin(), {"c": a.cos(), "k": 1}), X, has_aux=True)[::2]),
    ("const_output", lambda: _vjp_all(lambda a: torch.ones(2), X, ct=torch.ones(2))),
]


@pytest.mark.parametrize(("name", "fn"), VJP_CASES, ids=[c[0] for c in VJP_CASES])
def test_vjp_routes_agree(
    name: str, fn: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow = both(fn, monkeypatch)
    same(fast, slow)


# --------------------------------------------- inside an outer autograd computation
def test_outer_autograd_higher_order_through_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """x requires grad: the gradient is itself differentiable (create_graph on the fast path)."""

    def second(route_fn: Callable[[], Any]) -> Any:
        x = _x(3).requires_grad_()
        g = route_fn()(x)
        assert g.requires_grad
        (h,) = torch.autograd.grad(g.sum(), x)
        return g, h

    f = lambda x: (x**3).sum()  # noqa: E731
    fast, slow = both(lambda: second(lambda: ftx.grad(f)), monkeypatch)
    tree_allclose(fast, slow)
    tree_allclose(fast[1], 6 * _x(3))


def test_outer_autograd_through_captured_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gradient penalty: ftx.grad w.r.t. x, then backward into a captured weight."""

    def penalty() -> Any:
        w = _x(3, 3, seed=7).requires_grad_()
        x = _x(4, 3, seed=8)
        gx = ftx.grad(lambda x: torch.tanh(x @ w).sum())(x)
        (gw,) = torch.autograd.grad((gx**2).sum(), w)
        return gx, gw

    fast, slow = both(penalty, monkeypatch)
    tree_allclose(fast, slow, rtol=1e-12, atol=1e-14)
    # and against plain autograd with create_graph
    w = _x(3, 3, seed=7).requires_grad_()
    x = _x(4, 3, seed=8).requires_grad_()
    (gx,) = torch.autograd.grad(torch.tanh(x @ w).sum(), x, create_graph=True)
    (gw,) = torch.autograd.grad((gx**2).sum(), w)
    tree_allclose(fast, (gx, gw), rtol=1e-12, atol=1e-14)


def test_no_graph_kept_when_nothing_needs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, slow = both(lambda: ftx.value_and_grad(mlp_loss)(PARAMS, X), monkeypatch)
    assert not any(_flags(fast)) and not any(_flags(slow))
    with torch.no_grad():
        xr = _x(3).requires_grad_()
        fast, slow = both(lambda: ftx.grad(lambda x: (x**2).sum())(xr), monkeypatch)
    assert not fast.requires_grad and not slow.requires_grad


def test_vjp_cotangent_requiring_grad_is_differentiable(monkeypatch: pytest.MonkeyPatch) -> None:
    """vjp_fn is linear in the cotangent: d<vjp_fn(ct), v>/d ct = J v, on both routes."""

    def run() -> Any:
        x = _x(3)
        ct = torch.ones(3, dtype=F64, requires_grad=True)
        _, vjp_fn = ftx.vjp(lambda x: x**2, x)
        (g,) = vjp_fn(ct)
        (dct,) = torch.autograd.grad((g * torch.arange(3.0, dtype=F64)).sum(), ct)
        return g, dct

    # Only the cotangent joins the outer graph: the fast route hands that pull-back to
    # torch.func (the engine's result would also hang on its stand-in input).
    with route("fast", monkeypatch) as taken:
        fast = run()
    assert taken == ["vjp_fast", "vjp_func"]
    with route("func", monkeypatch) as taken:
        slow = run()
    assert taken == ["vjp_func"]
    tree_allclose(fast, slow)
    tree_allclose(fast[1], 2 * _x(3) * torch.arange(3.0, dtype=F64))


def test_inside_torch_func_transform_uses_func_route(monkeypatch: pytest.MonkeyPatch) -> None:
    with route("fast", monkeypatch) as taken:
        xs = _x(4, 3)
        out = torch.func.vmap(ftx.grad(lambda x: (x**2).sum()))(xs)
    assert taken == ["value_and_grad_func"]
    torch.testing.assert_close(out, 2 * xs)
    with route("fast", monkeypatch) as taken:
        torch.func.grad(lambda x: ftx.grad(lambda y: (y**3).sum())(x).sum())(_x(3))
    assert taken == ["value_and_grad_func"]


@ftx.tree.register_dataclass
@dataclasses.dataclass
class Affine:
    w: torch.Tensor
    b: torch.Tensor
    name: str = ftx.tree.static_field(default="affine")


def test_registered_dataclass_params(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Affine(_x(3, 2), _x(2, seed=1))

    def run() -> Any:
        return ftx.value_and_grad(lambda p, x: (torch.tanh(x @ p.w + p.b) ** 2).sum())(p, X)

    fast, slow = both(run, monkeypatch)
    assert isinstance(fast[1], Affine) and fast[1].name == "affine"
    same(fast, slow)


@pytest.mark.parametrize(
    "tree",
    [
        pytest.param({"b": X, "a": [X, (None, X)], "c": {}}, id="nested"),
        pytest.param(Pair(X, {"z": X, "y": None}), id="namedtuple"),
        pytest.param([OrderedDict(q=X, p=X), 3, "s"], id="ordered_dict_and_scalars"),
        pytest.param(X, id="leaf"),
        pytest.param((), id="empty"),
    ],
)
def test_lean_flatten_matches_torch_pytree(tree: Any) -> None:
    """Pins the private flattener (ftx._internal.pytree): the registry's leaf order, with
    ``None`` an empty subtree (not a leaf), and a round trip to the same structure."""
    leaves, spec = _fasttree.flatten(tree)
    ref_leaves, ref_spec = torch.utils._pytree.tree_flatten(tree)
    ref_leaves = [v for v in ref_leaves if v is not None]
    assert len(leaves) == len(ref_leaves) and all(a is b for a, b in zip(leaves, ref_leaves))
    rebuilt = _fasttree.unflatten(spec, leaves)
    assert torch.utils._pytree.tree_structure(rebuilt) == ref_spec
