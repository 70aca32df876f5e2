"""``Upsample``: the twin of ``nn.Upsample`` (``F.interpolate``), params ``{}``."""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import FLAG, POSITIVE, Layer, Params, check_empty, check_fields, input_error, optional

__all__ = ["Upsample"]

# mode -> the input ranks it accepts (batched: N, C and 1, 2 or 3 spatial dimensions)
_RANKS = {
    "nearest": (3, 4, 5),
    "nearest-exact": (3, 4, 5),
    "linear": (3,),
    "bilinear": (4,),
    "bicubic": (4,),
    "trilinear": (5,),
}
_INTERPOLATING = ("linear", "bilinear", "bicubic", "trilinear")
_SHAPES = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}


def _size(api: str, name: str, value: Any) -> int | tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 3:
            raise ValueError(msg(api, f"{name} must be an int or a tuple of 1 to 3 ints",
                                 f"{len(value)} entries"))
        return tuple(POSITIVE(api, f"{name}[{i}]", v) for i, v in enumerate(value))
    out: int = POSITIVE(api, name, value)
    return out


def _scale(api: str, name: str, value: Any) -> float | tuple[float, ...]:
    def one(n: str, v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(msg(api, f"{n} must be a positive real number", describe(v)))
        f = float(v)
        if not (math.isfinite(f) and f > 0):
            raise ValueError(msg(api, f"{n} must be a positive real number", repr(v)))
        return f

    if isinstance(value, (tuple, list)):
        if not 1 <= len(value) <= 3:
            raise ValueError(msg(api, f"{name} must be a number or a tuple of 1 to 3 numbers",
                                 f"{len(value)} entries"))
        return tuple(one(f"{name}[{i}]", v) for i, v in enumerate(value))
    return one(name, value)


def _mode(api: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(msg(api, f"{name} must be one of {tuple(_RANKS)}", describe(value)))
    if value not in _RANKS:
        raise ValueError(msg(api, f"{name} must be one of {tuple(_RANKS)}", repr(value)))
    return value


@dataclasses.dataclass(frozen=True)
class Upsample(Layer):
    """Resize by ``F.interpolate`` (params ``{}``), as ``nn.Upsample``.

    Args:
        size: output spatial size, an int or a tuple with one entry per spatial dimension.
        scale_factor: multiplier of the spatial size, a number or a tuple; give exactly one
            of ``size`` and ``scale_factor``.
        mode: ``"nearest"`` (default), ``"nearest-exact"``, ``"linear"`` (3-D input),
            ``"bilinear"`` / ``"bicubic"`` (4-D), ``"trilinear"`` (5-D).
        align_corners: ``None`` or a bool, for the interpolating modes only (torch's
            default ``None`` means ``False``).

    Call with a batched ``x: (N, C, *spatial)`` (1 to 3 spatial dimensions, as the mode
    needs): like ``nn.Upsample``, the rank of ``x`` says how many dimensions are spatial,
    so there is no unbatched form (under ``vmap`` over examples, keep a batch of one).

    Example:
        >>> import torch, ftx
        >>> up = ftx.nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        >>> up({}, torch.arange(4.0).reshape(1, 1, 2, 2)).tolist()[0][0][0]
        [0.0, 0.3333333432674408, 0.6666666865348816, 1.0]
    """

    size: int | tuple[int, ...] | None = None
    scale_factor: float | tuple[float, ...] | None = None
    mode: str = "nearest"
    align_corners: bool | None = None

    def __post_init__(self) -> None:
        check_fields(self, size=optional(_size), scale_factor=optional(_scale), mode=_mode,
                     align_corners=optional(FLAG))
        api = self.api
        if (self.size is None) == (self.scale_factor is None):
            raise ValueError(msg(api, "exactly one of size and scale_factor must be given",
                                 f"size={self.size!r} and scale_factor={self.scale_factor!r}",
                                 "E.g. Upsample(scale_factor=2) or Upsample(size=(8, 8))."))
        if self.align_corners is not None and self.mode not in _INTERPOLATING:
            raise ValueError(msg(api, "align_corners can only be set with the interpolating "
                                 f"modes {_INTERPOLATING}", f"mode={self.mode!r} and "
                                 f"align_corners={self.align_corners}",
                                 "Leave align_corners=None for nearest modes."))

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``x: (N, C, *spatial) -> (N, C, *spatial')``."""
        if (type(params) is not dict or params or type(x) is not Tensor
                or x.ndim not in _RANKS[self.mode] or not x.is_floating_point()):
            check_empty(self, params, x, floating=True)
            self._check_input(x)
        try:
            return F.interpolate(x, self.size, self.scale_factor, self.mode,
                                 self.align_corners)
        except (RuntimeError, ValueError) as err:
            self._check_input(x)
            raise ValueError(msg(self.api, "an input the interpolation accepts",
                                 f"input of shape {tuple(x.shape)} "
                                 f"(torch: {str(err).splitlines()[0]})",
                                 "Give size/scale_factor one entry per spatial dimension "
                                 "of x.")) from err

    def _check_input(self, x: Tensor) -> None:
        ranks = _RANKS[self.mode]
        if x.ndim not in ranks:
            shapes = " or ".join(_SHAPES[r] for r in ranks)
            raise input_error(self.api, f"mode={self.mode!r} needs input x of shape {shapes}",
                              x, "Upsample takes batched input: add a batch dimension "
                              "(x[None]) or pick the mode for x's rank.")
        want = x.ndim - 2
        for name in ("size", "scale_factor"):
            value = getattr(self, name)
            if isinstance(value, tuple) and len(value) != want:
                raise input_error(self.api, f"{name}={value} must have one entry per spatial "
                                  f"dimension of x ({want})", x)

    def twin(self) -> nn.Module:
        return nn.Upsample(self.size, self.scale_factor, self.mode,
                           self.align_corners)
