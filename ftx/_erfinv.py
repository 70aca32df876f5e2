"""The inverse error function as XLA computes it, so that normals match JAX's.

``torch.erfinv`` is accurate but differs from XLA's ``ErfInv`` by up to tens of
ulp in float32 (and far more in the float64 tails), so ``ftx.random.normal``
would not match ``jax.random.normal`` to float rounding. These are Giles'
polynomial approximations ("Approximating the erfinv function", GPU Computing
Gems, 2011) evaluated in the same order as ``xla/hlo/builder/lib/math.cc``:
``w = -log1p(-x*x)``, one polynomial in ``w - 2.5`` or ``sqrt(w) - 3`` for
float32 (float16 and bfloat16 are computed in float32 and rounded, as XLA
does) and three for float64. ``erfinv(+-1)`` is ``+-finfo.max * 1``, as in XLA.
"""

from __future__ import annotations

import torch

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
    return torch.where(x.abs() == 1, x * torch.finfo(x.dtype).max, result)


def _erfinv32(x: torch.Tensor) -> torch.Tensor:
    # float32 keeps torch's log1p and unfused Horner steps: emulating XLA's log1p and
    # fmas here (as float64 does) makes more draws bit-identical to JAX but does not
    # lower the worst case (3 ulp), and costs 1.5x the compiled time of a normal draw.
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
