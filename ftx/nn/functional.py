"""``ftx.nn.functional``: the layers' maths as plain functions.

Layers with parameters become functions of ``(params, x, *hyper_parameters)``
whose sizes are read off the params (``linear(params, x)``); paramless layers
become functions of ``x`` (``relu(x)``), as in ``torch.nn.functional``. Each
calls the same ``torch.nn.functional`` kernel as its layer and its
``nn.Module`` twin, after the same checks.

Example:
    >>> import torch, ftx
    >>> import ftx.nn.functional as fnn
    >>> params = {"weight": torch.eye(2), "bias": torch.ones(2)}
    >>> fnn.relu(fnn.linear(params, torch.tensor([[-3.0, 2.0]])))
    tensor([[0., 3.]])
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._internal.errors import describe, msg
from ._activations import GELU, Softplus
from ._attention import MultiheadAttention
from ._base import (
    POSITIVE,
    Params,
    ParamsError,
    check_input,
    check_key,
    check_params,
    kernel_error,
)
from ._batchnorm import BatchNorm1d, BatchNorm2d
from ._conv import Conv1d, Conv2d, Conv3d, ConvTranspose2d, Padding, conv_failure
from ._depthwise import DepthwiseConv2d, unname_nchw
from ._dropout import PROBABILITY
from ._dropout import dropout as _dropout
from ._embedding import Embedding
from ._flatten import Flatten
from ._linear import Linear
from ._losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss
from ._named import NamedTensor
from ._norm import GroupNorm, LayerNorm, RMSNorm
from ._pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from ._upsample import Upsample

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose2d",
    "cross_entropy",
    "depthwise_conv2d",
    "dropout",
    "embedding",
    "flatten",
    "gelu",
    "group_norm",
    "interpolate",
    "layer_norm",
    "linear",
    "max_pool2d",
    "mse_loss",
    "multi_head_attention",
    "relu",
    "rms_norm",
    "sigmoid",
    "silu",
    "softplus",
    "tanh",
]


def _weight_bias(api: str, params: Any, ndim: int) -> tuple[Tensor, Tensor | None]:
    if type(params) is dict:  # the common case (a defaultdict would grow on params[...])
        w = params.get("weight")
        b = params.get("bias")
        if len(params) == 1 + (b is not None) and isinstance(w, Tensor) and w.ndim == ndim:
            return w, b
    if not isinstance(params, dict):
        check_params(api, params, {})  # raises the TypeError
    paths = set(params)
    if "weight" not in paths or not paths <= {"weight", "bias"}:
        raise ParamsError(
            msg(
                api,
                "params must hold 'weight' and optionally 'bias'",
                f"missing paths {sorted({'weight'} - paths)} and extra paths "
                f"{sorted(paths - {'weight', 'bias'}, key=repr)}",
            )
        )
    w, b = params.get("weight"), params.get("bias")
    if isinstance(w, Tensor) and w.ndim == ndim:
        return w, b
    raise ValueError(
        msg(api, f"params['weight'] must be {ndim}-d", describe(params.get("weight")))
    )


def linear(params: Params, x: Tensor) -> Tensor:
    """``x @ weight.T + bias``.

    Args:
        params: ``{"weight": (out, in), "bias": (out,)}`` (bias optional).
        x: ``(*, in)``.

    Returns:
        ``(*, out)``.

    Example:
        >>> import torch
        >>> linear({"weight": torch.ones(1, 2)}, torch.tensor([1.0, 2.0]))
        tensor([3.])
    """
    w, b = _weight_bias("nn.functional.linear", params, 2)
    out, n_in = w.shape
    if not isinstance(x, Tensor) or x.dtype != w.dtype or x.ndim == 0 or x.shape[-1] != n_in:
        Linear(n_in, out, bias=b is not None)._diagnose(params, x)
    try:
        return F.linear(x, w, b)
    except RuntimeError as err:  # e.g. x on another device than the params
        Linear(n_in, out, bias=b is not None)._diagnose(params, x, err)


def conv2d(
    params: Params,
    x: Tensor,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution as ``F.conv2d``.

    Args:
        params: ``{"weight": (out, in // groups, kh, kw), "bias": (out,)}`` (bias optional).
        x: ``(N, in, H, W)`` or ``(in, H, W)``.
        stride, padding, dilation, groups: as ``nn.Conv2d``.

    Returns:
        ``(N, out, H', W')``.

    Example:
        >>> import torch
        >>> conv2d({"weight": torch.ones(1, 1, 2, 2)}, torch.ones(1, 1, 3, 3)).shape
        torch.Size([1, 1, 2, 2])
    """
    api = "nn.functional.conv2d"
    w, b = _weight_bias(api, params, 4)
    if (
        type(groups) is not int
        or not isinstance(x, Tensor)
        or x.dtype != w.dtype
        or not 3 <= x.ndim <= 4
        or x.shape[-3] != w.shape[1] * groups
    ):
        POSITIVE(api, "groups", groups)
        Conv2d(
            w.shape[1] * groups, w.shape[0], (w.shape[2], w.shape[3]), stride, padding,
            dilation, groups, b is not None,
        )._diagnose(params, x)
    try:
        return F.conv2d(x, w, b, stride, padding, dilation, groups)
    except (RuntimeError, TypeError) as err:  # bad stride/padding/dilation, or too small
        Conv2d(w.shape[1] * groups, w.shape[0], (w.shape[2], w.shape[3]), stride, padding,
               dilation, groups, b is not None)  # raises for a bad hyper-parameter
        raise conv_failure(api, x, err) from err


