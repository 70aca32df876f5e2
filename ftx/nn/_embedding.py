"""``Embedding``: a lookup table of vectors, the stateless twin of ``nn.Embedding``."""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import (
    FLAG,
    INT,
    POSITIVE,
    Layer,
    Params,
    Shape,
    check_fields,
    check_init,
    check_params,
)

__all__ = ["Embedding"]

_INDEX_DTYPES = (torch.int32, torch.int64)


def _max_norm(api: str, name: str, value: Any) -> None:
    """Only ``None``: torch's ``max_norm`` renormalises the weight in place during the
    forward, which a pure function cannot do."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(api, f"{name} must be None", describe(value),
                            "ftx layers are pure and never rescale their params."))
    raise ValueError(msg(
        api, f"{name} must be None (torch's max_norm rescales the weight in place during "
        "the forward; a pure layer cannot)", repr(value),
        "Renormalise the table yourself between steps, e.g. "
        "w * (max_norm / w.norm(dim=1, keepdim=True)).clamp(max=1).",
    ))


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, looked up by index.

    Params: ``{"weight": (num_embeddings, embedding_dim)}`` drawn from ``N(0, 1)``
    as in torch, with the ``padding_idx`` row zeroed.

    Args:
        num_embeddings: size of the table (indices lie in ``[0, num_embeddings)``).
        embedding_dim: size of each vector.
        padding_idx: a row that gets no gradient (and starts at zero); negative counts
            from the end, as in torch.
        max_norm: must be ``None`` (torch's ``max_norm`` rewrites the weight in place
            during the forward; a pure layer cannot).
        scale_grad_by_freq: scale gradients by the inverse frequency of the indices in
            the batch.

    Call ``layer(params, idx)`` with integer ``idx: (*)`` (int64 or int32); returns
    ``(*, embedding_dim)``.

    Example:
        >>> import torch, ftx
        >>> emb = ftx.nn.Embedding(10, 3, padding_idx=0)
        >>> params = emb.init(ftx.random.key(0))
        >>> emb(params, torch.tensor([[0, 4], [9, 0]])).shape
        torch.Size([2, 2, 3])
        >>> params["weight"][0]
        tensor([0., 0., 0.])
    """

    num_embeddings: int
    embedding_dim: int
    padding_idx: int | None = None
    max_norm: None = None
    scale_grad_by_freq: bool = False

    def __post_init__(self) -> None:
        check_fields(self, num_embeddings=POSITIVE, embedding_dim=POSITIVE,
                     padding_idx=_padding_rule, max_norm=_max_norm, scale_grad_by_freq=FLAG)
        p = self.padding_idx
        if p is not None:
            if not -self.num_embeddings <= p < self.num_embeddings:
                raise ValueError(msg(
                    self.api, "padding_idx must be in [-num_embeddings, num_embeddings) = "
                    f"[{-self.num_embeddings}, {self.num_embeddings})", str(p),
                    "Pass the index of a row of the table."))
            object.__setattr__(self, "padding_idx", p % self.num_embeddings)

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """``weight ~ N(0, 1)`` drawn with ``key``; the ``padding_idx`` row is zero."""
        from .. import random as fr

        check_init(self.api, key, dtype, device)
        if device is not None:
            key = key.to(device)
        w: Tensor = fr.normal(key, (self.num_embeddings, self.embedding_dim), dtype=dtype)
        if self.padding_idx is not None:
            w = w.index_fill(0, torch.tensor([self.padding_idx], device=w.device), 0.0)
        return {"weight": w}

    def __call__(self, params: Params, x: Tensor, *, key: Tensor | None = None) -> Tensor:
        """``idx: (*) int -> (*, embedding_dim)``."""
        try:
            w = params["weight"]
            ok = (
                len(params) == 1
                and x.dtype in _INDEX_DTYPES
                and w.shape == (self.num_embeddings, self.embedding_dim)
            )
        except (KeyError, TypeError, AttributeError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        try:
            return F.embedding(x, w, self.padding_idx, None, 2.0, self.scale_grad_by_freq)
        except (IndexError, RuntimeError) as err:
            self._diagnose(params, x, err)

    def param_shapes(self) -> dict[str, Shape]:
        return {"weight": (self.num_embeddings, self.embedding_dim)}

    def twin(self) -> nn.Module:
        return nn.Embedding(self.num_embeddings, self.embedding_dim, self.padding_idx,
                            scale_grad_by_freq=self.scale_grad_by_freq)

    def _diagnose(self, params: Any, x: Any, err: Exception | None = None) -> NoReturn:
        api = self.api
        check_params(api, params, self.param_shapes())
        w = params["weight"]
        if not isinstance(x, Tensor):
            raise TypeError(msg(api, "input idx must be a tensor of indices", describe(x)))
        if x.dtype not in _INDEX_DTYPES:
            raise TypeError(msg(api, "input idx must be an int64 or int32 tensor of indices",
                                f"dtype {x.dtype}", "Cast it: idx.long()."))
        if not w.is_floating_point():
            raise TypeError(msg(api, "params['weight'] must be a floating tensor",
                                f"dtype {w.dtype}", "Build params with layer.init(key)."))
        if w.device != x.device:
            raise ValueError(msg(
                api, "input and params must be on one device",
                f"input on {x.device} and params['weight'] on {w.device}",
                "Move one side, e.g. idx.to(device) or init(key, device=idx.device)."))
        if isinstance(err, IndexError) or (x.numel() and x.device.type == "cpu"
                                           and not (0 <= int(x.min()) and
                                                    int(x.max()) < self.num_embeddings)):
            lo = int(x.min()) if x.numel() else 0
            hi = int(x.max()) if x.numel() else 0
            raise ValueError(msg(
                api, f"indices must lie in [0, num_embeddings) = [0, {self.num_embeddings})",
                f"indices in [{lo}, {hi}]",
                "Map tokens into the table's range or build a larger table.")) from err
        detail = f" (torch: {str(err).splitlines()[0]})" if err is not None else ""
        raise ValueError(msg(api, "params and input the kernel accepts",
                             f"input {describe(x)}{detail}")) from err


def _padding_rule(api: str, name: str, value: Any) -> int | None:
    return None if value is None else INT(api, name, value)
