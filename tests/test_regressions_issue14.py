"""Regression tests for the reproductions of issue 14 (parts 2 and 4).

Each test is one reproduction from the issue, with torch.func's (or JAX's) answer as the
expected value. The systematic comparison lives in tests/test_differential.py.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
import torch.func as tf

import ftx

X = torch.tensor([1.0, 2.0, 3.0])


def f(x: torch.Tensor) -> torch.Tensor:
    return (x**2).sum()


# --------------------------------------------------------------- inference_mode
@pytest.mark.parametrize("calls", [1, 3], ids=["first-call", "later-calls"])
def test_grad_under_inference_mode(calls: int) -> None:
    g = ftx.grad(f)
    vg = ftx.value_and_grad(f)
    with torch.inference_mode():
        for _ in range(calls):
            out = g(X)
            value, grads = vg(X)
            _, vjp_fn = ftx.vjp(torch.sin, X)
            pulled = vjp_fn(torch.ones(3))[0]
            second = ftx.grad(ftx.grad(lambda s: s**3))(torch.tensor(2.0))
    torch.testing.assert_close(out, tf.grad(f)(X))
    torch.testing.assert_close(out, torch.tensor([2.0, 4.0, 6.0]))
    torch.testing.assert_close(value, torch.tensor(14.0))
    torch.testing.assert_close(grads, torch.tensor([2.0, 4.0, 6.0]))
    torch.testing.assert_close(pulled, torch.cos(X))
    torch.testing.assert_close(second, torch.tensor(12.0))


def test_inference_tensor_as_input() -> None:
    with torch.inference_mode():
        xi = torch.tensor([1.0, 2.0, 3.0])
    g = ftx.grad(f)
    for _ in range(3):
        torch.testing.assert_close(g(xi), tf.grad(f)(xi))
        torch.testing.assert_close(ftx.vjp(torch.sin, xi)[1](torch.ones(3))[0], torch.cos(xi))


# --------------------------------------------------------------- vjp_fn contexts
def _flags(t: torch.Tensor) -> tuple[bool, bool]:
    return t.requires_grad, t.grad_fn is not None


def test_vjp_fn_called_under_no_grad_builds_no_graph() -> None:
    x = X.clone().requires_grad_()
    for vjp in (ftx.vjp, tf.vjp):
        for _ in range(2):
            _, fn = vjp(torch.sin, x)
            with torch.no_grad():
                assert _flags(fn(torch.ones(3))[0]) == (False, False)


def test_vjp_built_under_no_grad_called_outside() -> None:
    x = X.clone().requires_grad_()
    got = []
    for vjp in (ftx.vjp, ftx.vjp, tf.vjp):
        with torch.no_grad():
            _, fn = vjp(torch.sin, x)
        got.append(_flags(fn(torch.ones(3))[0]))
    assert got[0] == got[1] == got[2] == (True, True)


def test_vjp_of_function_returning_none_checks_the_cotangent() -> None:
    _, fn = ftx.vjp(lambda x: None, X)
    with pytest.raises(TypeError, match=r"ftx\.vjp: cotangent must have the same tree structure"):
        fn(torch.ones(3))
    assert fn(None)[0].shape == (3,)  # None is the output's (empty) structure, as in JAX


def test_vjp_fn_of_none_for_tensor_output() -> None:
    _, fn = ftx.vjp(torch.sin, X)
    with pytest.raises(TypeError, match=r"ftx\.vjp: cotangent must have the same tree structure "
                       r"as the primal output, got NoneType None for cotangent where the "
                       r"primal output has Tensor"):
        fn(None)


# --------------------------------------------------------------- impure functions
def _jacobian_inside(x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(torch.sin, x)


def _autograd_on_detached(x: torch.Tensor) -> torch.Tensor:
    y = x.detach().requires_grad_()
    return torch.autograd.grad(torch.sin(y), y)[0]


def _requires_grad_inside(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    y.requires_grad_()
    return y**2


def _retain_grad_inside(x: torch.Tensor) -> torch.Tensor:
    y = x * 2
    y.retain_grad()
    return y**2


def _backward_inside(x: torch.Tensor) -> torch.Tensor:
    z = (x * 2) ** 2
    z.backward(retain_graph=True)
    return z


IMPURE = [_jacobian_inside, _autograd_on_detached, _requires_grad_inside, _retain_grad_inside,
          _backward_inside]


@pytest.mark.parametrize("fun", IMPURE, ids=lambda fn: fn.__name__)
@pytest.mark.parametrize("transform", ["grad", "value_and_grad", "vjp"])
def test_impure_function_raises_like_torch_func(fun: Any, transform: str) -> None:
    x = torch.tensor(0.5)
    with pytest.raises(RuntimeError) as want:
        tf.grad(fun)(x)
    for _ in range(3):  # every call, not only the first
        with pytest.raises(type(want.value)):
            if transform == "vjp":
                ftx.vjp(fun, x)[1](torch.tensor(1.0))
            else:
                getattr(ftx, transform)(fun)(x)


def test_mutating_a_captured_tensor_raises_and_leaves_it_alone() -> None:
    captured = torch.zeros(())

    def fun(x: torch.Tensor) -> torch.Tensor:
        captured.copy_(x)
        return x**2

    for _ in range(3):
        with pytest.raises(RuntimeError, match="mutate a captured Tensor"):
            ftx.grad(fun)(torch.tensor(0.5))
    assert captured.item() == 0.0 and captured.grad_fn is None


def test_probe_is_per_function_not_per_wrapper() -> None:
    """A transform rebuilt at every step (ftx.grad(loss) in a loop) probes once."""
    from ftx._transforms import reverse as _reverse

    def loss(w: torch.Tensor) -> torch.Tensor:
        return (w**3).sum()

    key = _reverse.needs_probe(loss)
    assert key is not None
    ftx.grad(loss)(X)
    assert _reverse.needs_probe(loss) is None
    assert _reverse.needs_probe(torch.sin) is None  # builtins need no probe


# --------------------------------------------------------------- what JAX users type
def test_python_numbers_as_primals() -> None:
    two = torch.tensor(2.0)
    g = ftx.grad(torch.tanh)(2.0)
    assert g.dtype == torch.get_default_dtype() and g.shape == ()
    torch.testing.assert_close(g, 1 - torch.tanh(two) ** 2)
    torch.testing.assert_close(ftx.value_and_grad(lambda a, b: a * b, argnums=(0, 1))(2.0, 3.0)[1],
                               (torch.tensor(3.0), torch.tensor(2.0)))
    _, vjp_fn = ftx.vjp(torch.sin, 1.0)
    torch.testing.assert_close(vjp_fn(1.0)[0], torch.cos(torch.tensor(1.0)))
    torch.testing.assert_close(ftx.jvp(torch.sin, (1.0,), (1.0,))[1], torch.cos(torch.tensor(1.0)))
    torch.testing.assert_close(ftx.linearize(torch.exp, 0.0)[1](1.0), torch.tensor(1.0))
    torch.testing.assert_close(ftx.jacfwd(torch.sin)(0.0), torch.tensor(1.0))
    torch.testing.assert_close(ftx.jacrev(torch.sin)(0.0), torch.tensor(1.0))
    torch.testing.assert_close(ftx.hessian(lambda a: a**3)(1.0), torch.tensor(6.0))
    torch.testing.assert_close(ftx.hvp(lambda a: a**3, (1.0,), (1.0,))[0], torch.tensor(6.0))
    assert math.isclose(float(ftx.grad(lambda p: p["a"] ** 2)({"a": 1.5})["a"]), 3.0)


def test_python_ints_stay_refused() -> None:
    with pytest.raises(TypeError, match=r"ftx\.grad: differentiated inputs must be tensors"):
        ftx.grad(lambda a: a * 2.0)(2)
    with pytest.raises(TypeError, match=r"ftx\.vjp: cotangent"):
        ftx.vjp(torch.sin, X)[1](1.0)  # a number is a cotangent of a 0-d output only


@pytest.mark.parametrize("argnums", [[0, 1], (0, 1), range(2)], ids=["list", "tuple", "range"])
def test_argnums_any_sequence(argnums: Any) -> None:
    g = ftx.grad(lambda a, b: (a * b).sum(), argnums=argnums)(X, X + 1)
    assert isinstance(g, tuple) and len(g) == 2
    torch.testing.assert_close(g[0], X + 1)
    jac = ftx.jacrev(lambda a, b: a * b, argnums=argnums)(X, X + 1)
    assert isinstance(jac, tuple) and len(jac) == 2


def test_module_where_params_belong() -> None:
    mod = torch.nn.Linear(3, 1)
    with pytest.raises(TypeError, match=r"ftx\.grad: differentiated inputs must be tensors, got "
                       r"Linear.*ftx\.nn\.params_of\(module\).*from_module"):
        ftx.grad(lambda m: m(X).sum())(mod)


def test_layer_where_params_belong() -> None:
    layer = ftx.nn.Linear(3, 1)
    with pytest.raises(TypeError, match=r"ftx\.grad: differentiated inputs must be tensors, got "
                       r"Linear.*params = layer\.init\(key\)"):
        ftx.grad(lambda m: m.init(ftx.random.key(0))["weight"].sum())(layer)


def test_tuple_without_has_aux() -> None:
    with pytest.raises(TypeError, match=r"ftx\.grad: fun must return a real scalar tensor of "
                       r"shape \(\), got a tuple of length 2.*Did you mean has_aux=True\?"):
        ftx.grad(lambda x: (f(x), x))(X)
    with pytest.raises(TypeError, match=r"Did you mean has_aux=True\?"):
        ftx.value_and_grad(lambda x: [f(x), 1])(X)


# --------------------------------------------------------------- issue 20: transforms
def test_jvp_with_empty_primals_gives_zero_tangents() -> None:
    out, t = ftx.jvp(lambda: torch.ones(2), (), ())
    torch.testing.assert_close(out, torch.ones(2))
    torch.testing.assert_close(t, torch.zeros(2))
    out, jvp_fn = ftx.linearize(lambda: torch.ones(2))
    torch.testing.assert_close(jvp_fn(), torch.zeros(2))
    with pytest.raises(ValueError, match=r"ftx\.hvp: primals must hold at least one argument"):
        ftx.hvp(lambda: torch.ones(()), (), ())


@pytest.mark.parametrize("api", ["jacfwd", "jacrev", "hessian", "jacobian"])
def test_jacobians_of_no_tensor(api: str) -> None:
    with pytest.raises(ValueError, match=rf"ftx\.{api}: the differentiated argument\(s\) must hold "
                       r"at least one tensor, got NoneType None for argument 0"):
        getattr(ftx, api)(lambda x: torch.ones(2))(None)


@pytest.mark.parametrize("api", ["jacfwd", "jacrev", "hessian"])
def test_jacobians_refuse_integer_outputs(api: str) -> None:
    with pytest.raises(TypeError, match=rf"ftx\.{api}: fun must return .*tensors, got torch\.int64 "
                       r"at output '<root>'"):
        getattr(ftx, api)(lambda x: (x * 3).long().sum())(X)


@pytest.mark.parametrize("api", ["jacrev", "hessian"])
def test_reverse_jacobians_refuse_complex_outputs(api: str) -> None:
    with pytest.raises(TypeError, match=rf"ftx\.{api}: fun must return real floating tensors, got "
                       r"torch\.complex64.*torch\.view_as_real"):
        getattr(ftx, api)(lambda x: (x * 1j).sum())(X)


EXPANDED_CASES = {
    "jacfwd": lambda e: ftx.jacfwd(lambda x: (x**2).sum())(e),
    "jacrev": lambda e: ftx.jacrev(lambda x: (x**2).sum())(e),
    "hessian": lambda e: ftx.hessian(lambda x: (x**3).sum())(e),
    "jvp": lambda e: ftx.jvp(lambda x: (x**2).sum(), (e,), (torch.ones(3),))[1],
    "linearize": lambda e: ftx.linearize(lambda x: (x**2).sum(), e)[1](torch.ones(3)),
    "hvp": lambda e: ftx.hvp(lambda x: (x**3).sum(), (e,), (torch.ones(3),))[0],
    "grad": lambda e: ftx.grad(lambda x: (x**2).sum())(e),
}


@pytest.mark.parametrize("case", list(EXPANDED_CASES))
def test_expanded_inputs(case: str) -> None:
    """Forward mode on a stride-0 (expanded) input equals the same on its dense copy."""
    e = torch.tensor([0.7]).expand(3)
    torch.testing.assert_close(EXPANDED_CASES[case](e), EXPANDED_CASES[case](e.contiguous()))


def _cyclic_list() -> list[Any]:
    c: list[Any] = [torch.ones(2)]
    c.append(c)
    return c


CYCLIC = {
    "grad": lambda c: ftx.grad(lambda p: torch.zeros(()))(c),
    "value_and_grad": lambda c: ftx.value_and_grad(lambda p: torch.zeros(()))(c),
    "vjp": lambda c: ftx.vjp(lambda p: torch.zeros(()), c),
    "jvp": lambda c: ftx.jvp(lambda p: torch.zeros(()), (c,), (c,)),
    "linearize": lambda c: ftx.linearize(lambda p: torch.zeros(()), c),
    "hvp": lambda c: ftx.hvp(lambda p: torch.zeros(()), (c,), (c,)),
    "vmap": lambda c: ftx.vmap(lambda p: torch.zeros(()))(c),
    "jacfwd": lambda c: ftx.jacfwd(lambda p: torch.zeros(()))(c),
    "jacrev": lambda c: ftx.jacrev(lambda p: torch.zeros(()))(c),
    "hessian": lambda c: ftx.hessian(lambda p: torch.zeros(()))(c),
}


@pytest.mark.parametrize("api", list(CYCLIC))
def test_cyclic_arguments(api: str) -> None:
    with pytest.raises(ValueError, match=rf"ftx\.{api}: .* must be a tree \(no container may hold "
                       r"itself\), got a cycle at"):
        CYCLIC[api](_cyclic_list())


def test_cyclic_cotangent_and_in_axes() -> None:
    _, fn = ftx.vjp(torch.sin, X)
    with pytest.raises(ValueError, match=r"ftx\.vjp: .* got a cycle"):
        fn(_cyclic_list())
    with pytest.raises(ValueError, match=r"ftx\.vmap: .* got a cycle"):
        ftx.vmap(torch.sin, in_axes=_cyclic_list())(X)


def test_recursion_in_fun_itself_is_not_renamed() -> None:
    def deep(x: torch.Tensor, n: int = 0) -> torch.Tensor:
        return deep(x, n + 1)

    with pytest.raises(RecursionError):
        ftx.grad(deep)(X)
