"""custom_jvp.defjvps against jax.custom_jvp.defjvps (float64) under every transform."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import ftx
from ftx.test_util import check_grads

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.fixture(autouse=True)
def _jax_x64() -> Any:
    """64-bit JAX for this module's tests only (a global switch leaks into other modules)."""
    with jax.enable_x64(True):
        yield

D = torch.float64
X = np.array([0.3, -1.2, 2.0])
Y = np.array([1.5, 0.7, -0.4])


# The rules are deliberately not fun's derivative (a scaled x-rule): results equal JAX's only
# when the rule is what runs, never autodiff of fun.
def ftx_f(y_rule: bool = True) -> Any:
    @ftx.custom_jvp
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * y

    f.defjvps(
        lambda tx, out, x, y: 3.0 * torch.cos(x) * y * tx,
        (lambda ty, out, x, y: torch.sin(x) * ty) if y_rule else None,
    )
    return f


def jax_f(y_rule: bool = True) -> Any:
    @jax.custom_jvp
    def f(x: Any, y: Any) -> Any:
        return jnp.sin(x) * y

    f.defjvps(
        lambda tx, out, x, y: 3.0 * jnp.cos(x) * y * tx,
        (lambda ty, out, x, y: jnp.sin(x) * ty) if y_rule else None,
    )
    return f


def _t(a: Any) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=D)


def _close(got: Any, want: Any) -> None:
    g = ftx.tree.leaves(got)
    w = jax.tree_util.tree_leaves(want)
    assert len(g) == len(w)
    for a, b in zip(g, w):
        np.testing.assert_allclose(a.detach().numpy(), np.asarray(b), rtol=1e-12, atol=1e-12)


CASES: list[tuple[str, Callable[[Any], Any], Callable[[Any, Any, Any], Any]]] = [
    (
        "jvp",
        lambda f: ftx.jvp(f, (_t(X), _t(Y)), (_t(Y), _t(X))),
        lambda f, x, y: jax.jvp(f, (x, y), (y, x)),
    ),
    (
        "grad",
        lambda f: ftx.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(_t(X), _t(Y)),
        lambda f, x, y: jax.grad(lambda x, y: f(x, y).sum(), argnums=(0, 1))(x, y),
    ),
    (
        "vjp",
        lambda f: ftx.vjp(f, _t(X), _t(Y))[1](_t(X * Y)),
        lambda f, x, y: jax.vjp(f, x, y)[1](x * y),
    ),
    (
        "vmap-grad",
        lambda f: ftx.vmap(ftx.grad(f, argnums=(0, 1)))(_t(X), _t(Y)),
        lambda f, x, y: jax.vmap(jax.grad(f, argnums=(0, 1)))(x, y),
    ),
    (
        "jacfwd",
        lambda f: ftx.jacfwd(f, argnums=(0, 1))(_t(X), _t(Y)),
        lambda f, x, y: jax.jacfwd(f, argnums=(0, 1))(x, y),
    ),
    (
        "jacrev",
        lambda f: ftx.jacrev(f, argnums=(0, 1))(_t(X), _t(Y)),
        lambda f, x, y: jax.jacrev(f, argnums=(0, 1))(x, y),
    ),
    (
        "hessian",
        lambda f: ftx.hessian(lambda x, y: f(x, y).sum(), argnums=0)(_t(X), _t(Y)),
        lambda f, x, y: jax.hessian(lambda x, y: f(x, y).sum(), argnums=0)(x, y),
    ),
]


@pytest.mark.parametrize("y_rule", [True, False], ids=["both-rules", "y-None"])
@pytest.mark.parametrize("name,ours,theirs", CASES, ids=[c[0] for c in CASES])
def test_defjvps_matches_jax(name: str, ours: Any, theirs: Any, y_rule: bool) -> None:
    # JAX under jit: the same numbers as eager (float64), a tenth of the test's time
    want = jax.jit(functools.partial(theirs, jax_f(y_rule)))(X, Y)
    _close(ours(ftx_f(y_rule)), want)


def test_the_rule_runs_not_autodiff_of_fun() -> None:
    g = ftx.grad(lambda x: ftx_f()(x, _t(Y)).sum())(_t(X))
    torch.testing.assert_close(g, 3.0 * torch.cos(_t(X)) * _t(Y))


def test_pytree_output_and_argument() -> None:
    @ftx.custom_jvp
    def f(p: dict[str, torch.Tensor], s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return p["a"] * s, torch.exp(p["b"]).sum() * s

    f.defjvps(
        lambda tp, out, p, s: (tp["a"] * s, (torch.exp(p["b"]) * tp["b"]).sum() * s),
        lambda ts, out, p, s: (p["a"] * ts, torch.exp(p["b"]).sum() * ts),
    )

    @jax.custom_jvp
    def jf(p: Any, s: Any) -> Any:
        return p["a"] * s, jnp.exp(p["b"]).sum() * s

    jf.defjvps(
        lambda tp, out, p, s: (tp["a"] * s, (jnp.exp(p["b"]) * tp["b"]).sum() * s),
        lambda ts, out, p, s: (p["a"] * ts, jnp.exp(p["b"]).sum() * ts),
    )
    p = {"a": X, "b": Y}
    tp = {"a": _t(X), "b": _t(Y)}
    loss = lambda fn: lambda p, s: fn(p, s)[0].sum() + fn(p, s)[1]  # noqa: E731
    _close(ftx.grad(loss(f), argnums=(0, 1))(tp, torch.tensor(0.5, dtype=D)),
           jax.jit(jax.grad(loss(jf), argnums=(0, 1)))(p, 0.5))
    _close(ftx.jacfwd(f)(tp, torch.tensor(0.5, dtype=D)), jax.jit(jax.jacfwd(jf))(p, 0.5))
    check_grads(f, (tp, torch.tensor(0.5, dtype=D)), order=1)


def test_right_rules_pass_check_grads_order_2() -> None:
    @ftx.custom_jvp
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sin(x) * y

    f.defjvps(lambda tx, out, x, y: torch.cos(x) * y * tx, lambda ty, out, x, y: torch.sin(x) * ty)
    check_grads(f, (_t(X), _t(Y)), order=2)


def test_errors() -> None:
    g = ftx.custom_jvp(lambda x, y: x * y, nondiff_argnums=(1,))
    with pytest.raises(TypeError, match=r"ftx.custom_jvp: defjvps for a function without "
                       r"nondiff_argnums \(as in JAX\), got nondiff_argnums=\(1,\)"):
        g.defjvps(lambda t, out, x, y: t * y, None)
    f = ftx.custom_jvp(lambda x, y: x * y)
    with pytest.raises(ValueError, match=r"defjvps takes one rule \(or None\) per argument of "
                       r"fun \(2\), got 1 rule\(s\)"):
        f.defjvps(lambda t, out, x, y: t * y)
    with pytest.raises(TypeError, match=r"jvps\[1\] must be callable or None, got int"):
        f.defjvps(None, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"jvps\[0\] to take 4 positional argument"):
        f.defjvps(lambda t, x: t, None)
    f.defjvps(lambda t, out, x, y: (t * y, t), None)
    with pytest.raises(ValueError, match=r"jvps\[0\] must return a tangent with the output's "
                       r"structure \(a single tensor\)"):
        ftx.jvp(f, (_t(X), _t(Y)), (_t(X), _t(Y)))
