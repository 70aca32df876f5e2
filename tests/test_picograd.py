"""ftx.picograd against torch.autograd (float64), against itself (forward == reverse),
and against the original recursive ``Var`` it replaces."""

from __future__ import annotations

import copy
import math
import sys
from functools import reduce
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import ftx
from ftx import picograd as pg
from ftx.picograd import Dual, Linear, Var

# ---------------------------------------------------------------------------------
# The original recursive Var that picograd replaces, kept as the reference (like
# the path-by-path engine in section 1 of docs/tutorial_autodiff.md). Its grad
# recurses and re-walks shared subexpressions (2^d calls on ``y = y * y``
# repeated d times).


class SeedVar:
    def __init__(self, val, grad_fn=lambda: []):  # type: ignore[no-untyped-def]
        self.v, self.grad_fn = val, grad_fn

    def __add__(self, other):  # type: ignore[no-untyped-def]
        return SeedVar(self.v + other.v, lambda: [(self, 1.0), (other, 1.0)])

    def __mul__(self, other):  # type: ignore[no-untyped-def]
        return SeedVar(self.v * other.v, lambda: [(self, other.v), (other, self.v)])

    def grad(self, bp=1.0):  # type: ignore[no-untyped-def]
        grads = [input.grad(bp=val * bp) for (input, val) in self.grad_fn()]
        merge = lambda a, b: {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}  # noqa: E731
        return reduce(merge, grads, {self: bp})


# ---------------------------------------------------------------------------------
# The opening example of docs/picograd.md.


@pytest.mark.parametrize("cls", [Var, SeedVar], ids=["picograd", "seed"])
def test_seed_example(cls: Any) -> None:
    x, y = cls(1.0), cls(1.0)
    f = x * x * x * y * x + y * y * y
    g = f.grad()
    assert (g[x], g[y]) == (4.0, 4.0)
    assert (f.value if cls is Var else f.v) == 2.0


def test_seed_example_through_helpers() -> None:
    f = lambda x, y: x * x * x * y * x + y * y * y  # noqa: E731
    assert pg.value_and_grad(f, argnums=(0, 1))(1.0, 1.0) == (2.0, (4.0, 4.0))
    assert pg.jvp(f, (1.0, 1.0), (1.0, 0.0)) == (2.0, 4.0)
    assert pg.jvp(f, (1.0, 1.0), (0.0, 1.0)) == (2.0, 4.0)


def test_seed_example_against_jax() -> None:
    jax = pytest.importorskip("jax")
    f = lambda x, y: x * x * x * y * x + y * y * y  # noqa: E731
    with jax.enable_x64(True):
        gx, gy = jax.grad(f, argnums=(0, 1))(1.3, -0.7)
    assert pg.grad(f, argnums=(0, 1))(1.3, -0.7) == pytest.approx((float(gx), float(gy)), 1e-14)


# ---------------------------------------------------------------------------------
# Generated expression DAGs: the same program on picograd and on torch float64.
# Each step applies one op to earlier nodes (chosen freely, so nodes are shared).
# Domain-restricted ops take ``pos(a) = a * a + 0.25`` so every value is finite.

