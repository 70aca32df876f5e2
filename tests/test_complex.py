"""Complex inputs: ftx's convention (torch's) against JAX's, and holomorphic=True = JAX's.

The table in docs/transforms.md states these relations; each row is checked here live
against JAX in float64/complex128.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import ftx

jax = pytest.importorskip("jax")
jnp = jax.numpy


@pytest.fixture(autouse=True)
def _jax_x64() -> Any:
    """64-bit JAX for this module's tests only (a global switch leaks into other modules)."""
    with jax.enable_x64(True):
        yield

C = torch.complex128
Z = np.array([0.3 + 0.4j, -1.1 + 0.7j, 2.0 - 0.5j])
CT = np.array([0.5 - 1.0j, 1.5 + 0.2j, -0.3 + 0.9j])


def _t(a: Any) -> torch.Tensor:
    a = np.asarray(a)
    return torch.tensor(a, dtype=C if np.iscomplexobj(a) else torch.float64)


def _close(got: Any, want: Any) -> None:
    g = ftx.tree.leaves(got)
    w = jax.tree_util.tree_leaves(want)
    assert len(g) == len(w)
    for a, b in zip(g, w):
        np.testing.assert_allclose(a.detach().numpy(), np.asarray(b), rtol=1e-12, atol=1e-12)


def _conj(tree: Any) -> Any:
    return ftx.tree.map(torch.conj_physical, tree)


# ----------------------------------------------------------------------------- the table
def test_grad_of_abs2_is_the_conjugate_of_jaxs() -> None:
    z = torch.tensor(3 + 4j, dtype=C)
    got = ftx.grad(lambda z: (z * z.conj()).real)(z)
    want = jax.grad(lambda z: (z * jnp.conj(z)).real)(jnp.array(3 + 4j))
    assert complex(got) == 6 + 8j and complex(want) == 6 - 8j


def f_real(z: Any, xp: Any) -> Any:  # C -> R, not holomorphic
    return (xp.sin(z) * xp.conj(z)).real.sum() + (z.imag**2).sum()


def f_c(z: Any, xp: Any) -> Any:  # C -> C, not holomorphic
    return xp.exp(z) * xp.conj(z)


def test_grad_and_jacrev_real_output_are_conjugated() -> None:
    g = ftx.grad(lambda z: f_real(z, torch))(_t(Z))
    jg = jax.jit(jax.grad(lambda z: f_real(z, jnp)))(Z)
    _close(_conj(g), jg)
    j = ftx.jacrev(lambda z: f_real(z, torch))(_t(Z))
    _close(_conj(j), jax.jit(jax.jacrev(lambda z: f_real(z, jnp)))(Z))
    torch.testing.assert_close(j, g, rtol=0, atol=0)  # jacrev of a scalar is grad


def test_vjp_is_conj_of_jaxs_with_conjugated_cotangent() -> None:
    _, pull = ftx.vjp(lambda z: f_c(z, torch), _t(Z))
    _, jpull = jax.vjp(lambda z: f_c(z, jnp), Z)
    _close(pull(_t(CT)), _conj_np(jpull(np.conj(CT))))


def _conj_np(tree: Any) -> Any:
    return jax.tree_util.tree_map(np.conj, tree)


def test_jvp_is_the_same() -> None:
    out = ftx.jvp(lambda z: f_c(z, torch), (_t(Z),), (_t(CT),))
    _close(out, jax.jvp(lambda z: f_c(z, jnp), (Z,), (CT,)))


def test_complex_outputs_refused_without_holomorphic_like_jax() -> None:
    with pytest.raises(TypeError, match=r"ftx.grad: fun must return a real floating scalar"):
        ftx.grad(lambda z: (z * z).sum())(_t(Z))
    with pytest.raises(TypeError, match="holomorphic"):
        jax.grad(lambda z: (z * z).sum())(Z)
    with pytest.raises(TypeError, match=r"ftx.jacrev: fun must return real floating tensors"):
        ftx.jacrev(lambda z: z * z)(_t(Z))
    with pytest.raises(TypeError, match="holomorphic"):
        jax.jacrev(lambda z: z * z)(Z)


