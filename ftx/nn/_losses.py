"""Losses: ``mse_loss``, ``cross_entropy``, ``binary_cross_entropy_with_logits``.

Plain functions of ``(input, target)`` with ``torch.nn.functional``'s maths and
arguments, plus the contract's checks: inputs are floating tensors, shapes must
match exactly (no silent broadcasting), dtypes must agree, ``reduction``,
``label_smoothing``, ``ignore_index`` and ``pos_weight`` must be valid, and class
indices out of range raise ``ValueError`` (on CPU; on CUDA torch's kernel asserts
on the device, as ``F.cross_entropy`` does).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._internal.errors import describe, msg
from ._base import INT, real

__all__ = ["binary_cross_entropy_with_logits", "cross_entropy", "mse_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(api: str, input: Tensor, target: Tensor, reduction: str) -> None:
    for name, t in (("input", input), ("target", target)):
        if not isinstance(t, Tensor):
            raise TypeError(msg(api, f"{name} must be a tensor", describe(t)))
    if type(reduction) is not str:
        raise TypeError(msg(api, f"reduction must be one of {_REDUCTIONS}", describe(reduction)))
    if reduction not in _REDUCTIONS:
        raise ValueError(msg(api, f"reduction must be one of {_REDUCTIONS}", repr(reduction)))
    if not input.is_floating_point():
        raise TypeError(msg(api, "input must be a floating tensor", f"dtype {input.dtype}"))


def _check_same(api: str, input: Tensor, target: Tensor) -> None:
    if target.dtype != input.dtype:
        raise TypeError(
            msg(
                api,
                "input and target must share one dtype",
                f"input {input.dtype} and target {target.dtype}",
                "Cast the target: target.to(input.dtype).",
            )
        )
    if target.shape != input.shape:
        raise ValueError(
            msg(
                api,
                "input and target must have the same shape",
                f"input {tuple(input.shape)} and target {tuple(target.shape)}",
                "Reshape the target; ftx does not broadcast losses silently.",
            )
        )


_SMOOTHING = real(0.0, 1.0)


def _check_pos_weight(api: str, input: Tensor, pos_weight: Any) -> None:
    if not isinstance(pos_weight, Tensor):
        raise TypeError(msg(api, "pos_weight must be a tensor or None", describe(pos_weight)))
    if pos_weight.dtype != input.dtype:
        raise TypeError(
            msg(api, "pos_weight must have input's dtype",
                f"pos_weight {pos_weight.dtype} and input {input.dtype}")
        )
    if pos_weight.layout is not torch.strided:
        raise TypeError(msg(api, "pos_weight must be a dense (strided) tensor",
                            f"layout {pos_weight.layout}", "Convert it: pos_weight.to_dense()."))
    pw, shape = tuple(pos_weight.shape), tuple(input.shape)
    fits = len(pw) <= len(shape) and all(
        a in (1, b) for a, b in zip(reversed(pw), reversed(shape))
    )
    if not fits:
        raise ValueError(
            msg(api, f"pos_weight must broadcast to input's shape {tuple(input.shape)}",
                f"shape {tuple(pos_weight.shape)}",
                "Pass one weight per class of the last dimension, shape (C,).")
        )


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target) ** 2``, reduced as ``F.mse_loss``.

    Args:
        input: ``(*)`` predictions.
        target: ``(*)``, the same shape and dtype.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.

    Returns:
        ``()`` (or ``(*)`` with ``"none"``).

    Example:
        >>> import torch, ftx
        >>> ftx.nn.mse_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.0, 1.0]))
        tensor(2.5000)
    """
    api = "nn.mse_loss"
    if (
        type(input) is not Tensor
        or type(target) is not Tensor
        or input.shape != target.shape
        or input.dtype != target.dtype
        or type(reduction) is not str
        or reduction not in _REDUCTIONS
        or not input.is_floating_point()
    ):
        _check_pair(api, input, target, reduction)
        _check_same(api, input, target)
    return F.mse_loss(input, target, reduction=reduction)


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Sigmoid + binary cross-entropy in one stable step, as the ``F`` function of that name.

    Args:
        input: ``(*)`` logits.
        target: ``(*)`` probabilities in ``[0, 1]``, same shape and dtype.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        pos_weight: optional weight of positives with ``input``'s dtype, broadcast to
            ``input``'s shape without changing it (typically ``(C,)`` for the last dim).

    Returns:
        ``()`` (or ``(*)`` with ``"none"``).

    Example:
        >>> import torch, ftx
        >>> ftx.nn.binary_cross_entropy_with_logits(torch.zeros(2), torch.ones(2))
        tensor(0.6931)
    """
    api = "nn.binary_cross_entropy_with_logits"
    if (
        type(input) is not Tensor
        or type(target) is not Tensor
        or input.shape != target.shape
        or input.dtype != target.dtype
        or type(reduction) is not str
        or reduction not in _REDUCTIONS
        or not input.is_floating_point()
    ):
        _check_pair(api, input, target, reduction)
        _check_same(api, input, target)
    if pos_weight is not None:
        _check_pos_weight(api, input, pos_weight)
        if pos_weight.requires_grad:  # torch's kernel has no gradient for pos_weight
            return _bce_logits_weighted(input, target, reduction, pos_weight)
    try:
        return F.binary_cross_entropy_with_logits(
            input, target, reduction=reduction, pos_weight=pos_weight
        )
    except RuntimeError as err:  # e.g. pos_weight on another device than input
        devices = {t.device for t in (input, target, pos_weight) if t is not None}
        raise ValueError(msg(
            api, "input, target and pos_weight must be tensors on one device the kernel "
            "accepts", f"devices {sorted(map(str, devices))} (torch: {str(err).splitlines()[0]})",
            "Move them to one device.",
        )) from err


def _bce_logits_weighted(
    input: Tensor, target: Tensor, reduction: str, pos_weight: Tensor
) -> Tensor:
    """torch's formula for ``pos_weight``, in differentiable ops (its kernel has no grad)."""
    log_weight = (pos_weight - 1) * target + 1
    loss = (1 - target) * input + log_weight * (
        torch.log1p(torch.exp(-input.abs())) + torch.clamp(-input, min=0)
    )
    if reduction == "mean":
        return loss.mean()
    return loss.sum() if reduction == "sum" else loss


