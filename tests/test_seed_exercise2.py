"""Exercise 2 of docs/tutorial_autodiff.md: a Jacobian built column by column from
``ftx.jvp`` (forward mode) equals one built row by row from ``ftx.vjp`` (reverse mode).

    assert torch.allclose(forward_mode(f, x), reverse_mode(f, x))
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import ftx
from tests.helpers import central_difference_jacobian

Fn = Callable[[torch.Tensor], torch.Tensor]


def forward_mode(f: Fn, x: torch.Tensor) -> torch.Tensor:
    """Jacobian ``out.shape + x.shape``: one jvp per input direction (a column)."""
    basis = torch.eye(x.numel(), dtype=x.dtype).view(x.numel(), *x.shape)
    cols = [ftx.jvp(f, (x,), (e,))[1].reshape(-1) for e in basis]
    out_shape = f(x).shape
    return torch.stack(cols, dim=-1).reshape(*out_shape, *x.shape)


def reverse_mode(f: Fn, x: torch.Tensor) -> torch.Tensor:
    """Jacobian ``out.shape + x.shape``: one vjp_fn call per output direction (a row),
    all from a single ``ftx.vjp`` (called again and again, never 'backward twice')."""
    y, vjp_fn = ftx.vjp(f, x)
    basis = torch.eye(y.numel(), dtype=y.dtype).view(y.numel(), *y.shape)
    rows = [vjp_fn(e)[0].reshape(-1) for e in basis]
    return torch.stack(rows, dim=0).reshape(*y.shape, *x.shape)


CASES: list[tuple[str, Fn, tuple[int, ...]]] = [
    ("cube", lambda x: x**3, (3,)),  # the tutorial's cube example
    ("mul_by_y", lambda x: x * torch.tensor([0.5, -1.0, 2.0], dtype=x.dtype), (3,)),
    ("matrix_tanh", lambda x: torch.tanh(torch.arange(6.0, dtype=x.dtype).view(2, 3) @ x), (3,)),
    ("softmax_2d", lambda x: torch.softmax(x, dim=-1), (2, 3)),
    ("outer", lambda x: torch.outer(x, x.sin()), (4,)),
    ("to_scalar", lambda x: (x.exp() * x).sum(), (5,)),
]


@pytest.mark.parametrize(("name", "f", "shape"), CASES, ids=[c[0] for c in CASES])
def test_forward_mode_equals_reverse_mode(
    name: str, f: Fn, shape: tuple[int, ...], dtype: torch.dtype
) -> None:
    x = torch.linspace(-1.0, 1.5, torch.Size(shape).numel(), dtype=dtype).view(shape)
    fwd, rev = forward_mode(f, x), reverse_mode(f, x)
    assert fwd.shape == f(x).shape + x.shape
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(fwd, rev, rtol=tol, atol=tol)
    if dtype == torch.float64:
        ref = central_difference_jacobian(f, x)
        torch.testing.assert_close(fwd, ref, rtol=1e-6, atol=1e-8)
        torch.testing.assert_close(rev, torch.autograd.functional.jacobian(f, x))


def test_seed_cube_example_values() -> None:
    f = lambda x: x**3  # noqa: E731
    x = torch.ones(3)
    expected = torch.diag(torch.full((3,), 3.0))  # 3 * I, the expected Jacobian
    assert torch.allclose(forward_mode(f, x), reverse_mode(f, x))
    torch.testing.assert_close(reverse_mode(f, x), expected)
