"""ftx.random against jax.random: keys, split, fold_in, bits, randint, bernoulli and
permutation bit for bit; uniform bit for bit against an exact rational reference built
from JAX's bits and close to the running JAX; normal against fixed digests and close to
the running JAX; over many seeds, shapes (scalars, size 0, odd sizes) and dtypes. No
check depends on the CPU that runs it."""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import numpy as np
import pytest
import torch

import ftx.random as fr

jax = pytest.importorskip("jax")
jr = pytest.importorskip("jax.random")

SEEDS = [0, 42, 2**40 + 5, -3]
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 0, 3), (1001,)]
FLOATS = [
    pytest.param(torch.float16, "float16", id="float16"),
    pytest.param(torch.bfloat16, "bfloat16", id="bfloat16"),
    pytest.param(torch.float32, "float32", id="float32"),
    pytest.param(torch.float64, "float64", id="float64"),
]
# Largest ulp distance from jax.random.normal on CPU. float32 and float64 reproduce what
# XLA's CPU backend compiles erf_inv to (its own log1p, the C library's float64 log,
# fused multiply-adds, correctly rounded sqrt), so they are exact there, and
# float16/bfloat16 are computed in float32.
NORMAL_ULP = {torch.float16: 0, torch.bfloat16: 0, torch.float32: 0, torch.float64: 0}


def jkey(seed: int) -> object:
    with jax.enable_x64(True):
        return jr.PRNGKey(seed)


def as_np(x: torch.Tensor) -> np.ndarray:
    return (x.float() if x.dtype == torch.bfloat16 else x).numpy()


def ulp_distance(a: np.ndarray, b: np.ndarray) -> int:
    """Largest distance in units in the last place between two float arrays of one dtype."""
    if a.size == 0:
        return 0
    it = {2: np.int16, 4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia, ib = a.view(it).astype(object), b.view(it).astype(object)
    # map the sign-magnitude float order onto integers so that -0.0 and 0.0 are neighbours
    top = 1 << (8 * a.dtype.itemsize - 1)
    fa = np.where(ia < 0, -top - ia, ia)
    fb = np.where(ib < 0, -top - ib, ib)
    return int(np.max(np.abs(fa - fb)))


def jax_float(x: object, jdtype: str) -> np.ndarray:
    arr = np.asarray(x.astype("float32") if jdtype == "bfloat16" else x)  # type: ignore[attr-defined]
    return arr


# ------------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    "seed", [0, 1, 42, -1, -(2**40), 2**31, 2**32, 2**40 + 5, 2**63 - 1, -(2**63)]
)
def test_key_matches_jax_64bit_seeds(seed: int) -> None:
    got = fr.key(seed)
    assert got.dtype == torch.int64 and got.shape == (2,)
    np.testing.assert_array_equal(got.numpy(), np.asarray(jkey(seed)))
    np.testing.assert_array_equal(fr.key_data(got).numpy(), np.asarray(jkey(seed)))


@pytest.mark.parametrize("seed", [0, 5, 2**31, 2**32 - 1])
def test_key_matches_jax_default_mode_for_32bit_seeds(seed: int) -> None:
    np.testing.assert_array_equal(fr.key(seed).numpy(), np.asarray(jr.PRNGKey(seed)))


def test_key_from_integer_tensor_seed() -> None:
    torch.testing.assert_close(fr.key(torch.tensor(2**40 + 5)), fr.key(2**40 + 5))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num", [0, 1, 2, 3, 17, (2, 3), (0,), ()], ids=str)
def test_split_matches_jax(seed: int, num: int | tuple[int, ...]) -> None:
    got = fr.split(fr.key(seed), num)
    want = np.asarray(jr.split(jkey(seed), num))
    assert got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("data", [0, 1, 12345, 2**31, 2**32 - 1])
