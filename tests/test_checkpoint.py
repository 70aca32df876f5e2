"""ftx.checkpoint: same values and derivatives, fewer saved activations, recomputed in backward."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx

from ._engines import ENGINES, Engine
from .helpers import tree_allclose

T = torch.Tensor
F64 = torch.float64
DEPTH, WIDTH, SEGMENT = 12, 16, 4


def _layer(w: T, b: T, h: T) -> T:  # (out, in), (out,), (batch, in) -> (batch, out)
    return torch.tanh(h @ w.T + b)


def _segment(params: list[tuple[T, T]], h: T) -> T:
    for w, b in params:
        h = _layer(w, b, h)
    return h


_segment_ckpt = ftx.checkpoint(_segment)


def mlp(params: list[tuple[T, T]], x: T, *, ckpt: bool) -> T:
    """A deep tanh MLP; with ``ckpt`` every SEGMENT layers form one checkpointed segment."""
    seg = _segment_ckpt if ckpt else _segment
    h = x
    for i in range(0, len(params), SEGMENT):
        h = seg(params[i : i + SEGMENT], h)
    return h


def _params(dtype: torch.dtype, device: str = "cpu") -> list[tuple[T, T]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(DEPTH):
        w = torch.randn(WIDTH, WIDTH, generator=g, dtype=F64) / WIDTH**0.5
        b = torch.randn(WIDTH, generator=g, dtype=F64) * 0.1
        out.append((w.to(dtype=dtype, device=device), b.to(dtype=dtype, device=device)))
    return out


def _x(batch: int, dtype: torch.dtype, device: str = "cpu") -> T:
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, WIDTH, generator=g, dtype=F64).to(dtype=dtype, device=device)


def _loss(ckpt: bool) -> Callable[[Any, T], T]:
    return lambda p, x: (mlp(p, x, ckpt=ckpt) ** 2).sum()


TRANSFORMS: dict[str, Callable[[Engine, Callable[[Any, T], T], Any, T], Any]] = {
    "value": lambda e, f, p, x: f(p, x),
    "grad": lambda e, f, p, x: e.grad(f)(p, x),
    "grad_x": lambda e, f, p, x: e.grad(f, argnums=1)(p, x),
    "vjp": lambda e, f, p, x: e.vjp(lambda p: f(p, x), p)[1](torch.ones((), dtype=x.dtype)),
    "vmap_grad": lambda e, f, p, x: e.vmap(e.grad(lambda p, r: f(p, r[None])), (None, 0))(p, x),
    "jacrev": lambda e, f, p, x: e.jacrev(lambda x: mlp(p, x, ckpt=f is CKPT))(x[:2]),
    "jacfwd": lambda e, f, p, x: e.jacfwd(lambda x: mlp(p, x, ckpt=f is CKPT))(x[:2]),
    "hessian": lambda e, f, p, x: e.hessian(lambda x: f(p, x))(x[:1]),
    # forward over forward: torch runs a Function's jvp with forward AD off (was all zeros)
    "jacfwd_jacfwd": lambda e, f, p, x: e.jacfwd(e.jacfwd(lambda x: f(p, x)))(x[:1]),
    "jacfwd_jacfwd_vmap": lambda e, f, p, x: e.jacfwd(
        e.jacfwd(lambda x: e.vmap(lambda r: f(p, r[None]))(x).sum())
    )(x[:2]),
}
PLAIN, CKPT = _loss(False), _loss(True)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tr", list(TRANSFORMS))
def test_same_values_and_derivatives_float64(tr: str, engine: Engine) -> None:
    p, x = _params(F64), _x(5, F64)
    want = TRANSFORMS[tr](engine, PLAIN, p, x)
    got = TRANSFORMS[tr](engine, CKPT, p, x)
    tree_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_torch_autograd_dtypes_devices(dtype: torch.dtype, device: str) -> None:
    p, x = _params(dtype, device), _x(5, dtype, device)
    grads = []
    for ckpt in (False, True):
        leaves = [t.clone().requires_grad_() for wb in p for t in wb]
        params = list(zip(leaves[::2], leaves[1::2]))
        loss = (mlp(params, x, ckpt=ckpt) ** 2).sum()
        grads.append(torch.autograd.grad(loss, leaves))
    tol = 1e-10 if dtype == F64 else 1e-5
    tree_allclose(grads[1], grads[0], rtol=tol, atol=tol)


def _saved_bytes(ckpt: bool, batch: int) -> tuple[int, int]:
    """Count and bytes of the tensors autograd saves for one forward of the deep MLP."""
    count, nbytes, seen = 0, 0, set()

    def pack(t: T) -> T:
        nonlocal count, nbytes
        count += 1
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key not in seen:  # the same tensor saved twice costs its memory once
            seen.add(key)
            nbytes += t.numel() * t.element_size()
        return t

    p = [tuple(t.clone().requires_grad_() for t in wb) for wb in _params(torch.float32)]
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = (mlp(p, _x(batch, torch.float32), ckpt=ckpt) ** 2).sum()
    torch.autograd.grad(loss, [t for wb in p for t in wb])
    return count, nbytes


def test_checkpoint_drops_saved_activations() -> None:
    batch = 512  # activations (batch x width) dominate the parameters
    n_plain, bytes_plain = _saved_bytes(False, batch)
    n_ckpt, bytes_ckpt = _saved_bytes(True, batch)
    act = batch * WIDTH * 4  # bytes of one activation
    # Without: each layer keeps its input and its tanh output (plus weights). With: only each
    # segment's inputs (its parameters and one activation) and the final square's input.
    assert bytes_plain >= DEPTH * act
    assert bytes_ckpt <= (DEPTH // SEGMENT + 1) * act + 2 * DEPTH * WIDTH * (WIDTH + 1) * 4
    assert bytes_ckpt < bytes_plain / 2.5
    assert n_ckpt < n_plain


def test_recomputes_in_backward_once() -> None:
    calls = []

    def f(x: T) -> T:
        calls.append(1)
        return torch.sin(x).exp()

    g = ftx.checkpoint(f)
    x = torch.tensor([0.1, 0.2], dtype=F64)
    torch.testing.assert_close(
        torch.func.grad(lambda x: g(x).sum())(x), torch.cos(x) * torch.sin(x).exp()
    )
    assert len(calls) == 2  # forward, then the recomputation in backward
    g(x)  # no differentiation: a plain call, no autograd.Function
    assert len(calls) == 3


def _batched(tree: Any) -> Any:
    return ftx.tree.map(lambda t: torch.stack([t, 2 * t, -t]), tree)


def test_pytrees_kwargs_and_constants() -> None:
    def f(tree: dict[str, Any], scale: float, *, power: int) -> tuple[T, dict[str, T]]:
        a, b = tree["a"], tree["pair"][0]
        return a * b * scale, {"p": (a**power).sum()}

    g = ftx.checkpoint(f)
    tree = {"a": torch.tensor([1.0, 2.0], dtype=F64), "pair": (torch.tensor(3.0, dtype=F64), None)}

    def loss(fn: Any) -> Callable[[Any], T]:
        return lambda t: fn(t, 2.0, power=3)[0].sum() + fn(t, 2.0, power=3)[1]["p"]

    tree_allclose(ftx.grad(loss(g))(tree), ftx.grad(loss(f))(tree))
    tree_allclose(
        ftx.vmap(ftx.grad(loss(g)))(_batched(tree)), ftx.vmap(ftx.grad(loss(f)))(_batched(tree))
    )


@pytest.mark.parametrize(
    ("make", "exc", "pattern"),
    [
        pytest.param(
            lambda: ftx.checkpoint(3),
            TypeError,
            r"ftx\.checkpoint: fun must be callable, got int 3",
            id="not_callable",
        ),
        pytest.param(
            lambda: ftx.checkpoint(torch.nn.Linear),
            TypeError,
            r"ftx\.checkpoint: fun must be a function, got type",
            id="class",
        ),
        pytest.param(
            lambda: torch.func.grad(lambda x: ftx.checkpoint(lambda x: (x.sum(), "s"))(x)[0])(
                torch.ones(2)
            ),
            TypeError,
            r"ftx\.checkpoint: the output of fun must be a tensor or a pytree of tensors, "
            r"got str 's' at path '1'",
            id="output_not_tensor",
        ),
    ],
)
def test_errors(make: Callable[[], Any], exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        make()
