"""ftx.random: JAX-compatible splittable random keys in plain tensor ops.

Contract: randomness is a pure function of a key. A key is an ordinary
``torch.Tensor`` of dtype ``int64`` and shape ``(2,)`` holding two unsigned
32-bit words, exactly what ``jax.random.key_data(jax.random.key(seed))``
holds; a batch of keys has shape ``(..., 2)``. Keys are never consumed or
mutated: derive new ones with :func:`split` or :func:`fold_in`. Samplers take a
single key; map them over a batch of keys with ``ftx.vmap`` /
``torch.func.vmap``. Everything is computed with tensor ops on the key's
device, so it works under ``vmap``, ``grad`` and ``torch.compile`` and gives
the same numbers on CPU and CUDA.

Parity with JAX's default PRNG (threefry-2x32, ``jax_threefry_partitionable``
on): :func:`key`, :func:`key_data`, :func:`split`, :func:`fold_in`,
:func:`bits`, :func:`randint` (non-empty ranges), :func:`bernoulli` and
:func:`permutation` give JAX's values bit for bit (integers: the same on every
machine). :func:`uniform` and :func:`normal` follow one documented arithmetic,
the same on every CPU and device: the multiply-add of ``uniform`` is rounded once
in every dtype (a fused multiply-add), and ``normal`` is what XLA's CPU backend
compiles ``erf_inv`` to on a CPU with FMA (see ``ftx/random/_erfinv.py``). JAX itself
gives those numbers bit for bit only where its hardware rounds the same way; see
docs/random.md ("Which arithmetic").
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import torch

from .._internal.errors import describe, msg
from . import _checks as C
from . import _compiled, _threefry
from . import _int as _random_int
from ._erfinv import erfinv, fused_multiply_add, round_sum

__all__ = [
    "bernoulli",
    "bits",
    "fold_in",
    "key",
    "key_data",
    "normal",
    "permutation",
    "randint",
    "split",
    "truncated_normal",
    "uniform",
]

Shape = int | Sequence[int]

_UINTS = {torch.uint8: 8, torch.uint16: 16, torch.uint32: 32, torch.uint64: 64}
_INTS = {torch.int8: 8, torch.int16: 16, torch.int32: 32, torch.int64: 64, torch.uint8: 8}


# ----------------------------------------------------------------------- keys


def key(seed: int | torch.Tensor, *, device: torch.device | str | None = None) -> torch.Tensor:
    """Make a key from an integer seed, as ``jax.random.key_data(jax.random.key(seed))``.

    The seed is read as a signed 64-bit integer and split into its high and low
    32-bit words (JAX's ``threefry_seed`` with 64-bit integers enabled; seeds in
    ``[0, 2**32)`` give the same key in JAX's default 32-bit mode too).

    Args:
        seed: a Python int in ``[-2**63, 2**63)`` or an integer tensor of shape ``()``.
        device: where the key lives (default: the seed tensor's device, or CPU).

    Returns:
        The key, ``int64`` of shape ``(2,)``.

    Example:
        >>> import ftx
        >>> ftx.random.key(42)
        tensor([ 0, 42])
        >>> ftx.random.key(-1)
        tensor([4294967295, 4294967295])
    """
    device = C.check_device("key", device)
    if isinstance(seed, torch.Tensor):
        if (
            seed.ndim != 0
            or seed.is_floating_point()
            or seed.is_complex()
            or seed.dtype == torch.bool
        ):
            raise TypeError(
                msg(
                    "random.key",
                    "seed must be an integer scalar",
                    describe(seed),
                    "Map over seeds with ftx.vmap.",
                )
            )
        s = seed.to(device=device, dtype=torch.int64)
    elif (seed_int := C.as_int(seed)) is None:
        raise TypeError(msg("random.key", "seed must be an int", describe(seed), "E.g. key(0)."))
    elif not -(1 << 63) <= seed_int < (1 << 63):
        raise ValueError(
            msg(
                "random.key",
                "seed must fit in 64 bits, in [-2**63, 2**63)",
                repr(seed),
                "Reduce it, e.g. seed % 2**63.",
            )
        )
    else:
        s = torch.tensor(seed_int, dtype=torch.int64, device=device)
    return torch.stack([(s >> 32) & _threefry.MASK32, s & _threefry.MASK32])


def key_data(key: torch.Tensor) -> torch.Tensor:
    """Check that ``key`` is a key (or a batch of keys) and return its data.

    Args:
        key: ``int64`` of shape ``(..., 2)``.

    Returns:
        ``key`` itself, ``(..., 2)``: the two unsigned 32-bit words of each key.

    Example:
        >>> import ftx
        >>> ftx.random.key_data(ftx.random.key(7))
        tensor([0, 7])
    """
    return C.check_key("key_data", key, batched=True)


@C.memory_errors("split")
def split(key: torch.Tensor, num: int | Sequence[int] = 2) -> torch.Tensor:
    """Split a key into ``num`` new keys, as ``jax.random.split``.

    Args:
        key: a single key, ``(2,)``.
        num: how many keys (an int), or their batch shape (a tuple of ints).

    Returns:
        New keys, ``(num, 2)`` (or ``(*num, 2)`` for a tuple).

    Example:
        >>> import ftx
        >>> ftx.random.split(ftx.random.key(0))
        tensor([[1797259609, 2579123966],
                [ 928981903, 3453687069]])
    """
    k = C.check_key("split", key)
    shape = C.check_shape("split", num, "num")
    return _threefry.split(k, shape)


def fold_in(key: torch.Tensor, data: int | torch.Tensor) -> torch.Tensor:
    """Mix an integer into a key, as ``jax.random.fold_in``.

    Args:
        key: a single key, ``(2,)``.
        data: an int in ``[0, 2**32)`` or an integer tensor of shape ``()`` (read
            modulo ``2**32``, as a cast to ``uint32``).

    Returns:
        A new key, ``(2,)``.

    Example:
        >>> import ftx
        >>> ftx.random.fold_in(ftx.random.key(0), 1)
        tensor([ 928981903, 3453687069])
    """
    k = C.check_key("fold_in", key)
    if isinstance(data, torch.Tensor):
        if data.ndim != 0 or data.is_floating_point() or data.is_complex():
            raise TypeError(
                msg(
                    "random.fold_in",
                    "data must be an integer scalar",
                    describe(data),
                    "Map over data with ftx.vmap.",
                )
            )
        d = data.to(device=k.device, dtype=torch.int64)
    elif (data_int := C.as_int(data)) is None:
        raise TypeError(
            msg("random.fold_in", "data must be an int", describe(data), "E.g. fold_in(key, 3).")
        )
    elif not 0 <= data_int < 1 << 32:
        raise ValueError(
            msg(
                "random.fold_in",
                "data must be in [0, 2**32)",
                repr(data),
                "Reduce it modulo 2**32, or fold in its words one at a time.",
            )
        )
    else:
        d = torch.tensor(data_int, dtype=torch.int64, device=k.device)
    return _threefry.fold_in(k, d)


# ------------------------------------------------------------------- samplers


@C.memory_errors("bits")
def bits(key: torch.Tensor, shape: Shape = (), dtype: torch.dtype | None = None) -> torch.Tensor:
    """Uniform random bits, as ``jax.random.bits``, held in ``int64``.

    Args:
        key: a single key, ``(2,)``.
        shape: the output shape.
        dtype: the unsigned width: ``torch.uint8``, ``uint16``, ``uint32``
            (default) or ``uint64``. ``uint64`` values at or above ``2**63``
            come back as the same 64-bit pattern, i.e. negative ``int64``.

    Returns:
        ``int64`` of shape ``shape`` with values in ``[0, 2**width)``.

    Example:
        >>> import ftx
        >>> ftx.random.bits(ftx.random.key(42), (3,))
        tensor([2098992034, 2919706841, 2646866425])
    """
    k = C.check_key("bits", key)
    s = C.check_shape("bits", shape)
    if dtype is not None and not isinstance(dtype, torch.dtype):
        raise TypeError(
            msg(
                "random.bits",
                "dtype must be a torch.dtype (or None)",
                describe(dtype),
                "E.g. dtype=torch.uint32.",
            )
        )
    width = 32 if dtype is None else _UINTS.get(dtype)
    if width is None:
        raise ValueError(
            msg(
                "random.bits",
                "dtype must be torch.uint8, uint16, uint32 or uint64",
                str(dtype),
                "Draw unsigned bits and convert them.",
            )
        )
    return _threefry.random_bits(k, width, s)


def _uniform(
    key: torch.Tensor,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    minval: torch.Tensor,
    maxval: torch.Tensor,
    *,
    exact: bool = False,
) -> torch.Tensor:
    """JAX's ``_uniform`` without validation: mantissa bits scaled into ``[minval, maxval)``.

    ``floats * (maxval - minval) + minval`` is one fused multiply-add in ``dtype``: the
    exact value rounded once (the subtraction is rounded to ``dtype`` first, as JAX's
    program reads). ``exact=True`` promises that every step is exact (bounds such as
    ``(0, 1)``), so plain ops give the same numbers faster.
    """
    nbits, nmant = C.FLOATS[dtype]
    rng_bits = 8 if nmant < 8 else nbits
    raw = _threefry.random_bits(key, rng_bits, shape)
    if rng_bits == 64:
        mant = (raw >> 12) & ((1 << 52) - 1)
    else:
        mant = raw >> (rng_bits - nmant)
    # JAX ORs the mantissa into 1.0's bit pattern and subtracts 1; both steps are exact,
    # so scaling the integer mantissa by 2**-nmant gives the same floats without a bitcast.
    span = maxval - minval
    floats = mant.to(dtype) * (2.0**-nmant)
    if exact:
        return torch.maximum(minval, floats * span + minval)
    if nbits == 16:
        # float16/bfloat16: the product is exact in float64, the sum rounded once (to odd
        # in float64 and float32, then to nearest in dtype: no double rounding)
        value = round_sum(floats.double() * span.double(), minval.double().expand_as(floats), dtype)
    else:
        value = fused_multiply_add(floats, span.expand_as(floats), minval.expand_as(floats))
    if span.requires_grad or minval.requires_grad:
        # the value rounded once, the gradient of the plain formula
        plain = floats * span + minval
        value = value.detach() + (plain - plain.detach())
    return torch.maximum(minval, value)


def _check_bounds(
    api: str, lo: torch.Tensor, hi: torch.Tensor, minval: object, maxval: object
) -> None:
    """``minval <= maxval``, both finite and ``maxval - minval`` finite in their dtype."""
    C.check_order(api, minval, maxval, "minval,maxval")
    if lo.device.type == "meta" or not C.eager(lo, hi):
        return
    if not bool((lo.isfinite() & hi.isfinite() & (hi - lo).isfinite()).all()):
        info = torch.finfo(lo.dtype)
        raise ValueError(
            msg(
                f"random.{api}",
                f"minval, maxval and maxval - minval must be finite in {lo.dtype} "
                f"(magnitudes up to {info.max:.6g})",
                f"minval={minval!r}, maxval={maxval!r}",
                "Narrow the bounds or draw in a wider dtype.",
            )
        )


@C.memory_errors("uniform")
def uniform(
    key: torch.Tensor,
    shape: Shape = (),
    dtype: torch.dtype = torch.float32,
    minval: float | torch.Tensor = 0.0,
    maxval: float | torch.Tensor = 1.0,
) -> torch.Tensor:
    """Uniform floats in ``[minval, maxval)``, as ``jax.random.uniform``.

    Args:
        key: a single key, ``(2,)``.
        shape: the output shape.
        dtype: float16, bfloat16, float32 or float64.
        minval, maxval: bounds (numbers or tensors broadcastable to ``shape``),
            ``minval <= maxval``.

    Returns:
        ``dtype`` tensor of shape ``shape`` on the key's device.

    Example:
        >>> import ftx
        >>> ftx.random.uniform(ftx.random.key(0), (3,), minval=-1.0, maxval=1.0)
        tensor([ 0.8953,  0.9572, -0.3354])
    """
    k = C.check_key("uniform", key)
    s = C.check_shape("uniform", shape)
    dt = C.check_float_dtype("uniform", dtype)
    lo = C.as_tensor("uniform", "minval", minval, dt, k.device)
    hi = C.as_tensor("uniform", "maxval", maxval, dt, k.device)
    C.check_broadcast("uniform", s, lo, hi)
    _check_bounds("uniform", lo, hi, minval, maxval)
    return _uniform(k, s, dt, lo, hi)


def _scalar(x: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.scalar_tensor(x, dtype=dtype, device=device)


@C.memory_errors("normal")
def normal(
    key: torch.Tensor, shape: Shape = (), dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard normal floats, as ``jax.random.normal`` (inverse-CDF of a uniform).

    Eager float32/float64 draws on CPU run one compiled kernel (Inductor, dynamic
    shapes) once it exists. It is compiled, once for every shape, when eager draws of
    at least ``2**16`` elements of a dtype have taken 10 s in the process
    (``FTX_RANDOM_COMPILE_AFTER=seconds`` changes that; 0 compiles on the first large
    draw): the compile is a one-time cost of about 10 s with a warm Inductor cache and
    tens of seconds with an empty one, so a program that draws little (a model's
    initialisation) never pays it. Same bits as the eager route; without a C++ compiler, under
    ``torch.func`` transforms, while compiling, or with ``FTX_SLOW_ROUTES=1`` the
    draw runs eagerly and nothing is compiled. See docs/random.md ("What it costs").

    Args:
        key: a single key, ``(2,)``.
        shape: the output shape.
        dtype: float16, bfloat16, float32 or float64.

    Returns:
        ``dtype`` tensor of shape ``shape`` on the key's device.

    Example:
        >>> import ftx
        >>> ftx.random.normal(ftx.random.key(0), (3,))
        tensor([ 1.6226,  2.0253, -0.4336])
    """
    k = C.check_key("normal", key)
    s = C.check_shape("normal", shape)
    dt = C.check_float_dtype("normal", dtype)
    return _compiled.normal(k, s, dt)


def _normal_draw(k: torch.Tensor, s: tuple[int, ...], dt: torch.dtype) -> torch.Tensor:
    """``normal`` without validation: the eager tensor program (also what
    ``_compiled`` compiles)."""
    one = _scalar(1.0, dt, k.device)
    lo = torch.nextafter(-one, torch.zeros_like(one))
    # maxval - minval rounds to 2, and 2 * floats + minval is exact in every dtype
    u = _uniform(k, s, dt, lo, one, exact=True)
    sqrt2 = _scalar(math.sqrt(2.0), dt, k.device)
    if dt in (torch.float16, torch.bfloat16):
        # JAX: erf_inv in float32, rounded to dtype, times sqrt(2) rounded to dtype. The
        # first rounding is done on the bits, so that torch.compile (which keeps float16
        # intermediates in float32) cannot skip it; the product is exact in float32.
        e = _round_bits(erfinv(u.float()), C.FLOATS[dt][1])
        return (sqrt2.float() * e).to(dt)
    return sqrt2 * erfinv(u)


_compiled.register(_normal_draw)


def _round_bits(x: torch.Tensor, nmant: int) -> torch.Tensor:
    """float32 ``x`` rounded to ``nmant`` mantissa bits (to nearest, ties to even) on its
    bits; for finite values whose rounding stays in float32's normal range."""
    drop = 23 - nmant
    b = x.view(torch.int32)
    b = (b + ((1 << (drop - 1)) - 1) + ((b >> drop) & 1)) & ~((1 << drop) - 1)
    return b.view(torch.float32)


def _erf(x: torch.Tensor) -> torch.Tensor:
    return (
        torch.erf(x)
        if x.dtype in (torch.float32, torch.float64)
        else torch.erf(x.float()).to(x.dtype)
    )


@C.memory_errors("truncated_normal")
def truncated_normal(
    key: torch.Tensor,
    lower: float | torch.Tensor,
    upper: float | torch.Tensor,
    shape: Shape | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Standard normal floats truncated to ``(lower, upper)``, as ``jax.random.truncated_normal``.

    Args:
        key: a single key, ``(2,)``.
        lower, upper: bounds, numbers or tensors, ``lower < upper``.
        shape: the output shape (default: ``lower`` and ``upper`` broadcast).
        dtype: float16, bfloat16, float32 or float64.

    Returns:
        ``dtype`` tensor of shape ``shape`` in the open interval ``(lower, upper)``.

    Example:
        >>> import ftx
        >>> x = ftx.random.truncated_normal(ftx.random.key(0), -2.0, 2.0, (1000,))
        >>> bool((x > -2).all() and (x < 2).all())
        True
    """
    k = C.check_key("truncated_normal", key)
    dt = C.check_float_dtype("truncated_normal", dtype)
    lo = C.as_tensor("truncated_normal", "lower", lower, dt, k.device)
    hi = C.as_tensor("truncated_normal", "upper", upper, dt, k.device)
    if shape is None:
        s = tuple(torch.broadcast_shapes(lo.shape, hi.shape))  # type: ignore[no-untyped-call]
    else:
        s = C.check_shape("truncated_normal", shape)
        C.check_broadcast("truncated_normal", s, lo, hi)
    C.check_order("truncated_normal", lower, upper, "lower,upper", strict=True)
    sqrt2 = _scalar(math.sqrt(2.0), dt, k.device)
    a = _erf(lo / sqrt2)
    b = _erf(hi / sqrt2)
    out = sqrt2 * erfinv(_uniform(k, s, dt, a, b))
    inf = _scalar(math.inf, dt, k.device)
    return torch.clamp(out, torch.nextafter(lo.detach(), inf), torch.nextafter(hi.detach(), -inf))


@C.memory_errors("bernoulli")
def bernoulli(
    key: torch.Tensor, p: float | torch.Tensor = 0.5, shape: Shape | None = None, mode: str = "low"
) -> torch.Tensor:
    """Booleans that are ``True`` with probability ``p``, as ``jax.random.bernoulli``.

    Args:
        key: a single key, ``(2,)``.
        p: probability in ``[0, 1]``, a float (sampled in float32) or a floating
            tensor broadcastable to ``shape`` (sampled in its dtype).
        shape: the output shape (default: ``p``'s shape).
        mode: ``"low"`` (one uniform per draw) or ``"high"`` (two, exact for tiny ``p``).

    Returns:
        ``bool`` tensor of shape ``shape``.

    Example:
        >>> import ftx
        >>> ftx.random.bernoulli(ftx.random.key(0), 0.5, (4,))
        tensor([False, False,  True,  True])
    """
    k = C.check_key("bernoulli", key)
    if not isinstance(mode, str):
        raise TypeError(
            msg("random.bernoulli", "mode must be a string", describe(mode), "E.g. mode='low'.")
        )
    if mode not in ("low", "high"):
        raise ValueError(
            msg("random.bernoulli", "mode must be 'low' or 'high'", repr(mode), "E.g. mode='low'.")
        )
    if isinstance(p, torch.Tensor) and p.dtype not in C.FLOATS:
        raise TypeError(
            msg(
                "random.bernoulli",
                "p must be a float or a float16, bfloat16, float32 or float64 tensor",
                describe(p),
                "Convert it, e.g. p.float().",
            )
        )
    dt = p.dtype if isinstance(p, torch.Tensor) else torch.float32
    pt = C.as_tensor("bernoulli", "p", p, dt, k.device)
    if not isinstance(p, torch.Tensor):
        bad = not 0.0 <= p <= 1.0
    else:
        bad = C.eager(p) and bool(((p < 0) | (p > 1) | p.isnan()).any())
    if bad:
        raise ValueError(
            msg("random.bernoulli", "p must be in [0, 1]", repr(p), "Clip it, e.g. p.clamp(0, 1).")
        )
    s = tuple(pt.shape) if shape is None else C.check_shape("bernoulli", shape)
    C.check_broadcast("bernoulli", s, pt)
    zero, one = _scalar(0.0, dt, k.device), _scalar(1.0, dt, k.device)
    if mode == "low":
        return _uniform(k, s, dt, zero, one, exact=True) < pt
    u1, u2 = _uniform(k, (2, *s), dt, zero, one, exact=True).unbind(0)
    return u2 * (2.0 ** -C.FLOATS[dt][1]) < pt - u1


@C.memory_errors("randint")
def randint(
    key: torch.Tensor,
    shape: Shape,
    minval: int | torch.Tensor | None = None,
    maxval: int | torch.Tensor | None = None,
    dtype: torch.dtype = torch.int64,
    *,
    low: int | torch.Tensor | None = None,
    high: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Uniform integers in ``[minval, maxval)``, as ``jax.random.randint``.

    Bit for bit JAX's algorithm (two words of random bits reduced modulo the
    span; integers narrower than 32 bits are sampled in int32); ``int64`` matches
    JAX with 64-bit mode on.

    Args:
        key: a single key, ``(2,)``.
        shape: the output shape.
        minval, maxval: bounds, ints or integer tensors broadcastable to ``shape``,
            ``minval < maxval`` (an empty range is an error, as in ``torch.randint``;
            JAX returns ``minval`` there). ``low`` and ``high`` are keyword aliases
            (``torch.randint``'s names).
        dtype: int8, int16, int32, int64 or uint8.

    Returns:
        ``dtype`` tensor of shape ``shape``.

    Example:
        >>> import ftx
        >>> ftx.random.randint(ftx.random.key(0), (5,), 0, 10, dtype=torch.int32)
        tensor([9, 0, 2, 3, 1], dtype=torch.int32)
    """
    k = C.check_key("randint", key)
    s = C.check_shape("randint", shape)
    bounds = []
    for name, alias, value, other in (
        ("minval", "low", minval, low),
        ("maxval", "high", maxval, high),
    ):
        if (value is None) == (other is None):
            raise TypeError(
                msg(
                    "random.randint",
                    f"exactly one of {name} and {alias} is required",
                    f"{name}={value!r}, {alias}={other!r}",
                    "E.g. randint(key, shape, 0, 10) or randint(key, shape, low=0, high=10).",
                )
            )
        bounds.append(value if value is not None else other)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            msg(
                "random.randint",
                "dtype must be a torch.dtype",
                describe(dtype),
                "E.g. torch.int32.",
            )
        )
    if dtype not in _INTS:
        raise ValueError(
            msg(
                "random.randint",
                "dtype must be int8, int16, int32, int64 or uint8",
                str(dtype),
                "E.g. dtype=torch.int32; draw floats with uniform.",
            )
        )
    for name, b in zip(("minval", "maxval"), bounds):
        if isinstance(b, int) and not -(1 << 63) <= b < (1 << 63):
            raise ValueError(
                msg(
                    "random.randint",
                    f"{name} must fit in int64",
                    repr(b),
                    "Bounds are clipped to dtype's range anyway.",
                )
            )
    lo = C.as_tensor("randint", "minval", bounds[0], torch.int64, k.device, integer=True)
    hi = C.as_tensor("randint", "maxval", bounds[1], torch.int64, k.device, integer=True)
    C.check_broadcast("randint", s, lo, hi)
    C.check_order("randint", bounds[0], bounds[1], "minval,maxval", strict=True)
    info = torch.iinfo(dtype)
    if info.bits < 32:  # JAX samples narrow integers in int32 to keep the bias small
        lo = lo.clamp(info.min, info.max)
        hi = hi.clamp(info.min, info.max + 1)
    nbits = 64 if info.bits == 64 else 32
    rng = torch.iinfo(torch.int64 if nbits == 64 else torch.int32)
    out = _random_int.randint(k, s, lo, hi, nbits, rng.min, rng.max)
    return out.to(dtype)


_GATHERABLE = frozenset(
    {
        torch.bool,
        torch.uint8,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
    }
)
_SAME_SIZE_INTS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _as_ints(x: torch.Tensor) -> torch.Tensor:
    """``x``'s elements as integers of the same size (a bit view), for permuting."""
    it = _SAME_SIZE_INTS.get(x.element_size())
    if it is None:
        raise TypeError(
            msg(
                "random.permutation",
                "x must have a dtype torch can gather, or elements of 1, 2, 4 or 8 bytes",
                describe(x),
                "Permute torch.arange(n) and index x with it.",
            )
        )
    return x.view(it)


def _shuffle(key: torch.Tensor, x: torch.Tensor, axis: int) -> torch.Tensor:
    """JAX's ``_shuffle``: stable sorts by fresh 32-bit keys, enough rounds to avoid ties."""
    rounds = math.ceil(3 * math.log(max(1, x.numel())) / math.log(2**32 - 1))
    for _ in range(rounds):
        key, sub = _threefry.split(key, (2,)).unbind(0)
        sort_keys = _threefry.random_bits(sub, 32, tuple(x.shape)).to(x.device)
        order = torch.sort(sort_keys, dim=axis, stable=True).indices
        x = torch.take_along_dim(x, order, dim=axis)
    return x


@C.memory_errors("permutation")
def permutation(
    key: torch.Tensor, x: int | torch.Tensor, axis: int = 0, independent: bool = False
) -> torch.Tensor:
    """A random permutation of ``range(x)`` or of ``x``, as ``jax.random.permutation``.

    Args:
        key: a single key, ``(2,)``.
        x: an int ``n >= 0`` (permute ``arange(n)``) or a tensor with ``ndim >= 1``.
        axis: the axis of ``x`` to permute.
        independent: shuffle each slice along ``axis`` independently (default: one
            permutation applied to all of them).

    Returns:
        ``int64`` ``(n,)`` on the key's device, or a tensor like ``x``.

    Example:
        >>> import ftx
        >>> ftx.random.permutation(ftx.random.key(0), 6)
        tensor([0, 1, 5, 4, 3, 2])
    """
    k = C.check_key("permutation", key)
    if C.as_int(axis) is None:
        raise TypeError(
            msg("random.permutation", "axis must be an int", describe(axis), "E.g. axis=0.")
        )
    if not isinstance(independent, bool):
        raise TypeError(
            msg(
                "random.permutation",
                "independent must be a bool",
                describe(independent),
                "Pass True or False.",
            )
        )
    axis = operator.index(axis)
    if isinstance(x, torch.Tensor):
        C.dense("permutation", "x", x)
        C.check_size("permutation", tuple(x.shape), "x.shape")
    if isinstance(x, torch.Tensor) and x.ndim >= 1:
        if x.dtype not in _GATHERABLE:
            # torch gathers no uint16/32/64 or float8: permute the same bits as integers
            return permutation(k, _as_ints(x), axis, independent).view(x.dtype)
        if not -x.ndim <= axis < x.ndim:
            raise ValueError(
                msg(
                    "random.permutation",
                    f"axis must be in [-{x.ndim}, {x.ndim}) for x of shape {tuple(x.shape)}",
                    repr(axis),
                    "Pick an existing axis.",
                )
            )
        axis %= x.ndim
        if independent or x.ndim == 1:
            return _shuffle(k, x, axis)
        order = _shuffle(k, torch.arange(x.shape[axis], device=k.device), 0)
        return x.index_select(axis, order.to(x.device))
    n = C.as_int(x) if not isinstance(x, torch.Tensor) else None
    if isinstance(x, torch.Tensor) and not (
        x.is_floating_point() or x.is_complex() or x.dtype == torch.bool
    ):
        n = int(x.item())
    if n is None:
        raise TypeError(
            msg(
                "random.permutation",
                "x must be an int or a tensor with ndim >= 1",
                describe(x),
                "E.g. permutation(key, 10) or permutation(key, torch.arange(10)).",
            )
        )
    if n < 0:
        raise ValueError(
            msg("random.permutation", "x must be non-negative", repr(x), "Pass a count n >= 0.")
        )
    C.check_size("permutation", (n,), "x")
    return _shuffle(k, torch.arange(n, device=k.device), 0)