def test_fold_in_matches_jax(seed: int, data: int) -> None:
    np.testing.assert_array_equal(
        fr.fold_in(fr.key(seed), data).numpy(), np.asarray(jr.fold_in(jkey(seed), data))
    )
    # a tensor of data folds in the same way, and wraps like a cast to uint32
    np.testing.assert_array_equal(
        fr.fold_in(fr.key(seed), torch.tensor(data - 2**32)).numpy(),
        np.asarray(jr.fold_in(jkey(seed), data)),
    )


def test_chained_split_and_fold_in_match_jax() -> None:
    k, jk = fr.key(7), jkey(7)
    for i in range(5):
        k = fr.split(fr.fold_in(k, i), 3)[i % 3]
        jk = jr.split(jr.fold_in(jk, i), 3)[i % 3]
    np.testing.assert_array_equal(k.numpy(), np.asarray(jk))


# ------------------------------------------------------------------------ bits


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize(
    "tdtype,jdtype",
    [
        (torch.uint8, "uint8"),
        (torch.uint16, "uint16"),
        (torch.uint32, "uint32"),
        (torch.uint64, "uint64"),
    ],
    ids=["uint8", "uint16", "uint32", "uint64"],
)
def test_bits_match_jax(
    seed: int, shape: tuple[int, ...], tdtype: torch.dtype, jdtype: str
) -> None:
    got = fr.bits(fr.key(seed), shape, tdtype)
    with jax.enable_x64(True):
        want = np.asarray(jr.bits(jkey(seed), shape, jdtype)).astype(np.uint64).view(np.int64)
    assert got.dtype == torch.int64 and got.shape == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_bits_default_is_uint32() -> None:
    got = fr.bits(fr.key(3), (1000,))
    np.testing.assert_array_equal(got.numpy(), np.asarray(jr.bits(jkey(3), (1000,))))
    assert int(got.min()) >= 0 and int(got.max()) < 2**32


# -------------------------------------------------------------- uniform/normal
#
# JAX's own low-precision and fused arithmetic depends on the CPU (see docs/random.md,
# "Which arithmetic"): float32/float64 `floats * (maxval - minval) + minval` and the
# erf_inv polynomials are fused multiply-adds only on CPUs with FMA, float16 is rounded
# once only on CPUs with AVX512-FP16, bfloat16 is rounded per op on every x86 CPU. So
# ftx is checked bit for bit against hardware-independent references (exact rational
# arithmetic from JAX's integer bits, and fixed digests), and against the running JAX
# exactly only where every step is exact, else within the documented tolerance.

# (explicit mantissa bits, smallest normal exponent, largest finite value) per dtype
FORMATS = {
    torch.float16: (10, -14, Fraction(65504)),
    torch.bfloat16: (7, -126, Fraction(2**128 - 2**120)),
    torch.float32: (23, -126, Fraction(2**128 - 2**104)),
    torch.float64: (52, -1022, Fraction(2**1024 - 2**971)),
}
RNG_BITS = {torch.float16: 16, torch.bfloat16: 8, torch.float32: 32, torch.float64: 64}
JAX_UINT = {8: "uint8", 16: "uint16", 32: "uint32", 64: "uint64"}


def round_to(x: Fraction, dtype: torch.dtype) -> Fraction:
    """``x`` rounded to nearest (ties to even) in ``dtype``, in exact integer arithmetic."""
    mant, emin, largest = FORMATS[dtype]
    if x == 0:
        return x
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    e = max(e - 1 if Fraction(2) ** e > a else e, emin)
    q = a / Fraction(2) ** (e - mant)
    n, r = divmod(q.numerator, q.denominator)
    if 2 * r > q.denominator or (2 * r == q.denominator and n % 2):
        n += 1
    v = n * Fraction(2) ** (e - mant)
    if v > largest:  # overflow: as_float reads anything beyond the largest finite as inf
        v = 2 * largest
    return v if x > 0 else -v


def as_float(x: Fraction, dtype: torch.dtype) -> float:
    return math.copysign(math.inf, x) if abs(x) > FORMATS[dtype][2] else float(x)


