"""custom_vjp / custom_jvp corners: one answer on every route.

* A tensor at a ``nondiff_argnums`` position: ``custom_vjp`` refuses to be
  differentiated with respect to it (``TypeError``, JAX raises for a traced
  value there), ``custom_jvp`` treats it as a constant (derivative 0, JAX's
  ``stop_gradient``); both let ``vmap`` batch it. Checked on every route:
  ftx and torch.func transforms, argnums tuples, vmap(grad), grad(vmap),
  nested grads, jacrev/jacfwd/hessian, jvp/linearize, torch.autograd with
  ``requires_grad``, forward-AD duals, jit.
* A ``custom_jvp`` rule that is not linear in the tangent is a ``ValueError``
  on first reverse-mode use (JAX fails to transpose it too); linear rules,
  including ones whose values are huge, tiny or in float32, pass under
  vmap/grad/jit, and the probe runs once per input structure.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
import torch.autograd.forward_ad as fwAD

import ftx

from .helpers import tree_allclose

T = torch.Tensor
F64 = torch.float64
S = torch.tensor(1.5, dtype=F64)
X = torch.tensor([0.3, -1.2, 2.0], dtype=F64)


def _fun(s: T, x: T) -> T:
    return s * torch.sin(x)


def make_vjp() -> Any:
    f = ftx.custom_vjp(_fun, nondiff_argnums=(0,))
    f.defvjp(lambda s, x: (f(s, x), torch.cos(x)), lambda s, c, g: (s * c * g,))
    return f


def make_jvp() -> Any:
    f = ftx.custom_jvp(_fun, nondiff_argnums=(0,))
    f.defjvp(lambda s, p, t: (f(s, p[0]), s * torch.cos(p[0]) * t[0]))
    return f


def _loss(f: Any) -> Callable[[T, T], T]:
    return lambda s, x: f(s, x).sum()


def _fw_dual_s(f: Any) -> Any:
    with fwAD.dual_level():
        d = fwAD.make_dual(S, torch.tensor(1.0, dtype=F64))
        return fwAD.unpack_dual(f(d, X)).tangent


def _autograd_s(f: Any) -> Any:
    s = S.clone().requires_grad_()
    return torch.autograd.grad(f(s, X).sum(), s, allow_unused=True)[0]


# Routes that differentiate with respect to the nondiff tensor s.
# Each returns the derivative with respect to s (None / zeros where nothing flows).
S_ROUTES: dict[str, Callable[[Any], Any]] = {
    "ftx.grad": lambda f: ftx.grad(_loss(f))(S, X),
    "ftx.grad_argnums01": lambda f: ftx.grad(_loss(f), argnums=(0, 1))(S, X)[0],
    "ftx.value_and_grad": lambda f: ftx.value_and_grad(_loss(f))(S, X)[1],
    "torch.func.grad": lambda f: torch.func.grad(_loss(f))(S, X),
    "ftx.vjp": lambda f: ftx.vjp(lambda s: f(s, X), S)[1](torch.ones(3, dtype=F64))[0],
    "vmap_grad": lambda f: ftx.vmap(ftx.grad(_loss(f)), in_axes=(0, None))(S.repeat(2), X),
    "grad_vmap": lambda f: ftx.grad(
        lambda s: ftx.vmap(lambda x: f(s, x).sum())(torch.stack([X, X])).sum()
    )(S),
    "grad_of_grad_x": lambda f: ftx.grad(lambda s: ftx.grad(lambda x: f(s, x).sum())(X).sum())(S),
    "jacrev": lambda f: ftx.jacrev(f)(S, X),
    "jacfwd": lambda f: ftx.jacfwd(f)(S, X),
    "jacobian": lambda f: ftx.jacobian(f)(S, X),
    "hessian": lambda f: ftx.hessian(_loss(f))(S, X),
    "hvp": lambda f: ftx.hvp(_loss(f), (S, X), (S, X))[0],
    "jvp": lambda f: ftx.jvp(lambda s: f(s, X), (S,), (S,))[1],
    "linearize": lambda f: ftx.linearize(lambda s: f(s, X), S)[1](S),
    "torch.autograd": _autograd_s,
    "forward_ad_dual": _fw_dual_s,
    "jit_grad": lambda f: ftx.jit(ftx.grad(_loss(f)))(S, X),
}


@pytest.mark.parametrize("route", list(S_ROUTES))
def test_custom_vjp_refuses_to_differentiate_a_nondiff_tensor(route: str) -> None:
    with pytest.raises(
        TypeError,
        match=r"ftx\.custom_vjp: tensors at nondiff_argnums positions to be constants, not "
        r"differentiated .*, got a differentiated Tensor\(shape=\(\), dtype=torch\.float64\) "
        r"at argument 0\. Remove 0 from nondiff_argnums and return its cotangent from bwd",
    ):
        S_ROUTES[route](make_vjp())


@pytest.mark.parametrize("route", list(S_ROUTES))
def test_custom_jvp_treats_a_nondiff_tensor_as_a_constant(route: str) -> None:
    got = S_ROUTES[route](make_jvp())
    if got is not None:
        assert torch.count_nonzero(torch.as_tensor(got)) == 0, got


def test_custom_jvp_nondiff_tensor_zero_matches_jax() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with jax.enable_x64(True):

        @partial(jax.custom_jvp, nondiff_argnums=(0,))
        def jf(s: Any, x: Any) -> Any:
            return s * jnp.sin(x)

        jf.defjvp(lambda s, p, t: (jf(s, p[0]), s * jnp.cos(p[0]) * t[0]))
        want = jax.jit(jax.grad(lambda s, x: jnp.sum(jf(s, x)), argnums=(0, 1)))(
            1.5, jnp.asarray(X.tolist())
        )
    got = ftx.grad(_loss(make_jvp()), argnums=(0, 1))(S, X)
    tree_allclose(got, tuple(torch.tensor(w.tolist(), dtype=F64) for w in want))


def test_custom_vjp_nondiff_tensor_raises_like_jax() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @partial(jax.custom_vjp, nondiff_argnums=(0,))
    def jf(s: Any, x: Any) -> Any:
        return s * jnp.sin(x)

    jf.defvjp(lambda s, x: (jf(s, x), jnp.cos(x)), lambda s, c, g: (s * c * g,))
    with pytest.raises(Exception, match="nondiff_argnums"):
        jax.grad(lambda s, x: jnp.sum(jf(s, x)))(1.5, jnp.ones(3))
    with pytest.raises(TypeError, match="nondiff_argnums"):
        ftx.grad(_loss(make_vjp()))(S, X)


def _autograd_x(f: Any) -> T:
    x = X.clone().requires_grad_()
    return torch.autograd.grad(f(S, x).sum(), x)[0]


def _no_grad_call(f: Any) -> T:
    with torch.no_grad():  # nothing is differentiated: no error, plain value
        out: T = f(S.clone().requires_grad_(), X)
        return out


# Routes that differentiate only x while s is a tensor at the nondiff position: the rule holds.
X_ROUTES: dict[str, Callable[[Any], tuple[Any, Any]]] = {
    "ftx.grad_argnums1": lambda f: (ftx.grad(_loss(f), argnums=1)(S, X), S * torch.cos(X)),
    "torch.func.grad": lambda f: (
        torch.func.grad(_loss(f), argnums=1)(S, X),
        S * torch.cos(X),
    ),
    "closure": lambda f: (ftx.grad(lambda x: f(S, x).sum())(X), S * torch.cos(X)),
    "vmap_grad_batched_s": lambda f: (
        ftx.vmap(ftx.grad(_loss(f), argnums=1))(torch.stack([S, 2 * S]), torch.stack([X, X])),
        torch.stack([S * torch.cos(X), 2 * S * torch.cos(X)]),
    ),
    "vmap_unbatched_s": lambda f: (
        ftx.vmap(f, in_axes=(None, 0))(S, torch.stack([X, -X])),
        torch.stack([_fun(S, X), _fun(S, -X)]),
    ),
    "vmap_batched_s": lambda f: (
        ftx.vmap(f, in_axes=(0, None))(torch.stack([S, -S]), X),
        torch.stack([_fun(S, X), _fun(-S, X)]),
    ),
    "jacrev_x": lambda f: (ftx.jacrev(f, argnums=1)(S, X), torch.diag(S * torch.cos(X))),
    "jacfwd_x": lambda f: (ftx.jacfwd(f, argnums=1)(S, X), torch.diag(S * torch.cos(X))),
    "hessian_x": lambda f: (
        ftx.hessian(_loss(f), argnums=1)(S, X),
        torch.diag(-S * torch.sin(X)),
    ),
    "jvp_x": lambda f: (ftx.jvp(lambda x: f(S, x), (X,), (X,))[1], S * torch.cos(X) * X),
    "torch.autograd_x": lambda f: (_autograd_x(f), S * torch.cos(X)),
    "requires_grad_s_under_no_grad": lambda f: (_no_grad_call(f), _fun(S, X)),
}


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
@pytest.mark.parametrize("route", list(X_ROUTES))
def test_nondiff_tensor_routes_that_differentiate_x_only(route: str, kind: str) -> None:
    got, want = X_ROUTES[route](make_vjp() if kind == "vjp" else make_jvp())
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_nondiff_tensor_inside_a_pytree_argument() -> None:
    f = ftx.custom_vjp(lambda cfg, x: cfg["a"] * x + cfg["n"], nondiff_argnums=(0,))
    f.defvjp(lambda cfg, x: (f(cfg, x), cfg["a"]), lambda cfg, a, g: (a * g,))
    cfg = {"a": torch.tensor(2.0, dtype=F64), "n": 1.0}
    tree_allclose(ftx.grad(lambda x: f(cfg, x).sum())(X), torch.full_like(X, 2.0))
    batched = {"a": torch.tensor([1.0, 3.0], dtype=F64), "n": 1.0}
    got = ftx.vmap(
        ftx.grad(lambda c, x: f(c, x).sum(), argnums=1), in_axes=({"a": 0, "n": None}, None)
    )(batched, X)
    tree_allclose(got, torch.stack([torch.ones_like(X), 3 * torch.ones_like(X)]))
    with pytest.raises(TypeError, match=r"at argument 0 at path 'a'"):
        ftx.grad(lambda c, x: f(c, x).sum())(cfg, X)


# ----------------------------------------------------------------------------- linearity
def _rule_with(tangent: Callable[[T, T], T]) -> Any:
    f = ftx.custom_jvp(torch.sin)
    f.defjvp(lambda p, t: (f(p[0]), tangent(p[0], t[0])))
    return f


NON_LINEAR: dict[str, Callable[[T, T], T]] = {
    "square": lambda x, t: t**2,
    "abs": lambda x, t: torch.cos(x) * t.abs(),
    "affine": lambda x, t: torch.cos(x) * t + 1.0,
    "cube": lambda x, t: t**3,
    "relu": lambda x, t: torch.relu(t),
}


def _autograd_grad(f: Any) -> T:
    x = X.clone().requires_grad_()
    return torch.autograd.grad(f(x).sum(), x)[0]


REVERSE_ROUTES: dict[str, Callable[[Any], Any]] = {
    "ftx.grad": lambda f: ftx.grad(lambda x: f(x).sum())(X),
    "torch.func.grad": lambda f: torch.func.grad(lambda x: f(x).sum())(X),
    "vjp": lambda f: ftx.vjp(f, X)[1](torch.ones_like(X)),
    "jacrev": lambda f: ftx.jacrev(f)(X),
    "vmap_grad": lambda f: ftx.vmap(ftx.grad(lambda x: f(x).sum()))(torch.stack([X, X])),
    "hessian": lambda f: ftx.hessian(lambda x: f(x).sum())(X),
    "torch.autograd": lambda f: _autograd_grad(f),
}


@pytest.mark.parametrize("route", list(REVERSE_ROUTES))
@pytest.mark.parametrize("rule", list(NON_LINEAR))
def test_non_linear_jvp_rule_raises_in_reverse_mode(rule: str, route: str) -> None:
    f = _rule_with(NON_LINEAR[rule])
    with pytest.raises(
        ValueError,
        match=r"ftx\.custom_jvp: a jvp rule whose tangent output is linear in the tangents "
        r"\(reverse mode transposes it, as JAX does\), got a non-linear rule for 'sin': "
        r"rule\(primals, (2\*t|-t)\)\[1\] != .*Return tangent_out as a linear function",
    ):
        REVERSE_ROUTES[route](f)
    # and again: a failed check is not remembered as passed
    with pytest.raises(ValueError, match="non-linear rule"):
        REVERSE_ROUTES[route](f)


def test_non_linear_jvp_rule_raises_under_jit() -> None:
    f = _rule_with(NON_LINEAR["square"])
    with pytest.raises(ValueError, match="non-linear rule"):
        ftx.jit(ftx.grad(lambda x: f(x).sum()))(X)


def test_non_linear_rule_raises_like_jax() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.custom_jvp
    def jf(x: Any) -> Any:
        return jnp.sin(x)

    jf.defjvp(lambda p, t: (jnp.sin(p[0]), t[0] ** 2))
    with pytest.raises(Exception, match="[Tt]ranspose"):
        jax.grad(lambda x: jnp.sum(jf(x)))(jnp.ones(3))
    # forward mode uses the rule as stated, in JAX and in ftx
    f = _rule_with(NON_LINEAR["square"])
    tree_allclose(ftx.jvp(f, (X,), (X,))[1], X**2)


def test_linearity_probe_runs_once_per_structure_and_keeps_legit_rules() -> None:
    calls: list[tuple[int, ...]] = []
    f = ftx.custom_jvp(torch.sin)

    @f.defjvp
    def rule(p: Any, t: Any) -> Any:
        calls.append(tuple(p[0].shape))
        return torch.sin(p[0]), torch.cos(p[0]) * t[0]

    g = ftx.grad(lambda x: f(x).sum())
    tree_allclose(g(X), torch.cos(X))
    first = len(calls)
    assert first == 4  # the probe (t, 2t, -t) and the transposition
    tree_allclose(g(2 * X), torch.cos(2 * X))
    assert len(calls) == first + 1  # same structure: no probe
    ftx.vmap(g)(torch.stack([X, X]))  # same per-example structure: no probe
    assert len(calls) == first + 2
    g(X.float())  # a new dtype: probed again
    assert len(calls) == first + 2 + 4
    f.defjvp(rule)  # a new rule: probed again
    g(X)
    assert len(calls) == first + 2 + 4 + 4


LINEAR_RULES: dict[str, tuple[Callable[[Any], Any], Callable[[T], T], T]] = {
    # name: (rule for primals, tangents), the function, a point
    "huge_values": (
        lambda p, t: (torch.exp(p[0]), torch.exp(p[0]) * t[0]),
        torch.exp,
        torch.tensor([700.0, -700.0, 1.0], dtype=F64),
    ),
    "float32_matmul": (
        lambda p, t: (p[0] @ _A32.T, t[0] @ _A32.T),
        lambda x: x @ _A32.T,
        torch.linspace(-1.0, 1.0, 16, dtype=torch.float32),
    ),
    "centered": (
        lambda p, t: (p[0] - p[0].mean(), t[0] - t[0].mean()),
        lambda x: x - x.mean(),
        X,
    ),
    "nan_at_the_point": (
        lambda p, t: (torch.sqrt(p[0]), t[0] / (2 * torch.sqrt(p[0]))),
        torch.sqrt,
        torch.tensor([4.0, -1.0, 0.25], dtype=F64),
    ),
}
_A32 = torch.randn(8, 16, generator=torch.Generator().manual_seed(3), dtype=torch.float32)


@pytest.mark.parametrize("name", list(LINEAR_RULES))
def test_linear_rules_pass_the_probe(name: str) -> None:
    rule, fun, x = LINEAR_RULES[name]
    f = ftx.custom_jvp(fun)
    f.defjvp(rule)
    got = ftx.vmap(ftx.grad(lambda x: f(x).sum()))(torch.stack([x, x]))
    want = torch.func.vmap(torch.func.grad(lambda x: fun(x).sum()))(torch.stack([x, x]))
    torch.testing.assert_close(got, want, equal_nan=True)


def test_probe_with_nondiff_and_pytree_arguments_under_vmap() -> None:
    f = ftx.custom_jvp(lambda k, ab: {"y": k * ab[0] * ab[1]}, nondiff_argnums=(0,))
    f.defjvp(
        lambda k, p, t: (
            f(k, p[0]),
            {"y": k * (t[0][0] * p[0][1] + p[0][0] * t[0][1])},
        )
    )
    a, b = X, X.flip(0)
    got = ftx.vmap(ftx.grad(lambda ab: f(3.0, ab)["y"].sum()))(
        (torch.stack([a, b]), torch.stack([b, a]))
    )
    tree_allclose(got, (torch.stack([3 * b, 3 * a]), torch.stack([3 * a, 3 * b])))
