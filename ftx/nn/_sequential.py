"""``Sequential``: layers applied in order, params keyed like ``nn.Sequential``."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import (
    Layer,
    Params,
    ParamsError,
    Shape,
    check_init,
    check_key,
    check_params,
    split_key,
)

__all__ = ["Sequential"]


@dataclasses.dataclass(frozen=True, init=False)
class Sequential(Layer):
    """Apply ``layers`` in order; the twin of ``nn.Sequential``.

    Params: ``{str(i): params_i}`` for each layer ``i`` that has parameters,
    so paramless layers leave gaps in the indices exactly as in
    ``nn.Sequential``'s state dict. ``init`` splits the key into one per layer;
    a ``key`` passed to the call is split the same way (for ``Dropout``).

    Args:
        *layers: ftx layers.

    Call ``seq(params, x, key=None)``; returns the last layer's output.

    Example:
        >>> import torch, ftx
        >>> seq = ftx.nn.Sequential(ftx.nn.Linear(3, 4), ftx.nn.ReLU(), ftx.nn.Linear(4, 2))
        >>> params = seq.init(ftx.random.key(0))
        >>> ftx.tree.map(lambda p: tuple(p.shape), params)
        {'0': {'weight': (4, 3), 'bias': (4,)}, '2': {'weight': (2, 4), 'bias': (2,)}}
        >>> seq(params, torch.ones(5, 3)).shape
        torch.Size([5, 2])
    """

    layers: tuple[Layer, ...]

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    msg(
                        "nn.Sequential",
                        f"every layer must be an ftx.nn layer, layer {i}",
                        describe(layer),
                        "Wrap torch modules with ftx.nn.from_module instead.",
                    )
                )
        object.__setattr__(self, "layers", tuple(layers))
        plan = tuple(
            (layer, str(i) if layer.param_shapes() else None) for i, layer in enumerate(layers)
        )
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_keys", {name for _, name in plan if name is not None})

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """One key per layer (``split(key, len(layers))``); params of layers that have some."""
        check_init(self.api, key, dtype, device)
        if not self.layers:
            return {}
        keys = split_key(key, len(self.layers))
        params: Params = {}
        for i, (layer, name) in enumerate(self._plan):  # type: ignore[attr-defined]
            if name is not None:
                params[name] = layer.init(keys[i], dtype=dtype, device=device)
        return params

    def __call__(self, params: Params, x: Any, *, key: Tensor | None = None) -> Any:
        """``x -> layers[-1](... layers[0](x))``."""
        plan = self._plan  # type: ignore[attr-defined]
        if key is not None:
            check_key(self.api, key)
        i = -1
        try:
            if params.keys() != self._keys:  # type: ignore[attr-defined]
                raise ParamsError()
            if key is None:
                for i, (layer, name) in enumerate(plan):  # noqa: B007 (i is read on error)
                    x = layer(params[name] if name is not None else {}, x)
            elif plan:
                keys = split_key(key, len(plan))
                for i, (layer, name) in enumerate(plan):
                    x = layer(params[name] if name is not None else {}, x, key=keys[i])
        except (ParamsError, AttributeError):
            check_params(self.api, params, self.param_shapes())
            raise
        except (ValueError, TypeError) as err:
            err.add_note(f"(raised in ftx.{self.api} by layer {i}: {plan[i][0]!r})")
            raise
        return x

    def param_shapes(self) -> dict[str, Shape]:
        out: dict[str, Shape] = {}
        for layer, name in self._plan:  # type: ignore[attr-defined]
            if name is not None:
                out.update({f"{name}.{p}": s for p, s in layer.param_shapes().items()})
        return out

    def twin(self) -> nn.Module:
        return nn.Sequential(*(layer.twin() for layer in self.layers))

    @property
    def api(self) -> str:
        name: str = self.__dict__.get("_api", "nn.Sequential")  # MLP names itself
        return name

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

