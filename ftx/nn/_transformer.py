"""``TransformerEncoderLayer`` and ``TransformerDecoderLayer``: the twins of the
``torch.nn`` layers of those names (attention + feed-forward, post- or pre-norm)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._attention import MultiheadAttention
from ._base import (
    FLAG,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    check_key,
    check_params,
    real,
    split_key,
)
from ._dropout import PROBABILITY
from ._dropout import dropout as _dropout
from ._linear import Linear
from ._norm import LayerNorm

__all__ = ["TransformerDecoderLayer", "TransformerEncoderLayer"]

Activation = str | Callable[..., Any]


def _activation(api: str, name: str, value: Any) -> Activation:
    """``"relu"``, ``"gelu"``, an ftx layer (``ftx.nn.GELU("tanh")``) or a function of x."""
    if isinstance(value, str):
        if value not in ("relu", "gelu"):
            raise ValueError(msg(api, f"{name} must be 'relu', 'gelu' or a callable",
                                 repr(value), "Pass a function of x for anything else."))
        return value
    if isinstance(value, type) or not callable(value):
        raise TypeError(msg(api, f"{name} must be 'relu', 'gelu' or a callable",
                            describe(value), "E.g. activation='gelu' or ftx.nn.GELU('tanh')."))
    out: Activation = value
    return out


def _act_fn(act: Activation) -> Callable[[Tensor], Tensor]:
    if act == "relu":
        return F.relu
    if act == "gelu":
        return F.gelu
    if isinstance(act, Layer):
        return lambda x: act({}, x)
    return act  # type: ignore[return-value]


def _act_twin(act: Activation) -> Any:
    if isinstance(act, Layer):
        return act.twin()
    return act


_MASK_PREFIX = {
    ("TransformerEncoderLayer", "self_attn"): "src",
    ("TransformerDecoderLayer", "self_attn"): "tgt",
    ("TransformerDecoderLayer", "multihead_attn"): "memory",
}


def _drop(x: Tensor, p: float, key: Tensor | None, api: str) -> Tensor:
    return x if key is None or p == 0.0 else _dropout(x, p, key, api)


@dataclasses.dataclass(frozen=True)
class _Block(Layer):
    """Shared plumbing of the two transformer layers: their hyper-parameters (torch's
    names and defaults), sub-layers, twin and residual sub-layer step."""

    d_model: int
    nhead: int
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: Activation = "relu"
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True

    _SIZES: ClassVar[tuple[int, int]]  # (attention sub-layers, norms)
    _TWIN: ClassVar[Callable[..., nn.Module]]

    def __post_init__(self) -> None:
        self._build(*self._SIZES)

    def twin(self) -> nn.Module:
        return self._TWIN(
            self.d_model, self.nhead, self.dim_feedforward, self.dropout,
            _act_twin(self.activation), self.layer_norm_eps, self.batch_first,
            self.norm_first, self.bias)

    def _residual(self, i: int, params: Params, x: Tensor, name: str,
                  sub: Callable[[Tensor], Tensor], where: list[str]) -> Tensor:
        """One residual sub-layer with norm ``i``: ``x + sub(norm_i(x))`` (``norm_first``)
        or ``norm_i(x + sub(x))``; ``where[0]`` names the step running (for errors)."""
        if self.norm_first:
            where[0] = f"norm{i}"
            h = self._norm(i, params, x)
            where[0] = name
            return x + sub(h)
        where[0] = name
        y = x + sub(x)
        where[0] = f"norm{i}"
        return self._norm(i, params, y)

    def _build(self, n_attn: int, n_norm: int) -> None:
        check_fields(self, d_model=POSITIVE, nhead=POSITIVE, dim_feedforward=POSITIVE,
                     dropout=PROBABILITY, activation=_activation, layer_norm_eps=real(0.0),
                     batch_first=FLAG, norm_first=FLAG, bias=FLAG)
        if self.d_model % self.nhead:
            raise ValueError(msg(self.api, "nhead must divide d_model",
                                 f"d_model={self.d_model} and nhead={self.nhead}",
                                 "Pick a divisor of d_model."))
        attn = MultiheadAttention(self.d_model, self.nhead, self.dropout, self.bias,
                                  batch_first=self.batch_first)
        subs: dict[str, Layer] = {}
        for name in ("self_attn", "multihead_attn")[:n_attn]:
            subs[name] = attn
        subs["linear1"] = Linear(self.d_model, self.dim_feedforward, self.bias)
        subs["linear2"] = Linear(self.dim_feedforward, self.d_model, self.bias)
        for i in range(1, n_norm + 1):
            subs[f"norm{i}"] = LayerNorm(self.d_model, self.layer_norm_eps, bias=self.bias)
        object.__setattr__(self, "_subs", subs)
        object.__setattr__(self, "_act", _act_fn(self.activation))

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Each sub-layer drawn as torch draws it (attention: Xavier-uniform in-projection,
        zero biases; linears: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``; norms: ones, zeros),
        one key per sub-layer."""
        check_init(self.api, key, dtype, device)
        subs: dict[str, Layer] = self._subs  # type: ignore[attr-defined]
        keys = split_key(key, len(subs))
        return {name: layer.init(keys[i], dtype=dtype, device=device)
                for i, (name, layer) in enumerate(subs.items())}

    def param_shapes(self) -> dict[str, Shape]:
        subs: dict[str, Layer] = self._subs  # type: ignore[attr-defined]
        return {f"{name}.{p}": s for name, layer in subs.items()
                for p, s in layer.param_shapes().items()}

    def _check_params(self, params: Any) -> None:
        try:
            ok = params.keys() == self._subs.keys()  # type: ignore[attr-defined]
        except AttributeError:
            ok = False
        if not ok:
            check_params(self.api, params, self.param_shapes())

    def _ff(self, params: Params, x: Tensor, k1: Tensor | None, k2: Tensor | None) -> Tensor:
        subs = self._subs  # type: ignore[attr-defined]
        y = _drop(self._act(subs["linear1"](params["linear1"], x)),  # type: ignore[attr-defined]
                  self.dropout, k1, self.api)
        return _drop(subs["linear2"](params["linear2"], y), self.dropout, k2, self.api)

    def _attn(self, name: str, params: Params, x: Tensor, mem: Tensor, mask: Any, kpm: Any,
              causal: bool, k_attn: Tensor | None, k_out: Tensor | None) -> Tensor:
        attn: MultiheadAttention = self._subs[name]  # type: ignore[attr-defined]
        y = attn(params[name], x, mem, mem, attn_mask=mask, key_padding_mask=kpm,
                 is_causal=causal, key=k_attn)[0]
        return _drop(y, self.dropout, k_out, self.api)

    def _norm(self, i: int, params: Params, x: Tensor) -> Tensor:
        out: Tensor = self._subs[f"norm{i}"](params[f"norm{i}"], x)  # type: ignore[attr-defined]
        return out

    def _keys(self, key: Tensor | None, n: int) -> list[Tensor | None]:
        if key is None or self.dropout == 0.0:
            if key is not None:
                check_key(self.api, key)
            return [None] * n
        check_key(self.api, key)
        return list(split_key(key, n))

    def _rename(self, err: Exception, part: str) -> Exception:
        """The sub-layer's error under this layer's name: ``ftx.nn.TransformerEncoderLayer
        (self_attn): ...``."""
        text = str(err)
        if text.startswith("ftx.nn.") and ":" in text:
            text = f"ftx.{self.api} ({part}):{text.split(':', 1)[1]}"
            prefix = _MASK_PREFIX.get((type(self).__name__, part))
            if prefix is not None:  # the mask's name in this layer's call
                text = text.replace("key_padding_mask", f"{prefix}_key_padding_mask").replace(
                    "attn_mask", f"{prefix}_mask")
        try:
            new = type(err)(text)
        except TypeError:  # an exception class with another constructor: keep it
            return err
        return new

    def _check_x(self, name: str, x: Any, params: Params) -> None:
        """``x`` must be a floating (S, N, E) / (N, S, E) / (S, E) tensor of the params' dtype."""
        try:
            w = params["linear1"]["weight"]
            w.dtype  # noqa: B018 (a tensor, or the full check below)
        except (KeyError, TypeError, AttributeError):
            check_params(self.api, params, self.param_shapes())
            raise
        try:
            ok = x.ndim in (2, 3) and x.shape[-1] == self.d_model and x.dtype == w.dtype
        except AttributeError:
            ok = False
        if ok:
            return
        api = self.api
        if not isinstance(x, Tensor):
            raise TypeError(msg(api, f"{name} must be a tensor", describe(x)))
        if not x.is_floating_point():
            raise TypeError(msg(api, f"{name} must be a floating tensor", f"dtype {x.dtype}",
                                "Cast it: x.float()."))
        if x.dtype != w.dtype:
            raise TypeError(msg(api, f"{name} and params must share one dtype",
                                f"{name} {x.dtype} and params {w.dtype}",
                                "Cast one side, e.g. x.to(params_dtype) or "
                                "init(key, dtype=x.dtype)."))
        lay = "(N, S, E)" if self.batch_first else "(S, N, E)"
        raise ValueError(msg(api, f"{name} must have shape {lay} with E = d_model = "
                             f"{self.d_model} (batch_first={self.batch_first}), or unbatched "
                             f"(S, {self.d_model})", f"shape {tuple(x.shape)}",
                             "Put the features last; set batch_first=True for (N, S, E)."))


