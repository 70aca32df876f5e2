"""``stop_gradient``: JAX's identity with zero derivative, on pytrees."""

from __future__ import annotations

from typing import Any, TypeVar

import torch

from ._common import flatten, unflatten

T = TypeVar("T")

__all__ = ["stop_gradient"]


def stop_gradient(x: T) -> T:
    """``x`` with zero derivative under every transform, as ``jax.lax.stop_gradient``.

    Each tensor leaf is ``detach()``-ed, which every ``torch.func`` level (``grad``,
    ``jvp``, ``vmap``) and the autograd engine treat as a constant: the derivative is zero
    under ``grad``, ``vjp``, ``jvp``, ``jacfwd``, ``jacrev``, ``hessian`` and their
    compositions. Other leaves (numbers, strings) pass through unchanged.

    Args:
        x: a pytree.

    Returns:
        ``x`` with each tensor leaf detached (same structure, values shared).

    Example:
        >>> import torch, ftx
        >>> f = lambda x: ftx.lax.stop_gradient(x) * x ** 2
        >>> ftx.grad(f)(torch.tensor(3.0)), ftx.hessian(f)(torch.tensor(3.0))
        (tensor(18.), tensor(6.))
    """
    leaves, spec = flatten(x)
    out: list[Any] = [v.detach() if isinstance(v, torch.Tensor) else v for v in leaves]
    return unflatten(spec, out)  # type: ignore[no-any-return]
