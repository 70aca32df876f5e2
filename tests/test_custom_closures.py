"""ftx.custom_vjp / ftx.custom_jvp with functions and rules that close over tensors.

Regression: a tensor the decorated function (or its fwd/bwd/jvp rule, or a function
passed in nondiff_argnums) closes over was invisible to the autograd.Function, so
differentiating with respect to it gave a silent zero (grad, vjp, jvp, jacrev), a
torch internal assert (jacfwd, hessian, vmap(grad)) or a missing ``.grad`` (plain
autograd). JAX refuses to differentiate a custom rule with respect to a closed-over
value; ftx now raises a TypeError in the contract's form on every route.

Closures over constants keep working, and give the answers of the same function
without a custom rule (torch.func, float64), of JAX (float64), and of central
differences: plain tensors, parameters whose gradient is not asked for, modules,
vmapped closed-over tensors (JAX's behaviour for non-differentiating transforms).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.func as tf

import ftx

F64 = torch.float64
torch.manual_seed(0)
W0 = torch.randn(3, 3, dtype=F64)
X0 = torch.randn(3, dtype=F64)
ONE = torch.tensor(1.0, dtype=F64)


def _dtanh(y: torch.Tensor) -> torch.Tensor:
    return 1 - y * y


# ----------------------------------------------------------------------------- the cases
# Each builder returns f(x) = tanh(W @ x) with a custom rule that reads W from a closure.


def _vjp_closure(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    @ftx.custom_vjp
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(W @ x)

    def fwd(x: torch.Tensor) -> Any:
        y = torch.tanh(W @ x)
        return y, y

    def bwd(y: torch.Tensor, g: torch.Tensor) -> Any:
        return (W.T @ (_dtanh(y) * g),)

    f.defvjp(fwd, bwd)
    return f


def _vjp_rules_only(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """fun is defined elsewhere (a module-level twin); only fwd/bwd close over W."""
    params = {"w": W}  # a pytree in the cell

    def fun(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(params["w"] @ x)

    f = ftx.custom_vjp(fun)

    def fwd(x: torch.Tensor) -> Any:
        def inner(h: torch.Tensor) -> torch.Tensor:  # a nested closure
            return torch.tanh(params["w"] @ h)

        y = inner(x)
        return y, y

    f.defvjp(fwd, lambda y, g: (params["w"].T @ (_dtanh(y) * g),))
    return f


def _vjp_partial(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    def fun(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(w @ x)

    def fwd(w: torch.Tensor, x: torch.Tensor) -> Any:
        y = torch.tanh(w @ x)
        return y, y

    def bwd(w: torch.Tensor, y: torch.Tensor, g: torch.Tensor) -> Any:
        return (w.T @ (_dtanh(y) * g),)

    f = ftx.custom_vjp(functools.partial(fun, W))
    f.defvjp(functools.partial(fwd, W), functools.partial(bwd, W))
    return f


def _vjp_nondiff_fn(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The fixed_point pattern: a function in nondiff_argnums closes over W."""

    @functools.partial(ftx.custom_vjp, nondiff_argnums=(0,))
    def apply(h: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return h(x)

    def fwd(h: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Any:
        y = h(x)
        return y, (x, y)

    def bwd(h: Callable[[torch.Tensor], torch.Tensor], res: Any, g: torch.Tensor) -> Any:
        x, _ = res
        return (ftx.vjp(h, x)[1](g)[0],)

    apply.defvjp(fwd, bwd)
    return lambda x: apply(lambda v: torch.tanh(W @ v), x)


def _jvp_closure(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    @ftx.custom_jvp
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(W @ x)

    @f.defjvp
    def rule(primals: Any, tangents: Any) -> Any:
        (x,), (t,) = primals, tangents
        y = torch.tanh(W @ x)
        return y, _dtanh(y) * (W @ t)

    return f


def _jvp_defjvps(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    @ftx.custom_jvp
    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(W @ x)

    f.defjvps(lambda t, y, x: _dtanh(y) * (W @ t))
    return f


BUILDERS: dict[str, Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]] = {
    "vjp_closure": _vjp_closure,
    "vjp_rules_only": _vjp_rules_only,
    "vjp_partial": _vjp_partial,
    "vjp_nondiff_fn": _vjp_nondiff_fn,
    "jvp_closure": _jvp_closure,
    "jvp_defjvps": _jvp_defjvps,
}


def _plain(W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: torch.tanh(W @ x)


# ----------------------------------------------------------------------------- routes
def _loss_w(build: Callable[..., Any]) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda W: build(W)(X0).sum()


def _backward(loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    w = W0.clone().requires_grad_()
    loss(w).backward()
    assert w.grad is not None, "the gradient with respect to the closed-over W went missing"
    return w.grad


def _backward_both(build: Callable[..., Any]) -> torch.Tensor:
    """x and W both require grad (the custom rule runs): W's gradient was silently lost."""
    w, x = W0.clone().requires_grad_(), X0.clone().requires_grad_()
    build(w)(x).sum().backward()
    assert w.grad is not None, "the gradient with respect to the closed-over W went missing"
    return w.grad


def _forward_ad(loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    import torch.autograd.forward_ad as fwad

    with fwad.dual_level():
        out = loss(fwad.make_dual(W0, torch.ones_like(W0)))
        tangent = fwad.unpack_dual(out).tangent
    assert tangent is not None, "the tangent through the closed-over W went missing"
    return tangent


ROUTES: dict[str, Callable[[Callable[..., Any]], Any]] = {
    "grad": lambda b: ftx.grad(_loss_w(b))(W0),
    "value_and_grad": lambda b: ftx.value_and_grad(_loss_w(b))(W0)[1],
    "linearize": lambda b: ftx.linearize(_loss_w(b), W0)[1](torch.ones_like(W0)),
    "hvp": lambda b: ftx.hvp(_loss_w(b), (W0,), (torch.ones_like(W0),))[0],
    "forward_ad": lambda b: _forward_ad(_loss_w(b)),
    "torch.func.grad": lambda b: tf.grad(_loss_w(b))(W0),
    "vjp": lambda b: ftx.vjp(_loss_w(b), W0)[1](ONE)[0],
    "jvp": lambda b: ftx.jvp(_loss_w(b), (W0,), (torch.ones_like(W0),))[1],
    "jacrev": lambda b: ftx.jacrev(_loss_w(b))(W0),
    "jacfwd": lambda b: ftx.jacfwd(_loss_w(b))(W0),
    "hessian": lambda b: ftx.hessian(_loss_w(b))(W0),
    "vmap(grad)": lambda b: ftx.vmap(ftx.grad(_loss_w(b)))(torch.stack([W0, 2 * W0])),
    "backward": lambda b: _backward(_loss_w(b)),
    "backward(x and W)": _backward_both,
}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("build", BUILDERS)
def test_differentiating_a_closed_over_tensor_raises(build: str, route: str) -> None:
    # the oracle: without the custom rule the derivative through W is not zero, so a
    # silent zero (the old behaviour) was a wrong answer
    want = ROUTES[route](_plain)
    assert float(torch.as_tensor(want).abs().max()) > 1e-2
    api = "custom_jvp" if build.startswith("jvp") else "custom_vjp"
    pattern = rf"^ftx\.{api}: tensors that .* close over to be constants"
    with pytest.raises(TypeError, match=pattern) as e:
        ROUTES[route](BUILDERS[build])
    text = str(e.value)
    assert "closure of" in text and ", got a differentiated Tensor(shape=(3, 3)" in text
    assert "as an argument" in text


def test_the_message_names_the_variable_and_the_function() -> None:
    with pytest.raises(TypeError) as e:
        ftx.grad(_loss_w(_vjp_closure))(W0)
    assert "'W' in the closure of '_vjp_closure.<locals>.f'" in str(e.value)
    with pytest.raises(TypeError) as e:
        ftx.grad(_loss_w(_vjp_rules_only))(W0)
    assert "'params' at path 'w' in the closure of" in str(e.value)


def test_jax_refuses_too() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    def loss(W: Any) -> Any:
        f = jax.custom_vjp(lambda x: jnp.tanh(W @ x))
        f.defvjp(lambda x: (jnp.tanh(W @ x), x), lambda x, g: (W.T @ g,))
        return f(jnp.ones(3)).sum()

    with pytest.raises(Exception) as e:  # JAX 0.10: UnexpectedTracerError
        jax.grad(loss)(jnp.eye(3))
    assert type(e.value).__name__ in ("UnexpectedTracerError", "CustomVJPException")


# ----------------------------------------------------------------------------- constants
# The same closures over a constant W: differentiating with respect to x is right.


def _loss_x(build: Callable[..., Any], W: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    return lambda x: (build(W)(x) ** 2).sum()


def _autograd_x(build: Callable[..., Any], W: torch.Tensor) -> torch.Tensor:
    x = X0.clone().requires_grad_()
    return torch.autograd.grad(_loss_x(build, W)(x), x)[0]


X_ROUTES: dict[str, Callable[[Callable[..., Any], torch.Tensor], Any]] = {
    "grad": lambda b, W: ftx.grad(_loss_x(b, W))(X0),
    "torch.func.grad": lambda b, W: tf.grad(_loss_x(b, W))(X0),
    "vjp": lambda b, W: ftx.vjp(b(W), X0)[1](torch.ones(3, dtype=F64))[0],
    "jvp": lambda b, W: ftx.jvp(b(W), (X0,), (torch.ones(3, dtype=F64),))[1],
    "jacrev": lambda b, W: ftx.jacrev(b(W))(X0),
    "jacfwd": lambda b, W: ftx.jacfwd(b(W))(X0),
    "hessian": lambda b, W: ftx.hessian(_loss_x(b, W))(X0),
    "vmap(grad)": lambda b, W: ftx.vmap(ftx.grad(_loss_x(b, W)))(torch.stack([X0, 2 * X0])),
    "autograd.grad": _autograd_x,
}


@pytest.mark.parametrize("w_kind", ["plain", "parameter"])
@pytest.mark.parametrize("route", X_ROUTES)
@pytest.mark.parametrize("build", BUILDERS)
def test_closures_over_constants_are_right(build: str, route: str, w_kind: str) -> None:
    """A parameter that requires grad is a constant when its gradient is not asked for."""
    W = W0.clone().requires_grad_() if w_kind == "parameter" else W0
    got = X_ROUTES[route](BUILDERS[build], W)
    want = X_ROUTES[route](_plain, W0)
    assert got.shape == want.shape
    assert float((got.detach() - want).abs().max()) < 1e-12
    assert float(want.abs().max()) > 1e-3


def test_closures_over_constants_match_jax_and_finite_differences() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    with jax.enable_x64(True):
        W = jnp.asarray(W0.tolist())

        @jax.custom_vjp
        def f(x: Any) -> Any:
            return jnp.tanh(W @ x)

        f.defvjp(lambda x: (f(x), f(x)), lambda y, g: (W.T @ ((1 - y * y) * g),))
        want = jax.grad(lambda x: (f(x) ** 2).sum())(jnp.asarray(X0.tolist()))
        want_t = torch.tensor(want.tolist(), dtype=F64)
    for build in BUILDERS.values():
        got = ftx.grad(_loss_x(build, W0))(X0)
        assert float((got - want_t).abs().max()) < 1e-12
    # central differences of the loss in x
    loss, eps = _loss_x(_vjp_closure, W0), 1e-6
    fd = torch.stack(
        [(loss(X0 + eps * e) - loss(X0 - eps * e)) / (2 * eps) for e in torch.eye(3, dtype=F64)]
    )
    assert float((fd - want_t).abs().max()) < 1e-8


@pytest.mark.parametrize("build", BUILDERS)
def test_vmap_over_a_closed_over_tensor(build: str) -> None:
    """JAX batches closed-over values (a non-differentiating transform); so does ftx."""
    ws = torch.stack([W0, 2 * W0, -W0])
    got = ftx.vmap(lambda W: ftx.grad(_loss_x(BUILDERS[build], W))(X0))(ws)
    want = tf.vmap(lambda W: tf.grad(_loss_x(_plain, W))(X0))(ws)
    assert float((got - want).abs().max()) < 1e-12
    got_v = ftx.vmap(lambda W: BUILDERS[build](W)(X0))(ws)
    assert float((got_v - torch.tanh(ws @ X0)).abs().max()) < 1e-12


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_module_and_python_values_in_the_closure(kind: str) -> None:
    lin = torch.nn.Linear(3, 3).double()  # parameters require grad; not asked for here
    scale = 0.5

    def fun(x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(scale * lin(x))

    if kind == "vjp":
        f: Any = ftx.custom_vjp(fun)
        f.defvjp(lambda x: (fun(x), fun(x)),
                 lambda y, g: (scale * lin.weight.T @ (_dtanh(y) * g),))
    else:
        f = ftx.custom_jvp(fun)
        f.defjvp(lambda p, t: (fun(p[0]), _dtanh(fun(p[0])) * (scale * lin.weight @ t[0])))
    want = tf.grad(lambda x: (fun(x) ** 2).sum())(X0)
    for g in (ftx.grad, tf.grad):
        got = g(lambda x: (f(x) ** 2).sum())(X0)
        assert float((got - want.detach()).abs().max()) < 1e-12


def test_output_unused_by_the_gradient_is_no_error() -> None:
    """Only a derivative that would flow through the closed-over tensor raises (JAX
    raises as soon as it traces the call; ftx answers where the answer is right)."""

    def loss(W: torch.Tensor) -> Any:
        return (W**2).sum(), _vjp_closure(W)(X0)

    g, aux = ftx.grad(loss, has_aux=True)(W0)
    assert float((g - 2 * W0).abs().max()) == 0.0
    assert float((aux - torch.tanh(W0 @ X0)).abs().max()) < 1e-15


def test_cells_hold_the_original_tensors_afterwards() -> None:
    seen: list[Any] = []

    def loss(W: torch.Tensor) -> torch.Tensor:
        f = _vjp_closure(W)
        seen.append((f, W))
        return f(X0).sum()

    with pytest.raises(TypeError):
        ftx.grad(loss)(W0)
    ftx.vmap(loss)(torch.stack([W0, W0]))  # lifted (batched), put back after the call
    for f, W in seen:
        assert [c.cell_contents for c in f.fun.__closure__] == [W]


@pytest.mark.parametrize("build", ["vjp_closure"])  # compiling is slow: one case
def test_under_jit(build: str) -> None:
    """ftx.jit(grad): before, a silently wrong gradient with respect to W; a dynamo
    assertion once the cells were bound in the backward pass (it now runs eagerly)."""
    want = tf.grad(_loss_x(_plain, W0))(X0)
    got = ftx.jit(ftx.grad(_loss_x(BUILDERS[build], W0)))(X0)
    assert float((got - want).abs().max()) < 1e-12
    with pytest.raises(TypeError, match="close over to be constants"):
        ftx.jit(ftx.grad(_loss_w(BUILDERS[build])))(W0)


@pytest.mark.parametrize("kind", ["vjp", "jvp"])
def test_closures_with_nondiff_tensors(kind: str) -> None:
    """The input layout (arguments, nondiff tensors, closed-over tensors, guard token)
    under vmap over the closed-over W and a nondiff tensor s, differentiated in x."""
    s = torch.tensor(0.5, dtype=F64)

    def build(W: torch.Tensor) -> Any:
        def fun(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(s * (W @ x))

        if kind == "vjp":
            f: Any = ftx.custom_vjp(fun, nondiff_argnums=(0,))
            f.defvjp(lambda s, x: (fun(s, x), fun(s, x)),
                     lambda s, y, g: (s * (W.T @ (_dtanh(y) * g)),))
        else:
            f = ftx.custom_jvp(fun, nondiff_argnums=(0,))
            f.defjvp(lambda s, p, t: (fun(s, p[0]), _dtanh(fun(s, p[0])) * (s * (W @ t[0]))))
        return f

    ws = torch.stack([W0, -W0])
    for jac in (ftx.jacrev, ftx.jacfwd):
        got = ftx.vmap(lambda W: jac(lambda x: build(W)(s, x))(X0))(ws)
        want = tf.vmap(lambda W: tf.jacrev(lambda x: torch.tanh(s * (W @ x)))(X0))(ws)
        assert float((got - want).abs().max()) < 1e-12
    with pytest.raises(TypeError, match="close over to be constants"):
        ftx.grad(lambda W: build(W)(s, X0).sum())(W0)
