"""ftx.jit of the Jacobian transforms and of per-sample gradients: one graph, no graph break,
no recompilation on later calls, the eager values.

Dynamo's counters tell graphs and breaks apart; the backend is ``aot_eager`` (the graph
dynamo captures is the same for every backend, and it compiles in a fraction of
inductor's time).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx._internal import torch_compat as _tc

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("error:ftx.jit:RuntimeWarning")]

T = torch.Tensor
F64 = torch.float64


def _h(x: T, w: T) -> T:
    return torch.tanh(w @ x).sum() + (x**4).sum() / 4


def _f(x: T, a: T) -> T:
    return torch.tanh(a @ x) * x.sum()


def _mlp_loss(p: dict[str, T], x: T, y: T) -> T:
    h = torch.tanh(x @ p["w1"].T + p["b1"])
    return torch.nn.functional.cross_entropy(h @ p["w2"].T + p["b2"], y)


def _per_sample(p: dict[str, T], x: T, y: T) -> Any:
    def one(p: dict[str, T], x: T, y: T) -> T:
        return _mlp_loss(p, x[None], y[None])

    return ftx.vmap(ftx.grad(one), in_axes=(None, 0, 0))(p, x, y)


def _hvp(x: T, v: T, w: T) -> Any:
    return ftx.hvp(lambda x: _h(x, w), (x,), (v,))


def _inputs(seed: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)

    def r(*s: int) -> T:
        return torch.randn(*s, generator=g, dtype=F64)

    return {
        "x": r(6), "v": r(6), "w": r(6, 6) / 3, "a": r(9, 6) / 3,
        "p": {"w1": r(5, 4), "b1": r(5), "w2": r(3, 5), "b2": r(3)},
        "xs": r(7, 4), "ys": torch.randint(0, 3, (7,), generator=g),
    }


CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any], Callable[[dict[str, Any]], Any]]] = {
    # name: (ftx function, torch.func reference, arguments)
    "hessian": (ftx.hessian(_h), torch.func.hessian(_h), lambda i: (i["x"], i["w"])),
    "jacrev": (ftx.jacrev(_f), torch.func.jacrev(_f), lambda i: (i["x"], i["a"])),
    "jacfwd": (ftx.jacfwd(_f), torch.func.jacfwd(_f), lambda i: (i["x"], i["a"])),
    "jacobian": (ftx.jacobian(_f), torch.func.jacfwd(_f), lambda i: (i["x"], i["a"])),
    "hvp": (_hvp, lambda x, v, w: torch.func.jvp(torch.func.grad(lambda x: _h(x, w)), (x,),
                                                  (v,))[1:],
            lambda i: (i["x"], i["v"], i["w"])),
    "per_sample_grads": (
        _per_sample,
        torch.func.vmap(torch.func.grad(lambda p, x, y: _mlp_loss(p, x[None], y[None])),
                        in_dims=(None, 0, 0)),
        lambda i: (i["p"], i["xs"], i["ys"]),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_graph_no_break_no_recompile(name: str) -> None:
    fun, ref, args = CASES[name]
    jf = ftx.jit(fun, fullgraph=True, backend="aot_eager")  # a graph break would raise
    counters = _tc.dynamo_counters()
    counters.clear()
    for seed in range(3):
        inputs = args(_inputs(seed))
        got = jf(*inputs)
        want = ref(*inputs)
        for a, b in zip(ftx.tree.leaves(got), ftx.tree.leaves(want), strict=True):
            torch.testing.assert_close(a, b)
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["graph_break"]
    assert not counters["recompiles"]