def test_jacfwd_refuses_complex_inputs_without_holomorphic_like_jax() -> None:
    with pytest.raises(TypeError, match=r"ftx.jacfwd: differentiated inputs must be real in "
                       r"forward mode, got torch.complex128 for argument 0.*holomorphic=True"):
        ftx.jacfwd(lambda z: (z * z.conj()).real)(_t(Z))
    with pytest.raises(TypeError, match="holomorphic"):
        jax.jacfwd(lambda z: (z * jnp.conj(z)).real)(Z)


# ----------------------------------------------------------------------------- holomorphic
def h(z: Any, xp: Any) -> Any:
    return z**3 * xp.exp(z[..., :1]) + xp.sin(z)


def hs(z: Any, xp: Any) -> Any:
    return h(z, xp).sum()


def test_grad_holomorphic_equals_jax() -> None:
    _close(ftx.grad(lambda z: hs(z, torch), holomorphic=True)(_t(Z)),
           jax.jit(jax.grad(lambda z: hs(z, jnp), holomorphic=True))(Z))
    z = torch.tensor(3 + 4j, dtype=C)
    assert complex(ftx.grad(lambda z: z * z, holomorphic=True)(z)) == 6 + 8j


def test_value_and_grad_holomorphic_argnums_and_aux() -> None:
    def f(z: Any, w: Any, xp: Any) -> Any:
        v = (xp.sin(z) * w**2).sum()
        return v, 2 * v

    got = ftx.value_and_grad(lambda z, w: f(z, w, torch), argnums=(0, 1), has_aux=True,
                             holomorphic=True)(_t(Z), _t(CT))
    want = jax.jit(jax.value_and_grad(lambda z, w: f(z, w, jnp), argnums=(0, 1), has_aux=True,
                                      holomorphic=True))(Z, CT)
    _close(got, want)


def test_grad_holomorphic_pytree_and_python_complex() -> None:
    def f(p: Any, xp: Any) -> Any:
        return (p["a"] * xp.exp(p["b"])).sum()

    _close(ftx.grad(lambda p: f(p, torch), holomorphic=True)({"a": _t(Z), "b": _t(CT)}),
           jax.jit(jax.grad(lambda p: f(p, jnp), holomorphic=True))({"a": Z, "b": CT}))
    got = ftx.grad(lambda z: z**2, holomorphic=True)(1 + 2j)
    assert complex(got) == complex(jax.grad(lambda z: z**2, holomorphic=True)(1 + 2j))


@pytest.mark.parametrize("name", ["jacfwd", "jacrev"])
def test_jacobians_holomorphic_equal_jax(name: str) -> None:
    ours, theirs = getattr(ftx, name), getattr(jax, name)
    _close(ours(lambda z: h(z, torch), holomorphic=True)(_t(Z)),
           jax.jit(theirs(lambda z: h(z, jnp), holomorphic=True))(Z))
    # pytree output, tuple argnums, aux
    def g(z: Any, w: Any, xp: Any) -> Any:
        return {"p": z * w, "q": xp.exp(w).sum()}, z.real

    _close(ours(lambda z, w: g(z, w, torch), argnums=(0, 1), has_aux=True,
                holomorphic=True)(_t(Z), _t(CT)),
           jax.jit(theirs(lambda z, w: g(z, w, jnp), argnums=(0, 1), has_aux=True,
                          holomorphic=True))(Z, CT))


