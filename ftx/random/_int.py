"""Exact unsigned modular arithmetic on ``int64`` tensors, for JAX's ``randint``.

JAX's ``randint`` works in unsigned 32- or 64-bit integers with wrapping
products. ``torch`` has neither ``uint64`` arithmetic nor ``uint32`` shifts on
CPU, so these helpers hold unsigned values as ``int64`` bit patterns (values
at or above ``2**63`` read as negative) and reproduce JAX's results exactly,
with every intermediate product kept below ``2**63``.
"""

from __future__ import annotations

import torch

from ._threefry import MASK32, random_bits, split

_LOW63 = (1 << 63) - 1
_MIN64 = -(1 << 63)


def _addmod(a: torch.Tensor, c: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(a + c) mod s`` for ``0 <= a, c < s < 2**63`` without overflow."""
    t = a - (s - c)
    return torch.where(t >= 0, t, a + c)


def _mulmod_small(a: torch.Tensor, b: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``(a * b) mod s`` for ``0 <= a, b < s <= 2**32``, products kept below ``2**49``."""
    hi = ((a * (b >> 16)) % s) << 16
    return (hi + a * (b & 0xFFFF)) % s


def _umod64(x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``x mod s`` for unsigned 64-bit patterns ``x`` and ``s >= 1`` held in ``int64``."""
    big = s < 0  # s >= 2**63: x < 2 * s, so one subtraction at most
    x_lt_s = (x ^ _MIN64) < (s ^ _MIN64)
    big_result = torch.where(x_lt_s, x, x - s)
    s_pos = torch.where(big, 1, s)
    r = (x & _LOW63) % s_pos
    top = _addmod(_LOW63 % s_pos, 1 % s_pos, s_pos)  # 2**63 mod s
    small_result = torch.where(x < 0, _addmod(r, top, s_pos), r)
    return torch.where(big, big_result, small_result)


def _offset32(hi: torch.Tensor, lo: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """JAX's 32-bit ``random_offset``: uint32 wrapping arithmetic, exact in int64."""
    mult = (((65536 % span) ** 2) & MASK32) % span  # 2**32 wraps to 0 in uint32
    a = hi % span
    prod = ((a & 0xFFFF) * mult + (((a >> 16) * mult) & 0xFFFF) * 65536) & MASK32
    return ((prod + lo % span) & MASK32) % span


def _offset64(hi: torch.Tensor, lo: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
    """JAX's 64-bit ``random_offset`` on unsigned patterns (``span >= 1`` unsigned)."""
    small = (span > 0) & (span <= 1 << 32)
    s_small = torch.where(small, span, 1)
    m0 = (1 << 32) % s_small
    mult = _mulmod_small(m0, m0, s_small)
    a = _umod64(hi, s_small)
    b = _umod64(lo, s_small)
    small_result = _addmod(_mulmod_small(a, mult, s_small), b, s_small)
    # span > 2**32: 2**32 % span == 2**32 (or 0 at 2**32), its square wraps to 0 in uint64.
    return torch.where(small, small_result, _umod64(lo, span))


def randint(
    key: torch.Tensor,
    shape: tuple[int, ...],
    minval: torch.Tensor,
    maxval: torch.Tensor,
    nbits: int,
    dtype_min: int,
    dtype_max: int,
) -> torch.Tensor:
    """JAX's ``_randint`` for a signed ``nbits``-bit dtype, returned as ``int64``.

    Args:
        key: a single key, ``(2,)``.
        shape: the output shape; ``minval``/``maxval`` (``int64``) broadcast to it.
        nbits: 32 or 64, the width JAX samples in.
        dtype_min, dtype_max: the sampled dtype's range, for clipping as JAX does.
    """
    out_of_range = maxval > dtype_max
    minval = minval.clamp(dtype_min, dtype_max)
    maxval = maxval.clamp(dtype_min, dtype_max)
    keys = split(key, (2,))
    hi = random_bits(keys[0], nbits, shape)
    lo = random_bits(keys[1], nbits, shape)
    if nbits == 32:
        span = (maxval - minval) & MASK32
        span = torch.where(maxval <= minval, 1, span)
        span = torch.where(out_of_range & (maxval > minval), (span + 1) & MASK32, span)
        # span + 1 wraps to 0 only for the full 2**32 range, where XLA's x % 0 == x
        # makes the offset the low word itself.
        offset = torch.where(span == 0, lo, _offset32(hi, lo, span.clamp_min(1)))
    else:
        span = torch.where(maxval <= minval, 1, maxval - minval)
        offset = _offset64(hi, lo, span)
    return minval + offset
