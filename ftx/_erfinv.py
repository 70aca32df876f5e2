"""The inverse error function as XLA computes it, so that normals match JAX's.

``torch.erfinv`` is accurate but differs from XLA's ``ErfInv`` by up to tens of
ulp in float32 (and far more in the float64 tails), so ``ftx.random.normal``
would not match ``jax.random.normal`` to float rounding. These are Giles'
polynomial approximations ("Approximating the erfinv function", GPU Computing
Gems, 2011) evaluated in the same order as ``xla/hlo/builder/lib/math.cc``:
``w = -log1p(-x*x)``, one polynomial in ``w - 2.5`` or ``sqrt(w) - 3`` for
float32 (float16 and bfloat16 are computed in float32 and rounded, as XLA
does) and three for float64. ``erfinv(+-1)`` is ``+-inf`` and ``|x| > 1`` gives
NaN, as in XLA.

float32 reproduces what XLA's CPU backend (jaxlib 0.10.2, x86-64 with FMA)
compiles ``erf_inv`` to, operation for operation, so ``normal`` is bit-identical
to ``jax.random.normal`` there (checked on every one of the 2**23 floats the
uniform can draw). That code is, from its dumped LLVM IR and machine code:
``log1p`` is XLA's own (the Cephes rational function below ``|x| = sqrt(2) - 1``,
else Eigen's ``plog_float`` of ``1 + x``: exponent/mantissa split by bit
operations and a degree-8 polynomial), LLVM fuses each multiply whose only use
is an add into a fused multiply-add (every Horner step of the two polynomials,
of the Cephes and of the log ones), and ``sqrt`` is correctly rounded. Here the
fmas are ``torch.ops.prims.fma`` under ``torch.compile`` (a hardware fma in
Inductor's C++ and Triton code; under ``vmap``, where the prim has no batching
rule, and with no Inductor prim, float64 below) and, in eager mode,
``torch.addcmul`` where a probe finds that it rounds once (it does on torch's
x86 CPU kernels), else ``a * b + c`` in float64 (the product of two float32 is
exact there; the double rounding never changed a result on the 2**23 inputs).
Eager float32 ``torch.sqrt`` is not correctly rounded on every CPU build, so it
is taken in float64. A non-Inductor ``torch.compile`` backend runs the prim
unfused (then within 3 ulp of XLA). The float32 result carries the gradient of
the same formula in plain torch ops (``torch.log1p``, unfused steps).
"""

from __future__ import annotations

import torch

from ._functorch import top_level

_is_batched = torch._C._functorch.is_batchedtensor

_F32_LT5 = (
    2.81022636e-08,
    3.43273939e-07,
    -3.5233877e-06,
    -4.39150654e-06,
    0.00021858087,
    -0.00125372503,
    -0.00417768164,
    0.246640727,
    1.50140941,
)
_F32_GE5 = (
    -0.000200214257,
    0.000100950558,
    0.00134934322,
    -0.00367342844,
    0.00573950773,
    -0.0076224613,
    0.00943887047,
    1.00167406,
    2.83297682,
)
_F64_LT6_25 = (
    -3.6444120640178196996e-21,
    -1.685059138182016589e-19,
    1.2858480715256400167e-18,
    1.115787767802518096e-17,
    -1.333171662854620906e-16,
    2.0972767875968561637e-17,
    6.6376381343583238325e-15,
    -4.0545662729752068639e-14,
    -8.1519341976054721522e-14,
    2.6335093153082322977e-12,
    -1.2975133253453532498e-11,
    -5.4154120542946279317e-11,
    1.051212273321532285e-09,
    -4.1126339803469836976e-09,
    -2.9070369957882005086e-08,
    4.2347877827932403518e-07,
    -1.3654692000834678645e-06,
    -1.3882523362786468719e-05,
    0.0001867342080340571352,
    -0.00074070253416626697512,
    -0.0060336708714301490533,
    0.24015818242558961693,
    1.6536545626831027356,
)
_F64_LT16 = (
    2.2137376921775787049e-09,
    9.0756561938885390979e-08,
    -2.7517406297064545428e-07,
    1.8239629214389227755e-08,
    1.5027403968909827627e-06,
    -4.013867526981545969e-06,
    2.9234449089955446044e-06,
    1.2475304481671778723e-05,
    -4.7318229009055733981e-05,
    6.8284851459573175448e-05,
    2.4031110387097893999e-05,
    -0.0003550375203628474796,
    0.00095328937973738049703,
    -0.0016882755560235047313,
    0.0024914420961078508066,
    -0.0037512085075692412107,
    0.005370914553590063617,
    1.0052589676941592334,
    3.0838856104922207635,
)
_F64_GE16 = (
    -2.7109920616438573243e-11,
    -2.5556418169965252055e-10,
    1.5076572693500548083e-09,
    -3.7894654401267369937e-09,
    7.6157012080783393804e-09,
    -1.4960026627149240478e-08,
    2.9147953450901080826e-08,
    -6.7711997758452339498e-08,
    2.2900482228026654717e-07,
    -9.9298272942317002539e-07,
    4.5260625972231537039e-06,
    -1.9681778105531670567e-05,
    7.5995277030017761139e-05,
    -0.00021503011930044477347,
    -0.00013871931833623122026,
    1.0103004648645343977,
    4.8499064014085844221,
)