UNARY = ["neg", "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "square"]
BINARY = ["add", "sub", "mul", "div", "pow", "radd", "rsub", "rmul", "rdiv", "rpow", "powc"]


def pos(a: Any) -> Any:
    return a * a + 0.25


def apply(op: str, a: Any, b: Any, c: float, lib: Any) -> Any:
    if op == "neg":
        return -a
    if op == "square":
        return a**2
    if op in ("exp", "tanh", "sigmoid", "relu"):
        return getattr(lib, op)(a)
    if op in ("log", "sqrt"):
        return getattr(lib, op)(pos(a))
    return {
        "add": lambda: a + b,
        "sub": lambda: a - b,
        "mul": lambda: a * b,
        "div": lambda: a / pos(b),
        "pow": lambda: pos(a) ** b,
        "radd": lambda: c + a,
        "rsub": lambda: c - a,
        "rmul": lambda: c * a,
        "rdiv": lambda: c / pos(a),
        "rpow": lambda: (abs(c) + 0.5) ** a,
        "powc": lambda: pos(a) ** c,
    }[op]()


def run(prog: list[tuple[str, int, int, float]], xs: list[Any], lib: Any) -> Any:
    nodes = list(xs)
    for op, i, j, c in prog:
        nodes.append(apply(op, nodes[i % len(nodes)], nodes[j % len(nodes)], c, lib))
    return nodes[-1] + 0.5 * nodes[len(nodes) // 2] if len(nodes) > 1 else nodes[-1] * 1.0


step = st.tuples(
    st.sampled_from(UNARY + BINARY),
    st.integers(0, 50),
    st.integers(0, 50),
    st.floats(-2.0, 2.0, allow_nan=False),
)
programs = st.lists(step, min_size=1, max_size=14)
inputs = st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=3)


def torch_value_and_grad(prog: Any, xs: list[float]) -> tuple[float, list[float]]:
    ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out = run(prog, ts, torch)
    gs = torch.autograd.grad(out, ts, allow_unused=True)
    return out.item(), [0.0 if g is None else g.item() for g in gs]


def close(a: float, b: float, tol: float = 1e-12) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(prog=programs, xs=inputs)
def test_dag_values_and_grads_match_torch(prog: Any, xs: list[float]) -> None:
    value, grads = pg.value_and_grad(lambda *v: run(prog, list(v), pg), argnums=tuple(
        range(len(xs))))(*xs)
    assume(abs(value) < 1e6 and all(abs(g) < 1e8 for g in grads))
    t_value, t_grads = torch_value_and_grad(prog, xs)
    assert close(value, t_value), (value, t_value)
    for g, tg in zip(grads, t_grads):
        assert close(g, tg), (grads, t_grads)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(prog=programs, xs=inputs, seed=st.integers(0, 2**16))
def test_forward_mode_equals_reverse_mode(prog: Any, xs: list[float], seed: int) -> None:
    f = lambda *v: run(prog, list(v), pg)  # noqa: E731
    value, grads = pg.value_and_grad(f, argnums=tuple(range(len(xs))))(*xs)
    assume(abs(value) < 1e6 and all(abs(g) < 1e8 for g in grads))
    # each basis direction gives one partial
    for k in range(len(xs)):
        tangents = tuple(1.0 if i == k else 0.0 for i in range(len(xs)))
        p_out, t_out = pg.jvp(f, tuple(xs), tangents)
        assert p_out == value
        assert close(t_out, grads[k]), (t_out, grads[k])
    # a random direction gives <grad, v>
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(len(xs), generator=gen, dtype=torch.float64).tolist()
    _, t_out = pg.jvp(f, tuple(xs), tuple(v))
    assert close(t_out, sum(g * vi for g, vi in zip(grads, v)), 1e-10)


@settings(max_examples=60, deadline=None)
@given(
    prog=st.lists(
        st.tuples(st.sampled_from(["add", "mul"]), st.integers(0, 20), st.integers(0, 20),
                  st.just(0.0)),
        min_size=1, max_size=10,
    ),
    xs=st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=3),
)
def test_same_answers_as_seed_var(prog: Any, xs: list[float]) -> None:
    """On the recursive Var's own ops (+, *), picograd and the recursive Var agree exactly."""
    def seed_run(vs: list[Any]) -> Any:
        nodes = list(vs)
        for op, i, j, _ in prog:
            a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
            nodes.append(a + b if op == "add" else a * b)
        return nodes[-1]

    svs = [SeedVar(x) for x in xs]
    s_out = seed_run(svs)
    s_grad = s_out.grad()
    pvs = [Var(x) for x in xs]
    p_out = seed_run(pvs)
    p_grad = p_out.grad()
    assert p_out.value == s_out.v
    for sv, pv in zip(svs, pvs):
        assert close(p_grad.get(pv, 0.0), s_grad.get(sv, 0.0), 1e-13)


# ---------------------------------------------------------------------------------
# Linear time and depth.


def test_shared_chain_is_linear() -> None:
    """``y = y * y`` 60 times: 2^60 calls for the recursive Var, 61 nodes for picograd."""
    x = Var(1.0)
    y = x
    for _ in range(60):
        y = y * y
    assert len(y.topological_order()) == 61
    assert y.grad()[x] == 2.0**60


@pytest.mark.parametrize("depth", [10_000, 30_000], ids=lambda d: f"depth{d}")
def test_deep_chain_matches_torch(depth: int) -> None:
    assert depth > sys.getrecursionlimit()
    x = Var(0.3)
    y: Any = x
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    ty = t
    for _ in range(depth):
        y = y + 1e-3 * y.tanh()
        ty = ty + 1e-3 * torch.tanh(ty)
    (tg,) = torch.autograd.grad(ty, t)
    g = y.grad()
    assert close(y.value, ty.item(), 1e-11)
    assert close(g[x], tg.item(), 1e-11)
    # forward mode at the same depth
    d = Dual(0.3, 1.0)
    for _ in range(depth):
        d = d + 1e-3 * d.tanh()
    assert close(d.tangent, g[x], 1e-11)


