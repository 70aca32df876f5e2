"""``BatchNorm1d`` and ``BatchNorm2d``: batch normalisation with explicit running statistics.

The layers with state. Params are ``weight`` and ``bias`` (when ``affine``); the
state is a separate pytree under the twin's buffer names ``running_mean``,
``running_var`` and ``num_batches_tracked`` (when ``track_running_stats``), so params
and state together are the twin's ``state_dict()``. The call is pure:

* ``y, new_state = bn(params, x, state=state, training=True)`` normalises with the
  batch's statistics and returns the updated running statistics (``momentum``, or the
  cumulative average when ``momentum=None``), as ``nn.BatchNorm*`` in training mode;
* ``y, state = bn(params, x, state=state, training=False)`` normalises with the
  running statistics (evaluation mode) and returns the state unchanged;
* ``y = bn(params, x)`` (no state) normalises with the batch's statistics and keeps no
  running statistics.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_dtypes,
    check_fields,
    check_init,
    check_params,
    input_error,
    optional,
    real,
)

__all__ = ["BatchNorm1d", "BatchNorm2d"]

_STATS = ("running_mean", "running_var", "num_batches_tracked")


class _BatchNorm(Layer):
    _RANKS: ClassVar[tuple[int, ...]]
    _SHAPES: ClassVar[str]
    _TWIN: ClassVar[type[nn.Module]]
    num_features: int
    eps: float
    momentum: float | None
    affine: bool
    track_running_stats: bool

    def __post_init__(self) -> None:
        check_fields(self, num_features=POSITIVE, eps=real(0.0, low_open=True),
                     momentum=optional(real(0.0, 1.0)), affine=FLAG,
                     track_running_stats=FLAG)

    # -- shapes and initial values ------------------------------------------------------

    def param_shapes(self) -> dict[str, Shape]:
        c = self.num_features
        return {"weight": (c,), "bias": (c,)} if self.affine else {}

    def state_shapes(self) -> dict[str, Shape]:
        c = self.num_features
        if not self.track_running_stats:
            return {}
        return {"running_mean": (c,), "running_var": (c,), "num_batches_tracked": ()}

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """``weight`` ones and ``bias`` zeros (torch's); ``{}`` unless ``affine``."""
        check_init(self.api, key, dtype, device)
        if not self.affine:
            return {}
        c = self.num_features
        return {"weight": torch.ones(c, dtype=dtype, device=device),
                "bias": torch.zeros(c, dtype=dtype, device=device)}

    def init_state(self, *, dtype: torch.dtype = torch.float32, device: Any = None) -> Params:
        """``running_mean`` zeros, ``running_var`` ones, ``num_batches_tracked`` 0 (int64);
        ``{}`` unless ``track_running_stats``."""
        super().init_state(dtype=dtype, device=device)
        if not self.track_running_stats:
            return {}
        c = self.num_features
        return {"running_mean": torch.zeros(c, dtype=dtype, device=device),
                "running_var": torch.ones(c, dtype=dtype, device=device),
                "num_batches_tracked": torch.zeros((), dtype=torch.int64, device=device)}

    def twin(self) -> nn.Module:
        return self._TWIN(self.num_features, eps=self.eps, momentum=self.momentum,
                          affine=self.affine, track_running_stats=self.track_running_stats)

    # -- the call -----------------------------------------------------------------------

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None,
                 state: Params | None = None, training: bool = True) -> Any:
        """``x: (N, C, *) -> y`` without ``state``; ``(y, new_state)`` with it."""
        if training is not True and training is not False:
            raise TypeError(msg(self.api, "training must be True or False",
                                describe(training)))
        try:
            w = params["weight"] if self.affine else None
            b = params["bias"] if self.affine else None
            ok = (len(params) == 2 * self.affine and x.ndim in self._RANKS
                  and x.shape[1] == self.num_features
                  and (w is None or (x.dtype == w.dtype and w.shape == x.shape[1:2]
                                     and b is not None and b.shape == w.shape)))
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        batch_stats = training or not self.track_running_stats
        if batch_stats and x.numel() <= x.shape[1]:
            raise input_error(self.api, "more than one value per channel when normalising "
                              "with the batch's statistics", x,
                              "Use a batch of 2 or more (or training=False with state).")
        if state is None:
            if not batch_stats:
                raise ValueError(msg(self.api, "state= (the running statistics) with "
                                     "training=False", "state=None",
                                     "Pass state=layer.init_state() or the state returned "
                                     "by training calls."))
            return self._normalise(params, x, None, None, True, w, b)
        self._check_state(state, x)
        if not self.track_running_stats:
            return self._normalise(params, x, None, None, True, w, b), state
        if not training:
            y = self._normalise(params, x, state["running_mean"], state["running_var"], False,
                                w, b)
            return y, state
        y = self._normalise(params, x, None, None, True, w, b)
        return y, self._update(state, x)

    def _normalise(self, params: Params, x: Tensor, mean: Tensor | None, var: Tensor | None,
                   training: bool, w: Tensor | None, b: Tensor | None) -> Tensor:
        try:
            return F.batch_norm(x, mean, var, w, b, training, 0.0, self.eps)
        except (RuntimeError, ValueError) as err:
            return self._diagnose(params, x, err)

    def _update(self, state: Params, x: Tensor) -> Params:
        """The new running statistics (torch's formulas; no gradient flows into them)."""
        xd = x.detach()
        dims = [0, *range(2, x.ndim)]
        mean = xd.mean(dims)
        var = xd.var(dims, correction=1)
        count = state["num_batches_tracked"] + 1
        factor: Any = (1.0 / count.to(x.dtype) if self.momentum is None
                       else self.momentum)
        return {
            "running_mean": factor * mean + (1 - factor) * state["running_mean"],
            "running_var": factor * var + (1 - factor) * state["running_var"],
            "num_batches_tracked": count,
        }

    # -- checks -------------------------------------------------------------------------

    def _check_state(self, state: Any, x: Tensor) -> None:
        try:
            if self.track_running_stats:
                rm, rv = state["running_mean"], state["running_var"]
                nbt = state["num_batches_tracked"]
                ok = (type(state) is dict and len(state) == 3
                      and rm.dtype == rv.dtype == x.dtype and nbt.dtype == torch.int64
                      and rm.shape == rv.shape == x.shape[1:2] and nbt.shape == ()
                      and rm.device == rv.device == nbt.device == x.device)
            else:
                ok = type(state) is dict and not state
        except (KeyError, TypeError, AttributeError):
            ok = False
        if ok:
            return
        check_params(self.api, state, self.state_shapes(), what="state")
        for k in _STATS[:2]:
            t = state[k]
            if t.dtype != x.dtype:
                raise TypeError(msg(self.api, "input and state must share one dtype",
                                    f"input {x.dtype} and state[{k!r}] {t.dtype}",
                                    "Cast one side, e.g. init_state(dtype=x.dtype)."))
            if t.device != x.device:
                raise ValueError(msg(self.api, "input and state must be on one device",
                                     f"input on {x.device} and state[{k!r}] on {t.device}",
                                     "Move one side, e.g. init_state(device=x.device)."))
        nbt = state["num_batches_tracked"]
        raise TypeError(msg(self.api, "state['num_batches_tracked'] must be an int64 tensor "
                            "on the input's device", f"{describe(nbt)} on {nbt.device}",
                            "Use layer.init_state()."))

    def _check_input(self, x: Tensor) -> None:
        if x.ndim not in self._RANKS or x.shape[1] != self.num_features:
            raise input_error(self.api, f"input x must have shape {self._SHAPES} with C = "
                              f"{self.num_features}", x,
                              "Batch normalisation needs a batch dimension first.")

    def _diagnose(self, params: Any, x: Any, err: Exception | None = None) -> NoReturn:
        check_params(self.api, params, self.param_shapes())
        check_dtypes(self.api, params, x)
        self._check_input(x)
        super()._diagnose(params, x, err)


