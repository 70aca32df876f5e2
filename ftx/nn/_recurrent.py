"""Recurrent layers: ``GRUCell``, ``LSTMCell`` and the sequence layers ``GRU``, ``LSTM``.

The twins of the ``torch.nn`` modules, with their parameter names (``weight_ih``,
``weight_hh_l0_reverse``, ...) and torch's gate order (GRU: reset, update, new; LSTM:
input, forget, cell, output). The sequence layers project the whole input once per
layer and direction, then run the cell's recurrent half over time on ``ftx.lax.scan``
(so they compose with ``grad``, ``vmap`` and ``jit`` like any ftx function).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, ClassVar

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
    check_fields,
    check_init,
    check_key,
    input_error,
    kaiming_bound,
    split_key,
    uniform_init,
)
from ._dropout import PROBABILITY, dropout

__all__ = ["GRU", "LSTM", "GRUCell", "LSTMCell"]

Carry = Any  # Tensor (GRU) or (h, c) (LSTM)


def gru_step(xp: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One GRU step from the input projection ``xp = x @ w_ih.T + b_ih`` (torch's formula)."""
    gh = F.linear(h, w_hh, b_hh)
    i_r, i_z, i_n = xp.chunk(3, -1)
    h_r, h_z, h_n = gh.chunk(3, -1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return n + z * (h - n)


def lstm_step(
    xp: Tensor, hc: tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One LSTM step from the input projection; returns ``(h', c')``."""
    h, c = hc
    gates = xp + F.linear(h, w_hh, b_hh)
    i, f, g, o = gates.chunk(4, -1)
    c2 = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c2), c2


def _scan_loop(
    step: Callable[[Tensor, Carry], Carry], carry: Carry, xs: Tensor, reverse: bool,
    out_of: Callable[[Carry], Tensor],
) -> tuple[Tensor, Carry]:
    """``carry = step(xs[t], carry)`` over ``t`` (backwards when ``reverse``) on
    ``ftx.lax.scan``; returns the stacked outputs (in time order) and the final carry."""
    from ..lax import scan

    def body(c: Carry, xt: Tensor) -> tuple[Carry, Tensor]:
        c = step(xt, c)
        return c, out_of(c)

    carry, ys = scan(body, carry, xs, reverse=reverse)
    return ys, carry


def _all_match(params: Params, shapes: tuple[tuple[str, Shape], ...], x: Tensor) -> bool:
    """Every param has its shape and ``x``'s dtype and device (the inline check)."""
    dtype, device = x.dtype, x.device
    for name, shape in shapes:
        t = params[name]
        if t.shape != shape or t.dtype != dtype or t.device != device:
            return False
    return True


def _hx_error(api: str, name: str, want: tuple[int, ...], got: Any, fix: str = "") -> Exception:
    if not isinstance(got, Tensor):
        return TypeError(msg(api, f"{name} must be a tensor of shape {want}", describe(got),
                             fix))
    return ValueError(msg(api, f"{name} must have shape {want}", f"shape {tuple(got.shape)}",
                          fix))


def _check_state_tensor(api: str, name: str, t: Any, want: tuple[int, ...], x: Tensor) -> None:
    if not isinstance(t, Tensor) or tuple(t.shape) != want:
        raise _hx_error(api, name, want, t, "Pass zeros of that shape, or None.")
    if t.dtype != x.dtype:
        raise TypeError(msg(api, f"{name} and input x must share one dtype",
                            f"{name} {t.dtype} and input {x.dtype}", f"Cast {name}."))
    if t.device != x.device:
        raise ValueError(msg(api, f"{name} and input x must be on one device",
                             f"{name} on {t.device} and input on {x.device}",
                             f"Move {name} to x's device."))


# ---------------------------------------------------------------------------
# Cells



def _uniform_params(
    api: str, shapes: dict[str, Shape], hidden_size: int, key: Tensor, dtype: torch.dtype,
    device: Any,
) -> Params:
    """torch's recurrent init: every tensor from ``U(-1/sqrt(hidden), 1/sqrt(hidden))``."""
    check_init(api, key, dtype, device)
    keys = split_key(key, len(shapes))
    bound = kaiming_bound(hidden_size)
    return {name: uniform_init(k, shape, bound, dtype, device)
            for k, (name, shape) in zip(keys, shapes.items())}

class _Cell(Layer):
    _GATES: ClassVar[int]
    _TWIN: ClassVar[type[nn.Module]]
    input_size: int
    hidden_size: int
    bias: bool

    def __post_init__(self) -> None:
        check_fields(self, input_size=POSITIVE, hidden_size=POSITIVE, bias=FLAG)
        object.__setattr__(self, "_shapes", tuple(self.param_shapes().items()))

    def param_shapes(self) -> dict[str, Shape]:
        g, h = self._GATES * self.hidden_size, self.hidden_size
        shapes: dict[str, Shape] = {"weight_ih": (g, self.input_size), "weight_hh": (g, h)}
        if self.bias:
            shapes.update(bias_ih=(g,), bias_hh=(g,))
        return shapes

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Every tensor from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` (torch's)."""
        return _uniform_params(self.api, self.param_shapes(), self.hidden_size, key, dtype, device)

    def twin(self) -> nn.Module:
        return self._TWIN(self.input_size, self.hidden_size, bias=self.bias)

    def _weights(self, params: Params, x: Any) -> tuple[Tensor, Tensor, Tensor | None,
                                                         Tensor | None]:
        try:
            w_ih, w_hh = params["weight_ih"], params["weight_hh"]
            b_ih = params["bias_ih"] if self.bias else None
            b_hh = params["bias_hh"] if self.bias else None
            ok = (len(params) == 2 + 2 * self.bias and 1 <= x.ndim <= 2
                  and x.shape[-1] == self.input_size
                  and _all_match(params, self._shapes, x))  # type: ignore[attr-defined]
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        return w_ih, w_hh, b_ih, b_hh

    def _check_input(self, x: Tensor) -> None:
        if not 1 <= x.ndim <= 2 or x.shape[-1] != self.input_size:
            raise input_error(self.api, f"input x must have shape (N, input_size) or "
                              f"(input_size,) = (N, {self.input_size})", x)

    def _zeros(self, x: Tensor) -> Tensor:
        return x.new_zeros((*x.shape[:-1], self.hidden_size))

    def _check_h(self, name: str, h: Any, x: Tensor) -> None:
        _check_state_tensor(self.api, name, h, (*x.shape[:-1], self.hidden_size), x)


@dataclasses.dataclass(frozen=True)
class GRUCell(_Cell):
    """One GRU step, the same maths and parameters as ``nn.GRUCell``.

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``, ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``,
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``.

    Params: ``weight_ih (3*hidden, input)``, ``weight_hh (3*hidden, hidden)``,
    ``bias_ih (3*hidden,)``, ``bias_hh (3*hidden,)``, all from
    ``U(-1/sqrt(hidden), 1/sqrt(hidden))``.

    Args:
        input_size: features of ``x``.
        hidden_size: features of the hidden state.
        bias: whether to add the biases.

    Call ``cell(params, x, hx=None)`` with ``x: (N, input_size)`` or ``(input_size,)``
    and ``hx`` of shape ``(N, hidden_size)`` (zeros when ``None``); returns ``h'``.

    Example:
        >>> import torch, ftx
        >>> cell = ftx.nn.GRUCell(3, 5)
        >>> cell(cell.init(ftx.random.key(0)), torch.ones(2, 3)).shape
        torch.Size([2, 5])
    """

    _GATES: ClassVar[int] = 3
    _TWIN: ClassVar[type[nn.Module]] = nn.GRUCell
    input_size: int
    hidden_size: int
    bias: bool = True

    def __call__(self, params: Params, x: Tensor, hx: Tensor | None = None, *,
                 key: Tensor | None = None) -> Tensor:
        """``(x: (N, input), hx: (N, hidden)) -> h': (N, hidden)``."""
        w_ih, w_hh, b_ih, b_hh = self._weights(params, x)
        if hx is None:
            hx = self._zeros(x)
        elif not (isinstance(hx, Tensor) and hx.shape == (*x.shape[:-1], self.hidden_size)
                  and hx.dtype == x.dtype):
            self._check_h("hx", hx, x)
        return gru_step(F.linear(x, w_ih, b_ih), hx, w_hh, b_hh)


@dataclasses.dataclass(frozen=True)
class LSTMCell(_Cell):
    """One LSTM step, the same maths and parameters as ``nn.LSTMCell``.

    Gates in torch's order (input, forget, cell, output):
    ``c' = σ(f) * c + σ(i) * tanh(g)``, ``h' = σ(o) * tanh(c')``.

    Params: ``weight_ih (4*hidden, input)``, ``weight_hh (4*hidden, hidden)``,
    ``bias_ih (4*hidden,)``, ``bias_hh (4*hidden,)``, all from
    ``U(-1/sqrt(hidden), 1/sqrt(hidden))``.

    Args:
        input_size: features of ``x``.
        hidden_size: features of the hidden and cell states.
        bias: whether to add the biases.

    Call ``cell(params, x, hx=None)`` with ``x: (N, input_size)`` or ``(input_size,)`` and
    ``hx = (h, c)``, each ``(N, hidden_size)`` (zeros when ``None``); returns ``(h', c')``.

    Example:
        >>> import torch, ftx
        >>> cell = ftx.nn.LSTMCell(3, 5)
        >>> h, c = cell(cell.init(ftx.random.key(0)), torch.ones(2, 3))
        >>> h.shape, c.shape
        (torch.Size([2, 5]), torch.Size([2, 5]))
    """

    _GATES: ClassVar[int] = 4
    _TWIN: ClassVar[type[nn.Module]] = nn.LSTMCell
    input_size: int
    hidden_size: int
    bias: bool = True

    def __call__(self, params: Params, x: Tensor,
                 hx: tuple[Tensor, Tensor] | None = None, *,
                 key: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(x: (N, input), (h, c): (N, hidden) each) -> (h', c')``."""
        w_ih, w_hh, b_ih, b_hh = self._weights(params, x)
        if hx is None:
            zeros = self._zeros(x)
            hx = (zeros, zeros)
        else:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(msg(self.api, "hx must be a pair (h, c) of tensors or None",
                                    describe(hx), "Pass hx=(h0, c0)."))
            self._check_h("hx[0]", hx[0], x)
            self._check_h("hx[1]", hx[1], x)
        return lstm_step(F.linear(x, w_ih, b_ih), (hx[0], hx[1]), w_hh, b_hh)


# ---------------------------------------------------------------------------
# Sequence layers


class _RNN(Layer):
    _GATES: ClassVar[int]
    _TWIN: ClassVar[type[nn.Module]]
    input_size: int
    hidden_size: int
    num_layers: int
    bias: bool
    batch_first: bool
    dropout: float
    bidirectional: bool

    def __post_init__(self) -> None:
        check_fields(self, input_size=POSITIVE, hidden_size=POSITIVE, num_layers=POSITIVE,
                     bias=FLAG, batch_first=FLAG, dropout=PROBABILITY, bidirectional=FLAG)
        dirs = ("", "_reverse") if self.bidirectional else ("",)
        names = []
        for layer in range(self.num_layers):
            for sfx in dirs:
                names.append(tuple(f"{w}_l{layer}{sfx}" for w in
                                   ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
        object.__setattr__(self, "_names", tuple(names))
        object.__setattr__(self, "_shapes", tuple(self.param_shapes().items()))

    @property
    def _dirs(self) -> int:
        return 2 if self.bidirectional else 1

    def param_shapes(self) -> dict[str, Shape]:
        g, h = self._GATES * self.hidden_size, self.hidden_size
        shapes: dict[str, Shape] = {}
        for i, (w_ih, w_hh, b_ih, b_hh) in enumerate(self._names):  # type: ignore[attr-defined]
            fan = self.input_size if i < self._dirs else h * self._dirs
            shapes[w_ih] = (g, fan)
            shapes[w_hh] = (g, h)
            if self.bias:
                shapes[b_ih] = (g,)
                shapes[b_hh] = (g,)
        return shapes

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Every tensor from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` (torch's)."""
        return _uniform_params(self.api, self.param_shapes(), self.hidden_size, key, dtype, device)

    def twin(self) -> nn.Module:
        return self._TWIN(self.input_size, self.hidden_size, num_layers=self.num_layers,
                          bias=self.bias, batch_first=self.batch_first, dropout=self.dropout,
                          bidirectional=self.bidirectional)

    def _time_dim(self, x: Tensor) -> int:
        return 1 if x.ndim == 3 and self.batch_first else 0

    def _check_input(self, x: Tensor) -> None:
        if (not 2 <= x.ndim <= 3 or x.shape[-1] != self.input_size
                or x.shape[self._time_dim(x)] == 0):
            layout = "(N, T, input_size)" if self.batch_first else "(T, N, input_size)"
            raise input_error(self.api, f"input x must have shape {layout} or (T, input_size) "
                              f"with input_size = {self.input_size} and T >= 1", x)

    def _weights(self, params: Params, x: Any) -> list[tuple[Tensor, Tensor, Tensor | None,
                                                              Tensor | None]]:
        out = []
        try:
            ok = len(params) == len(self._names) * (2 + 2 * self.bias)  # type: ignore[attr-defined]
            for w_ih, w_hh, b_ih, b_hh in self._names:  # type: ignore[attr-defined]
                out.append((params[w_ih], params[w_hh], params[b_ih] if self.bias else None,
                            params[b_hh] if self.bias else None))
            ok = (ok and 2 <= x.ndim <= 3
                  and x.shape[-1] == self.input_size and x.shape[self._time_dim(x)] > 0
                  and _all_match(params, self._shapes, x))  # type: ignore[attr-defined]
        except (KeyError, TypeError, AttributeError, IndexError):
            ok = False
        if not ok:
            self._diagnose(params, x)
        return out

    def _state_shape(self, x: Tensor) -> tuple[int, ...]:
        lead: tuple[int, ...] = (self.num_layers * self._dirs,)
        if x.ndim == 3:
            lead += (x.shape[0] if self.batch_first else x.shape[1],)
        return (*lead, self.hidden_size)

    def _run(self, params: Params, x: Tensor, h0: Any, key: Tensor | None,
             step: Callable[..., Carry], out_of: Callable[[Carry], Tensor],
             init: Callable[[int], Carry]) -> tuple[Tensor, list[Carry]]:
        """The stacked layers: returns the last layer's output ``(T, N, D*H)`` and each
        (layer, direction)'s final carry, in ``nn.GRU``/``nn.LSTM``'s order."""
        weights = self._weights(params, x)
        if key is not None:
            check_key(self.api, key)
        unbatched = x.ndim == 2
        seq = x.unsqueeze(1) if unbatched else (x.transpose(0, 1) if self.batch_first else x)
        keys = (split_key(key, self.num_layers) if key is not None and self.dropout > 0
                and self.num_layers > 1 else None)
        finals: list[Carry] = []
        dirs = self._dirs
        for layer in range(self.num_layers):
            if layer and keys is not None:
                seq = dropout(seq, self.dropout, keys[layer], self.api)
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh = weights[layer * dirs + d]
                xp = F.linear(seq, w_ih, b_ih)  # every time step at once
                ys, last = _scan_loop(functools.partial(_step_with, step, w_hh, b_hh),
                                      init(layer * dirs + d), xp, d == 1, out_of)
                outs.append(ys)
                finals.append(last)
            seq = outs[0] if dirs == 1 else torch.cat(outs, -1)
        out = seq.squeeze(1) if unbatched else (seq.transpose(0, 1) if self.batch_first
                                                else seq)
        return out, finals


def _step_with(step: Callable[..., Carry], w_hh: Tensor, b_hh: Tensor | None, xt: Tensor,
               carry: Carry) -> Carry:
    return step(xt, carry, w_hh, b_hh)


def _state_arg(api: str, name: str, t: Any, want: tuple[int, ...], x: Tensor) -> Tensor:
    """``t`` checked against ``want``; zeros when ``None``."""
    if t is None:
        return x.new_zeros(want)
    if not (isinstance(t, Tensor) and t.shape == want and t.dtype == x.dtype
            and t.device == x.device):
        _check_state_tensor(api, name, t, want, x)
    out: Tensor = t
    return out


@dataclasses.dataclass(frozen=True)
class GRU(_RNN):
    """A multi-layer GRU over sequences, the same maths and parameters as ``nn.GRU``.

    Params per layer ``k`` (and ``_reverse`` for the backward direction when
    ``bidirectional``): ``weight_ih_l{k} (3*hidden, in_k)``, ``weight_hh_l{k}
    (3*hidden, hidden)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (``(3*hidden,)``), with
    ``in_0 = input_size`` and ``in_k = D * hidden`` above (``D = 2`` if bidirectional),
    all from ``U(-1/sqrt(hidden), 1/sqrt(hidden))``.

    Args:
        input_size, hidden_size: feature sizes.
        num_layers: stacked layers.
        bias: whether to add the biases.
        batch_first: ``x`` is ``(N, T, input)`` instead of ``(T, N, input)``.
        dropout: dropout on the outputs of every layer but the last, active only when a
            ``key`` is passed (torch's module draws it in training mode).
        bidirectional: run a second, backward direction and concatenate.

    Call ``gru(params, x, hx=None, *, key=None)`` with ``x: (T, N, input_size)`` (or
    ``(N, T, input_size)`` when ``batch_first``, or unbatched ``(T, input_size)``) and
    ``hx: (D*num_layers, N, hidden)`` (zeros when ``None``). Returns ``(output, h_n)``
    with ``output: (T, N, D*hidden)`` (batch first if ``batch_first``) and ``h_n`` like
    ``hx``, as ``nn.GRU``.

    Example:
        >>> import torch, ftx
        >>> gru = ftx.nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        >>> out, h_n = gru(gru.init(ftx.random.key(0)), torch.ones(5, 7, 3))
        >>> out.shape, h_n.shape
        (torch.Size([5, 7, 8]), torch.Size([4, 5, 4]))
    """

    _GATES: ClassVar[int] = 3
    _TWIN: ClassVar[type[nn.Module]] = nn.GRU
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False

    def __call__(self, params: Params, x: Tensor, hx: Tensor | None = None, *,
                 key: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x: (T, N, input) -> (output: (T, N, D*hidden), h_n: (D*layers, N, hidden))``."""
        self._weights(params, x)  # checks params and x before hx
        h0 = _state_arg(self.api, "hx", hx, self._state_shape(x), x)
        if x.ndim == 2:
            h0 = h0.unsqueeze(1)
        out, finals = self._run(params, x, h0, key, gru_step, lambda h: h, lambda i: h0[i])
        h_n = torch.stack(finals)
        return out, (h_n.squeeze(1) if x.ndim == 2 else h_n)


@dataclasses.dataclass(frozen=True)
class LSTM(_RNN):
    """A multi-layer LSTM over sequences, the same maths and parameters as ``nn.LSTM``.

    Params as :class:`GRU` with ``4*hidden`` rows (gates input, forget, cell, output).
    ``proj_size`` is not supported.

    Args:
        input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional:
            as :class:`GRU` and ``nn.LSTM``.

    Call ``lstm(params, x, hx=None, *, key=None)`` with ``hx = (h0, c0)``, each
    ``(D*num_layers, N, hidden)`` (zeros when ``None``). Returns
    ``(output, (h_n, c_n))`` as ``nn.LSTM``.

    Example:
        >>> import torch, ftx
        >>> lstm = ftx.nn.LSTM(3, 4, num_layers=2)
        >>> out, (h_n, c_n) = lstm(lstm.init(ftx.random.key(0)), torch.ones(7, 5, 3))
        >>> out.shape, h_n.shape, c_n.shape
        (torch.Size([7, 5, 4]), torch.Size([2, 5, 4]), torch.Size([2, 5, 4]))
    """

    _GATES: ClassVar[int] = 4
    _TWIN: ClassVar[type[nn.Module]] = nn.LSTM
    input_size: int
    hidden_size: int
    num_layers: int = 1
    bias: bool = True
    batch_first: bool = False
    dropout: float = 0.0
    bidirectional: bool = False

    def __call__(self, params: Params, x: Tensor,
                 hx: tuple[Tensor, Tensor] | None = None, *,
                 key: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """``x: (T, N, input) -> (output, (h_n, c_n))``."""
        self._weights(params, x)
        want = self._state_shape(x)
        if hx is None:
            h0 = c0 = x.new_zeros(want)
        elif not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(msg(self.api, "hx must be a pair (h0, c0) of tensors or None",
                                describe(hx), "Pass hx=(h0, c0)."))
        else:
            h0 = _state_arg(self.api, "hx[0]", hx[0], want, x)
            c0 = _state_arg(self.api, "hx[1]", hx[1], want, x)
        if x.ndim == 2:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)
        out, finals = self._run(params, x, None, key, lstm_step, lambda hc: hc[0],
                                lambda i: (h0[i], c0[i]))
        h_n = torch.stack([h for h, _ in finals])
        c_n = torch.stack([c for _, c in finals])
        if x.ndim == 2:
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)
        return out, (h_n, c_n)
