"""custom_vjp / custom_jvp under every transform, differentially against torch.func.

A table of custom functions whose rules state the true derivative (so the
answer is known: the same maths written plainly and differentiated by
``torch.func``). Every case runs under grad, value_and_grad, vjp, jvp,
linearize, vmap, vmap(grad), jacfwd, jacrev, jacobian, hessian, hvp and the
compositions grad(grad), jacfwd(jacrev), jacrev(jacrev), jacfwd(jacfwd),
vmap(hessian), vmap(jvp), jvp(vmap) and jacfwd(jacfwd(vmap)), in float64.
(jacfwd(jacfwd) is the case torch itself gets wrong for an autograd.Function
with a jvp staticmethod: it runs the jvp with forward AD off, so the second
derivative came out 0.) The cases include the JAX idiom of a ``fwd`` / jvp
rule that calls the decorated function itself, ``nondiff_argnums`` (a Python
number and a constant tensor) and pytree inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torch.func as tf

import ftx

from .helpers import tree_allclose

T = torch.Tensor
F64 = torch.float64


def _stable_log1pexp(x: T) -> T:
    return torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x)))


# ----------------------------------------------------------------------------- the table
def sin_custom(kind: str) -> Callable[[T], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(torch.sin)
        f.defvjp(lambda x: (f(x), torch.cos(x)), lambda c, g: (c * g,))  # fwd calls f
        return f
    j = ftx.custom_jvp(torch.sin)
    j.defjvp(lambda p, t: (j(p[0]), torch.cos(p[0]) * t[0]))  # the rule calls f
    return j


def _norm(x: T) -> T:
    return torch.sqrt((x * x).sum())


def norm_custom(kind: str) -> Callable[[T], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(_norm)

        def fwd(x: T) -> tuple[T, Any]:
            n = f(x)
            return n, (x, n)

        f.defvjp(fwd, lambda res, g: (g * res[0] / res[1],))
        return f
    j = ftx.custom_jvp(_norm)

    @j.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        n = j(x)
        return n, (x / n * t).sum()

    return j


def log1pexp_custom(kind: str) -> Callable[[T], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(_stable_log1pexp)
        f.defvjp(lambda x: (f(x), x), lambda x, g: (g * torch.sigmoid(x),))
        return f
    j = ftx.custom_jvp(_stable_log1pexp)
    j.defjvp(lambda p, t: (j(p[0]), t[0] * torch.sigmoid(p[0])))
    return j


def _pair(ab: tuple[T, T], scale: float) -> dict[str, T]:
    a, b = ab
    return {"prod": a * b * scale, "sum": (a + b).sum()}


def pair_custom(kind: str) -> Callable[[tuple[T, T]], dict[str, T]]:
    # pytree in, pytree out, a Python number at a nondiff position (second argument).
    if kind == "vjp":
        f = ftx.custom_vjp(_pair, nondiff_argnums=(1,))

        def fwd(ab: tuple[T, T], scale: float) -> Any:
            return f(ab, scale), ab

        def bwd(scale: float, ab: tuple[T, T], ct: dict[str, T]) -> Any:
            a, b = ab
            return ((ct["prod"] * b * scale + ct["sum"], ct["prod"] * a * scale + ct["sum"]),)

        f.defvjp(fwd, bwd)
        return lambda ab: f(ab, 2.0)
    j = ftx.custom_jvp(_pair, nondiff_argnums=(1,))

    @j.defjvp
    def rule(scale: float, primals: Any, tangents: Any) -> Any:
        ((a, b),), ((ta, tb),) = primals, tangents
        return j((a, b), scale), {"prod": (ta * b + a * tb) * scale, "sum": (ta + tb).sum()}

    return lambda ab: j(ab, 2.0)


S_CONST = torch.tensor([0.5, -2.0, 1.5], dtype=F64)


def _scaled(s: T, x: T) -> T:
    return s * torch.sin(x) + x**2


def scaled_custom(kind: str) -> Callable[[T], T]:
    # a constant tensor at a nondiff position (first argument), the JAX clip_gradient layout
    if kind == "vjp":
        f = ftx.custom_vjp(_scaled, nondiff_argnums=(0,))
        f.defvjp(lambda s, x: (f(s, x), x), lambda s, x, g: ((s * torch.cos(x) + 2 * x) * g,))
        return lambda x: f(S_CONST, x)
    j = ftx.custom_jvp(_scaled, nondiff_argnums=0)
    j.defjvp(lambda s, p, t: (j(s, p[0]), (s * torch.cos(p[0]) + 2 * p[0]) * t[0]))
    return lambda x: j(S_CONST, x)


def _layer(wv: tuple[T, T]) -> T:
    w, v = wv
    return torch.tanh(w @ v)


def layer_custom(kind: str) -> Callable[[tuple[T, T]], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(_layer)

        def fwd(wv: tuple[T, T]) -> Any:
            out = f(wv)
            return out, (wv, out)

        def bwd(res: Any, g: T) -> Any:
            (w, v), out = res
            d = g * (1 - out * out)
            return ((torch.outer(d, v), w.T @ d),)

        f.defvjp(fwd, bwd)
        return f
    j = ftx.custom_jvp(_layer)

    @j.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        ((w, v),), ((tw, tv),) = primals, tangents
        out = j((w, v))
        return out, (1 - out * out) * (tw @ v + w @ tv)

    return j


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[str], Callable[[Any], Any]]
    plain: Callable[[Any], Any]
    x: Any


_X = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
_W = torch.tensor([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6]], dtype=F64)
CASES = [
    Case("sin", sin_custom, torch.sin, _X),
    Case("norm", norm_custom, _norm, torch.tensor([3.0, -4.0, 12.0], dtype=F64)),
    Case("log1pexp", log1pexp_custom, _stable_log1pexp, torch.tensor([-3.0, 0.5, 4.0], dtype=F64)),
    Case("pytree_nondiff_float", pair_custom, lambda ab: _pair(ab, 2.0), (_X, -0.5 * _X + 1)),
    Case("nondiff_tensor", scaled_custom, lambda x: _scaled(S_CONST, x), _X),
    Case("layer", layer_custom, _layer, (_W, torch.tensor([1.0, -2.0, 0.5], dtype=F64))),
]


# ----------------------------------------------------------------------------- the transforms
def _weights(out: Any) -> Any:
    """Fixed, distinct output weights (a cotangent), one leaf per output leaf."""
    return ftx.tree.map(
        lambda o: torch.linspace(-1.5, 2.0, max(o.numel(), 1), dtype=F64).reshape(o.shape) + 0.25,
        out,
    )


def _direction(x: Any) -> Any:
    return ftx.tree.map(
        lambda a: torch.linspace(0.5, 1.5, a.numel(), dtype=F64).reshape(a.shape), x
    )


def _batch(x: Any) -> Any:
    return ftx.tree.map(lambda a: torch.stack([a, 0.5 * a, -a + 0.25]), x)


def _dot(a: Any, b: Any) -> T:
    terms = [(u * v).sum() for u, v in zip(ftx.tree.leaves(a), ftx.tree.leaves(b))]
    return torch.stack(terms).sum()


class Api:
    """One engine's transforms under one set of names (ftx or torch.func)."""

    def __init__(self, name: str) -> None:
        self.ftx = name == "ftx"

    def grad(self, f: Any) -> Any:
        return ftx.grad(f) if self.ftx else tf.grad(f)

    def value_and_grad(self, f: Any) -> Any:
        if self.ftx:
            return ftx.value_and_grad(f)
        return lambda x: tuple(reversed(tf.grad_and_value(f)(x)))

    def vjp(self, f: Any, x: Any) -> Any:
        return (ftx.vjp if self.ftx else tf.vjp)(f, x)

    def jvp(self, f: Any, x: Any, v: Any) -> Any:
        return (ftx.jvp if self.ftx else tf.jvp)(f, (x,), (v,))

    def linearize(self, f: Any, x: Any) -> Any:
        return (ftx.linearize if self.ftx else tf.linearize)(f, x)

    def vmap(self, f: Any) -> Any:
        return (ftx.vmap if self.ftx else tf.vmap)(f)

    def jacfwd(self, f: Any) -> Any:
        return (ftx.jacfwd if self.ftx else tf.jacfwd)(f)

    def jacrev(self, f: Any) -> Any:
        return (ftx.jacrev if self.ftx else tf.jacrev)(f)

    def jacobian(self, f: Any) -> Any:
        return ftx.jacobian(f) if self.ftx else tf.jacrev(f)

    def hessian(self, f: Any) -> Any:
        return (ftx.hessian if self.ftx else tf.hessian)(f)

    def hvp(self, f: Any, x: Any, v: Any) -> Any:
        if self.ftx:
            return ftx.hvp(f, (x,), (v,))
        return (tf.jvp(tf.grad(f), (x,), (v,))[1],)