def test_grad_is_pure_and_repeatable() -> None:
    x = Var(2.0)
    y = x * x * x
    assert y.grad()[x] == 12.0
    assert y.grad()[x] == 12.0
    assert y.grad(bp=0.5)[x] == 6.0
    assert x.is_leaf and not y.is_leaf


# ---------------------------------------------------------------------------------
# Each op against torch, including IEEE edge values (nan compared as nan).

EDGE_CASES = [
    ("log0", lambda m: m.log(m.x(0.0))),
    ("log_neg", lambda m: m.log(m.x(-1.0))),
    ("sqrt_neg", lambda m: m.sqrt(m.x(-4.0))),
    ("exp_overflow", lambda m: m.exp(m.x(1000.0))),
    ("div_by_zero", lambda m: 1.0 / m.x(0.0)),
    ("zero_div_zero", lambda m: m.x(0.0) / 0.0),
    ("neg_frac_pow", lambda m: m.x(-8.0) ** (1.0 / 3.0)),
    ("zero_pow_var", lambda m: m.x(0.0) ** m.x(2.0)),
    ("relu_at_0", lambda m: m.relu(m.x(0.0))),
    ("relu_neg", lambda m: m.relu(m.x(-2.0))),
    ("sigmoid_big", lambda m: m.sigmoid(m.x(-800.0))),
    ("tanh", lambda m: m.tanh(m.x(0.7))),
    ("rpow", lambda m: 2.0 ** m.x(1.5)),
    ("var_pow_var", lambda m: m.x(1.7) ** m.x(-0.3)),
]


class _PG:
    def __init__(self) -> None:
        self.leaves: list[Var] = []

    def x(self, v: float) -> Var:
        self.leaves.append(Var(v))
        return self.leaves[-1]

    log, sqrt, exp = staticmethod(pg.log), staticmethod(pg.sqrt), staticmethod(pg.exp)
    relu, sigmoid, tanh = staticmethod(pg.relu), staticmethod(pg.sigmoid), staticmethod(pg.tanh)


class _Torch:
    def __init__(self) -> None:
        self.leaves: list[torch.Tensor] = []

    def x(self, v: float) -> torch.Tensor:
        self.leaves.append(torch.tensor(v, dtype=torch.float64, requires_grad=True))
        return self.leaves[-1]

    log, sqrt, exp = staticmethod(torch.log), staticmethod(torch.sqrt), staticmethod(torch.exp)
    relu, sigmoid = staticmethod(torch.relu), staticmethod(torch.sigmoid)
    tanh = staticmethod(torch.tanh)