def depthwise_conv2d(
    params: Params,
    x: Tensor | NamedTensor,
    stride: int | tuple[int, int] = 1,
    padding: Padding = 0,
    dilation: int | tuple[int, int] = 1,
) -> Any:
    """Depthwise 2-D convolution (``groups = channels``), named or plain input.

    Args:
        params: ``{"weight": (C * m, 1, kh, kw), "bias": (C * m,)}`` (bias optional).
        x: ``(N, C, H, W)`` or ``(C, H, W)``, or a ``NamedTensor`` named
            ``N, C, H, W`` in any order.
        stride, padding, dilation: as ``nn.Conv2d``.

    Returns:
        ``(N, C * m, H', W')``; a ``NamedTensor`` named ``N, C, H, W`` for named input.

    Example:
        >>> import torch, ftx
        >>> x = ftx.nn.NamedTensor(torch.ones(3, 3, 2), ("H", "W", "C"))
        >>> depthwise_conv2d({"weight": torch.ones(4, 1, 2, 2)}, x).shape
        (4, 2, 2)
    """
    api = "nn.functional.depthwise_conv2d"
    x, names = unname_nchw(x, api)
    check_input(api, x)
    w, b = _weight_bias(api, params, 4)
    c = x.shape[-3] if x.ndim >= 3 else 1
    if w.shape[0] % c or w.shape[1] != 1:
        raise ValueError(
            msg(
                api,
                f"params['weight'] of shape (C * m, 1, kh, kw) for the input's C={c}",
                f"shape {tuple(w.shape)}",
            )
        )
    layer = DepthwiseConv2d(
        c, (w.shape[2], w.shape[3]), w.shape[0] // c, stride, padding, dilation, b is not None
    )
    y = layer(params, x)
    return y if names is None else NamedTensor(y, names)


def layer_norm(
    params: Params, x: Tensor, normalized_shape: tuple[int, ...] | None = None, eps: float = 1e-5
) -> Tensor:
    """Layer normalisation over the trailing dimensions, as ``F.layer_norm``.

    Args:
        params: ``{"weight": S, "bias": S}``, ``{"weight": S}`` or ``{}``.
        x: ``(*, *S)``.
        normalized_shape: ``S``; read from the params when omitted.
        eps: added to the variance.

    Returns:
        ``(*, *S)``.

    Example:
        >>> import torch
        >>> layer_norm({}, torch.tensor([1.0, 3.0]), (2,))
        tensor([-1.0000,  1.0000])
    """
    api = "nn.functional.layer_norm"
    if normalized_shape is None:
        w = params.get("weight") if isinstance(params, dict) else None
        if not isinstance(w, Tensor):
            raise ValueError(
                msg(api, "normalized_shape (or params with a 'weight')", describe(params))
            )
        normalized_shape = tuple(w.shape)
    has_w = isinstance(params, dict) and "weight" in params
    layer = LayerNorm(
        normalized_shape, eps, elementwise_affine=has_w, bias=has_w and "bias" in params
    )
    return layer(params, x)


def dropout(x: Tensor, p: float = 0.5, key: Tensor | None = None) -> Tensor:
    """``x * mask / (1 - p)`` with a mask from ``key``; identity without a key.

    Example:
        >>> import torch
        >>> dropout(torch.ones(2), 0.5)
        tensor([1., 1.])
    """
    api = "nn.functional.dropout"
    if type(p) is not float or not 0.0 <= p <= 1.0:
        p = PROBABILITY(api, "p", p)
    if type(x) is not Tensor or not x.is_floating_point():
        check_input(api, x)
    if key is None:
        return x
    if p == 0.0:
        check_key(api, key)
        return x
    return _dropout(x, p, key, api)