def run(tr: str, api: Api, f: Callable[[Any], Any], x: Any) -> Any:
    """Transform ``tr`` of ``f`` at ``x`` with ``api``'s transforms."""
    w = _weights(f(x))
    v = _direction(x)

    def s(x: Any) -> T:  # a real scalar of f
        return _dot(w, f(x))

    def g(x: Any) -> Any:  # the gradient of s as a function
        return api.grad(s)(x)

    if tr == "value":
        return f(x)
    if tr == "grad":
        return api.grad(s)(x)
    if tr == "value_and_grad":
        return api.value_and_grad(s)(x)
    if tr == "vjp":
        out, pull = api.vjp(f, x)
        return out, pull(w)
    if tr == "jvp":
        return api.jvp(f, x, v)
    if tr == "linearize":
        out, lin = api.linearize(f, x)
        return out, lin(v)
    if tr == "vmap":
        return api.vmap(f)(_batch(x))
    if tr == "vmap_grad":
        return api.vmap(api.grad(s))(_batch(x))
    if tr == "jacfwd":
        return api.jacfwd(f)(x)
    if tr == "jacrev":
        return api.jacrev(f)(x)
    if tr == "jacobian":
        return api.jacobian(f)(x)
    if tr == "hessian":
        return api.hessian(s)(x)
    if tr == "hvp":
        return api.hvp(s, x, v)
    if tr == "grad_grad":
        return api.grad(lambda x: _dot(v, g(x)))(x)
    if tr == "jacfwd_jacrev":
        return api.jacfwd(api.jacrev(s))(x)
    if tr == "jacrev_jacrev":
        return api.jacrev(api.jacrev(s))(x)
    if tr == "jacfwd_jacfwd":
        return api.jacfwd(api.jacfwd(s))(x)
    if tr == "vmap_hessian":
        return api.vmap(api.hessian(s))(_batch(x))
    if tr == "jacfwd_jacfwd_vmap":  # forward over forward through torch's generated vmap rule
        return api.jacfwd(api.jacfwd(lambda x: api.vmap(s)(_batch(x)).sum()))(x)
    if tr == "jvp_vmap":
        return api.jvp(api.vmap(f), _batch(x), _batch(v))
    if tr == "vmap_jvp":
        return api.vmap(lambda x: api.jvp(f, x, v)[1])(_batch(x))
    raise AssertionError(tr)