@pytest.mark.parametrize("name,expr", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
def test_ops_and_edge_values_match_torch(name: str, expr: Any) -> None:
    p, t = _PG(), _Torch()
    out, t_out = expr(p), expr(t)
    t_grads = torch.autograd.grad(t_out, t.leaves, allow_unused=True)
    adj = out.grad()
    got = torch.tensor([out.value] + [adj.get(v, 0.0) for v in p.leaves], dtype=torch.float64)
    want = torch.stack([t_out.detach()] + [g if g is not None else torch.zeros(())
                                             for g in t_grads]).to(torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-13, atol=0.0, equal_nan=True)


def test_module_functions_on_numbers_and_duals() -> None:
    assert pg.exp(0.0) == 1.0 and pg.log(1.0) == 0.0 and pg.relu(-1) == 0.0
    assert pg.neg(Var(2.0)).value == -2.0
    d = pg.sigmoid(Dual(0.0, 1.0))
    assert (d.primal, d.tangent) == (0.5, 0.25)
    assert pg.value(Var(3.0)) == 3.0 and pg.value(Dual(4.0, 1.0)) == 4.0 and pg.value(5) == 5.0


def test_repr() -> None:
    assert repr(Var(1.5)) == "Var(1.5)"
    assert repr(Var(1.5) * 2) == "Var(3.0, op='mul')"
    assert repr(pg.tanh(Var(0.0))) == "Var(0.0, op='tanh')"
    assert repr(Dual(1.0, 2.0)) == "Dual(1.0, tangent=2.0)"
    assert repr(Linear(3, 2)) == "Linear(in_features=3, out_features=2, bias=True)"


# ---------------------------------------------------------------------------------
# grad / value_and_grad / jvp helpers: ftx.grad's conventions on pytrees of numbers.


def test_grad_argnums_pytrees_and_aux() -> None:
    f = lambda p, s: (p["w"][0] * p["w"][1] + p["b"]) * s  # noqa: E731
    params = {"w": [2.0, 3.0], "b": 1.0}
    assert pg.grad(f)(params, 2.0) == {"w": [6.0, 4.0], "b": 2.0}
    assert pg.grad(f, argnums=1)(params, 2.0) == 7.0
    assert pg.grad(f, argnums=-1)(params, 2.0) == 7.0
    g, aux = pg.grad(lambda x: (x * x, "aux"), has_aux=True)(3.0)
    assert (g, aux) == (6.0, "aux")
    assert pg.value_and_grad(lambda x: (x * x, 1), has_aux=True)(3.0) == ((9.0, 1), 6.0)
    # a constant function has zero gradient; an unused argument too
    assert pg.grad(lambda x, y: 2.0 * y, argnums=(0, 1))(1.0, 5.0) == (0.0, 2.0)
    assert pg.grad(lambda x: 3.0)(1.0) == 0.0
    # the gradient is the same as ftx.grad's on tensors (torch.func if ftx.grad is not ready)
    tf = lambda x: (x * x * x).sum()  # noqa: E731
    tg = torch.func.grad(tf)(torch.tensor([1.5], dtype=torch.float64))
    assert pg.grad(lambda x: x * x * x)(1.5) == tg.item()


def test_jvp_pytrees_and_aux() -> None:
    f = lambda p: {"s": p[0] * p[1], "c": 1.0}  # noqa: E731
    out, tan = pg.jvp(f, ([2.0, 3.0],), ([1.0, 0.0],))
    assert out == {"s": 6.0, "c": 1.0} and tan == {"s": 3.0, "c": 0.0}
    out, tan, aux = pg.jvp(lambda x: (pg.exp(x), "a"), (0.0,), (2.0,), has_aux=True)
    assert (out, tan, aux) == (1.0, 2.0, "a")


ERRORS = [
    ("var_plus_str", lambda: Var(1.0) + "a", TypeError, r"got Var \+ str"),
    ("str_plus_var", lambda: "a" + Var(1.0), TypeError, r"got str \+ Var"),
    ("var_times_tensor", lambda: Var(1.0) * torch.ones(()), TypeError, r"got Var \* Tensor"),
    ("list_div_var", lambda: [1.0] / Var(1.0), TypeError, r"got list / Var"),
    ("var_pow_none", lambda: Var(1.0) ** None, TypeError, r"got Var \*\* NoneType"),
    ("var_minus_dual", lambda: Var(1.0) - Dual(1.0), TypeError, r"Var - Dual\. Do not mix"),
    ("dual_rsub_str", lambda: "x" - Dual(1.0), TypeError, r"Dual: .* got str - Dual"),
    ("dual_pow_var", lambda: Dual(1.0) ** Var(1.0), TypeError, r"got Dual \*\* Var"),
    ("var_of_str", lambda: Var("1.0"), TypeError, r"Var: value must be an int or a float"),
    ("dual_of_none", lambda: Dual(1.0, None), TypeError, r"tangent must be"),
    ("exp_of_str", lambda: pg.exp("a"), TypeError, r"picograd.exp: x must be a Var"),
    ("value_of_list", lambda: pg.value([1.0]), TypeError, r"picograd.value: x must"),
    ("grad_not_callable", lambda: pg.grad(3.0), TypeError, r"picograd.grad: fun must be callable"),
    ("grad_bad_argnums", lambda: pg.grad(abs, argnums=()), ValueError, r"non-empty tuple"),
    ("grad_argnums_range", lambda: pg.grad(lambda x: x, argnums=2)(1.0), ValueError,
     r"picograd.grad: argnums must index"),
    ("grad_tensor_input", lambda: pg.grad(lambda x: x)(torch.ones(())), TypeError,
     r"picograd.grad: inputs must be numbers .* at argument 0"),
    ("grad_list_output", lambda: pg.grad(lambda x: [x])(1.0), TypeError,
     r"fun must return one scalar"),
    ("grad_aux_not_pair", lambda: pg.grad(lambda x: x, has_aux=True)(1.0), TypeError,
     r"return a pair"),
    ("jvp_not_tuple", lambda: pg.jvp(lambda x: x, 1.0, 1.0), TypeError,
     r"primals must be a tuple"),
    ("jvp_structure", lambda: pg.jvp(lambda x, y: x, (1.0, 2.0), (1.0,)), ValueError,
     r"tangents must have the structure of primals"),
    ("jvp_bad_output", lambda: pg.jvp(lambda x: "s", (1.0,), (1.0,)), TypeError,
     r"fun must return numbers or Duals"),
    ("linear_size", lambda: Linear(-1, 2), ValueError, r"in_features must be a non-negative"),
    ("linear_len", lambda: Linear(3, 2)([1.0]), ValueError, r"in_features=3 entries, got 1"),
    ("linear_x_type", lambda: Linear(3, 2)(1.0), TypeError, r"x must be a list"),
    ("linear_from_conv", lambda: Linear.from_torch(torch.nn.Conv1d(1, 1, 1)), TypeError,
     r"module must be a torch.nn.Linear, got Conv1d"),
]


@pytest.mark.parametrize("name,fn,exc,match", ERRORS, ids=[e[0] for e in ERRORS])
def test_errors(name: str, fn: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------------
# Linear: the tutorial's Exercise 0 (docs/tutorial_autodiff.md), and gradient descent
# against torch.optim.SGD.


def test_exercise_0_as_the_seed_asks() -> None:
    torch.manual_seed(0)
    torchlr = torch.nn.Linear(3, 3)
    inputs = [1.0, 1.0, 1.0]
    model = Linear.from_torch(torchlr)

    def picolr(x: list[float]) -> torch.Tensor:
        out = model([Var(v) for v in x])
        return torch.tensor([[o.value for o in out]])

    assert picolr(inputs).shape == torchlr(torch.tensor([inputs])).shape == (1, 3)
    assert torch.allclose(picolr(inputs), torchlr(torch.tensor([inputs])))


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_linear_forward_and_grads_match_torch(bias: bool) -> None:
    torch.manual_seed(1)
    lin = torch.nn.Linear(4, 2, bias=bias).double()
    x = torch.randn(4, dtype=torch.float64)
    model = Linear.from_torch(lin)
    out = model(x.tolist())
    torch.testing.assert_close(torch.tensor(out, dtype=torch.float64), lin(x), rtol=1e-13,
                               atol=1e-13)
    # Var leaves and loss.grad(), the recursive Var's style
    vmodel = ftx.tree.map(Var, model)
    loss = sum(o * o for o in vmodel(x.tolist()))
    adj = loss.grad()
    (lin(x) ** 2).sum().backward()
    got = torch.tensor([[adj[w] for w in row] for row in vmodel.weight], dtype=torch.float64)
    torch.testing.assert_close(got, lin.weight.grad, rtol=1e-13, atol=1e-13)
    assert len(vmodel.parameters()) == 8 + (2 if bias else 0)
    # state_dict goes back into an nn.Linear
    twin = torch.nn.Linear(4, 2, bias=bias).double()
    twin.load_state_dict(model.state_dict())
    torch.testing.assert_close(twin(x), lin(x), rtol=0.0, atol=0.0)


def test_linear_init_follows_torch_bounds() -> None:
    m = Linear(16, 8, seed=3)
    bound = 1 / math.sqrt(16)
    assert all(abs(v) <= bound for v in m.parameters())
    assert m.parameters() == Linear(16, 8, seed=3).parameters()
    assert m.parameters() != Linear(16, 8, seed=4).parameters()


def test_gradient_descent_trajectory_matches_torch_sgd() -> None:
    torch.manual_seed(0)
    n, lr, steps = 16, 0.1, 25
    X = torch.randn(n, 3, dtype=torch.float64)
    w_true = torch.tensor([[1.0, -2.0, 0.5], [0.3, 0.0, -1.0]], dtype=torch.float64)
    Y = X @ w_true.T + 0.7 + 0.01 * torch.randn(n, 2, dtype=torch.float64)
    lin = torch.nn.Linear(3, 2).double()
    model = Linear.from_torch(copy.deepcopy(lin))
    opt = torch.optim.SGD(lin.parameters(), lr=lr)
    xs, ys = X.tolist(), Y.tolist()

    def loss_fn(m: Linear) -> Any:
        total: Any = 0.0
        for x, y in zip(xs, ys):
            for o, t in zip(m(x), y):
                total = total + (o - t) ** 2
        return total / (n * 2)

    step_fn = pg.value_and_grad(loss_fn)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        t_loss = torch.nn.functional.mse_loss(lin(X), Y)
        t_loss.backward()
        opt.step()
        loss, grads = step_fn(model)
        model = ftx.tree.map(lambda p, g: p - lr * g, model, grads)
        assert close(loss, t_loss.item(), 1e-12)
        sd = model.state_dict()
        torch.testing.assert_close(sd["weight"], lin.weight.detach(), rtol=1e-12, atol=1e-13)
        torch.testing.assert_close(sd["bias"], lin.bias.detach(), rtol=1e-12, atol=1e-13)
        losses.append(loss)
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        pytest.param(lambda: Var(10**400), ValueError,
                     r"ftx\.picograd\.Var: value must be a number a float64 can hold, got an int "
                     r"of 1329 bits\. Pass a smaller number", id="var-huge"),
        pytest.param(lambda: Var(1.0) + 10**400, ValueError,
                     r"ftx\.picograd\.Var: operand must be a number a float64 can hold", id="add"),
        pytest.param(lambda: (10**400) ** Var(1.0), ValueError,
                     r"ftx\.picograd\.Var: operand must be a number", id="rpow"),
        pytest.param(lambda: Dual(10**400), ValueError,
                     r"ftx\.picograd\.Dual: primal must be a number a float64 can hold", id="dual"),
        pytest.param(lambda: Dual(1.0) * 10**400, ValueError,
                     r"ftx\.picograd\.Dual: operand must be a number", id="dual-mul"),
        pytest.param(lambda: pg.exp(10**400), ValueError,
                     r"ftx\.picograd\.exp: x must be a number a float64 can hold", id="exp"),
        pytest.param(lambda: pg.value(10**400), ValueError,
                     r"ftx\.picograd\.value: x must be a number a float64 can hold", id="value"),
        pytest.param(lambda: pg.grad(lambda x: x * x)(10**400), ValueError,
                     r"ftx\.picograd\.grad: the input at argument 0 must be a number a float64 "
                     r"can hold", id="grad-input"),
        pytest.param(lambda: pg.grad(lambda x: x, has_aux=1), TypeError,
                     r"ftx\.picograd\.grad: has_aux must be a bool, got int 1\.", id="has_aux"),
        pytest.param(lambda: pg.jvp(lambda x: x, (1.0,), (1.0,), has_aux=None), TypeError,
                     r"ftx\.picograd\.jvp: has_aux must be a bool, got NoneType", id="jvp-aux"),
        pytest.param(lambda: (Var(2.0) * 3).grad("1"), TypeError,
                     r"ftx\.picograd\.Var\.grad: bp must be an int or a float, got str '1'\.",
                     id="grad-bp"),
        pytest.param(lambda: Linear(2**40, 2), ValueError,
                     r"ftx\.picograd\.Linear: at most 4194304 parameters \(a teaching engine on "
                     r"Python floats\), got in_features=1099511627776, out_features=2\.",
                     id="linear-huge"),
        pytest.param(lambda: Linear(3, 2, bias="yes"), TypeError,
                     r"ftx\.picograd\.Linear: bias must be a bool, got str 'yes'\.", id="bias"),
        pytest.param(lambda: Linear(3, 2, seed=object()), TypeError,
                     r"ftx\.picograd\.Linear: seed must be an int or None, got object", id="seed"),
        pytest.param(lambda: Linear(3, 2)(["a", 1.0, 1.0]), TypeError,
                     r"ftx\.picograd\.Linear: x must hold numbers, Vars or Duals, got str 'a' at "
                     r"x\[0\]\.", id="x-kind"),
        pytest.param(lambda: Linear(3, 2)([10**400, 1.0, 1.0]), ValueError,
                     r"ftx\.picograd\.Linear: x\[0\] must be a number a float64 can hold",
                     id="x-huge"),
        pytest.param(lambda: Linear(3, 2).state_dict(torch.int64), TypeError,
                     r"ftx\.picograd\.Linear\.state_dict: dtype must be a floating torch\.dtype, "
                     r"got", id="state_dict-dtype"),
        pytest.param(lambda: Linear.from_torch(torch.nn.Linear(3, 2, device="meta")), ValueError,
                     r"ftx\.picograd\.Linear\.from_torch: module must hold values, got a module "
                     r"on the meta device\.", id="from_torch-meta"),
    ],
)
def test_bad_input_errors(call: Any, exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()


def test_exact_ints_still_work() -> None:
    assert (Var(2) * 3).value == 6.0
    assert pg.value(2**1000) == float(2**1000)
    assert Linear(2, 1, seed=None).in_features == 2