def uniform_reference(
    bits: np.ndarray, dtype: torch.dtype, minval: float, maxval: float
) -> np.ndarray:
    """ftx's documented uniform from JAX's random bits, in exact rational arithmetic:
    ``max(minval, RN(floats * RN(maxval - minval) + minval))``, every RN to ``dtype``."""
    nmant = FORMATS[dtype][0]
    width = RNG_BITS[dtype]
    b = bits.astype(np.uint64)
    mant = (b >> np.uint64(12)) if width == 64 else b >> np.uint64(width - nmant)
    lo, hi = round_to(Fraction(minval), dtype), round_to(Fraction(maxval), dtype)
    span = round_to(hi - lo, dtype)
    table = {
        int(m): as_float(max(lo, round_to(Fraction(int(m), 2**nmant) * span + lo, dtype)), dtype)
        for m in np.unique(mant)
    }
    return np.array([table[int(m)] for m in mant.reshape(-1)], dtype=np.float64).reshape(bits.shape)


def jax_bits(seed: int, shape: tuple[int, ...], dtype: torch.dtype) -> np.ndarray:
    with jax.enable_x64(True):
        return np.asarray(jr.bits(jkey(seed), shape, JAX_UINT[RNG_BITS[dtype]]))


def jax_tolerance(dtype: torch.dtype, *bounds: float) -> float:
    """How far JAX's uniform may be from ftx's: JAX rounds the product separately on some
    CPUs (half an ulp of the product) and then the sum (another ulp of the result)."""
    scale = max(abs(bounds[0]), abs(bounds[1]), abs(bounds[1] - bounds[0]))
    return 2.0 * 2.0 ** -FORMATS[dtype][0] * scale


