"""``MLP``: ``Linear`` layers with an activation between them, a ``Sequential`` underneath."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._activations import ReLU
from ._base import FLAG, LAYER, POSITIVE, Layer, Params, Shape, check_fields, optional
from ._linear import Linear
from ._sequential import Sequential

__all__ = ["MLP"]


def _sizes(api: str, name: str, value: Any) -> tuple[int, ...]:
    """A list or tuple of at least two ints, each >= 1."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(msg(api, f"{name} must be a sequence of at least 2 ints",
                            describe(value), "E.g. sizes=[784, 128, 10]."))
    if len(value) < 2:
        raise ValueError(msg(api, f"{name} must be a sequence of at least 2 ints",
                             describe(value), "E.g. sizes=[784, 128, 10]."))
    return tuple(POSITIVE(api, f"{name}[{i}]", v) for i, v in enumerate(value))


@dataclasses.dataclass(frozen=True)
class MLP(Layer):
    """A multi-layer perceptron: exactly the equivalent ``Sequential``.

    ``MLP([3, 3, 2], activation=Sigmoid(), final_activation=Sigmoid())`` is
    ``Sequential(Linear(3, 3), Sigmoid(), Linear(3, 2), Sigmoid())``, the twin of
    ``nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid())``
    with params ``"0.weight", "0.bias", "2.weight", "2.bias"``.

    Args:
        sizes: ``[in, hidden..., out]``, at least two sizes.
        activation: layer placed after every ``Linear`` but the last.
        final_activation: layer placed after the last ``Linear`` (``None``: nothing).
        bias: whether the ``Linear`` layers have biases.

    Call ``mlp(params, x)`` with ``x: (*, sizes[0])``; returns ``(*, sizes[-1])``.

    Example:
        >>> import torch, ftx
        >>> sig = ftx.nn.Sigmoid()
        >>> mlp = ftx.nn.MLP([3, 3, 2], activation=sig, final_activation=sig)
        >>> params = mlp.init(ftx.random.key(0))
        >>> [p for p, _ in ftx.tree.leaves_with_path(params)]
        ['0.weight', '0.bias', '2.weight', '2.bias']
        >>> mlp(params, torch.ones(3)).shape
        torch.Size([2])
    """

    sizes: Sequence[int]
    activation: Layer = dataclasses.field(default_factory=ReLU)
    final_activation: Layer | None = None
    bias: bool = True

    def __post_init__(self) -> None:
        check_fields(self, sizes=_sizes, activation=LAYER, final_activation=optional(LAYER),
                     bias=FLAG)
        sizes = self.sizes
        layers: list[Layer] = []
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(Linear(n_in, n_out, bias=self.bias))
            last = i == len(sizes) - 2
            act = self.final_activation if last else self.activation
            if act is not None:
                layers.append(act)
        seq = Sequential(*layers)
        object.__setattr__(seq, "_api", "nn.MLP")  # errors name the MLP, not its Sequential
        object.__setattr__(self, "_seq", seq)

    @property
    def sequential(self) -> Sequential:
        """The equivalent :class:`Sequential`."""
        seq: Sequential = self._seq  # type: ignore[attr-defined]
        return seq

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """The equivalent ``Sequential``'s init (one key per layer)."""
        return self.sequential.init(key, dtype=dtype, device=device)

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (*, sizes[0]) -> (*, sizes[-1])``."""
        out: Tensor = self._seq(params, x, key=key)  # type: ignore[attr-defined]
        return out

    def param_shapes(self) -> dict[str, Shape]:
        return self.sequential.param_shapes()

    def twin(self) -> nn.Module:
        return self.sequential.twin()