TRANSFORMS = [
    "value",
    "grad",
    "value_and_grad",
    "vjp",
    "jvp",
    "linearize",
    "vmap",
    "vmap_grad",
    "jacfwd",
    "jacrev",
    "jacobian",
    "hessian",
    "hvp",
    "grad_grad",
    "jacfwd_jacrev",
    "jacrev_jacrev",
    "jacfwd_jacfwd",
    "vmap_hessian",
    "vmap_jvp",
    "jvp_vmap",
    "jacfwd_jacfwd_vmap",
]
FTX, TORCH_FUNC = Api("ftx"), Api("torch.func")


@pytest.mark.parametrize("tr", TRANSFORMS)
@pytest.mark.parametrize("kind", ["vjp", "jvp"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_ftx_transform_of_custom_equals_torch_func_of_plain(case: Case, kind: str, tr: str) -> None:
    got = run(tr, FTX, case.make(kind), case.x)
    want = run(tr, TORCH_FUNC, case.plain, case.x)
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "tr", ["vmap", "vmap_grad", "jvp", "jacfwd", "hessian", "grad_grad", "jacfwd_jacfwd_vmap"]
)
@pytest.mark.parametrize("kind", ["vjp", "jvp"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES[:2]])
def test_torch_func_transform_of_custom_equals_plain(case: Case, kind: str, tr: str) -> None:
    # the rules hold when torch.func's own transforms drive them, too
    got = run(tr, TORCH_FUNC, case.make(kind), case.x)
    want = run(tr, TORCH_FUNC, case.plain, case.x)
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_nondiff_tensor_batched_by_vmap(kind: str) -> None:
    # vmap maps a tensor at a nondiff position (in_axes 0) together with the argument
    f: Any
    if kind == "vjp":
        f = ftx.custom_vjp(_scaled, nondiff_argnums=(0,))
        f.defvjp(lambda s, x: (f(s, x), x), lambda s, x, g: ((s * torch.cos(x) + 2 * x) * g,))
    else:
        f = ftx.custom_jvp(_scaled, nondiff_argnums=(0,))
        f.defjvp(lambda s, p, t: (f(s, p[0]), (s * torch.cos(p[0]) + 2 * p[0]) * t[0]))
    ss = torch.stack([S_CONST, -S_CONST])
    xs = torch.stack([_X, 2 * _X])
    want_val = tf.vmap(_scaled)(ss, xs)
    want_grad = tf.vmap(tf.grad(lambda s, x: _scaled(s, x).sum(), argnums=1))(ss, xs)
    tree_allclose(ftx.vmap(f)(ss, xs), want_val)
    tree_allclose(ftx.vmap(f, in_axes=(0, None))(ss, _X), tf.vmap(_scaled, (0, None))(ss, _X))
    got = ftx.vmap(ftx.grad(lambda s, x: f(s, x).sum(), argnums=1))(ss, xs)
    tree_allclose(got, want_grad)
    got_h = ftx.vmap(ftx.hessian(lambda s, x: f(s, x).sum(), argnums=1))(ss, xs)
    want_h = tf.vmap(tf.hessian(lambda s, x: _scaled(s, x).sum(), argnums=1))(ss, xs)
    tree_allclose(got_h, want_h)


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_torch_autograd_route(case: Case, kind: str) -> None:
    # .backward()/autograd.grad on requires_grad leaves (the route ftx.grad takes at top level)
    f = case.make(kind)
    leaves, treedef = ftx.tree.flatten(case.x)
    req = [a.clone().requires_grad_() for a in leaves]
    out = f(ftx.tree.unflatten(treedef, req))
    got = torch.autograd.grad(_dot(_weights(out), out), req)
    want = ftx.tree.leaves(run("grad", TORCH_FUNC, case.plain, case.x))
    tree_allclose(list(got), want, rtol=1e-10, atol=1e-12)


def test_fwd_calling_f_runs_the_primal_inside_the_rule() -> None:
    # The JAX idiom: inside fwd (and bwd / the jvp rule), f(x) evaluates fun, once per call.
    calls: list[str] = []

    def fun(x: T) -> T:
        calls.append("fun")
        return torch.sin(x)

    f = ftx.custom_vjp(fun)

    def fwd(x: T) -> Any:
        calls.append("fwd")
        return f(x), torch.cos(x)

    f.defvjp(fwd, lambda c, g: (c * g,))
    ftx.vmap(f)(torch.ones(2, 3, dtype=F64))
    assert calls == ["fwd", "fun"]
    calls.clear()
    ftx.grad(lambda x: f(x).sum())(torch.ones(3, dtype=F64))
    assert calls == ["fwd", "fun"]
    # and the marker is gone afterwards: a later transformed call runs the rule again
    calls.clear()
    ftx.vmap(ftx.grad(lambda x: f(x).sum()))(torch.ones(2, 3, dtype=F64))
    assert calls[0] == "fwd" and calls.count("fwd") == 1


def test_reentrancy_is_per_function() -> None:
    # another custom function called inside f's fwd keeps its own rule
    inner = ftx.custom_vjp(torch.sin)
    inner.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (3.0 * x * g,))  # "wrong" rule 3x
    outer = ftx.custom_vjp(lambda x: inner(x) * 2)
    outer.defvjp(lambda x: (outer(x), None), lambda r, g: (g * 5.0,))
    x = torch.tensor([0.3, -1.2], dtype=F64)
    # outer's rule holds for outer; inner's rule holds where inner is differentiated
    tree_allclose(ftx.grad(lambda x: outer(x).sum())(x), torch.full_like(x, 5.0))
    tree_allclose(ftx.grad(lambda x: (2 * inner(x)).sum())(x), 6.0 * x)
    tree_allclose(ftx.jacfwd(outer)(x), torch.diag(2 * torch.cos(x)))  # fwd differentiated


