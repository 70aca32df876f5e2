"""ftx.test_util.check_grads: passes right rules, catches wrong ones, agrees with JAX's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx.test_util import check_grads, check_jvp, check_vjp

D = torch.float64


def _x(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=D)


# ----------------------------------------------------------------------------- rules
def sin_vjp(factor: float = 1.0) -> Any:
    @ftx.custom_vjp
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    f.defvjp(lambda x: (torch.sin(x), x), lambda x, g: (factor * g * torch.cos(x),))
    return f


def sin_jvp(factor: float = 1.0, detach: bool = False) -> Any:
    @ftx.custom_jvp
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        c = torch.cos(x)
        return f(x), factor * t * (c.detach() if detach else c)

    return f


def test_right_custom_vjp_passes_order_1_and_2() -> None:
    check_grads(sin_vjp(), (_x(0.3, -1.1, 2.0),), order=1, modes=("rev",))
    check_grads(sin_vjp(), (_x(0.3, -1.1, 2.0),), order=2, modes=("rev",))


def test_wrong_custom_vjp_is_caught() -> None:
    with pytest.raises(AssertionError, match=r"^ftx.test_util.check_grads: VJP cotangent "
                       r"projection: the output differs beyond atol=1e-05, rtol=1e-05"):
        check_grads(sin_vjp(2.0), (_x(0.3, -1.1, 2.0),), order=1, modes=("rev",))


def test_right_custom_jvp_passes_both_modes_order_2() -> None:
    check_grads(sin_jvp(), (_x(0.3, -1.1, 2.0),), order=2, modes=("fwd", "rev"))


@pytest.mark.parametrize(
    "mode,what", [("fwd", "JVP tangent"), ("rev", "VJP cotangent projection")]
)
def test_wrong_custom_jvp_is_caught_in_each_mode(mode: str, what: str) -> None:
    with pytest.raises(AssertionError, match=f"check_grads: {what}: "):
        check_grads(sin_jvp(1.5), (_x(0.3, -1.1, 2.0),), order=1, modes=(mode,))


@pytest.mark.parametrize(
    "mode,what", [("fwd", "JVP of JVP tangent"), ("rev", "VJP of VJP cotangent projection")]
)
def test_rule_right_at_order_1_but_not_differentiable_is_caught_at_order_2(
    mode: str, what: str
) -> None:
    f = sin_jvp(detach=True)  # first derivative right, its derivative is missing
    check_grads(f, (_x(0.3, -1.1, 2.0),), order=1, modes=(mode,))
    with pytest.raises(AssertionError, match=f"check_grads: {what}: "):
        check_grads(f, (_x(0.3, -1.1, 2.0),), order=2, modes=(mode,))


def test_custom_vjp_with_wrong_second_order_is_caught() -> None:
    @ftx.custom_vjp
    def f(x: torch.Tensor) -> torch.Tensor:
        return x**3

    f.defvjp(lambda x: (x**3, x), lambda x, g: (g * 3 * x.detach() ** 2,))
    check_grads(f, (_x(0.5, 1.5),), order=1, modes=("rev",))
    with pytest.raises(AssertionError, match="VJP of VJP"):
        check_grads(f, (_x(0.5, 1.5),), order=2, modes=("rev",))


# ----------------------------------------------------------------------------- plain functions
def test_pytree_arguments_and_outputs_all_modes() -> None:
    def f(p: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, Any]:
        h = torch.tanh(x @ p["w"] + p["b"])
        return {"h": h, "pair": (h.sum() ** 2, torch.exp(p["b"]))}

    p = {"w": torch.randn(3, 2, dtype=D), "b": torch.randn(2, dtype=D)}
    x = torch.randn(4, 3, dtype=D)
    check_grads(f, (p, x), order=2, modes=("fwd", "rev", "lin"))


def test_python_floats_are_accepted_like_jax() -> None:
    check_grads(lambda x, y: x * torch.sin(y), (0.5, 1.5), order=1)


def test_float32_passes_with_the_default_tolerance() -> None:
    x = torch.tensor([0.2, -0.7, 1.3])
    check_grads(lambda v: torch.tanh(v) * v, (x,), order=2)


@pytest.mark.parametrize(
    "f",
    [
        pytest.param(lambda z: z * z, id="holomorphic"),
        pytest.param(lambda z: (z * z.conj()).real, id="abs2-real-out"),
        pytest.param(lambda z: torch.conj(z) * torch.exp(z), id="non-holomorphic"),
    ],
)
def test_complex_functions_pass(f: Callable[[torch.Tensor], torch.Tensor]) -> None:
    z = torch.tensor([0.3 + 0.4j, -1.0 + 0.5j], dtype=torch.complex128)
    check_grads(f, (z,), order=2)


def test_complex_rule_with_jaxs_convention_is_caught() -> None:
    """torch's VJP of a holomorphic f is g * conj(f'); JAX's g * f' is wrong in ftx."""

    def make(conj: bool) -> Any:
        @ftx.custom_vjp
        def sq(z: torch.Tensor) -> torch.Tensor:
            return z * z

        d = (lambda z: (2 * z).conj()) if conj else (lambda z: 2 * z)
        sq.defvjp(lambda z: (z * z, z), lambda z, g: (g * d(z),))
        return sq

    z = torch.tensor([0.3 + 0.4j, -1.0 + 0.5j], dtype=torch.complex128)
    check_grads(make(True), (z,), order=1, modes=("rev",))
    with pytest.raises(AssertionError, match="VJP cotangent projection"):
        check_grads(make(False), (z,), order=1, modes=("rev",))


def test_message_names_the_leaf_and_the_values() -> None:
    @ftx.custom_jvp
    def f(x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"a": x * 2, "b": x**2}

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        return f(x), {"a": 2 * t, "b": x * t}  # b's tangent should be 2 x t

    with pytest.raises(AssertionError) as info:
        check_grads(f, (_x(1.0, 2.0, 3.0),), order=1, modes=("fwd",))
    text = str(info.value)
    assert "JVP tangent: output leaf 'b' differs beyond atol=3e-05, rtol=3e-05" in text
    assert "(the per-element tolerance of torch.float64 times 3 element(s))" in text
    assert "worst at index (2,): autodiff" in text and "reference" in text


def test_tolerances_scale_and_can_be_overridden() -> None:
    # a 1 % error in the derivative: caught at the default, accepted with rtol=0.05 per element
    f = sin_jvp(1.01)
    with pytest.raises(AssertionError):
        check_grads(f, (_x(0.3),), order=1, modes=("fwd",))
    check_grads(f, (_x(0.3),), order=1, modes=("fwd",), rtol=0.05)
    check_grads(f, (_x(0.3),), order=1, modes=("fwd",), rtol={torch.float64: 0.05})


def test_check_jvp_and_check_vjp_directly() -> None:
    import functools

    f = torch.sinh
    check_jvp(f, functools.partial(ftx.jvp, f), (_x(0.1, 0.2),))
    check_vjp(f, functools.partial(ftx.vjp, f), (_x(0.1, 0.2),))
    bad_vjp = lambda x: (f(x), lambda g: (g * torch.sinh(x),))  # noqa: E731
    with pytest.raises(AssertionError, match="VJP cotangent projection"):
        check_vjp(f, bad_vjp, (_x(0.1, 0.2),))


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        ({"modes": ("bwd",)}, ValueError, r"modes must be a non-empty sequence of 'fwd', 'rev'"),
        ({"modes": ()}, ValueError, r"modes must be a non-empty sequence"),
        ({"order": 0}, ValueError, r"order must lie in \[1, inf\], got 0"),
        ({"order": 1.0}, TypeError, r"order must be an int"),
        ({"eps": 0.0}, ValueError, r"eps must be a finite number > 0.0"),
        ({"atol": {"float64": 1.0}}, TypeError, r"atol keys must be torch dtypes"),
        ({"rtol": -1.0}, ValueError, r"rtol must be a finite number >= 0.0"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    base: dict[str, Any] = {"order": 1}
    base.update(kwargs)
    with pytest.raises(exc, match="ftx.test_util.check_grads: " + pattern):
        check_grads(torch.sin, (_x(1.0),), **base)


def test_bad_args() -> None:
    with pytest.raises(TypeError, match=r"args must be a tuple of arguments, got Tensor"):
        check_grads(torch.sin, _x(1.0), order=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"args must be floating or complex tensors .* at args.1"):
        check_grads(lambda x, n: x * n, (_x(1.0), torch.tensor(2)), order=1)
    with pytest.raises(TypeError, match=r"f must be callable"):
        check_grads(None, (_x(1.0),), order=1)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- JAX parity
jax = pytest.importorskip("jax")


def _jax_verdict(rule_factor: float, detach: bool, order: int, mode: str) -> bool:
    with jax.enable_x64(True):  # scoped: a global switch leaks into other modules' tests
        return _jax_verdict_x64(rule_factor, detach, order, mode)


def _jax_verdict_x64(rule_factor: float, detach: bool, order: int, mode: str) -> bool:
    import jax.numpy as jnp
    from jax.test_util import check_grads as jcheck

    @jax.custom_jvp
    def f(x: Any) -> Any:
        return jnp.sin(x)

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        c = jnp.cos(x)
        return f(x), rule_factor * t * (jax.lax.stop_gradient(c) if detach else c)

    try:
        jcheck(f, (jnp.array([0.3, -1.1, 2.0]),), order=order, modes=(mode,))
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("mode", ["fwd", "rev"])
@pytest.mark.parametrize(
    "factor,detach,order,passes",
    [(1.0, False, 2, True), (1.5, False, 1, False), (1.0, True, 1, True), (1.0, True, 2, False)],
    ids=["right", "wrong", "detach-o1", "detach-o2"],
)
def test_same_verdict_as_jax(
    mode: str, factor: float, detach: bool, order: int, passes: bool
) -> None:
    want = _jax_verdict(factor, detach, order, mode)
    assert want == passes
    try:
        check_grads(sin_jvp(factor, detach), (_x(0.3, -1.1, 2.0),), order=order, modes=(mode,))
        got = True
    except AssertionError:
        got = False
    assert got == want
