"""Threefry-2x32 in plain tensor ops, laid out exactly as JAX's default PRNG.

Every 32-bit word is held in an ``int64`` tensor (``torch.uint32`` has no
shifts or additions on CPU), so additions and rotations are exact and are
brought back to 32 bits with ``& 0xFFFFFFFF``. The counter layout follows
``jax/_src/random/threefry2x32.py`` with ``jax_threefry_partitionable=True``
(the default since JAX 0.5): element ``i`` of an output of shape ``shape``
hashes the 64-bit counter ``i`` split as ``(i >> 32, i & 0xFFFFFFFF)``;
``random_bits`` keeps ``hash0 ^ hash1`` (or ``hash0 << 32 | hash1`` for 64
bits) and ``split`` keeps the pair ``(hash0, hash1)`` as the new key.
``fold_in(key, d)`` hashes the single counter pair ``(0, d)``.

All functions are pure tensor programs without data-dependent control flow,
so they run on any device and under ``torch.func`` transforms and
``torch.compile``.
"""

from __future__ import annotations

import math

import torch

MASK32 = 0xFFFFFFFF
_PARITY = 0x1BD11BDA
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: torch.Tensor, r: int) -> torch.Tensor:
    # int32: ``>>`` is arithmetic, so the bits shifted in from the sign are masked off.
    return (x << r) | ((x >> (32 - r)) & ((1 << r) - 1))


def _to32(x: torch.Tensor) -> torch.Tensor:
    """Words ``[0, 2**32)`` in int64 -> the same bits in int32 (two's complement)."""
    return (x - ((x >> 31) << 32)).to(torch.int32) if x.dtype != torch.int32 else x


def _to64(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.int64) & MASK32


def threefry2x32(
    k0: torch.Tensor, k1: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Threefry-2x32 block cipher (20 rounds) on broadcastable 32-bit words.

    Args:
        k0, k1: the key words, ``int64`` holding values in ``[0, 2**32)``.
        x0, x1: the counter words, same convention, broadcastable with the keys.

    Returns:
        ``(y0, y1)``, the hashed words, ``int64`` in ``[0, 2**32)``.
    """
    # The rounds run in int32, whose additions wrap modulo 2**32 exactly like uint32
    # (two's complement), at half the memory traffic of int64 words with masks.
    k0, k1 = k0 & MASK32, k1 & MASK32
    k2 = k0 ^ k1 ^ _PARITY
    ks = (_to32(k0), _to32(k1), _to32(k2))
    inj = [_to32((ks64 + (i + 1)) & MASK32) for i, ks64 in enumerate((k2, k0, k1, k2, k0))]
    y0 = _to32(x0) + ks[0]
    y1 = _to32(x1) + ks[1]
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            y0 = y0 + y1
            y1 = _rotl(y1, r) ^ y0
        y0 = y0 + ks[(block + 1) % 3]
        y1 = y1 + inj[block]
    return _to64(y0), _to64(y1)


def _counters(shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """JAX's ``iota_2x32_shape``: the row-major index as (high, low) 32-bit words."""
    n = math.prod(shape)
    if n <= 1 << 32:
        idx = torch.arange(n, dtype=torch.int64, device=device).reshape(shape)
        return torch.zeros((), dtype=torch.int64, device=device), idx
    # Past 2**32 the two words come from two short aranges (one per word), never one
    # arange of length n: torch 2.15 computes an arange's length in float64, so beyond
    # 2**53 it is off by one (seen on the meta device).
    rows = -(-n // (1 << 32))
    hi = torch.arange(rows, dtype=torch.int64, device=device)[:, None].expand(rows, 1 << 32)
    lo = torch.arange(1 << 32, dtype=torch.int64, device=device).expand(rows, 1 << 32)
    return hi.reshape(-1)[:n].reshape(shape), lo.reshape(-1)[:n].reshape(shape)


def hash_shape(key: torch.Tensor, shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Both hash words of every counter of ``shape`` under ``key`` (shape ``(2,)``)."""
    c_hi, c_lo = _counters(shape, key.device)
    return threefry2x32(key[..., 0], key[..., 1], c_hi, c_lo)


def random_bits(key: torch.Tensor, bit_width: int, shape: tuple[int, ...]) -> torch.Tensor:
    """JAX's ``threefry_random_bits`` (partitionable): unsigned values in ``int64``.

    For ``bit_width`` 64 the result holds the 64-bit pattern (values at or above
    ``2**63`` read as negative ``int64``).
    """
    y0, y1 = hash_shape(key, shape)
    if bit_width == 64:
        return (y0 << 32) | y1
    bits = y0 ^ y1
    if bit_width == 32:
        return bits
    return bits & ((1 << bit_width) - 1)


def split(key: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """JAX's ``threefry_split`` (fold-like): new keys of shape ``shape + (2,)``."""
    y0, y1 = hash_shape(key, shape)
    return torch.stack([y0, y1], dim=-1)


def fold_in(key: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """JAX's ``threefry_fold_in``: hash the counter pair ``(0, data)`` under ``key``."""
    zero = torch.zeros_like(data)
    y0, y1 = threefry2x32(key[..., 0], key[..., 1], zero, data & MASK32)
    return torch.stack([y0, y1], dim=-1)
