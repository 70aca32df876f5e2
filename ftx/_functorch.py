"""Is a torch.func transform active? Shared by the fast paths of transforms and optimizers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch._C import _functorch

_peek = _functorch.peek_interpreter_stack
is_wrapped = _functorch.is_functorch_wrapped_tensor


is_compiling = torch.compiler.is_compiling


def transform_active() -> bool:
    """True inside a ``torch.func`` transform (vmap, grad, jvp, ...) or while compiling."""
    return _peek() is not None or is_compiling()


def any_wrapped(leaves: Iterable[Any]) -> bool:
    """True when any leaf is a functorch-wrapped tensor (it came from an outer transform)."""
    return any(isinstance(x, torch.Tensor) and is_wrapped(x) for x in leaves)


def top_level(leaves: Iterable[Any]) -> bool:
    """True when no transform is active and no leaf is functorch-wrapped: the eager fast path."""
    return not transform_active() and not any_wrapped(leaves)