def test_threads_do_not_share_the_reentrancy_marker() -> None:
    import threading

    started, release = threading.Event(), threading.Event()
    f = ftx.custom_vjp(torch.sin)
    seen: list[str] = []

    def fwd(x: T) -> Any:
        started.set()
        release.wait(10)
        return f(x), torch.cos(x)

    f.defvjp(fwd, lambda c, g: (c * g,))
    t = threading.Thread(target=lambda: ftx.vmap(f)(torch.ones(2, 3, dtype=F64)))
    t.start()
    started.wait(10)
    # while the other thread sits inside f's fwd, this thread's call still runs the rule
    g = f.fwd

    def spy(x: T) -> Any:
        seen.append("fwd")
        assert g is not None
        return torch.sin(x), torch.cos(x)

    f.fwd = spy
    try:
        ftx.grad(lambda x: f(x).sum())(torch.ones(3, dtype=F64))
    finally:
        f.fwd = g
        release.set()
        t.join(10)
    assert seen == ["fwd"]


# ----------------------------------------------------------------------------- against JAX
def _jax_twins(jax: Any) -> dict[str, Any]:
    """JAX's custom_vjp / custom_jvp versions of the pair (pytree, nondiff float) and layer."""
    jnp = jax.numpy
    from functools import partial

    def pair(ab: Any, scale: float) -> Any:
        a, b = ab
        return {"prod": a * b * scale, "sum": jnp.sum(a + b)}

    pv = jax.custom_vjp(pair, nondiff_argnums=(1,))

    def pv_bwd(scale: float, ab: Any, ct: Any) -> Any:
        a, b = ab
        return ((ct["prod"] * b * scale + ct["sum"], ct["prod"] * a * scale + ct["sum"]),)

    pv.defvjp(lambda ab, scale: (pv(ab, scale), ab), pv_bwd)

    @partial(jax.custom_jvp, nondiff_argnums=(1,))
    def pj(ab: Any, scale: float) -> Any:
        return pair(ab, scale)

    @pj.defjvp
    def pj_rule(scale: float, primals: Any, tangents: Any) -> Any:
        ((a, b),), ((ta, tb),) = primals, tangents
        return pj((a, b), scale), {"prod": (ta * b + a * tb) * scale, "sum": jnp.sum(ta + tb)}

    def layer(wv: Any) -> Any:
        w, v = wv
        return jnp.tanh(w @ v)

    lv = jax.custom_vjp(layer)

    def lv_bwd(res: Any, g: Any) -> Any:
        (w, v), out = res
        d = g * (1 - out * out)
        return ((jnp.outer(d, v), w.T @ d),)

    lv.defvjp(lambda wv: (lv(wv), (wv, lv(wv))), lv_bwd)

    lj = jax.custom_jvp(layer)

    @lj.defjvp
    def lj_rule(primals: Any, tangents: Any) -> Any:
        ((w, v),), ((tw, tv),) = primals, tangents
        out = lj((w, v))
        return out, (1 - out * out) * (tw @ v + w @ tv)

    return {
        "pytree_nondiff_float": {
            "vjp": lambda ab: pv(ab, 2.0),
            "jvp": lambda ab: pj(ab, 2.0),
        },
        "layer": {"vjp": lv, "jvp": lj},
    }


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
@pytest.mark.parametrize("name", ["pytree_nondiff_float", "layer"])
def test_pytree_cases_match_jax(name: str, kind: str) -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    case = next(c for c in CASES if c.name == name)
    f = case.make(kind)
    w = _weights(f(case.x))

    def to_t(t: Any) -> Any:
        return jax.tree_util.tree_map(lambda a: torch.tensor(a.tolist(), dtype=F64), t)

    with jax.enable_x64(True):
        jf = _jax_twins(jax)[name][kind]
        jx = jax.tree_util.tree_map(lambda a: jnp.asarray(a.tolist()), tuple(case.x))
        jw = jax.tree_util.tree_map(lambda a: jnp.asarray(a.tolist()), w)

        def js(x: Any) -> Any:
            return sum(jnp.sum(a * b) for a, b in zip(jax.tree.leaves(jw), jax.tree.leaves(jf(x))))

        want = {
            "grad": jax.jit(jax.grad(js))(jx),
            "jacrev": jax.jit(jax.jacrev(jf))(jx),
            "hessian": jax.jit(jax.jacrev(jax.jacrev(js)))(jx),  # JAX: no jvp of a custom_vjp
        }
        if kind == "jvp":
            want["jacfwd"] = jax.jit(jax.jacfwd(jf))(jx)
            want["hessian_fwd"] = jax.jit(jax.hessian(js))(jx)

    def s(x: Any) -> T:
        return _dot(w, f(x))

    got = {
        "grad": ftx.grad(s)(case.x),
        "jacrev": ftx.jacrev(f)(case.x),
        "hessian": ftx.jacrev(ftx.jacrev(s))(case.x),
    }
    if kind == "jvp":
        got["jacfwd"] = ftx.jacfwd(f)(case.x)
        got["hessian_fwd"] = ftx.hessian(s)(case.x)
    for k, v in want.items():
        tree_allclose(got[k], _as_torch_tree(to_t(v)), rtol=1e-10, atol=1e-12)


def _as_torch_tree(t: Any) -> Any:
    """JAX returns lists where torch.func returns tuples for tuple inputs: compare as tuples."""
    if isinstance(t, (list, tuple)):
        return tuple(_as_torch_tree(v) for v in t)
    if isinstance(t, dict):
        return {k: _as_torch_tree(v) for k, v in t.items()}
    return t
