"""ftx.lax under ftx.jit (never unrolled) and scan's memory with a checkpointed body.

The compiled results are compared with the eager ones, which tests/test_lax.py compares
with JAX. Compiles use the ``aot_eager`` backend (dynamo + AOTAutograd, what decides
graphs and backward passes) to keep the suite fast; FTX_LONG_TESTS=1 adds inductor.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

import ftx
import ftx.lax as L
from tests.helpers import tree_allclose

F64 = torch.float64
LONG = os.environ.get("FTX_LONG_TESTS", "") not in ("", "0")


@pytest.fixture(autouse=True)
def fresh_dynamo() -> Iterator[None]:
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


W = torch.tensor([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.7]], dtype=F64)


def rnn_loss(w: torch.Tensor, h0: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h2 = torch.tanh(w @ h + x)
        h2 = L.cond(h2.sum() > 0, lambda a: a * 1.1, lambda a: a * 0.9, h2)
        return h2, (h2 * x).sum()

    h, ys = L.scan(step, h0, xs)
    return h.sum() + torch.sin(ys).sum()


def _xs(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(n)
    return torch.randn(n, 3, generator=g, dtype=F64)


h0 = torch.tensor([0.1, -0.2, 0.3], dtype=F64)


class Counter:
    """A dynamo backend that counts the FX nodes it gets (subgraphs included)."""

    def __init__(self) -> None:
        self.nodes: list[int] = []

    def __call__(self, gm: torch.fx.GraphModule, example_inputs: Any) -> Callable[..., Any]:
        self.nodes.append(sum(len(m.graph.nodes) for m in gm.modules()
                              if isinstance(getattr(m, "graph", None), torch.fx.Graph)))
        from functorch.compile import make_boxed_func
        from torch._dynamo.backends.common import aot_autograd

        return aot_autograd(fw_compiler=lambda g, _: make_boxed_func(g.forward))(
            gm, example_inputs)


ROUTES: dict[str, Callable[[Any], Callable[..., Any]]] = {
    "jit": lambda be: ftx.jit(rnn_loss, backend=be),
    "grad_of_jit": lambda be: ftx.grad(ftx.jit(rnn_loss, backend=be)),
    "jit_of_grad": lambda be: ftx.jit(ftx.grad(rnn_loss), backend=be),
    "jit_of_vmap_grad": lambda be: ftx.jit(ftx.vmap(ftx.grad(rnn_loss), in_axes=(None, 0, None)),
                                           backend=be),
}
EAGER: dict[str, Callable[..., Any]] = {
    "jit": rnn_loss,
    "grad_of_jit": ftx.grad(rnn_loss),
    "jit_of_grad": ftx.grad(rnn_loss),
    "jit_of_vmap_grad": ftx.vmap(ftx.grad(rnn_loss), in_axes=(None, 0, None)),
}


def _args(route: str, n: int) -> tuple[Any, ...]:
    h = torch.stack([h0, -h0]) if route == "jit_of_vmap_grad" else h0
    return W, h, _xs(n)


@pytest.mark.parametrize("route", list(ROUTES))
def test_scan_graph_does_not_grow_with_length(route: str) -> None:
    """A 1000-step scan compiles to the graph a 10-step scan compiles to (no unrolling),
    and gives the eager numbers."""
    sizes = []
    for n in (10, 1000):
        torch._dynamo.reset()
        counter = Counter()
        fn = ROUTES[route](counter)
        for _ in range(2):  # ftx.grad's first call runs the torch.func route (jit eager)
            tree_allclose(fn(*_args(route, n)), EAGER[route](*_args(route, n)), rtol=1e-10,
                          atol=1e-12)
        sizes.append(counter.nodes)
    assert sizes[0] == sizes[1], sizes


def test_jit_routes_cover_the_control_flow() -> None:
    """cond/switch/while_loop/fori_loop/map/associative_scan/stop_gradient compiled,
    against eager."""

    def f(x: torch.Tensor) -> torch.Tensor:
        a = L.switch(torch.clamp((x.sum() * 2).long(), 0, 5), [torch.sin, torch.cos, torch.exp],
                     x)
        b = L.while_loop(lambda c: c[1].sum() < 6.0, lambda c: (c[0] + 1, c[1] * 1.5),
                         (0, x))[1]
        c = L.fori_loop(0, 3, lambda i, v: v * torch.cos(v), x)
        d = L.map(lambda r: r * r.sum(), x[:, None] * x[None, :]).sum(0)
        e = L.associative_scan(lambda u, v: u * v, x + 1.0, reverse=True)
        return a + b + c + d + e + L.stop_gradient(x) * x

    x = torch.tensor([0.6, 0.9, 0.4], dtype=F64)
    X = torch.tensor([[0.6, 0.9, 0.4], [0.1, 0.2, 0.3], [1.0, 1.2, 0.9]], dtype=F64)
    warnings.simplefilter("error", RuntimeWarning)  # ftx.jit's "running it eagerly" warning
    tree_allclose(ftx.jit(f, backend="aot_eager")(x), f(x), rtol=1e-12, atol=1e-12)
    tree_allclose(ftx.jit(ftx.vmap(f), backend="aot_eager")(X), ftx.vmap(f)(X), rtol=1e-12,
                  atol=1e-12)
    tree_allclose(ftx.jit(ftx.jacfwd(f), backend="aot_eager")(x), ftx.jacfwd(f)(x),
                  rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="reverse-mode differentiation needs a static"):
        ftx.jit(ftx.grad(lambda x: f(x).sum()), backend="aot_eager")(x)


@pytest.mark.skipif(not LONG, reason="inductor compiles take minutes on 2 CPUs; "
                    "FTX_LONG_TESTS=1")
def test_inductor_scan_grad() -> None:  # pragma: no cover - opt-in
    for route in ("jit", "grad_of_jit"):
        fn = ROUTES[route]("inductor")
        tree_allclose(fn(*_args(route, 50)), EAGER[route](*_args(route, 50)), rtol=1e-9,
                      atol=1e-12)


# ---------------------------------------------------------------------- memory (checkpoint)
def _layers(w: torch.Tensor, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    for k in range(w.shape[0]):
        h = torch.tanh(h @ w[k] + x)
    return h


def _deep_loss(w: torch.Tensor, xs: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    body = ftx.checkpoint(_layers) if checkpointed else _layers

    def step(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = body(w, h, x)  # the weights pass as an argument of the checkpointed function
        return out, out.sum()

    h, ys = L.scan(step, torch.zeros(xs.shape[1:], dtype=xs.dtype), xs)
    return h.sum() + ys.sum()


def _saved_bytes(fn: Callable[[], torch.Tensor], inputs: list[torch.Tensor]) -> int:
    """Bytes of the storages autograd saves for backward, the inputs' own excluded."""
    own = {t.untyped_storage().data_ptr() for t in inputs}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in own:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn()
    loss.backward()  # outside the hooks: the checkpoint's recomputation runs torch.func.vjp
    return sum(seen.values())


def test_scan_checkpoint_saves_less_and_agrees() -> None:
    g = torch.Generator().manual_seed(0)
    w = (torch.randn(4, 16, 16, generator=g, dtype=F64) * 0.2).requires_grad_()
    xs = torch.randn(40, 8, 16, generator=g, dtype=F64)
    full = _saved_bytes(lambda: _deep_loss(w, xs, False), [w, xs])
    grad_full, w.grad = w.grad, None
    ckpt = _saved_bytes(lambda: _deep_loss(w, xs, True), [w, xs])
    # per step: 4 layers of activations against one carry (8 x 16 float64 = 1 KiB)
    assert full >= 40 * 3 * 1024
    assert ckpt == 40 * 1024, ckpt
    assert ckpt / full < 0.4, (ckpt, full)
    tree_allclose(w.grad, grad_full, rtol=1e-12, atol=1e-12)
    # and the transforms' route gives the same gradient
    tree_allclose(ftx.grad(_deep_loss)(w.detach(), xs, True), grad_full, rtol=1e-12,
                  atol=1e-12)
