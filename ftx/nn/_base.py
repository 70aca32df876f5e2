"""The layer protocol, parameter checks and the error messages every layer shares.

A layer is a frozen dataclass of hyper-parameters. ``init(key, *, dtype, device)``
returns a nested dict of tensors whose flattened paths are the twin
``nn.Module``'s state-dict keys; ``layer(params, x, *, key=None)`` is pure.

Each ``__call__`` does a few cheap checks inline (keys, dtype, the feature or
channel count) and only when one fails calls :meth:`Layer._diagnose`, the slow
path that works out exactly what is wrong and raises the contract's message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NoReturn

import torch
from torch import Tensor, nn

from .._errors import describe, msg

Params = dict[str, Any]
Shape = tuple[int, ...]

__all__ = ["Layer", "Params", "ParamsError"]


class ParamsError(ValueError):
    """Params whose paths or shapes differ from what the layer's ``init`` returns."""


def _flat_paths(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{"0.weight": leaf, ...}`` for a nested dict of params (non-dict values are leaves)."""
    out: dict[str, Any] = {}
    if isinstance(params, Mapping):
        for k, v in params.items():
            path = f"{prefix}{k}"
            if isinstance(v, Mapping):
                sub = _flat_paths(v, path + ".")
                out.update(sub if sub else {path: v})
            else:
                out[path] = v
    return out


def check_params(api: str, params: Any, shapes: Mapping[str, Shape]) -> None:
    """Raise when ``params`` is not a dict holding exactly ``shapes``' paths and shapes."""
    if not isinstance(params, Mapping):
        raise TypeError(
            msg(
                api,
                "params must be a dict of tensors (the pytree from init)",
                describe(params),
                "Build params with layer.init(key) or ftx.nn.params_of(module).",
            )
        )
    flat = _flat_paths(params)
    missing = sorted(p for p in shapes if p not in flat)
    extra = sorted(p for p in flat if p not in shapes)
    if missing or extra:
        raise ParamsError(
            msg(
                api,
                f"params must hold exactly the paths {sorted(shapes)}",
                f"missing paths {missing} and extra paths {extra}",
                "Build params with layer.init(key) or ftx.nn.params_of(twin_module).",
            )
        )
    for path, want in shapes.items():
        leaf = flat[path]
        if not isinstance(leaf, Tensor):
            raise TypeError(
                msg(api, f"params[{path!r}] must be a tensor", describe(leaf))
            )
        if tuple(leaf.shape) != tuple(want):
            raise ParamsError(
                msg(
                    api,
                    f"params[{path!r}] must have shape {tuple(want)}",
                    f"shape {tuple(leaf.shape)}",
                    "The params belong to a layer with other hyper-parameters.",
                )
            )


def check_dtypes(api: str, params: Any, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating tensor with the params' dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(msg(api, "input x must be a tensor", describe(x)))
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(
            msg(api, "input x must be a floating tensor", f"dtype {x.dtype}", "Cast it: x.float().")
        )
    for path, leaf in _flat_paths(params).items():
        if isinstance(leaf, Tensor) and leaf.dtype != x.dtype:
            raise TypeError(
                msg(
                    api,
                    "input and params must share one dtype",
                    f"input {x.dtype} and params[{path!r}] {leaf.dtype}",
                    "Cast one side, e.g. x.to(params_dtype) or init(key, dtype=x.dtype).",
                )
            )


def kaiming_bound(fan_in: int) -> float:
    """``1/sqrt(fan_in)``: torch's default bound for weights (kaiming_uniform, a=sqrt(5))
    and biases alike; 0 when ``fan_in`` is 0."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def uniform_init(
    key: Tensor, shape: Shape, bound: float, dtype: torch.dtype, device: Any
) -> Tensor:
    """``U(-bound, bound)`` of ``shape`` drawn from an ``ftx.random`` key on ``device``."""
    from .. import random as fr

    if device is not None:
        key = key.to(device)
    out: Tensor = fr.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)
    return out


def split_key(key: Tensor, num: int) -> Tensor:
    """``ftx.random.split(key, num)``: ``(num, 2)`` keys."""
    from .. import random as fr

    out: Tensor = fr.split(key, num)
    return out


def check_key(api: str, key: Any) -> None:
    """Raise ``TypeError`` unless ``key`` is an ``ftx.random`` key (int64 tensor, shape (2,))."""
    if not (isinstance(key, Tensor) and key.shape[-1:] == (2,) and not key.is_floating_point()):
        raise TypeError(
            msg(
                api,
                "key must be an ftx.random key (an integer tensor of shape (2,))",
                describe(key),
                "Make one with ftx.random.key(seed).",
            )
        )


def as_pair(api: str, name: str, value: Any) -> tuple[int, int]:
    """Normalise an int or a pair of ints to a pair, as ``torch.nn`` does."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise TypeError(msg(api, f"{name} must be an int or a pair of ints", describe(value)))


def check_positive(api: str, **values: int) -> None:
    """Raise unless every value is an int >= 1 (``TypeError`` for non-ints)."""
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(msg(api, f"{name} must be an int", describe(value)))
        if value < 1:
            raise ValueError(msg(api, f"{name} must be >= 1", str(value)))


def input_error(api: str, required: str, x: Tensor, fix: str = "") -> ValueError:
    """A ``ValueError`` for an input of the wrong shape, naming both shapes."""
    return ValueError(msg(api, required, f"input of shape {tuple(x.shape)}", fix))


class Layer:
    """Base class of ftx layers: frozen dataclasses of hyper-parameters.

    Subclasses define ``init``, ``__call__``, :meth:`param_shapes`,
    :meth:`twin` and, when inputs have a shape contract, :meth:`_check_input`.
    """

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Initial parameters (paramless layers: ``{}``)."""
        return {}

    def __call__(self, params: Params, x: Any, *, key: Tensor | None = None) -> Any:
        raise NotImplementedError

    def param_shapes(self) -> dict[str, Shape]:
        """Flattened param paths (state-dict keys) and shapes; ``{}`` without params."""
        return {}

    def twin(self) -> nn.Module:
        """A fresh ``nn.Module`` computing the same maths (float32, CPU, torch's init)."""
        raise NotImplementedError

    @property
    def api(self) -> str:
        return f"nn.{type(self).__name__}"

    def _check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` when ``x``'s shape breaks the layer's contract."""

    def _diagnose(self, params: Any, x: Any, err: Exception | None = None) -> NoReturn:
        """Slow path after a failed inline check or kernel: raise the precise error."""
        check_params(self.api, params, self.param_shapes())
        check_dtypes(self.api, params, x)
        self._check_input(x)
        detail = f" (torch: {str(err).splitlines()[0]})" if err is not None else ""
        raise ValueError(
            msg(self.api, "params and input the kernel accepts", f"input {describe(x)}{detail}")
        ) from err


def check_empty(layer: Layer, params: Any, x: Any) -> None:
    """Inline check for paramless layers: ``params`` must be ``{}`` and ``x`` a tensor."""
    if params:
        check_params(layer.api, params, {})
    if not isinstance(x, Tensor):
        raise TypeError(msg(layer.api, "input x must be a tensor", describe(x)))
