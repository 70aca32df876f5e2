"""ftx.custom_vjp / ftx.custom_jvp: the rule is what runs, under every transform.

Each case is a custom function plus float64 references for its value, the
gradient of ``s(x) = sum(w * f(x))``, its Jacobian and the Hessian of ``s``.
The checks run under grad, vjp, vmap, vmap(grad), jacrev and hessian (and, for
custom_jvp, jvp and jacfwd), with torch.func's transforms and with ftx's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import ftx

from ._engines import ENGINES, Engine
from .helpers import central_difference_grad, tree_allclose

T = torch.Tensor
F64 = torch.float64


# ----------------------------------------------------------------------------- the functions
def _stable_log1pexp(x: T) -> T:
    # Stable value, but autograd through it gives nan for large x (inf * 0 in the masked branch).
    return torch.where(x > 0, x + torch.log1p(torch.exp(-x)), torch.log1p(torch.exp(x)))


def make_log1pexp(kind: str) -> Callable[[T], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(_stable_log1pexp)
        f.defvjp(lambda x: (_stable_log1pexp(x), (x,)), lambda res, g: (g * torch.sigmoid(res[0]),))
        return f
    j = ftx.custom_jvp(_stable_log1pexp)

    @j.defjvp
    def rule(primals: tuple[T], tangents: tuple[T]) -> tuple[T, T]:
        (x,), (t,) = primals, tangents
        return _stable_log1pexp(x), t * torch.sigmoid(x)

    return j


def _norm(x: T) -> T:
    return torch.sqrt((x * x).sum())


def _unit(x: T, n: T) -> T:
    # x / |x| with 0 at 0, differentiable everywhere (the where never sees a 0/0).
    safe = torch.where(n > 0, n, torch.ones_like(n))
    return torch.where(n > 0, x / safe, torch.zeros_like(x))


def make_safe_norm(kind: str) -> Callable[[T], T]:
    if kind == "vjp":
        f = ftx.custom_vjp(_norm)

        def fwd(x: T) -> tuple[T, Any]:
            n = _norm(x)
            return n, (x, n)

        f.defvjp(fwd, lambda res, g: (g * _unit(*res),))
        return f
    j = ftx.custom_jvp(_norm)

    @j.defjvp
    def rule(primals: tuple[T], tangents: tuple[T]) -> tuple[T, T]:
        (x,), (t,) = primals, tangents
        n = _norm(x)
        return n, (_unit(x, n) * t).sum()

    return j


def make_clip_gradient(kind: str) -> Callable[[T], T]:
    # JAX's docs example: identity forward, the cotangent clipped to [-1, 1]; lo/hi nondiff.
    assert kind == "vjp"
    f = ftx.custom_vjp(lambda lo, hi, x: x, nondiff_argnums=(0, 1))
    f.defvjp(lambda lo, hi, x: (x, None), lambda lo, hi, res, g: (g.clamp(lo, hi),))
    return lambda x: f(-1.0, 1.0, x)


def make_wrong(kind: str) -> Callable[[T], T]:
    # sin with the deliberately wrong derivative 3x: every transform must report 3x.
    if kind == "vjp":
        f = ftx.custom_vjp(torch.sin)
        f.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (3.0 * x * g,))
        return f
    j = ftx.custom_jvp(torch.sin)
    j.defjvp(lambda p, t: (torch.sin(p[0]), 3.0 * p[0] * t[0]))
    return j


# ----------------------------------------------------------------------------- the references
@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[str], Callable[[T], T]]
    kinds: tuple[str, ...]
    x: T
    xs: T  # a batch for vmap
    w: T  # output weights: s(x) = sum(w * f(x))
    value: Callable[[T], T]
    grad: Callable[[T, T], T]  # grad of s
    jac: Callable[[T], T]
    hess: Callable[[T, T], T]  # Hessian of s


def _diag_case(name: str, make: Any, kinds: Any, x: T, value: Any, d1: Any, d2: Any) -> Case:
    """An elementwise function with first/second derivatives d1, d2 (as the rule states)."""
    w = torch.linspace(-2.0, 3.0, x.numel(), dtype=F64)
    return Case(
        name,
        make,
        kinds,
        x,
        torch.stack([x, 0.5 * x, -x]),
        w,
        value,
        lambda x, w: w * d1(x),
        lambda x: torch.diag(d1(x)),
        lambda x, w: torch.diag(w * d2(x)),
    )


_sig = torch.sigmoid
BIG = torch.tensor([-800.0, -3.0, 0.0, 0.7, 40.0, 800.0], dtype=F64)
NORM_X = torch.tensor([3.0, -4.0, 12.0], dtype=F64)


def _norm_hess(x: T, w: T) -> T:
    n = _norm(x)
    if n == 0:
        return torch.zeros(x.numel(), x.numel(), dtype=x.dtype)
    u = x / n
    return w * (torch.eye(x.numel(), dtype=x.dtype) - torch.outer(u, u)) / n


CASES = [
    _diag_case(
        "log1pexp",
        make_log1pexp,
        ("vjp", "jvp"),
        BIG,
        lambda x: torch.logaddexp(x, torch.zeros_like(x)),
        _sig,
        lambda x: _sig(x) * (1 - _sig(x)),
    ),
    _diag_case(
        "wrong_rule",
        make_wrong,
        ("vjp", "jvp"),
        torch.tensor([0.3, -1.2, 2.0], dtype=F64),
        torch.sin,
        lambda x: 3.0 * x,
        lambda x: torch.full_like(x, 3.0),
    ),
    Case(
        "safe_norm",
        make_safe_norm,
        ("vjp", "jvp"),
        NORM_X,
        torch.stack([NORM_X, torch.zeros(3, dtype=F64), -2 * NORM_X]),
        torch.tensor(2.5, dtype=F64),
        _norm,
        lambda x, w: w * _unit(x, _norm(x)),
        lambda x: _unit(x, _norm(x)),
        _norm_hess,
    ),
    Case(
        "safe_norm_at_0",
        make_safe_norm,
        ("vjp", "jvp"),
        torch.zeros(3, dtype=F64),
        torch.zeros(2, 3, dtype=F64),
        torch.tensor(2.5, dtype=F64),
        _norm,
        lambda x, w: torch.zeros_like(x),
        lambda x: torch.zeros_like(x),
        _norm_hess,
    ),
    Case(
        "clip_gradient",
        make_clip_gradient,
        ("vjp",),
        torch.tensor([0.5, -1.0, 2.0], dtype=F64),
        torch.tensor([[0.5, -1.0, 2.0], [1.0, 2.0, 3.0]], dtype=F64),
        torch.tensor([3.0, -0.25, -2.0], dtype=F64),
        lambda x: x,
        lambda x, w: w.clamp(-1, 1),
        lambda x: torch.eye(x.numel(), dtype=F64),
        lambda x, w: torch.zeros(x.numel(), x.numel(), dtype=F64),
    ),
]
CASE_KIND = [pytest.param(c, k, id=f"{c.name}-custom_{k}") for c in CASES for k in c.kinds]
CASE_JVP = [pytest.param(c, id=c.name) for c in CASES if "jvp" in c.kinds]

TRANSFORMS_REV = ["value", "grad", "vjp", "vmap", "vmap_grad", "jacrev", "hessian"]
TRANSFORMS_FWD = ["jvp", "jacfwd"]


def _run(tr: str, e: Engine, f: Callable[[T], T], c: Case) -> tuple[T, T]:
    """Apply transform ``tr`` of engine ``e``; return (result, float64 reference)."""
    x, w = c.x, c.w

    def s(x: T) -> T:
        return (w * f(x)).sum()

    if tr == "value":
        return f(x), c.value(x)
    if tr == "grad":
        return e.grad(s)(x), c.grad(x, w)
    if tr == "vjp":
        out, pull = e.vjp(f, x)
        return pull(w * torch.ones_like(out))[0], c.grad(x, w)
    if tr == "vmap":
        return e.vmap(f)(c.xs), torch.stack([c.value(r) for r in c.xs])
    if tr == "vmap_grad":
        return e.vmap(e.grad(s))(c.xs), torch.stack([c.grad(r, w) for r in c.xs])
    if tr == "jacrev":
        return e.jacrev(f)(x), c.jac(x)
    if tr == "hessian":
        return e.hessian(s)(x), c.hess(x, w)
    if tr == "jvp":
        v = torch.linspace(0.5, 1.5, x.numel(), dtype=F64).reshape(x.shape)
        out, tan = e.jvp(f, (x,), (v,))
        jac = c.jac(x).reshape((*out.shape, x.numel()))
        return tan, jac @ v.reshape(-1)
    if tr == "jacfwd":
        return e.jacfwd(f)(x), c.jac(x)
    raise AssertionError(tr)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tr", TRANSFORMS_REV)
@pytest.mark.parametrize(("case", "kind"), CASE_KIND)
def test_rule_holds_in_reverse_mode_and_vmap(
    case: Case, kind: str, tr: str, engine: Engine
) -> None:
    got, want = _run(tr, engine, case.make(kind), case)
    assert torch.isfinite(got).all(), got
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tr", TRANSFORMS_FWD)
@pytest.mark.parametrize("case", CASE_JVP)
def test_custom_jvp_rule_holds_in_forward_mode(case: Case, tr: str, engine: Engine) -> None:
    got, want = _run(tr, engine, case.make("jvp"), case)
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_rule_holds_under_torch_autograd(kind: str) -> None:
    x = torch.tensor([0.3, -1.2, 2.0], dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(make_wrong(kind)(x).sum(), x)
    torch.testing.assert_close(g, 3.0 * x.detach())


def test_without_the_rule_autograd_fails_where_the_rule_does_not() -> None:
    # The premise of the log1pexp and safe_norm cases: plain autograd gives nan there.
    x = BIG.clone().requires_grad_()
    assert torch.isnan(torch.autograd.grad(_stable_log1pexp(x).sum(), x)[0]).any()
    z = torch.zeros(3, dtype=F64, requires_grad=True)
    assert torch.isnan(torch.autograd.grad(_norm(z), z)[0]).all()


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_rule_matches_central_differences_where_smooth(kind: str) -> None:
    x = torch.tensor([-3.0, 0.7, 5.0], dtype=F64)
    for make in (make_log1pexp, make_safe_norm):
        f = make(kind)
        got = torch.func.grad(lambda x: f(x).sum())(x)
        torch.testing.assert_close(got, central_difference_grad(lambda x: f(x).sum(), x),
                                   rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_second_order_reverse_over_reverse(kind: str) -> None:
    # grad(grad(.)) differentiates the rule itself (bwd / the tangent map) as JAX does.
    f = make_safe_norm(kind)
    h = torch.func.jacrev(torch.func.jacrev(f))(NORM_X)
    tree_allclose(h, _norm_hess(NORM_X, torch.tensor(1.0, dtype=F64)), rtol=1e-10, atol=1e-12)


def test_custom_vjp_under_forward_mode_differentiates_fwd() -> None:
    # Documented departure: JAX refuses jvp of a custom_vjp function; ftx differentiates fwd.
    x = torch.tensor([0.3, -1.2, 2.0], dtype=F64)
    _, tan = torch.func.jvp(make_wrong("vjp"), (x,), (torch.ones_like(x),))
    torch.testing.assert_close(tan, torch.cos(x))


# ----------------------------------------------------------------------------- pytrees, nondiff
def _pair_fun(ab: tuple[T, T], scale: float) -> dict[str, T]:
    a, b = ab
    return {"prod": a * b * scale, "sum": (a + b).sum()}


def _pair_reference(a: T, b: T) -> tuple[T, T]:
    a, b = a.clone().requires_grad_(), b.clone().requires_grad_()
    out = _pair_fun((a, b), 2.0)
    total = (out["prod"] * 1.5).sum() + 3.0 * out["sum"]
    ga, gb = torch.autograd.grad(total, (a, b))
    return ga, gb


def _make_pair(kind: str) -> Any:
    if kind == "vjp":
        f = ftx.custom_vjp(_pair_fun, nondiff_argnums=(1,))

        def fwd(ab: tuple[T, T], scale: float) -> tuple[dict[str, T], Any]:
            return _pair_fun(ab, scale), {"a": ab[0], "b": ab[1], "scale": scale}

        def bwd(scale: float, res: dict[str, Any], ct: dict[str, T]) -> tuple[Any]:
            assert res["scale"] == scale == 2.0
            a, b = res["a"], res["b"]
            return ((ct["prod"] * b * scale + ct["sum"], ct["prod"] * a * scale + ct["sum"]),)

        f.defvjp(fwd, bwd)
        return f
    j = ftx.custom_jvp(_pair_fun, nondiff_argnums=(1,))

    @j.defjvp
    def rule(scale: float, primals: Any, tangents: Any) -> Any:
        ((a, b),), ((ta, tb),) = primals, tangents
        out = _pair_fun((a, b), scale)
        return out, {"prod": (ta * b + a * tb) * scale, "sum": (ta + tb).sum()}

    return j


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_pytree_arguments_outputs_and_nondiff(kind: str, engine: Engine) -> None:
    f = _make_pair(kind)
    a = torch.tensor([1.0, 2.0, -3.0], dtype=F64)
    b = torch.tensor([0.5, -1.0, 4.0], dtype=F64)

    def loss(ab: tuple[T, T]) -> T:
        out = f(ab, 2.0)
        return (out["prod"] * 1.5).sum() + 3.0 * out["sum"]

    tree_allclose(engine.grad(loss)((a, b)), _pair_reference(a, b))
    batched = engine.vmap(engine.grad(loss))((torch.stack([a, b]), torch.stack([b, a])))
    tree_allclose((batched[0][1], batched[1][1]), _pair_reference(b, a))
    tree_allclose(f((a, b), scale=2.0), _pair_fun((a, b), 2.0))  # keywords bind as JAX does


def test_plain_call_runs_fun_not_the_rule() -> None:
    calls: list[str] = []
    f = ftx.custom_vjp(lambda x: calls.append("fun") or x * 2)
    f.defvjp(lambda x: (calls.append("fwd") or x * 2, None), lambda r, g: (2 * g,))
    f(torch.ones(2))
    assert calls == ["fun"]
    torch.func.grad(lambda x: f(x).sum())(torch.ones(2))
    assert calls == ["fun", "fwd"]


def test_defjvp_works_as_a_decorator_and_wraps_the_function() -> None:
    j = make_log1pexp("jvp")
    assert isinstance(j, ftx.custom_jvp) and j.__name__ == "_stable_log1pexp"


# ----------------------------------------------------------------------------- errors
def _grad_of(f: Callable[[T], Any]) -> T:
    return torch.func.grad(lambda x: f(x).sum())(torch.ones(3, dtype=F64))


def _vjp_with(bwd: Callable[..., Any]) -> Callable[[T], T]:
    f = ftx.custom_vjp(torch.sin)
    f.defvjp(lambda x: (torch.sin(x), x), bwd)
    return f


def _jvp_with(rule: Callable[..., Any]) -> Callable[[T], T]:
    j = ftx.custom_jvp(torch.sin)
    j.defjvp(rule)
    return j


ERRORS = [
    (
        "no_defvjp",
        lambda: ftx.custom_vjp(torch.sin)(torch.ones(2)),
        TypeError,
        r"ftx\.custom_vjp: a rule defined with sin\.defvjp\(fwd, bwd\) before the call, "
        r"got no rule",
    ),
    (
        "no_defjvp",
        lambda: ftx.custom_jvp(torch.sin)(torch.ones(2)),
        TypeError,
        r"ftx\.custom_jvp: a rule defined with sin\.defjvp\(rule\) before the call",
    ),
    (
        "bwd_not_tuple",
        lambda: _grad_of(_vjp_with(lambda x, g: g)),
        TypeError,
        r"ftx\.custom_vjp: bwd must return a tuple with one cotangent per differentiable argument "
        r"\(1\), got Tensor\(shape=\(3,\).*trailing comma",
    ),
    (
        "bwd_count",
        lambda: _grad_of(_vjp_with(lambda x, g: (g, g))),
        ValueError,
        r"ftx\.custom_vjp: bwd must return 1 cotangent\(s\), one per "
        r"differentiable argument, got 2",
    ),
    (
        "bwd_shape",
        lambda: _grad_of(_vjp_with(lambda x, g: (g.sum(),))),
        ValueError,
        r"the cotangent for argument 0 must have the primal's shape \(3,\), got shape \(\)",
    ),
    (
        "bwd_structure",
        lambda: _grad_of(_vjp_with(lambda x, g: ((g, g),))),
        ValueError,
        r"the cotangent for argument 0 must have the argument's structure",
    ),
    (
        "bwd_not_tensor",
        lambda: _grad_of(_vjp_with(lambda x, g: (1.0,))),
        TypeError,
        r"the cotangent for argument 0 must be a tensor, got float 1\.0",
    ),
    (
        "fwd_not_pair",
        lambda: _grad_of(_vjp_with_fwd(lambda x: torch.sin(x))),
        TypeError,
        r"ftx\.custom_vjp: fwd must return a pair \(out, residuals\), got Tensor",
    ),
    (
        "rule_tangent_shape",
        lambda: _grad_of(_jvp_with(lambda p, t: (p[0], t[0].sum()))),
        ValueError,
        r"ftx\.custom_jvp: the rule's tangent output leaf 0 must have the output's shape \(3,\), "
        r"got shape \(\)",
    ),
    (
        "rule_not_pair",
        lambda: _grad_of(_jvp_with(lambda p, t: t[0])),
        TypeError,
        r"ftx\.custom_jvp: the jvp rule must return a pair \(primal_out, tangent_out\)",
    ),
    (
        "nondiff_type",
        lambda: ftx.custom_vjp(torch.sin, nondiff_argnums="0"),
        TypeError,
        r"ftx\.custom_vjp: nondiff_argnums must be an int or a tuple of ints, got str",
    ),
    (
        "nondiff_negative",
        lambda: ftx.custom_jvp(torch.sin, nondiff_argnums=(-1,)),
        ValueError,
        r"ftx\.custom_jvp: nondiff_argnums must hold unique non-negative positions, got \(-1,\)",
    ),
    (
        "nondiff_out_of_range",
        lambda: _defined(ftx.custom_vjp(torch.sin, nondiff_argnums=2))(torch.ones(1)),
        ValueError,
        r"nondiff_argnums to name positions below the number of "
        r"arguments \(1\), got position\(s\) \[2\]",
    ),
    (
        "diff_arg_not_tensor",
        lambda: _defined(ftx.custom_vjp(lambda x, y: x * y))(torch.ones(1), 2.0),
        TypeError,
        r"differentiable arguments must be tensors or pytrees of "
        r"tensors, got float 2\.0 in argument 1\. .*nondiff_argnums",
    ),
    (
        "fun_not_callable",
        lambda: ftx.custom_jvp(3),
        TypeError,
        r"ftx\.custom_jvp: fun must be callable, got int 3",
    ),
    (
        "bwd_not_callable",
        lambda: ftx.custom_vjp(torch.sin).defvjp(torch.sin, None),
        TypeError,
        r"ftx\.custom_vjp: bwd must be callable, got NoneType",
    ),
    (
        "output_not_tensor",
        lambda: _grad_of(_defined(ftx.custom_vjp(lambda x: (x, 1)))),
        TypeError,
        r"fwd's output must be a tensor or a pytree of tensors, got int 1 at path '1'",
    ),
]


def _vjp_with_fwd(fwd: Callable[..., Any]) -> Callable[[T], T]:
    f = ftx.custom_vjp(torch.sin)
    f.defvjp(fwd, lambda r, g: (g,))
    return f


def _defined(f: Any) -> Any:
    f.defvjp(lambda *a: (f.fun(*a), None), lambda *a: (None,) * 1)
    return f


@pytest.mark.parametrize(
    ("make", "exc", "pattern"), [pytest.param(*e[1:], id=e[0]) for e in ERRORS]
)
def test_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        make()


def test_errors_surface_under_vmap_too() -> None:
    f = _vjp_with(lambda x, g: (g, g))
    with pytest.raises(ValueError, match=r"bwd must return 1 cotangent\(s\)"):
        torch.func.vmap(torch.func.grad(lambda x: f(x).sum()))(torch.ones(2, 3))


# ----------------------------------------------------------------------------- against JAX
def test_matches_jax_custom_rules() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    x = [0.3, -1.2, 2.0]
    with jax.enable_x64(True):

        @jax.custom_vjp
        def jf(x: Any) -> Any:
            return jnp.sin(x)

        jf.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (3.0 * x * g,))

        @jax.custom_vjp
        def jnorm(x: Any) -> Any:
            return jnp.sqrt(jnp.sum(x * x))

        def jfwd(x: Any) -> Any:
            n = jnp.sqrt(jnp.sum(x * x))
            return n, (x, n)

        jnorm.defvjp(jfwd, lambda r, g: (g * r[0] / r[1],))
        xs = jnp.asarray(x, dtype=jnp.float64)
        nx = jnp.asarray(NORM_X.tolist(), dtype=jnp.float64)
        want = {
            "grad": jax.grad(lambda x: jnp.sum(jf(x)))(xs),
            "hessian": jax.hessian(lambda x: jnp.sum(jf(x) * xs))(xs),
            "norm_hessian": jax.hessian(jnorm)(nx),
        }
    f, n = make_wrong("vjp"), make_safe_norm("vjp")
    t = torch.tensor(x, dtype=F64)
    got = {
        "grad": torch.func.grad(lambda x: f(x).sum())(t),
        "hessian": torch.func.hessian(lambda x: (f(x) * t).sum())(t),
        "norm_hessian": torch.func.hessian(n)(NORM_X),
    }
    for k, v in want.items():
        torch.testing.assert_close(got[k], torch.tensor(v.tolist(), dtype=F64), msg=k)