UNIFORM_BOUNDS = [(-2.0, 3.0), (5.0, 5.0), (0.0, 1.0), (-1.0, 1.0), (1e-3, 77.0), (-1000.0, 3.0)]
# bounds where every step is exact, so JAX's output is the same on every CPU
EXACT_BOUNDS = [(5.0, 5.0), (0.0, 1.0), (-1.0, 1.0)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("tdtype,jdtype", FLOATS)
@pytest.mark.parametrize("bounds", UNIFORM_BOUNDS, ids=str)
def test_uniform_matches_reference(
    seed: int,
    shape: tuple[int, ...],
    tdtype: torch.dtype,
    jdtype: str,
    bounds: tuple[float, float],
) -> None:
    """Bit for bit the exact value rounded once, drawn from JAX's bits."""
    got = fr.uniform(fr.key(seed), shape, tdtype, *bounds)
    want = uniform_reference(jax_bits(seed, shape, tdtype), tdtype, *bounds)
    assert got.dtype == tdtype and tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.double().numpy(), want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tdtype,jdtype", FLOATS)
@pytest.mark.parametrize("bounds", UNIFORM_BOUNDS, ids=str)
def test_uniform_close_to_jax(
    seed: int, tdtype: torch.dtype, jdtype: str, bounds: tuple[float, float]
) -> None:
    """The running JAX: exact where every step is exact, else within one rounding."""
    got = fr.uniform(fr.key(seed), (1001,), tdtype, *bounds)
    with jax.enable_x64(True):
        want = jax_float(jr.uniform(jkey(seed), (1001,), jdtype, *bounds), jdtype)
    if bounds in EXACT_BOUNDS:
        assert ulp_distance(as_np(got), want) == 0
    else:
        np.testing.assert_allclose(
            got.double().numpy(),
            want.astype(np.float64),
            rtol=0,
            atol=jax_tolerance(tdtype, *bounds),
        )


# bounds whose sum is a float16 midpoint plus a tiny minval: a double rounding (float64 or
# float32 first, then float16) would tie to even and miss
@pytest.mark.parametrize(
    "tdtype,bounds",
    [
        (torch.float16, (2.0**-24, 48.0)),
        (torch.float16, (-(2.0**-24), 48.0)),
        (torch.float16, (2.0**-14, 40000.0)),
        (torch.bfloat16, (2.0**-100, 3.0e5)),
        (torch.bfloat16, (-(2.0**-126), 7.0)),
        (torch.float32, (2.0**-120, 2.0**40 * 3)),
        (torch.float64, (2.0**-900, 3.0 * 2.0**100)),
    ],
    ids=str,
)
def test_uniform_rounds_once_on_hard_bounds(
    tdtype: torch.dtype, bounds: tuple[float, float]
) -> None:
    got = fr.uniform(fr.key(1), (4096,), tdtype, *bounds)
    want = uniform_reference(jax_bits(1, (4096,), tdtype), tdtype, *bounds)
    np.testing.assert_array_equal(got.double().numpy(), want)


def test_uniform_tensor_bounds_match_reference_and_jax() -> None:
    lo = torch.tensor([-1.0, 0.0, 10.0])
    hi = torch.tensor([1.0, 0.5, 20.0])
    got = fr.uniform(fr.key(4), (2, 3), minval=lo, maxval=hi)
    bits = jax_bits(4, (2, 3), torch.float32)
    want = np.stack(
        [
            uniform_reference(bits[:, j], torch.float32, float(lo[j]), float(hi[j]))
            for j in range(3)
        ],
        axis=1,
    )
    np.testing.assert_array_equal(got.double().numpy(), want)
    jax_out = np.asarray(jr.uniform(jkey(4), (2, 3), minval=lo.numpy(), maxval=hi.numpy()))
    np.testing.assert_allclose(
        got.numpy(), jax_out, rtol=0, atol=jax_tolerance(torch.float32, 10.0, 20.0)
    )


def digest(arrays: list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def bits_of(x: torch.Tensor) -> np.ndarray:
    """The stored bit patterns of a float tensor (bfloat16 included), every NaN as +NaN."""
    x = torch.where(x.isnan(), torch.full_like(x, math.nan).abs(), x)
    it = {2: torch.int16, 4: torch.int32, 8: torch.int64}[x.element_size()]
    return x.contiguous().view(it).numpy()


NORMAL_SHAPES = [*SHAPES, (1 << 15,)]
# sha256 (first 16 hex digits) of the bit patterns of normal(key(seed), shape, dtype) over
# SEEDS x NORMAL_SHAPES. Recorded from jax.random.normal (JAX 0.10.2) on an x86-64 CPU with
# FMA, where XLA's CPU code is the arithmetic ftx documents, and equal to ftx's output with
# torch's default, AVX2 and AVX512 kernels (ATEN_CPU_CAPABILITY) and the emulated fma.
NORMAL_DIGESTS = {
    torch.float16: "c70b19fd603f5565",
    torch.bfloat16: "3b4c499eafec1e1a",
    torch.float32: "753f63f11f9b7f12",
    torch.float64: "5896cf684f61102c",
}
# Largest ulp distance from the running jax.random.normal. On a CPU without FMA, XLA
# neither fuses erf_inv's multiply-adds nor gets glibc's FMA build of log: 3 ulp for
# float32 and float64 there (measured with XLA_FLAGS=--xla_cpu_max_isa=AVX and
# GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA); 0 with FMA. float16/bfloat16 did not move.
NORMAL_ULP = {torch.float16: 1, torch.bfloat16: 1, torch.float32: 4, torch.float64: 4}


@pytest.mark.parametrize("tdtype,jdtype", FLOATS)
def test_normal_matches_fixed_digest(tdtype: torch.dtype, jdtype: str) -> None:
    got = [bits_of(fr.normal(fr.key(s), shape, tdtype)) for s in SEEDS for shape in NORMAL_SHAPES]
    assert digest(got) == NORMAL_DIGESTS[tdtype]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", NORMAL_SHAPES, ids=str)
@pytest.mark.parametrize("tdtype,jdtype", FLOATS)
def test_normal_close_to_jax(
    seed: int, shape: tuple[int, ...], tdtype: torch.dtype, jdtype: str
) -> None:
    got = fr.normal(fr.key(seed), shape, tdtype)
    with jax.enable_x64(True):
        want = jax_float(jr.normal(jkey(seed), shape, jdtype), jdtype)
    assert got.dtype == tdtype and tuple(got.shape) == want.shape
    assert ulp_distance(as_np(got), want) <= NORMAL_ULP[tdtype]


@pytest.mark.parametrize("tdtype", [torch.float16, torch.bfloat16], ids=str)
def test_half_precision_normal_is_rounded_float32(tdtype: torch.dtype) -> None:
    """float16/bfloat16 normal = RN(RN(sqrt 2) * RN(erf_inv32(u))), u exact from the bits."""
    from ftx.random._erfinv import erfinv

    bits = jax_bits(0, (1 << 15,), tdtype)
    lo = float(torch.nextafter(torch.tensor(-1.0, dtype=tdtype), torch.tensor(0.0, dtype=tdtype)))
    u = uniform_reference(bits, tdtype, lo, 1.0)
    e = erfinv(torch.from_numpy(u).float()).to(tdtype).double().numpy()
    s2 = float(torch.tensor(math.sqrt(2.0), dtype=tdtype))
    want = [as_float(round_to(Fraction(s2) * Fraction(float(x)), tdtype), tdtype) for x in e]
    got = fr.normal(fr.key(0), (1 << 15,), tdtype)
    np.testing.assert_array_equal(got.double().numpy(), np.array(want))


def test_float64_erfinv_digest_and_close_to_jax() -> None:
    """float64 erf_inv on 2**18 uniform draws and on points down to 2**-53 from +-1 (every
    branch: the Cephes log1p, glibc's log, all three polynomials), plus the edges: fixed
    digest (XLA's CPU code with FMA), and the running JAX within NORMAL_ULP."""
    from jax import lax

    from ftx.random._erfinv import erfinv

    rng = np.random.default_rng(0)
    near = 1.0 - np.ldexp(rng.uniform(0.5, 1.0, 4096), -rng.integers(1, 54, 4096))
    u = np.concatenate(
        [
            rng.uniform(-1.0, 1.0, 1 << 18),
            near,
            -near,
            1.0 - np.ldexp(1.0, -np.arange(1, 54)),
            # (no subnormal inputs or results: XLA's CPU code flushes them to zero)
            [0.0, -0.0, 1.0, -1.0, 1.5, -2.0, 1e-307, 1e-300],
        ]
    )
    got = erfinv(torch.from_numpy(u))
    assert digest([bits_of(got)]) == "bfca3ad4238871a9"
    with jax.enable_x64(True):
        want = np.asarray(jax.jit(lax.erf_inv)(u))
    got_np = got.numpy()
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got_np), nan)
    assert ulp_distance(got_np[~nan], want[~nan]) <= NORMAL_ULP[torch.float64]


