"""ftx.jit(donate_argnums=..., donate_argnames=...): JAX's buffer donation.

Oracle: the same jitted function without donation (and eager code) gives the same values
step for step; storage reuse is read off ``data_ptr``; a donated tensor is deleted (every
use raises the ftx error, never a silent empty result or a crash).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch

import ftx
from ftx._internal import torch_compat as _tc

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error:ftx.jit:RuntimeWarning")]

T = torch.Tensor
DELETED = r"ftx\.jit: a live tensor, got a float32\[4, 3\] tensor donated to 'step' and deleted"
SIZES = (3, 5, 4)


def _params() -> dict[str, dict[str, T]]:
    g = torch.Generator().manual_seed(0)
    return {
        str(i): {"weight": torch.randn(n, m, generator=g) / m**0.5,
                 "bias": torch.randn(n, generator=g) * 0.1}
        for i, (m, n) in enumerate(itertools.pairwise(SIZES))
    }


def _loss(p: dict[str, dict[str, T]], x: T, y: T) -> T:
    h = torch.tanh(torch.nn.functional.linear(x, p["0"]["weight"], p["0"]["bias"]))
    return torch.nn.functional.cross_entropy(
        torch.nn.functional.linear(h, p["1"]["weight"], p["1"]["bias"]), y
    )


OPT = ftx.optim.adam(1e-2)


def step(p: Any, s: Any, x: T, y: T) -> Any:
    loss, g = ftx.value_and_grad(_loss)(p, x, y)
    u, s = OPT.update(g, s, p)
    return ftx.optim.apply_updates(p, u), s, loss


def _data() -> tuple[T, T]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(6, 3, generator=g), torch.randint(0, 4, (6,), generator=g)


def _tensors(tree: Any) -> list[T]:
    return [t for t in ftx.tree.leaves(tree) if isinstance(t, torch.Tensor)]


def _clone(tree: Any) -> Any:
    return ftx.tree.map(lambda t: t.clone(), tree)


@pytest.fixture(scope="module")
def donating() -> Any:  # aot_eager: the same graph (write-back included), compiled quickly
    return ftx.jit(step, donate_argnums=(0, 1), backend="aot_eager")


def test_donated_train_step_matches_plain_jit_and_reuses_the_buffers(donating: Any) -> None:
    plain = ftx.jit(step, backend="aot_eager")
    x, y = _data()
    p, s = _params(), OPT.init(_params())
    pd, sd = _clone(p), _clone(s)
    _tc.dynamo_counters().clear()
    for k in range(3):
        ptrs = [t.data_ptr() for t in _tensors((pd, sd)) if t.dim() > 0]
        old = _tensors((pd, sd))
        p, s, loss = plain(p, s, x, y)
        pd, sd, loss_d = donating(pd, sd, x, y)
        torch.testing.assert_close(loss_d, loss, rtol=0, atol=0)
        for a, b in zip(_tensors((pd, sd)), _tensors((p, s)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        # every params / moment buffer is written in place (the 0-dim step count may move)
        assert [t.data_ptr() for t in _tensors((pd, sd)) if t.dim() > 0] == ptrs
        for t in old:
            with pytest.raises(ValueError, match=r"ftx\.jit: a live tensor, got .* donated to "
                               r"'step' and deleted by that call\. Use the call's outputs"):
                t + 1
        if k == 0:
            graphs = _tc.dynamo_counters()["stats"]["unique_graphs"]
    # the later calls run the first call's compiled code: no recompilation
    assert _tc.dynamo_counters()["stats"]["unique_graphs"] == graphs
    torch.testing.assert_close((x, y), _data())  # the arguments not donated are untouched


def test_a_deleted_tensor_raises_on_every_use(donating: Any) -> None:
    p, s = _params(), OPT.init(_params())
    x, y = _data()
    w = p["0"]["weight"]
    donating(p, s, x, y)
    assert isinstance(w, torch.Tensor)
    assert repr(w) == "<deleted: a float32[5, 3] tensor donated to 'step'>"
    for use in (lambda: w.shape, lambda: w.sum(), lambda: torch.sin(w), lambda: w[0],
                lambda: w.numpy(), lambda: float(w), lambda: w @ w.T, lambda: w.clone()):
        with pytest.raises(ValueError, match=r"float32\[5, 3\] tensor donated to 'step'"):
            use()
    # passing deleted tensors back in is the same error, not a recompile or an eager fallback
    with pytest.raises(ValueError, match=r"tensor donated to 'step' and deleted"):
        donating(p, s, x, y)


def test_inductor_computes_into_the_donated_buffers() -> None:
    def adam_like(p: dict[str, T], m: dict[str, T], g: dict[str, T]) -> Any:
        m = {k: 0.9 * m[k] + 0.1 * g[k] for k in m}
        return {k: p[k] - 0.01 * m[k] / (m[k].abs() + 1e-3) for k in p}, m, p["a"].sum()

    f = ftx.jit(adam_like, donate_argnums=(0, 1))  # inductor
    gen = torch.Generator().manual_seed(3)
    p = {"a": torch.randn(64, generator=gen), "b": torch.randn(4, 3, generator=gen)}
    m = {"a": torch.zeros(64), "b": torch.ones(4, 3)}
    g = {"a": torch.randn(64, generator=gen), "b": torch.randn(4, 3, generator=gen)}
    for _ in range(2):
        want = adam_like(_clone(p), _clone(m), g)
        ptrs = [t.data_ptr() for t in _tensors((p, m))]
        p, m, s = f(p, m, g)
        assert [t.data_ptr() for t in _tensors((p, m))] == ptrs
        for a, b in zip(_tensors((p, m, s)), _tensors(want), strict=True):
            torch.testing.assert_close(a, b)


def test_donated_storage_is_released() -> None:
    f = ftx.jit(lambda a: a.sum(), donate_argnums=0, backend="aot_eager")  # no output fits
    a = torch.ones(1000)
    torch.testing.assert_close(f(a), torch.tensor(1000.0))
    with pytest.raises(ValueError, match="donated"):
        a.untyped_storage()
    with torch._C.DisableTorchFunctionSubclass():  # look under the deleted tensor's guard
        assert a.untyped_storage().nbytes() == 0


def test_donate_argnames_by_keyword_and_by_position() -> None:
    def step(w: T, g: T, *, lr: float = 0.5) -> tuple[T, T]:
        return w - lr * g, g * 2

    f = ftx.jit(step, donate_argnames="w", backend="aot_eager")
    for call in (lambda w, g: f(w, g), lambda w, g: f(w=w, g=g), lambda w, g: f(g=g, w=w)):
        w, g = torch.ones(4, 3), torch.full((4, 3), 2.0)
        ptr = w.data_ptr()
        w2, g2 = call(w, g)
        torch.testing.assert_close(w2, torch.zeros(4, 3))
        torch.testing.assert_close(g2, torch.full((4, 3), 4.0))
        assert w2.data_ptr() == ptr
        torch.testing.assert_close(g, torch.full((4, 3), 2.0))  # not donated
        with pytest.raises(ValueError, match=DELETED):
            w.sum()


def test_outputs_that_are_donated_inputs_or_views_of_them_stay_right() -> None:
    def step(a: T, b: T) -> tuple[T, T, T, T]:
        return b * 2, a, a[:2], a + 1  # a passed through; a view of a; a + 1 fits a or b

    plain = ftx.jit(step, backend="aot_eager")
    donating = ftx.jit(step, donate_argnums=(0, 1), backend="aot_eager")
    a, b = torch.arange(12.0).reshape(4, 3), torch.ones(4, 3)
    want = [t.clone() for t in plain(a, b)]
    got = donating(a, b)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=0, atol=0)
    assert got[1] is not a  # a fresh object over a's buffer: a itself is deleted
    with pytest.raises(ValueError, match="donated"):
        a.sum()


def test_inputs_that_require_grad_are_deleted_but_not_written() -> None:
    f = ftx.jit(lambda w: w * 3, donate_argnums=0, backend="aot_eager")
    w = torch.ones(4, 3, requires_grad=True)
    out = f(w)
    torch.testing.assert_close(out, torch.full((4, 3), 3.0))
    assert out.requires_grad
    with pytest.raises(ValueError, match=DELETED.replace("'step'", "'<lambda>'")):
        w.sum()


def test_under_a_transform_nothing_is_donated() -> None:
    f = ftx.jit(lambda w: (w**2).sum(), donate_argnums=0, backend="aot_eager")
    w = torch.arange(3.0)
    torch.testing.assert_close(torch.func.grad(f)(w), 2 * w)
    torch.testing.assert_close(ftx.vmap(f)(torch.ones(2, 3)), torch.full((2,), 3.0))
    torch.testing.assert_close(w, torch.arange(3.0))  # still alive


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        pytest.param({"donate_argnums": "0"}, TypeError,
                     r"ftx\.jit: donate_argnums must be an int or a tuple of them, got str '0'",
                     id="argnums_kind"),
        pytest.param({"donate_argnums": (0, True)}, TypeError,
                     r"donate_argnums must be an int or a tuple", id="argnums_bool"),
        pytest.param({"donate_argnums": -1}, ValueError,
                     r"ftx\.jit: donate_argnums must be non-negative positions, got -1",
                     id="argnums_negative"),
        pytest.param({"donate_argnums": 2}, ValueError,
                     r"ftx\.jit: donate_argnums within the 2 positional parameter\(s\) of "
                     r"'_two', got 2", id="argnums_range"),
        pytest.param({"donate_argnames": ("w", 1)}, TypeError,
                     r"donate_argnames must be a str or a tuple of them", id="argnames_kind"),
        pytest.param({"donate_argnames": "v"}, ValueError,
                     r"ftx\.jit: donate_argnames naming parameters of '_two' that can be "
                     r"passed by keyword, got 'v'\. Pick from \['w', 'g'\]", id="argnames_name"),
    ],
)
def test_bad_donation_arguments(kwargs: dict[str, Any], exc: type[Exception],
                                pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        ftx.jit(_two, **kwargs)


def _two(w: T, g: T) -> T:
    return w - g


def test_donated_step_compiles_to_one_graph_without_breaks() -> None:
    """The write-back is traced with the step: one graph, no graph break (an
    ``is_inference()`` test inside the traced code used to break it in two)."""
    def step(p: dict[str, torch.Tensor], g: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: p[k] - 0.1 * g[k] for k in p}

    torch.compiler.reset()
    counters = _tc.dynamo_counters()
    counters.clear()
    p = {k: torch.randn(4, 3) for k in "abc"}
    g = {k: torch.randn(4, 3) for k in "abc"}
    want = step(p, g)
    ptrs = {k: v.data_ptr() for k, v in p.items()}
    out = ftx.jit(step, donate_argnums=0)(p, g)
    for k in p:
        torch.testing.assert_close(out[k], want[k])
        assert out[k].data_ptr() == ptrs[k]
    assert sum(counters["graph_break"].values()) == 0
    assert counters["stats"]["unique_graphs"] == 1


def test_donated_inference_tensor_outside_inference_mode_is_a_clear_error() -> None:
    with torch.inference_mode():
        p = torch.randn(3)
    f = ftx.jit(lambda p, g: p - g, donate_argnums=0)
    with pytest.raises(ValueError, match=r"ftx\.jit: donated tensors of .* an inference "
                                         r"tensor .* outside inference mode\. Clone it"):
        f(p, torch.ones(3))
    with torch.inference_mode():  # inside inference mode it is written in place
        q = torch.randn(3)
        want = q - 1
        torch.testing.assert_close(f(q, torch.ones(3)), want)
