"""``NamedTensor``: a tensor whose dimensions carry names, aligned by name.

PyTorch 2.13 no longer ships the prototype named-tensor API
(``Tensor.names``, ``refine_names``, ``align_to``), so ftx carries its own
minimal version: a frozen pytree node holding a plain tensor (the child) and a
tuple of names (static). Layers that accept names (``DepthwiseConv2d``) align
their input by name and return named output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import Tensor

from .. import tree as _tree
from .._internal.errors import describe, msg

__all__ = ["NamedTensor", "align"]


@_tree.register_dataclass
@dataclasses.dataclass(frozen=True)
class NamedTensor:
    """A tensor with one name per dimension (``None`` for an unnamed dimension).

    Args:
        tensor: any tensor.
        names: one name (str or ``None``) per dimension of ``tensor``; names unique.

    Example:
        >>> import torch
        >>> x = NamedTensor(torch.zeros(4, 5, 2, 3), ("H", "W", "N", "C"))
        >>> x.align_to("N", "C", "H", "W").shape
        torch.Size([2, 3, 4, 5])
    """

    tensor: Tensor
    names: tuple[str | None, ...] = _tree.static_field()

    def __post_init__(self) -> None:
        if not isinstance(self.tensor, Tensor):
            raise TypeError(
                msg("nn.NamedTensor", "tensor must be a torch.Tensor", describe(self.tensor))
            )
        try:
            names = tuple(self.names)
        except TypeError:  # not iterable
            raise TypeError(msg(
                "nn.NamedTensor", "names must be a tuple of names (str or None)",
                describe(self.names), "Pass one name per dimension, e.g. ('N', 'C').",
            )) from None
        object.__setattr__(self, "names", names)
        if len(names) != self.tensor.ndim:
            raise ValueError(
                msg(
                    "nn.NamedTensor",
                    f"one name per dimension ({self.tensor.ndim} names)",
                    f"names {names}",
                )
            )
        named = [n for n in names if n is not None]
        if any(not isinstance(n, str) for n in named) or len(set(named)) != len(named):
            raise ValueError(
                msg("nn.NamedTensor", "names must be unique strings or None", f"names {names}")
            )

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape."""
        return tuple(self.tensor.shape)

    def align_to(self, *names: str) -> Tensor:
        """The plain tensor permuted so that its dimensions follow ``names``."""
        return align(self, names, "nn.NamedTensor.align_to")


def align(x: NamedTensor, want: Sequence[str], api: str) -> Tensor:
    """Permute ``x.tensor`` to the order ``want``; ``ValueError`` naming missing/foreign names."""
    have = x.names
    missing = [n for n in want if n not in have]
    foreign = [n if n is not None else f"<unnamed dim {i}>" for i, n in enumerate(have)]
    foreign = [n for n in foreign if n not in want]
    if missing or foreign:
        raise ValueError(
            msg(
                api,
                f"a tensor named exactly {tuple(want)} (in any order)",
                f"names {have}: missing {missing}, foreign {foreign}",
                "Rename the dimensions to the expected names.",
            )
        )
    perm = [have.index(n) for n in want]
    if perm == list(range(len(perm))):
        return x.tensor
    return x.tensor.permute(perm)
