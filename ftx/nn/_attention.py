"""``MultiheadAttention``: scaled dot-product attention over heads, the twin of
``nn.MultiheadAttention``, on ``F.scaled_dot_product_attention`` (a GPU gets the fused
flash / memory-efficient kernels)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NoReturn

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
    check_key,
    check_params,
    kaiming_bound,
    split_key,
    uniform_init,
)
from ._dropout import PROBABILITY
from ._dropout import dropout as _dropout

__all__ = ["MultiheadAttention", "attention"]


def _same_or_none(api: str, name: str, value: Any) -> None:
    """``kdim``/``vdim``: ``None`` only (keys and values of size ``embed_dim``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(msg(api, f"{name} must be None (keys and values of size embed_dim)",
                            describe(value)))
    raise ValueError(msg(
        api, f"{name} must be None: ftx's MultiheadAttention takes keys and values of size "
        "embed_dim (one packed in_proj_weight, as torch when kdim == vdim == embed_dim)",
        repr(value), "Project keys and values to embed_dim first, e.g. with ftx.nn.Linear."))


def _mask_error(api: str, name: str, want: str, mask: Any, fix: str) -> ValueError:
    return ValueError(msg(api, f"{name} must have shape {want}",
                          f"shape {tuple(mask.shape)}", fix))


def _canonical(api: str, name: str, mask: Tensor, dtype: torch.dtype) -> Tensor:
    """A bool mask (``True`` = not allowed) becomes ``0``/``-inf``; a float mask is added."""
    if not isinstance(mask, Tensor):
        raise TypeError(msg(api, f"{name} must be a tensor (bool, or floating added to the "
                            "scores)", describe(mask)))
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    if mask.dtype != dtype:
        raise TypeError(msg(api, f"{name} must be bool or have the input's dtype {dtype}",
                            f"dtype {mask.dtype}",
                            "Pass a bool mask (True = not allowed) or cast it to the input's "
                            "dtype."))
    return mask


def attention(
    params: Params,
    query: Tensor,
    key_input: Tensor,
    value: Tensor,
    num_heads: int,
    *,
    batch_first: bool = False,
    key_padding_mask: Tensor | None = None,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    need_weights: bool = False,
    average_attn_weights: bool = True,
    dropout_p: float = 0.0,
    key: Tensor | None = None,
    api: str = "nn.functional.multi_head_attention",
) -> tuple[Tensor, Tensor | None]:
    """The maths of ``MultiheadAttention`` on checked params and inputs.

    ``params``: ``in_proj_weight (3E, E)``, ``in_proj_bias (3E,)``, ``out_proj.weight``,
    ``out_proj.bias``. Inputs ``(L, N, E)`` (``(N, L, E)`` with ``batch_first``) or
    unbatched ``(L, E)``. Returns ``(output, weights or None)``.
    """
    w_in = params["in_proj_weight"]
    b_in = params.get("in_proj_bias")
    out_p = params["out_proj"]
    e = w_in.shape[1]
    h = num_heads
    d = e // h
    unbatched = query.ndim == 2
    if unbatched:
        query, key_input, value = query[None], key_input[None], value[None]
        if key_padding_mask is not None:
            key_padding_mask = key_padding_mask[None]
    elif not batch_first:
        query, key_input, value = (t.transpose(0, 1) for t in (query, key_input, value))
    n, tgt, _ = query.shape
    src = key_input.shape[1]
    # in-projection: one matmul for self-attention, two for encoder-decoder attention
    if query is key_input and key_input is value:
        qkv = F.linear(query, w_in, b_in).view(n, tgt, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
    else:
        b_q = b_kv = None
        if key_input is value:
            w_q, w_kv = w_in.split([e, 2 * e])
            if b_in is not None:
                b_q, b_kv = b_in.split([e, 2 * e])
            q = F.linear(query, w_q, b_q).view(n, tgt, h, d).transpose(1, 2)
            kv = F.linear(key_input, w_kv, b_kv).view(n, src, 2, h, d).permute(2, 0, 3, 1, 4)
            k, v = kv[0], kv[1]
        else:
            w_q, w_k, w_v = w_in.chunk(3)
            b_q, b_k, b_v = b_in.chunk(3) if b_in is not None else (None, None, None)
            q = F.linear(query, w_q, b_q).view(n, tgt, h, d).transpose(1, 2)
            k = F.linear(key_input, w_k, b_k).view(n, src, h, d).transpose(1, 2)
            v = F.linear(value, w_v, b_v).view(n, src, h, d).transpose(1, 2)
    # masks: one additive (N or 1, H or 1, L, S) mask, or the causal kernel alone
    dtype = q.dtype
    mask: Tensor | None = None
    if attn_mask is not None and not (is_causal and key_padding_mask is None
                                      and not need_weights and key is None):
        m = _canonical(api, "attn_mask", attn_mask, dtype)
        mask = m.view(n, h, tgt, src) if m.ndim == 3 else m  # n is 1 when unbatched
        is_causal = False
    if key_padding_mask is not None:
        kpm = _canonical(api, "key_padding_mask", key_padding_mask, dtype).view(n, 1, 1, src)
        if is_causal:  # merged with a causal mask, the result is no longer causal
            mask = _causal(tgt, src, dtype, q.device)
            is_causal = False
        mask = kpm if mask is None else mask + kpm
    use_math = need_weights or (key is not None and dropout_p > 0.0)
    if use_math and is_causal:
        mask = _causal(tgt, src, dtype, q.device)
        is_causal = False
    weights: Tensor | None = None
    if use_math:
        scores = (q * (1.0 / math.sqrt(d))) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        attn = torch.softmax(scores, dim=-1)
        if key is not None and dropout_p > 0.0:
            attn = _dropout(attn, dropout_p, key, api)
        out = attn @ v
        if need_weights:
            weights = attn.mean(dim=1) if average_attn_weights else attn
            if unbatched:
                weights = weights[0]
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    out = F.linear(out.transpose(1, 2).reshape(n, tgt, e), out_p["weight"], out_p.get("bias"))
    if unbatched:
        out = out[0]
    elif not batch_first:
        out = out.transpose(0, 1)
    return out, weights


def _causal(tgt: int, src: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``-inf`` above the diagonal (query ``i`` sees keys ``<= i``), as SDPA's ``is_causal``."""
    upper = torch.ones(tgt, src, dtype=torch.bool, device=device).triu(1)
    return torch.zeros(tgt, src, dtype=dtype, device=device).masked_fill(upper, float("-inf"))


@dataclasses.dataclass(frozen=True)
class MultiheadAttention(Layer):
    """Multi-head attention, the same maths and parameters as ``nn.MultiheadAttention``.

    Params (state-dict names of the twin): ``in_proj_weight (3E, E)``,
    ``in_proj_bias (3E,)``, ``out_proj.weight (E, E)``, ``out_proj.bias (E,)`` (no
    biases with ``bias=False``). Drawn as torch does: ``in_proj_weight`` Xavier-uniform
    ``U(-sqrt(6/(4E)), sqrt(6/(4E)))``, ``out_proj.weight`` ``U(-1/sqrt(E), 1/sqrt(E))``,
    biases zero.

    Args:
        embed_dim: ``E``, the size of queries, keys, values and output.
        num_heads: heads; must divide ``embed_dim``.
        dropout: dropout on the attention weights, active only when a ``key`` is passed.
        bias: learn the in- and out-projection biases.
        kdim: must be ``None`` (keys of size ``embed_dim``).
        vdim: must be ``None`` (values of size ``embed_dim``).
        batch_first: inputs are ``(N, L, E)`` instead of ``(L, N, E)``.

    Call ``layer(params, query, key_input=None, value=None, *, key_padding_mask=None,
    need_weights=False, attn_mask=None, average_attn_weights=True, is_causal=False,
    key=None)`` with ``query: (L, N, E)`` and ``key_input``, ``value: (S, N, E)`` (both
    default to ``query``: self-attention); unbatched ``(L, E)`` works too.
    ``key_input`` is torch's ``key`` argument: ``key`` is the ``ftx.random`` key, as in
    every ftx layer. Masks follow torch: ``key_padding_mask (N, S)``, ``attn_mask (L, S)``
    or ``(N * num_heads, L, S)``, bool (``True`` = not allowed) or floating (added to the
    scores). ``is_causal=True`` alone masks the future (torch needs the mask as well and
    takes ``is_causal`` as a hint that it is causal; ftx takes the hint the same way).

    Returns ``(output, weights)`` like the twin: ``output (L, N, E)``; ``weights`` is
    ``None`` unless ``need_weights=True`` (``(N, L, S)``, or ``(N, H, L, S)`` without
    ``average_attn_weights``). Unlike torch, ``need_weights`` defaults to ``False``:
    the fused kernel cannot return the weights, so asking for them takes the slower
    explicit path (so does dropout with a key, whose mask comes from ``ftx.random``).

    Example:
        >>> import torch, ftx
        >>> mha = ftx.nn.MultiheadAttention(8, 2, batch_first=True)
        >>> params = mha.init(ftx.random.key(0))
        >>> x = torch.randn(3, 5, 8)
        >>> out, weights = mha(params, x, is_causal=True)
        >>> out.shape, weights
        (torch.Size([3, 5, 8]), None)
    """

    embed_dim: int
    num_heads: int
    dropout: float = 0.0
    bias: bool = True
    kdim: None = None
    vdim: None = None
    batch_first: bool = False

    def __post_init__(self) -> None:
        check_fields(self, embed_dim=POSITIVE, num_heads=POSITIVE, dropout=PROBABILITY,
                     bias=FLAG, kdim=_same_or_none, vdim=_same_or_none, batch_first=FLAG)
        if self.embed_dim % self.num_heads:
            raise ValueError(msg(self.api, "num_heads must divide embed_dim",
                                 f"embed_dim={self.embed_dim} and num_heads={self.num_heads}",
                                 "Pick a divisor of embed_dim."))

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Xavier-uniform ``in_proj_weight``, ``U(-1/sqrt(E), 1/sqrt(E))``
        ``out_proj.weight``, zero biases, as torch."""
        check_init(self.api, key, dtype, device)
        e = self.embed_dim
        k_in, k_out = split_key(key, 2)
        params: Params = {
            "in_proj_weight": uniform_init(k_in, (3 * e, e), math.sqrt(6.0 / (4 * e)), dtype,
                                           device)}
        out: Params = {"weight": uniform_init(k_out, (e, e), kaiming_bound(e), dtype, device)}
        if self.bias:
            params["in_proj_bias"] = torch.zeros(3 * e, dtype=dtype, device=device)
            out["bias"] = torch.zeros(e, dtype=dtype, device=device)
        params["out_proj"] = out
        return params

    def __call__(
        self,
        params: Params,
        query: Tensor,
        key_input: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = False,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
        key: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """``(query (L, N, E), key_input (S, N, E), value (S, N, E)) -> (out, weights)``."""
        if key_input is None:
            key_input = query
        if value is None:
            value = key_input
        e = self.embed_dim
        try:
            w = params["in_proj_weight"]
            o = params["out_proj"]
            ow = o["weight"]
            ok = (
                len(params) == 2 + self.bias
                and len(o) == 1 + self.bias
                and w.shape == (3 * e, e)
                and ow.shape == (e, e)
                and query.dtype == w.dtype == key_input.dtype == value.dtype == ow.dtype
                and query.ndim == key_input.ndim == value.ndim
                and query.ndim in (2, 3)
                and query.shape[-1] == key_input.shape[-1] == value.shape[-1] == e
                and key_input.shape[:-1] == value.shape[:-1]
                and (query.ndim == 2
                     or query.shape[self._bdim] == key_input.shape[self._bdim])
                and (not self.bias or (params["in_proj_bias"].shape == (3 * e,)
                                       and o["bias"].shape == (e,)))
            )
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose_inputs(params, query, key_input, value)
        if type(need_weights) is not bool or type(is_causal) is not bool or type(
                average_attn_weights) is not bool:
            self._flag_error(need_weights=need_weights, is_causal=is_causal,
                             average_attn_weights=average_attn_weights)
        if key_padding_mask is not None or attn_mask is not None:
            self._check_masks(query, key_input, key_padding_mask, attn_mask)
        if key is not None:
            check_key(self.api, key)
        try:
            return attention(
                params, query, key_input, value, self.num_heads, batch_first=self.batch_first,
                key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal,
                need_weights=need_weights, average_attn_weights=average_attn_weights,
                dropout_p=self.dropout, key=key, api=self.api)
        except RuntimeError as err:  # e.g. params on another device than the input
            self._diagnose_inputs(params, query, key_input, value, err)

    @property
    def _bdim(self) -> int:
        return 0 if self.batch_first else 1

    def param_shapes(self) -> dict[str, Shape]:
        e = self.embed_dim
        shapes: dict[str, Shape] = {"in_proj_weight": (3 * e, e)}
        if self.bias:
            shapes["in_proj_bias"] = (3 * e,)
        shapes["out_proj.weight"] = (e, e)
        if self.bias:
            shapes["out_proj.bias"] = (e,)
        return shapes

    def twin(self) -> nn.Module:
        return nn.MultiheadAttention(self.embed_dim, self.num_heads, self.dropout, self.bias,
                                     batch_first=self.batch_first)

    def _flag_error(self, **flags: Any) -> NoReturn:
        for name, value in flags.items():
            FLAG(self.api, name, value)
        raise AssertionError("unreachable")  # pragma: no cover

    def _layout(self) -> str:
        return "(N, L, E)" if self.batch_first else "(L, N, E)"

    def _diagnose_inputs(self, params: Any, query: Any, key_input: Any, value: Any,
                         err: Exception | None = None) -> NoReturn:
        api, e = self.api, self.embed_dim
        check_params(api, params, self.param_shapes())
        lay = self._layout()
        for name, t in (("query", query), ("key_input", key_input), ("value", value)):
            check_dtypes(api, params, t)
            if t.ndim not in (2, 3) or t.shape[-1] != e:
                raise ValueError(msg(
                    api, f"{name} must have shape {lay.replace('E', str(e))} "
                    f"(batch_first={self.batch_first}) or unbatched (L, {e})",
                    f"shape {tuple(t.shape)}",
                    "Pass embed_dim features last; set batch_first=True for (N, L, E)."))
        if not query.ndim == key_input.ndim == value.ndim:
            raise ValueError(msg(api, "query, key_input and value must all be batched or all "
                                 "unbatched", f"shapes {tuple(query.shape)}, "
                                 f"{tuple(key_input.shape)} and {tuple(value.shape)}",
                                 "Add or drop the batch dimension on all three."))
        if key_input.shape[:-1] != value.shape[:-1]:
            raise ValueError(msg(api, "key_input and value must have the same leading shape",
                                 f"{tuple(key_input.shape)} and {tuple(value.shape)}",
                                 "Keys and values come in pairs."))
        if query.ndim == 3 and query.shape[self._bdim] != key_input.shape[self._bdim]:
            raise ValueError(msg(api, f"query and key_input must have one batch size "
                                 f"(dimension {self._bdim} of {lay})",
                                 f"shapes {tuple(query.shape)} and {tuple(key_input.shape)}",
                                 "Check batch_first."))
        detail = f" (torch: {str(err).splitlines()[0]})" if err is not None else ""
        raise ValueError(msg(api, "params and inputs the kernel accepts",
                             f"query {describe(query)}{detail}")) from err

    def _check_masks(self, query: Tensor, key_input: Tensor, kpm: Any, attn_mask: Any) -> None:
        api, h = self.api, self.num_heads
        unbatched = query.ndim == 2
        if unbatched:
            n, tgt, src = 1, query.shape[0], key_input.shape[0]
        else:
            n = query.shape[self._bdim]
            tgt, src = query.shape[1 - self._bdim], key_input.shape[1 - self._bdim]
        for name, m in (("key_padding_mask", kpm), ("attn_mask", attn_mask)):
            if m is not None and not isinstance(m, Tensor):
                raise TypeError(msg(api, f"{name} must be a tensor (bool, or floating added "
                                    "to the scores)", describe(m)))
            if m is not None and not (m.dtype == torch.bool or m.dtype == query.dtype):
                raise TypeError(msg(api, f"{name} must be bool or have the input's dtype "
                                    f"{query.dtype}", f"dtype {m.dtype}",
                                    "Pass a bool mask (True = not allowed) or cast it."))
        if kpm is not None:
            want = (src,) if unbatched else (n, src)
            if tuple(kpm.shape) != want:
                raise _mask_error(api, "key_padding_mask", f"(N, S) = {want}", kpm,
                                  "One entry per batch element and key position; True marks "
                                  "padding.")
        if attn_mask is not None:
            two, three = (tgt, src), ((1 if unbatched else n) * h, tgt, src)
            if tuple(attn_mask.shape) not in (two, three):
                raise _mask_error(api, "attn_mask", f"(L, S) = {two} or (N * num_heads, L, S) "
                                  f"= {three}", attn_mask,
                                  "Build it for these query and key lengths.")