# XLA's Log1p (the Cephes rational approximation below |x| = sqrt(2) - 1, log(1 + x) above).
_LOG1P_P = (
    4.5270000862445199635215e-5,
    4.9854102823193375972212e-1,
    6.5787325942061044846969e0,
    2.9911919328553073277375e1,
    6.0949667980987787057556e1,
    5.7112963590585538103336e1,
    2.0039553499201281259648e1,
)
_LOG1P_Q = (
    1.0,
    1.5062909083469192043167e1,
    8.3047565967967209469434e1,
    2.2176239823732856465394e2,
    3.0909872225312059774938e2,
    2.1642788614495947685003e2,
    6.0118660497603843919306e1,
)


def _horner(x: torch.Tensor, coefficients: tuple[float, ...]) -> torch.Tensor:
    p = torch.zeros_like(x)
    for c in coefficients:
        p = p * x + c
    return p


def log1p(x: torch.Tensor) -> torch.Tensor:
    """``log(1 + x)`` computed the way XLA's CPU backend does (within an ulp of it)."""
    xx = x * x
    small = x + ((-0.5 * xx) + (x * xx) * (_horner(x, _LOG1P_P) / _horner(x, _LOG1P_Q)))
    return torch.where(x.abs() < 0.41421356237309504880, small, torch.log(x + 1))