def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    ceil_mode: bool = False,
) -> Tensor:
    """Max pooling of ``x: (N, C, H, W)``, as ``F.max_pool2d``.

    Example:
        >>> import torch
        >>> max_pool2d(torch.arange(4.0).reshape(1, 2, 2), 2)
        tensor([[[3.]]])
    """
    return MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode)({}, x)


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """Average pooling of ``x: (N, C, H, W)``, as ``F.avg_pool2d``.

    Example:
        >>> import torch
        >>> avg_pool2d(torch.arange(4.0).reshape(1, 2, 2), 2)
        tensor([[[1.5000]]])
    """
    layer = AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return layer({}, x)


def flatten(x: Tensor, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    """``torch.flatten`` with the layer's checks.

    Example:
        >>> import torch
        >>> flatten(torch.zeros(2, 3, 4)).shape
        torch.Size([2, 12])
    """
    return Flatten(start_dim, end_dim)({}, x)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``.

    Example:
        >>> import torch
        >>> relu(torch.tensor([-1.0, 1.0]))
        tensor([0., 1.])
    """
    if type(x) is not Tensor or not x.is_floating_point():
        check_input("nn.functional.relu", x)
    try:
        return torch.relu(x)
    except (RuntimeError, NotImplementedError) as err:
        kernel_error("nn.functional.relu", x, err)


def tanh(x: Tensor) -> Tensor:
    """``tanh(x)``.

    Example:
        >>> import torch
        >>> tanh(torch.zeros(1))
        tensor([0.])
    """
    if type(x) is not Tensor or not x.is_floating_point():
        check_input("nn.functional.tanh", x)
    try:
        return torch.tanh(x)
    except (RuntimeError, NotImplementedError) as err:
        kernel_error("nn.functional.tanh", x, err)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``.

    Example:
        >>> import torch
        >>> sigmoid(torch.zeros(1))
        tensor([0.5000])
    """
    if type(x) is not Tensor or not x.is_floating_point():
        check_input("nn.functional.sigmoid", x)
    try:
        return torch.sigmoid(x)
    except (RuntimeError, NotImplementedError) as err:
        kernel_error("nn.functional.sigmoid", x, err)


def silu(x: Tensor) -> Tensor:
    """``x * sigmoid(x)``.

    Example:
        >>> import torch
        >>> silu(torch.zeros(1))
        tensor([0.])
    """
    if type(x) is not Tensor or not x.is_floating_point():
        check_input("nn.functional.silu", x)
    try:
        return F.silu(x)
    except (RuntimeError, NotImplementedError) as err:
        kernel_error("nn.functional.silu", x, err)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit (``"none"`` or ``"tanh"``).

    Example:
        >>> import torch
        >>> gelu(torch.zeros(1))
        tensor([0.])
    """
    return GELU(approximate)({}, x)


def softplus(x: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``.

    Example:
        >>> import torch
        >>> softplus(torch.zeros(1))
        tensor([0.6931])
    """
    return Softplus(beta, threshold)({}, x)


def _weight_of(api: str, params: Any, ndim: int | None = None) -> Tensor:
    w = params.get("weight") if isinstance(params, dict) else None
    if not isinstance(w, Tensor) or (ndim is not None and w.ndim != ndim):
        raise ValueError(msg(api, "params with a 'weight' tensor" + (
            f" of {ndim} dimensions" if ndim else ""), describe(params),
            "Pass the layer's params (layer.init(key) or ftx.nn.params_of(module))."))
    return w


def embedding(params: Params, idx: Tensor, padding_idx: int | None = None,
              scale_grad_by_freq: bool = False) -> Tensor:
    """Look up rows of ``params["weight"] (num_embeddings, dim)``, as ``F.embedding``.

    ``padding_idx``'s row gets no gradient. Returns ``(*idx.shape, dim)``.

    Example:
        >>> import torch
        >>> embedding({"weight": torch.eye(3)}, torch.tensor([2, 0]))
        tensor([[0., 0., 1.],
                [1., 0., 0.]])
    """
    w = _weight_of("nn.functional.embedding", params, 2)
    layer = Embedding(w.shape[0], w.shape[1], padding_idx, None, scale_grad_by_freq)
    return layer(params, idx)


def rms_norm(params: Params, x: Tensor, normalized_shape: tuple[int, ...] | None = None,
             eps: float | None = None) -> Tensor:
    """RMS normalisation over the trailing dimensions, as ``F.rms_norm``.

    Args:
        params: ``{"weight": S}`` or ``{}``.
        x: ``(*, *S)``.
        normalized_shape: ``S``; read from the params when omitted.
        eps: added to the mean square (``None``: the dtype's machine epsilon).

    Example:
        >>> import torch
        >>> rms_norm({}, torch.tensor([3.0, 4.0]), (2,)).round(decimals=4)
        tensor([0.8485, 1.1314])
    """
    if normalized_shape is None:
        normalized_shape = tuple(_weight_of("nn.functional.rms_norm", params).shape)
    has_w = isinstance(params, dict) and "weight" in params
    return RMSNorm(normalized_shape, eps, elementwise_affine=has_w)(params, x)


def group_norm(params: Params, x: Tensor, num_groups: int, eps: float = 1e-5) -> Tensor:
    """Group normalisation of ``x: (N, C, *)``, as ``F.group_norm``.

    Args:
        params: ``{"weight": (C,), "bias": (C,)}`` or ``{}``.
        num_groups: divides ``C``.

    Example:
        >>> import torch
        >>> group_norm({}, torch.tensor([[[1.0], [3.0]]]), 1).flatten()
        tensor([-1.0000,  1.0000])
    """
    affine = isinstance(params, dict) and bool(params)
    c = x.shape[1] if isinstance(x, Tensor) and x.ndim >= 2 else 0
    if affine:
        c = _weight_of("nn.functional.group_norm", params, 1).shape[0]
    if c < 1:
        raise ValueError(msg("nn.functional.group_norm", "input x of shape (N, C, *)",
                             describe(x), "Put the batch first and the channels second."))
    return GroupNorm(num_groups, c, eps, affine)(params, x)


def multi_head_attention(
    params: Params,
    query: Tensor,
    key_input: Tensor | None = None,
    value: Tensor | None = None,
    *,
    num_heads: int,
    batch_first: bool = False,
    key_padding_mask: Tensor | None = None,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    need_weights: bool = False,
    average_attn_weights: bool = True,
    dropout_p: float = 0.0,
    key: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """``ftx.nn.MultiheadAttention``'s maths with ``embed_dim`` read off the params
    (``in_proj_weight (3E, E)``); returns ``(output, weights or None)``.

    Example:
        >>> import torch, ftx
        >>> p = ftx.nn.MultiheadAttention(4, 2).init(ftx.random.key(0))
        >>> out, _ = multi_head_attention(p, torch.randn(3, 4), num_heads=2, is_causal=True)
        >>> out.shape
        torch.Size([3, 4])
    """
    api = "nn.functional.multi_head_attention"
    w = params.get("in_proj_weight") if isinstance(params, dict) else None
    if not isinstance(w, Tensor) or w.ndim != 2:
        raise ValueError(msg(api, "params with an 'in_proj_weight' tensor (3E, E)",
                             describe(params), "Pass ftx.nn.MultiheadAttention's params."))
    layer = MultiheadAttention(w.shape[1], num_heads, dropout_p,
                               "in_proj_bias" in params, batch_first=batch_first)
    return layer(params, query, key_input, value, key_padding_mask=key_padding_mask,
                 need_weights=need_weights, attn_mask=attn_mask,
                 average_attn_weights=average_attn_weights, is_causal=is_causal, key=key)


# ---------------------------------------------------------------------------
# Conv1d/Conv3d/ConvTranspose2d, adaptive pooling, interpolation, batch norm: the layers'
# maths with the sizes read off the params (each call builds the small frozen layer).


def _conv_nd(api: str, cls: Any, params: Params, x: Tensor, n: int, **hyper: Any) -> Tensor:
    w, b = _weight_bias(api, params, n + 2)
    groups = hyper.get("groups", 1)
    POSITIVE(api, "groups", groups)
    kernel: Any = tuple(w.shape[2:])
    if cls is ConvTranspose2d:
        layer = cls(w.shape[0], w.shape[1] * groups, kernel, bias=b is not None, **hyper)
    else:
        layer = cls(w.shape[1] * groups, w.shape[0], kernel, bias=b is not None, **hyper)
    out: Tensor = layer(params, x)
    return out


def conv1d(params: Params, x: Tensor, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """1-D convolution as ``F.conv1d`` (``ftx.nn.Conv1d``'s maths and checks).

    Args:
        params: ``{"weight": (out, in // groups, k), "bias": (out,)}`` (bias optional).
        x: ``(N, in, L)`` or ``(in, L)``.

    Example:
        >>> import torch
        >>> conv1d({"weight": torch.ones(1, 1, 2)}, torch.arange(4.0).reshape(1, 4))
        tensor([[1., 3., 5.]])
    """
    return _conv_nd("nn.functional.conv1d", Conv1d, params, x, 1, stride=stride,
                    padding=padding, dilation=dilation, groups=groups)


def conv3d(params: Params, x: Tensor, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """3-D convolution as ``F.conv3d`` (``ftx.nn.Conv3d``'s maths and checks).

    Example:
        >>> import torch
        >>> conv3d({"weight": torch.ones(2, 1, 2, 2, 2)}, torch.ones(1, 1, 3, 3, 3)).shape
        torch.Size([1, 2, 2, 2, 2])
    """
    return _conv_nd("nn.functional.conv3d", Conv3d, params, x, 3, stride=stride,
                    padding=padding, dilation=dilation, groups=groups)


def conv_transpose2d(params: Params, x: Tensor, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> Tensor:
    """2-D transposed convolution as ``F.conv_transpose2d`` (``ConvTranspose2d``'s maths).

    Args:
        params: ``{"weight": (in, out // groups, kh, kw), "bias": (out,)}`` (bias optional).
        x: ``(N, in, H, W)`` or ``(in, H, W)``.

    Example:
        >>> import torch
        >>> conv_transpose2d({"weight": torch.ones(1, 1, 2, 2)}, torch.ones(1, 1, 2, 2),
        ...                  stride=2).shape
        torch.Size([1, 1, 4, 4])
    """
    return _conv_nd("nn.functional.conv_transpose2d", ConvTranspose2d, params, x, 2,
                    stride=stride, padding=padding, output_padding=output_padding,
                    groups=groups, dilation=dilation)


def adaptive_avg_pool2d(x: Tensor, output_size: Any) -> Tensor:
    """Average pooling to ``output_size``, as ``F.adaptive_avg_pool2d``.

    Example:
        >>> import torch
        >>> adaptive_avg_pool2d(torch.arange(4.0).reshape(1, 2, 2), 1)
        tensor([[[1.5000]]])
    """
    return AdaptiveAvgPool2d(output_size)({}, x)


def interpolate(x: Tensor, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                align_corners: bool | None = None) -> Tensor:
    """Resize ``x: (N, C, *spatial)``, as ``F.interpolate`` (``ftx.nn.Upsample``'s checks).

    Example:
        >>> import torch
        >>> interpolate(torch.tensor([[[1.0, 2.0]]]), scale_factor=2)
        tensor([[[1., 1., 2., 2.]]])
    """
    return Upsample(size, scale_factor, mode, align_corners)({}, x)


def batch_norm(params: Params, x: Tensor, state: Params | None = None, *,
               training: bool = True, momentum: float | None = 0.1,
               eps: float = 1e-5) -> Any:
    """Batch normalisation of ``x: (N, C, *)`` with explicit state (``BatchNorm1d/2d``).

    Args:
        params: ``{"weight": (C,), "bias": (C,)}`` or ``{}`` (no affine).
        x: ``(N, C)``, ``(N, C, L)`` or ``(N, C, H, W)``.
        state: ``{"running_mean", "running_var", "num_batches_tracked"}`` or ``None``.
        training, momentum, eps: as the layers.

    Returns:
        ``y`` without ``state``; ``(y, new_state)`` with it.

    Example:
        >>> import torch
        >>> batch_norm({}, torch.tensor([[1.0], [3.0]]), eps=1e-12).flatten()
        tensor([-1.,  1.])
    """
    api = "nn.functional.batch_norm"
    check_input(api, x)
    if x.ndim < 2:
        raise ValueError(msg(api, "input x of shape (N, C, *)", f"input of shape "
                             f"{tuple(x.shape)}", "Put the batch first and the channels "
                             "second."))
    cls = BatchNorm2d if x.ndim == 4 else BatchNorm1d
    affine = isinstance(params, dict) and bool(params)
    tracked = isinstance(state, dict) and bool(state)
    layer = cls(x.shape[1], eps, momentum, affine, tracked)
    return layer(params, x, state=state, training=training)