def cross_entropy(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
) -> Tensor:
    """Softmax cross-entropy from logits, as ``F.cross_entropy``.

    Args:
        input: ``(N, C)`` or ``(C,)`` logits (or ``(N, C, d1, ...)``).
        target: class indices ``(N,)`` / ``()`` (integer dtype), or class
            probabilities with ``input``'s shape and dtype.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        label_smoothing: in ``[0, 1]``.
        ignore_index: class index that contributes nothing (index targets only).

    Returns:
        ``()`` (or ``(N,)`` with ``"none"``).

    Example:
        >>> import torch, ftx
        >>> ftx.nn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 3]))
        tensor(1.3863)
    """
    api = "nn.cross_entropy"
    if (
        type(input) is not Tensor
        or type(target) is not Tensor
        or type(reduction) is not str
        or reduction not in _REDUCTIONS
        or not input.is_floating_point()
    ):
        _check_pair(api, input, target, reduction)
    if type(label_smoothing) is not float or label_smoothing != 0.0:
        label_smoothing = _SMOOTHING(api, "label_smoothing", label_smoothing)
    if type(ignore_index) is not int or ignore_index != -100:
        ignore_index = INT(api, "ignore_index", ignore_index)
    if input.ndim == 0:
        raise ValueError(msg(api, "input must have a class dimension", "a 0-d input"))
    if target.is_floating_point():
        _check_same(api, input, target)
    else:
        class_dim = 1 if input.ndim >= 2 else 0
        want = input.shape[:class_dim] + input.shape[class_dim + 1 :]
        if target.shape != want or target.dtype not in (torch.int64, torch.int32, torch.uint8):
            if target.dtype == torch.bool or target.is_complex():
                raise TypeError(
                    msg(api, "target must hold integer class indices", f"dtype {target.dtype}")
                )
            if target.shape != want:
                raise ValueError(
                    msg(
                        api,
                        f"class-index target of shape {tuple(want)} for input "
                        f"{tuple(input.shape)}",
                        f"target {tuple(target.shape)}",
                    )
                )
            target = target.long()
    try:
        return F.cross_entropy(
            input,
            target,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )
    except IndexError as err:  # a class index out of range (CPU kernels)
        n = input.shape[1 if input.ndim >= 2 else 0]
        raise ValueError(
            msg(
                api,
                f"class indices in target must be in [0, {n}) (input has {n} classes) or "
                f"equal ignore_index={ignore_index}",
                f"an index out of range (torch: {str(err).splitlines()[0]})",
                "Check the labels, or build the model with as many classes as the labels.",
            )
        ) from err