def test_normal_float32_on_every_uniform_float() -> None:
    """normal is sqrt(2) * erf_inv(u): all 2**23 floats u that the uniform can draw, against
    a fixed digest (XLA's CPU code with FMA) and the running JAX within NORMAL_ULP."""
    from jax import lax

    from ftx.random._erfinv import erfinv

    lo = np.nextafter(np.float32(-1), np.float32(0))
    mant = np.arange(1 << 23)
    # (1.mant - 1) * (1 - lo) + lo: 1 - lo rounds to 2, and the rest is exact
    u = (mant * 2.0**-22 + np.float64(lo)).astype(np.float32)
    # the table is what the sampler draws: mantissa = the top 23 random bits
    k = fr.key(5)
    drawn = fr.normal(k, (4096,)).numpy()
    table = (torch.scalar_tensor(np.sqrt(2)) * erfinv(torch.from_numpy(u))).numpy()
    np.testing.assert_array_equal(drawn, table[(fr.bits(k, (4096,)) >> 9).numpy()])
    assert digest([bits_of(torch.from_numpy(table))]) == "9ffa4612027d2782"
    want = np.asarray(jax.jit(lambda v: np.float32(np.sqrt(2)) * lax.erf_inv(v))(u))
    assert ulp_distance(table, want) <= NORMAL_ULP[torch.float32]


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (0.5, 3.0), (-1.0, 0.0)], ids=str)
def test_truncated_normal_close_to_jax(seed: int, bounds: tuple[float, float]) -> None:
    got = fr.truncated_normal(fr.key(seed), *bounds, (1001,))
    want = np.asarray(jr.truncated_normal(jkey(seed), *bounds, (1001,), "float32"))
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-6)