@dataclasses.dataclass(frozen=True)
class TransformerEncoderLayer(_Block):
    """Self-attention and a feed-forward network, the twin of ``nn.TransformerEncoderLayer``.

    ``norm_first=False`` (torch's default): ``x = norm1(x + sa(x)); x = norm2(x + ff(x))``;
    ``norm_first=True``: ``x = x + sa(norm1(x)); x = x + ff(norm2(x))``, where ``sa`` is
    ``MultiheadAttention`` and ``ff(x) = linear2(dropout(activation(linear1(x))))``.

    Params (the twin's state dict): ``self_attn.{in_proj_weight, in_proj_bias,
    out_proj.weight, out_proj.bias}``, ``linear1.{weight, bias}``, ``linear2.{weight,
    bias}``, ``norm1.{weight, bias}``, ``norm2.{weight, bias}`` (no biases with
    ``bias=False``).

    Args:
        d_model: ``E``, the feature size.
        nhead: attention heads; must divide ``d_model``.
        dim_feedforward: hidden size of the feed-forward network.
        dropout: dropout probability (attention weights, after attention, inside and
            after the feed-forward network), active only when a ``key`` is passed.
        activation: ``"relu"``, ``"gelu"``, an ftx activation layer or a function of x.
        layer_norm_eps: the norms' ``eps``.
        batch_first: inputs are ``(N, S, E)`` instead of ``(S, N, E)``.
        norm_first: pre-norm instead of post-norm.
        bias: learn the linears', attention's and norms' biases.

    Call ``layer(params, src, src_mask=None, src_key_padding_mask=None, is_causal=False,
    *, key=None)`` with ``src: (S, N, E)`` (or unbatched ``(S, E)``) and masks as in
    ``MultiheadAttention``; returns the same shape as ``src``. ``is_causal=True``
    alone masks the future.

    Example:
        >>> import torch, ftx
        >>> block = ftx.nn.TransformerEncoderLayer(16, 4, 32, batch_first=True, norm_first=True)
        >>> params = block.init(ftx.random.key(0))
        >>> block(params, torch.randn(2, 7, 16), is_causal=True).shape
        torch.Size([2, 7, 16])
    """

    _SIZES = (1, 2)
    _TWIN = nn.TransformerEncoderLayer

    def __call__(
        self,
        params: Params,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
        *,
        key: Tensor | None = None,
    ) -> Tensor:
        """``src: (S, N, E) -> (S, N, E)`` (``(N, S, E)`` with ``batch_first``)."""
        self._check_params(params)
        self._check_x("src", src, params)
        ka, k1, kf1, kf2 = self._keys(key, 4)
        where = ["self_attn"]
        try:
            x = self._residual(1, params, src, "self_attn", lambda h: self._attn(
                "self_attn", params, h, h, src_mask, src_key_padding_mask, is_causal, ka, k1),
                where)
            return self._residual(2, params, x, "feed-forward",
                                  lambda h: self._ff(params, h, kf1, kf2), where)
        except (ValueError, TypeError) as err:
            check_params(self.api, params, self.param_shapes())  # full paths, if that's it
            raise self._rename(err, where[0]) from err