def _split64(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Veltkamp's split of a float64 into two halves of at most 26 significant bits."""
    g = x * 134217729.0  # 2**27 + 1
    hi = g - (g - x)
    return hi, x - hi


def fma(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``a * b + c`` with a single rounding, as XLA's fused multiply-add on CPU.

    float32 (and narrower) operands are multiplied exactly in float64; float64
    uses Dekker's exact product and a two-sum (off by one ulp only in rare ties).
    """
    if a.dtype != torch.float64:
        return (a.double() * b.double() + c.double()).to(a.dtype)
    p = a * b
    a_hi, a_lo = _split64(a)
    b_hi, b_lo = _split64(b)
    err = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    s = p + c
    bb = s - p
    t = (p - (s - bb)) + (c - bb)
    return s + (t + err)


def _select(
    cond: torch.Tensor, a: float, b: float | torch.Tensor, like: torch.Tensor
) -> torch.Tensor:
    """``where(cond, a, b)`` with the constants in ``like``'s dtype (not the default dtype)."""
    ta = torch.scalar_tensor(a, dtype=like.dtype, device=like.device)
    tb = (
        b
        if isinstance(b, torch.Tensor)
        else torch.scalar_tensor(b, dtype=like.dtype, device=like.device)
    )
    return torch.where(cond, ta, tb)


def _edges(x: torch.Tensor, result: torch.Tensor) -> torch.Tensor:
    return torch.where(x.abs() == 1, x * float("inf"), result)


# ----------------------------------------------------------------- float32, as XLA CPU

# Eigen's plog_float, which XLA's CPU backend emits for log(1 + x) at |x| >= sqrt(2) - 1.
_LOG_P = (
    7.0376836292e-2,
    -1.1514610310e-1,
    1.1676998740e-1,
    -1.2420140846e-1,
    1.4249322787e-1,
    -1.6668057665e-1,
    2.0000714765e-1,
    -2.4999993993e-1,
    3.3333331174e-1,
)
_LOG_Q1, _LOG_Q2 = -2.12194440e-4, 0.693359375  # log(2) split in two
_SQRT_HALF = 0.70710678118654752440
_LOG1P_CUT = 0.41421356237309504880  # sqrt(2) - 1

# How a float32 a * b + c is rounded once: "prims" (torch.ops.prims.fma, while compiling),
# "out"/"addcmul" (torch.addcmul rounds once on this device; "out" reuses buffers, at the
# top level only) or "f64" (in float64, then rounded to float32).
_ADDCMUL_FUSED: dict[str, bool] = {}


def _addcmul_rounds_once(device: torch.device) -> bool:
    """Whether ``torch.addcmul(c, a, b)`` is a fused multiply-add for float32 on ``device``.

    torch computes it as ``c + 1 * a * b``, which the compiler contracts into an fma on
    x86 CPUs with FMA (vectorized and scalar loops alike); other builds may not. The probe
    covers the call forms used here: full and 0-dim ``c`` and ``a``, strided, ``out=``.
    """
    key = str(device)
    if key not in _ADDCMUL_FUSED:
        with torch.no_grad():
            a = torch.full((74,), 1.0 + 2.0**-12, device=device)
            c = torch.full((74,), -1.0, device=device)
            want = 2.0**-11 + 2.0**-24  # a * a - 1 exactly; rounding a * a first loses 2**-24
            got = [
                torch.addcmul(c, a, a),
                torch.addcmul(c[0], a, a),
                torch.addcmul(c, a[0], a),
                torch.addcmul(c[::2], a[::2], a[1::2]),
            ]
            buf = a.clone()
            got.append(torch.addcmul(c[0], buf, a, out=buf))
            _ADDCMUL_FUSED[key] = all(bool((g == want).all()) for g in got)
    return _ADDCMUL_FUSED[key]


def _fma_mode(x: torch.Tensor) -> str:
    if torch.compiler.is_compiling():
        # Inductor's prim (registered once torch.compile has loaded Inductor) is a hardware
        # fma in its C++ and Triton kernels; other backends run it as a * b + c. It has no
        # vmap rule (functorch would run it once per batch element), hence float64 there.
        if hasattr(torch.ops.prims, "fma") and not _is_batched(x):
            return "prims"
        return "f64"
    if not _addcmul_rounds_once(x.device):
        return "f64"
    return "out" if top_level([x]) else "addcmul"


def _fma32(
    a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, mode: str, into: torch.Tensor | None = None
) -> torch.Tensor:
    """``a * b + c`` rounded once (float32); in mode "out" the result may overwrite ``into``."""
    if mode == "prims":
        return torch.ops.prims.fma(a, b, c)  # type: ignore[no-any-return]
    if mode == "f64":
        return torch.addcmul(c.double(), a.double(), b.double()).float()
    if mode == "out" and into is not None:
        return torch.addcmul(c, a, b, out=into)
    return torch.addcmul(c, a, b)


def _const(v: float, like: torch.Tensor) -> torch.Tensor:
    return torch.scalar_tensor(v, dtype=like.dtype, device=like.device)


def _horner32(x: torch.Tensor, coefficients: tuple[float, ...], mode: str) -> torch.Tensor:
    """Horner's rule with a fused multiply-add per step, as LLVM contracts it."""
    p = _fma32(_const(coefficients[0], x), x, _const(coefficients[1], x), mode)
    for c in coefficients[2:]:
        p = _fma32(p, x, _const(c, x), mode, into=p)
    return p


def _pick(cond: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``where(cond, a, b)`` for finite ``a``, ``b``.

    Eager mode uses ``lerp`` by a 0/1 weight, which is exact at both ends: torch's CPU
    ``where`` is several times slower on an unpredictable mask such as ``t > -0.41``.
    """
    if torch.compiler.is_compiling():
        return torch.where(cond, a, b)
    return torch.lerp(b, a, cond.to(a.dtype))


def _log32(y: torch.Tensor, mode: str) -> torch.Tensor:
    """Eigen's ``plog_float`` for a float32 ``y >= 2**-126`` (garbage elsewhere)."""
    bits = y.view(torch.int32)
    e = (bits >> 23).sub_(126).to(torch.float32)
    m = (bits & -2139095041).bitwise_or_(1056964608).view(torch.float32)  # mantissa in [0.5, 1)
    below = (m < _SQRT_HALF).to(torch.float32)
    e.sub_(below)
    x = torch.addcmul(m, m, below).sub_(1.0)  # 2m - 1 or m - 1, exact
    x2 = x * x
    x3 = x2 * x
    y0 = _horner32(x, _LOG_P[0:3], mode)
    y1 = _horner32(x, _LOG_P[3:6], mode)
    y2 = _horner32(x, _LOG_P[6:9], mode)
    y1 = _fma32(x3, y0, y1, mode, into=y1)
    y2 = _fma32(x3, y1, y2, mode, into=y2)
    r = e * _LOG_Q1
    r = _fma32(x3, y2, r, mode, into=r)
    # x - x2 / 2 and e * _LOG_Q2 are fmas in XLA too, but their products are exact
    return x2.mul_(-0.5).add_(x).add_(r).add_(e, alpha=_LOG_Q2)


def _log1p32(t: torch.Tensor, one_plus_t: torch.Tensor, mode: str) -> torch.Tensor:
    """XLA's float32 ``log1p`` on CPU for ``-1 < t <= 0``."""
    p = _horner32(t, _LOG1P_P, mode)
    q = t + _LOG1P_Q[1]  # 1 * t + q1
    for c in _LOG1P_Q[2:]:
        q = _fma32(q, t, _const(c, t), mode, into=q)
    tt = t * t
    small = (t * tt).mul_(p.div_(q))
    small = tt.mul_(-0.5).add_(small).add_(t)  # t + fma(tt, -0.5, t * tt * p / q)
    return _pick(t > -_LOG1P_CUT, small, _log32(one_plus_t, mode))


def _sqrt32(x: torch.Tensor, mode: str) -> torch.Tensor:
    """Correctly rounded float32 square root (eager CPU float32 ``torch.sqrt`` can be 1 ulp off)."""
    return torch.sqrt(x) if mode == "prims" else torch.sqrt(x.double()).float()


def _erfinv32_xla(x: torch.Tensor) -> torch.Tensor:
    mode = _fma_mode(x)
    t = (x * x).neg_()
    y = t + 1.0
    w = _log1p32(t, y, mode).neg_()
    p = _horner32(w - 2.5, _F32_LT5, mode)
    tail = w >= 5.0
    if mode == "out" and x.device.type == "cpu":
        # top-level eager CPU: the sqrt branch (|x| > 0.9966, 0.3% of normal draws) on
        # just the elements that need it
        idx = tail.reshape(-1).nonzero().squeeze(1)
        if idx.numel():
            wt = w.reshape(-1).index_select(0, idx)
            pt = _horner32(_sqrt32(wt, mode).sub_(3.0), _F32_GE5, mode)
            p.view(-1).index_copy_(0, idx, pt)
    else:
        pt = _horner32(_sqrt32(w, mode).sub_(3.0), _F32_GE5, mode)
        p = _pick(tail, pt, p)
    p = p.mul_(x)
    # |x| >= 1 and NaN (y <= 0 or NaN): +-inf at +-1, NaN elsewhere, as XLA
    return torch.where(y > 0, p, x / y.sqrt())


def _erfinv32(x: torch.Tensor) -> torch.Tensor:
    exact = _erfinv32_xla(x.detach())
    if not x.requires_grad:
        return exact
    # the value of XLA's float32 ErfInv, the derivative of the same formula in plain torch ops
    smooth = _erfinv32_smooth(x)
    return exact + (smooth - smooth.detach())


def _erfinv32_smooth(x: torch.Tensor) -> torch.Tensor:
    """The float32 formula with ``torch.log1p`` and unfused steps (within 3 ulp of XLA)."""
    w = -torch.log1p(-x * x)
    lt = w < 5.0
    w = torch.where(lt, w - 2.5, torch.sqrt(w) - 3.0)
    p = _select(lt, _F32_LT5[0], _F32_GE5[0], x)
    for a, b in zip(_F32_LT5[1:], _F32_GE5[1:]):
        p = _select(lt, a, b, x) + p * w
    return _edges(x, p * x)


def _erfinv64(x: torch.Tensor) -> torch.Tensor:
    w = -log1p(-x * x)
    lt6 = w < 6.25
    lt16 = w < 16.0
    w = torch.where(lt6, w - 3.125, torch.sqrt(w) - _select(lt16, 3.25, 5.0, x))

    def coefficient(i: int) -> torch.Tensor | float:
        if i >= 19:
            return _F64_LT6_25[i]
        c = _select(lt6, _F64_LT6_25[i], _F64_LT16[i], x)
        if i < 17:
            c = torch.where(
                lt16, c, torch.scalar_tensor(_F64_GE16[i], dtype=x.dtype, device=x.device)
            )
        return c

    p = coefficient(0)
    for i in range(1, 17):
        p = coefficient(i) + p * w
    for i in range(17, 19):
        p = torch.where(lt16, coefficient(i) + p * w, p)
    for i in range(19, 23):
        p = torch.where(lt6, coefficient(i) + p * w, p)
    return _edges(x, p * x)


def erfinv(x: torch.Tensor) -> torch.Tensor:
    """XLA's ``ErfInv`` for a floating tensor (float16/bfloat16 computed in float32)."""
    if x.dtype == torch.float64:
        return _erfinv64(x)
    if x.dtype == torch.float32:
        return _erfinv32(x)
    return _erfinv32(x.float()).to(x.dtype)