def test_truncated_normal_broadcasts_bounds_like_jax() -> None:
    lo, hi = torch.tensor([-1.0, 0.0, 1.0]), torch.tensor(2.0)
    got = fr.truncated_normal(fr.key(1), lo, hi)
    want = np.asarray(jr.truncated_normal(jkey(1), lo.numpy(), hi.numpy()))
    assert got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


# ------------------------------------------------- bernoulli/randint/permutation


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("mode", ["low", "high"])
def test_bernoulli_matches_jax(seed: int, p: float, mode: str) -> None:
    got = fr.bernoulli(fr.key(seed), p, (7, 11), mode)
    want = np.asarray(jr.bernoulli(jkey(seed), np.float32(p), (7, 11), mode))
    assert got.dtype == torch.bool
    np.testing.assert_array_equal(got.numpy(), want)


def test_bernoulli_tensor_p_float64_matches_jax() -> None:
    p = torch.linspace(0, 1, 13, dtype=torch.float64)
    got = fr.bernoulli(fr.key(9), p)
    with jax.enable_x64(True):
        want = np.asarray(jr.bernoulli(jkey(9), p.numpy()))
    np.testing.assert_array_equal(got.numpy(), want)


RANDINT_CASES = [
    (torch.int32, "int32", 0, 10),
    (torch.int32, "int32", -5, 5),
    (torch.int32, "int32", -100, 7**9),
    (torch.int32, "int32", -(2**31), 2**31 - 1),
    (torch.int32, "int32", -(2**31), 2**31),
    (torch.int8, "int8", -100, 1000),
    (torch.int16, "int16", 0, 2**15),
    (torch.uint8, "uint8", 0, 256),
    (torch.int64, "int64", 0, 10),
    (torch.int64, "int64", 5, 2**32 + 5),
    (torch.int64, "int64", 0, 2**32),
    (torch.int64, "int64", 0, 3 * 2**30),
    (torch.int64, "int64", -(2**62), 2**62),
    (torch.int64, "int64", -(2**63), 2**63 - 1),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 5), (1001,)], ids=str)
@pytest.mark.parametrize(
    "tdtype,jdtype,lo,hi", RANDINT_CASES, ids=[f"{c[1]}[{c[2]},{c[3]})" for c in RANDINT_CASES]
)
def test_randint_matches_jax(
    seed: int, shape: tuple[int, ...], tdtype: torch.dtype, jdtype: str, lo: int, hi: int
) -> None:
    got = fr.randint(fr.key(seed), shape, lo, hi, tdtype)
    with jax.enable_x64(True):
        want = np.asarray(jr.randint(jkey(seed), shape, lo, hi, jdtype))
    assert got.dtype == tdtype and tuple(got.shape) == want.shape
    np.testing.assert_array_equal(got.numpy(), want)


def test_randint_tensor_bounds_and_aliases() -> None:
    lo = torch.tensor([0, -10, 100])
    hi = torch.tensor([1, 10, 1000])
    got = fr.randint(fr.key(2), (4, 3), low=lo, high=hi)
    with jax.enable_x64(True):
        want = np.asarray(jr.randint(jkey(2), (4, 3), lo.numpy(), hi.numpy(), "int64"))
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 2000, 5000])
def test_permutation_of_range_matches_jax(seed: int, n: int) -> None:
    got = fr.permutation(fr.key(seed), n)
    np.testing.assert_array_equal(got.numpy(), np.asarray(jr.permutation(jkey(seed), n)))


@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("independent", [False, True])
def test_permutation_of_tensor_matches_jax(axis: int, independent: bool) -> None:
    x = torch.arange(5 * 7).reshape(5, 7)
    got = fr.permutation(fr.key(3), x, axis, independent)
    want = np.asarray(jr.permutation(jkey(3), x.numpy(), axis, independent))
    np.testing.assert_array_equal(got.numpy(), want)