@dataclasses.dataclass(frozen=True)
class TransformerDecoderLayer(_Block):
    """Self-attention, attention over a memory, and a feed-forward network: the twin of
    ``nn.TransformerDecoderLayer``.

    ``norm_first=False``: ``x = norm1(x + sa(x)); x = norm2(x + mha(x, memory));
    x = norm3(x + ff(x))``; ``norm_first=True``: ``x = x + sa(norm1(x)); x = x +
    mha(norm2(x), memory); x = x + ff(norm3(x))``.

    Params (the twin's state dict): ``self_attn.*``, ``multihead_attn.*`` (each as
    ``MultiheadAttention``), ``linear1.*``, ``linear2.*``, ``norm1.*``, ``norm2.*``,
    ``norm3.*``.

    The constructor's arguments are ``TransformerEncoderLayer``'s.

    Call ``layer(params, tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=False,
    memory_is_causal=False, *, key=None)`` with ``tgt: (T, N, E)``, ``memory: (S, N, E)``
    (``(N, T, E)``, ``(N, S, E)`` with ``batch_first``); returns ``tgt``'s shape.

    Example:
        >>> import torch, ftx
        >>> block = ftx.nn.TransformerDecoderLayer(16, 4, 32, batch_first=True)
        >>> params = block.init(ftx.random.key(0))
        >>> tgt, memory = torch.randn(2, 5, 16), torch.randn(2, 9, 16)
        >>> block(params, tgt, memory, tgt_is_causal=True).shape
        torch.Size([2, 5, 16])
    """

    _SIZES = (2, 3)
    _TWIN = nn.TransformerDecoderLayer

    def __call__(  # type: ignore[override]
        self,
        params: Params,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
        *,
        key: Tensor | None = None,
    ) -> Tensor:
        """``(tgt (T, N, E), memory (S, N, E)) -> (T, N, E)``."""
        self._check_params(params)
        self._check_x("tgt", tgt, params)
        self._check_x("memory", memory, params)
        ks, k1, km, k2, kf1, kf2 = self._keys(key, 6)
        where = ["self_attn"]
        try:
            x = self._residual(1, params, tgt, "self_attn", lambda h: self._attn(
                "self_attn", params, h, h, tgt_mask, tgt_key_padding_mask, tgt_is_causal,
                ks, k1), where)
            x = self._residual(2, params, x, "multihead_attn", lambda h: self._attn(
                "multihead_attn", params, h, memory, memory_mask, memory_key_padding_mask,
                memory_is_causal, km, k2), where)
            return self._residual(3, params, x, "feed-forward",
                                  lambda h: self._ff(params, h, kf1, kf2), where)
        except (ValueError, TypeError) as err:
            check_params(self.api, params, self.param_shapes())  # full paths, if that's it
            raise self._rename(err, where[0]) from err