@dataclasses.dataclass(frozen=True)
class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)``, the twin of ``nn.BatchNorm1d``.

    Params ``weight (C,)`` ones and ``bias (C,)`` zeros (``affine``); state
    ``running_mean (C,)``, ``running_var (C,)``, ``num_batches_tracked ()`` int64
    (``track_running_stats``). See the module docstring for the three ways to call it.

    Args:
        num_features: channels ``C``.
        eps: added to the variance, ``> 0`` (torch refuses 0 in training).
        momentum: weight of the new batch in the running statistics; ``None`` for the
            cumulative average ``1 / num_batches_tracked``.
        affine: learn ``weight`` and ``bias``.
        track_running_stats: keep running statistics (state); without them the batch's
            statistics are used in training and evaluation alike (as torch).

    Example:
        >>> import torch, ftx
        >>> bn = ftx.nn.BatchNorm1d(3)
        >>> params, state = bn.init(ftx.random.key(0)), bn.init_state()
        >>> y, state = bn(params, torch.randn(8, 3), state=state, training=True)
        >>> int(state["num_batches_tracked"])
        1
        >>> y, _ = bn(params, torch.randn(2, 3), state=state, training=False)
    """

    _RANKS: ClassVar[tuple[int, ...]] = (2, 3)
    _SHAPES: ClassVar[str] = "(N, C) or (N, C, L)"
    _TWIN: ClassVar[type[nn.Module]] = nn.BatchNorm1d
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True


@dataclasses.dataclass(frozen=True)
class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)``, the twin of ``nn.BatchNorm2d``.

    Params, state and arguments as :class:`BatchNorm1d`.

    Example:
        >>> import torch, ftx
        >>> bn = ftx.nn.BatchNorm2d(3, momentum=None)
        >>> y, state = bn(bn.init(ftx.random.key(0)), torch.randn(4, 3, 5, 5),
        ...               state=bn.init_state(), training=True)
        >>> y.shape, sorted(state)
        (torch.Size([4, 3, 5, 5]), ['num_batches_tracked', 'running_mean', 'running_var'])
    """

    _RANKS: ClassVar[tuple[int, ...]] = (4,)
    _SHAPES: ClassVar[str] = "(N, C, H, W)"
    _TWIN: ClassVar[type[nn.Module]] = nn.BatchNorm2d
    num_features: int
    eps: float = 1e-5
    momentum: float | None = 0.1
    affine: bool = True
    track_running_stats: bool = True