def test_holomorphic_compositions_equal_jax() -> None:
    f = lambda z: z**3 * torch.exp(z)  # noqa: E731
    jf = lambda z: z**3 * jnp.exp(z)  # noqa: E731
    z0 = _t(Z)
    # second derivative
    _close(ftx.vmap(ftx.grad(ftx.grad(f, holomorphic=True), holomorphic=True))(z0),
           jax.jit(jax.vmap(jax.grad(jax.grad(jf, holomorphic=True), holomorphic=True)))(Z))
    # jacfwd of grad, jacrev under vmap
    _close(ftx.jacfwd(ftx.grad(f, holomorphic=True), holomorphic=True)(z0[0]),
           jax.jit(jax.jacfwd(jax.grad(jf, holomorphic=True), holomorphic=True))(Z[0]))
    _close(ftx.vmap(ftx.jacrev(lambda z: z * f(z), holomorphic=True))(z0),
           jax.jit(jax.vmap(jax.jacrev(lambda z: z * jf(z), holomorphic=True)))(Z))
    # the Hessian the guide composes: jacfwd(jacrev(holomorphic), holomorphic) = JAX's hessian
    g = lambda w: (w**3).sum() * w[0]  # noqa: E731
    _close(ftx.jacfwd(ftx.jacrev(g, holomorphic=True), holomorphic=True)(z0),
           jax.jit(jax.hessian(g, holomorphic=True))(Z))
    # under jit
    jitted = ftx.jit(ftx.grad(lambda z: f(z).sum(), holomorphic=True), backend="eager")
    _close(jitted(z0), jax.jit(jax.grad(lambda z: jf(z).sum(), holomorphic=True))(Z))


@pytest.mark.parametrize(
    "ours,theirs,arg,exc,pattern",
    [
        (lambda: ftx.grad(lambda x: x * x, holomorphic=True), lambda: jax.grad(
            lambda x: x * x, holomorphic=True), 0.5, TypeError,
         r"ftx.grad: differentiated inputs with a complex dtype when holomorphic=True \(as in "
         r"JAX\), got torch.float64 for argument 0"),
        (lambda: ftx.grad(lambda z: (z * z.conj()).real, holomorphic=True), lambda: jax.grad(
            lambda z: (z * jnp.conj(z)).real, holomorphic=True), 1j, TypeError,
         r"ftx.grad: fun must return a complex scalar tensor when holomorphic=True \(as in "
         r"JAX\), got torch.float64 output"),
        (lambda: ftx.jacfwd(lambda x: x * x, holomorphic=True), lambda: jax.jacfwd(
            lambda x: x * x, holomorphic=True), 0.5, TypeError,
         r"ftx.jacfwd: differentiated inputs with a complex dtype when holomorphic=True"),
        (lambda: ftx.jacrev(lambda z: z.real, holomorphic=True), lambda: jax.jacrev(
            lambda z: z.real, holomorphic=True), 1j, TypeError,
         r"ftx.jacrev: fun must return complex tensors when holomorphic=True \(as in JAX\), "
         r"got torch.float64 at output '<root>'"),
    ],
    ids=["grad-real-input", "grad-real-output", "jacfwd-real-input", "jacrev-real-output"],
)
def test_holomorphic_errors_match_jax(
    ours: Any, theirs: Any, arg: Any, exc: type, pattern: str
) -> None:
    x = torch.tensor(arg, dtype=C if isinstance(arg, complex) else torch.float64)
    with pytest.raises(exc, match=pattern):
        ours()(x)
    with pytest.raises(exc):
        theirs()(jnp.asarray(arg))


def test_holomorphic_must_be_a_bool_and_grad_needs_a_scalar() -> None:
    with pytest.raises(TypeError, match=r"ftx.grad: holomorphic must be a bool, got str"):
        ftx.grad(torch.sin, holomorphic="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"ftx.jacrev: holomorphic must be a bool"):
        ftx.jacrev(torch.sin, holomorphic=1)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match=r"ftx.grad: fun must return a scalar tensor of shape "
                       r"\(\), got shape \(3,\)"):
        ftx.grad(lambda z: z * z, holomorphic=True)(_t(Z))


def test_jacrev_complex_input_composes_and_jacobian_refuses() -> None:
    abs2 = lambda z: (z * z.conj()).real  # noqa: E731
    zs = _t(np.stack([Z, CT]))
    got = ftx.vmap(ftx.jacrev(abs2))(zs)  # per row: diag(2 z), torch's convention
    torch.testing.assert_close(got, torch.diag_embed(2 * zs), rtol=0, atol=1e-15)
    _close(_conj(got), jax.jit(jax.vmap(jax.jacrev(lambda z: (z * jnp.conj(z)).real)))(
        np.stack([Z, CT])))
    with pytest.raises(TypeError, match=r"ftx.jacobian: differentiated inputs must be real, "
                       r"got torch.complex128 for argument 0"):
        ftx.jacobian(abs2, mode="rev")(_t(Z))
