"""``Flatten``: merge a range of dimensions into one, the twin of ``nn.Flatten``."""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor, nn

from .._internal.errors import msg
from ._base import INT, Layer, Params, check_empty, check_fields, input_error

__all__ = ["Flatten"]


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Flatten dimensions ``start_dim..end_dim`` into one (params ``{}``).

    The defaults keep dimension 0 (the batch) as ``nn.Flatten`` does. Under
    ``vmap`` over single examples the batch dimension is gone, so count from the
    end instead: ``Flatten(start_dim=-3)`` flattens ``(C, H, W)`` both batched
    and per example.

    Args:
        start_dim: first dimension to flatten.
        end_dim: last dimension to flatten.

    Example:
        >>> import torch, ftx
        >>> ftx.nn.Flatten()({}, torch.zeros(2, 3, 4, 5)).shape
        torch.Size([2, 60])
    """

    start_dim: int = 1
    end_dim: int = -1

    def __post_init__(self) -> None:
        check_fields(self, start_dim=INT, end_dim=INT)
        s, e = self.start_dim, self.end_dim
        if (s >= 0) == (e >= 0) and s > e:  # same sign: the order is known without a rank
            raise ValueError(
                msg(self.api, "start_dim must not come after end_dim",
                    f"start_dim={s} and end_dim={e}", "Swap them.")
            )

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*, d_start..d_end, *) -> (*, prod(d_start..d_end), *)``."""
        if type(params) is not dict or params or type(x) is not Tensor:
            check_empty(self, params, x)
        try:
            return torch.flatten(x, self.start_dim, self.end_dim)
        except RuntimeError:  # start_dim after end_dim once counted on this rank
            raise input_error(
                self.api,
                f"input whose dimension {self.start_dim} does not come after dimension "
                f"{self.end_dim}",
                x,
                "Pick start_dim and end_dim for the input's rank.",
            ) from None
        except IndexError:
            raise input_error(
                self.api,
                f"input with dimensions {self.start_dim}..{self.end_dim} "
                f"(rank >= {max(self.start_dim + 1, -self.start_dim, -self.end_dim)})",
                x,
                "Use negative dims to count from the end.",
            ) from None

    def twin(self) -> nn.Module:
        return nn.Flatten(self.start_dim, self.end_dim)
