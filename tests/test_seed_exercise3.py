"""Exercise 3 of docs/tutorial_autodiff.md: show that (H o Q)^T = J o grad Q.

Stated with a hand-written ``hessian(fun, x)`` (the Jacobian of the gradient), the
check is ``assert torch.allclose(hessian(g, x), jacobian_gradient(g, x))``. Here the
Hessian is ftx's forward-over-reverse ``ftx.hessian`` and the right-hand side is
``ftx.jacobian(ftx.grad(g))``: the two are computed by different routes, so the
identity is a real check, including for functions whose Hessian is not diagonal.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch.autograd.functional import hessian as ag_hessian

import ftx


def hessian(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return ftx.hessian(g)(x)


def jacobian_gradient(g: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return ftx.jacobian(ftx.grad(g))(x)


FUNCTIONS = [
    ("seed-cubic", lambda x: (x ** 3).sum()),
    ("coupled", lambda x: (x[0] * x[1] ** 2 + torch.sin(x[1] * x[2])).sum()),
    ("quadratic-form", lambda x: x @ torch.arange(9.0, dtype=x.dtype).reshape(3, 3) @ x),
    ("logsumexp", lambda x: torch.logsumexp(x * x.roll(1), 0)),
]


@pytest.mark.parametrize("g", [f for _, f in FUNCTIONS], ids=[n for n, _ in FUNCTIONS])
@pytest.mark.parametrize("mode", ["auto", "fwd", "rev"])
def test_hessian_transposed_is_jacobian_of_gradient(
    g: Callable[[torch.Tensor], torch.Tensor], mode: str
) -> None:
    x = torch.randn(3, dtype=torch.float64)
    jac_grad = ftx.jacobian(ftx.grad(g), mode=mode)(x)
    assert torch.allclose(hessian(g, x).T, jac_grad)
    assert torch.allclose(hessian(g, x), jacobian_gradient(g, x).T)
    torch.testing.assert_close(hessian(g, x), ag_hessian(g, x))


def test_seed_values() -> None:
    g = lambda x: (x ** 3).sum()  # noqa: E731
    x = torch.ones(3)
    assert torch.allclose(hessian(g, x), jacobian_gradient(g, x))
    torch.testing.assert_close(hessian(g, x), 6 * torch.eye(3))


def test_non_symmetric_quadratic_form_shows_the_transpose() -> None:
    # x^T A x has Hessian A + A^T (symmetric) even though A is not: both sides agree with it.
    a = torch.arange(9.0, dtype=torch.float64).reshape(3, 3)
    x = torch.randn(3, dtype=torch.float64)
    g = lambda x: x @ a @ x  # noqa: E731
    torch.testing.assert_close(jacobian_gradient(g, x), a + a.T)
    torch.testing.assert_close(hessian(g, x).T, a + a.T)
