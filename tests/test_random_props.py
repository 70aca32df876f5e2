"""ftx.random: distributions (fixed seeds), transforms (vmap, grad, compile), devices."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from scipy import stats

import ftx
import ftx.random as fr

N = 100_000
KS_BOUND = 1.95 / math.sqrt(N)  # the KS critical value at about the 0.1% level


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_uniform_statistics(seed: int) -> None:
    x = fr.uniform(fr.key(seed), (N,), torch.float64, -1.0, 3.0).numpy()
    assert x.min() >= -1.0 and x.max() < 3.0
    assert abs(x.mean() - 1.0) < 0.02 and abs(x.var() - 16 / 12) < 0.02
    assert stats.kstest(x, stats.uniform(-1.0, 4.0).cdf).statistic < KS_BOUND


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_normal_statistics(seed: int, dtype: torch.dtype) -> None:
    x = fr.normal(fr.key(seed), (N,), dtype).double().numpy()
    assert np.isfinite(x).all()
    assert abs(x.mean()) < 0.015 and abs(x.var() - 1.0) < 0.02
    assert stats.kstest(x, stats.norm.cdf).statistic < KS_BOUND


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_normal_half_precision_statistics(dtype: torch.dtype) -> None:
    x = fr.normal(fr.key(5), (N,), dtype).double().numpy()
    assert abs(x.mean()) < 0.02 and abs(x.var() - 1.0) < 0.03


@pytest.mark.parametrize("bounds", [(-2.0, 2.0), (0.5, 3.0), (-1.0, 0.0)], ids=str)
def test_truncated_normal_statistics(bounds: tuple[float, float]) -> None:
    a, b = bounds
    x = fr.truncated_normal(fr.key(3), a, b, (N,), torch.float64).numpy()
    assert x.min() > a and x.max() < b
    ref = stats.truncnorm(a, b)
    assert abs(x.mean() - ref.mean()) < 0.01 and abs(x.var() - ref.var()) < 0.01
    assert stats.kstest(x, ref.cdf).statistic < KS_BOUND


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_bernoulli_statistics(p: float) -> None:
    x = fr.bernoulli(fr.key(4), p, (N,)).double().numpy()
    assert abs(x.mean() - p) < 4 * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("lo,hi", [(0, 10), (-7, 13), (0, 2**40)], ids=str)
def test_randint_statistics(lo: int, hi: int) -> None:
    x = fr.randint(fr.key(6), (N,), lo, hi).double().numpy()
    assert x.min() >= lo and x.max() < hi
    mean, var = (lo + hi - 1) / 2, ((hi - lo) ** 2 - 1) / 12
    assert abs(x.mean() - mean) < 4 * math.sqrt(var / N)
    assert abs(x.var() / var - 1) < 0.02
    if hi - lo <= 20:  # every value appears, with the expected frequency
        counts = np.bincount((x - lo).astype(int), minlength=hi - lo)
        assert stats.chisquare(counts).pvalue > 1e-3


@pytest.mark.parametrize("n", [0, 1, 10, 3000])
def test_permutation_is_a_permutation(n: int) -> None:
    perm = fr.permutation(fr.key(8), n)
    assert perm.dtype == torch.int64
    assert torch.equal(perm.sort().values, torch.arange(n))


def test_permutation_of_tensor_permutes_rows_together() -> None:
    x = torch.arange(20.0).reshape(10, 2)
    y = fr.permutation(fr.key(0), x)
    assert torch.equal(y[:, 1] - y[:, 0], torch.ones(10))
    assert torch.equal(y[:, 0].sort().values, x[:, 0])


def test_split_keys_are_distinct_and_independent() -> None:
    keys = fr.split(fr.key(0), 1000)
    assert len({tuple(k.tolist()) for k in keys}) == 1000
    a, b = (fr.normal(k, (N,), torch.float64).numpy() for k in keys[:2])
    assert abs(np.corrcoef(a, b)[0, 1]) < 4 / math.sqrt(N)


# ------------------------------------------------------------------ transforms


def _loop(f, keys):  # type: ignore[no-untyped-def]
    return torch.stack([f(k) for k in keys])


SAMPLERS = {
    "split": lambda k: fr.split(k, 3),
    "fold_in": lambda k: fr.fold_in(k, 7),
    "bits": lambda k: fr.bits(k, (4,)),
    "uniform": lambda k: fr.uniform(k, (4,), minval=-2.0, maxval=2.0),
    "normal": lambda k: fr.normal(k, (2, 3)),
    "truncated_normal": lambda k: fr.truncated_normal(k, -1.0, 1.0, (5,)),
    "bernoulli": lambda k: fr.bernoulli(k, 0.3, (6,)),
    "randint": lambda k: fr.randint(k, (5,), -3, 100),
    "permutation": lambda k: fr.permutation(k, 9),
}


@pytest.mark.parametrize("vmap", [torch.func.vmap, ftx.vmap], ids=["torch.func.vmap", "ftx.vmap"])
@pytest.mark.parametrize("name", list(SAMPLERS))
def test_vmap_over_keys_equals_loop(name: str, vmap) -> None:  # type: ignore[no-untyped-def]
    keys = fr.split(fr.key(11), 5)
    f = SAMPLERS[name]
    assert torch.equal(vmap(f)(keys), _loop(f, keys))


def test_vmap_over_fold_in_data_and_seeds() -> None:
    k = fr.key(0)
    data = torch.arange(6)
    assert torch.equal(
        torch.func.vmap(lambda d: fr.fold_in(k, d))(data), _loop(lambda d: fr.fold_in(k, d), data)
    )
    seeds = torch.tensor([0, 5, 2**40])
    assert torch.equal(torch.func.vmap(fr.key)(seeds), torch.stack([fr.key(int(s)) for s in seeds]))


def test_usable_inside_grad() -> None:
    k = fr.key(1)
    noise = fr.normal(k, (3,), torch.float64)

    def loss(w: torch.Tensor) -> torch.Tensor:
        return (w * fr.normal(k, (3,), torch.float64)).sum() + fr.uniform(
            k, (4,), torch.float64, w[0], w[0] + 2
        ).sum()

    g = torch.func.grad(loss)(torch.zeros(3, dtype=torch.float64))
    want = noise.clone()
    want[0] += 4.0  # d/dm of m + 2 * u, summed over 4 draws
    torch.testing.assert_close(g, want)
    torch.testing.assert_close(ftx.grad(loss)(torch.zeros(3, dtype=torch.float64)), want)


def test_normal_under_torch_compile_matches_eager() -> None:
    torch._dynamo.reset()
    f = torch.compile(lambda k: fr.normal(k, (4097,)), fullgraph=True)
    k = fr.key(3)
    got, want = f(k), fr.normal(k, (4097,))
    assert torch.equal(got, want)  # both are XLA's float32 erf_inv, fmas included
    assert torch.equal(torch.compile(lambda k: fr.split(k, 4), fullgraph=True)(k), fr.split(k, 4))


def test_uniform_and_half_normal_same_under_compile_and_vmap() -> None:
    """The rounding ftx documents survives Inductor (which keeps float16/bfloat16
    intermediates in float32) and vmap: uniform with bounds in every dtype, and the
    float16/bfloat16 normal (float32 is checked above)."""
    dtypes = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

    def draw(k: torch.Tensor) -> list[torch.Tensor]:
        out = [fr.uniform(k, (513,), dt, -2.0, 3.0) for dt in dtypes]
        return out + [fr.normal(k, (513,), dt) for dt in dtypes[:2]]

    k = fr.key(3)
    want = draw(k)
    torch._dynamo.reset()
    got = torch.compile(draw, fullgraph=True)(k)
    batched = torch.func.vmap(draw)(torch.stack([fr.key(0), k]))
    for g, b, w in zip(got, batched, want):
        assert torch.equal(g, w) and torch.equal(b[1], w)


def test_float64_erfinv_same_under_vmap_and_emulated_fma(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hardware fma route (addcmul), vmap and the exact emulation agree bit for bit."""
    import ftx.random._erfinv as E

    u = fr.uniform(fr.key(7), (64, 64), torch.float64, -1.0, 1.0)
    u = torch.cat([u, 1.0 - torch.logspace(-1, -15.9, 64, dtype=torch.float64)[None]])
    want = E.erfinv(u)
    assert torch.equal(torch.func.vmap(E.erfinv)(u), want)
    monkeypatch.setattr(E, "_fma_mode", lambda x: "f64")
    assert torch.equal(E.erfinv(u), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_compiled_fma_equals_the_emulation(dtype: torch.dtype) -> None:
    """Inductor's fma prim (what erfinv's Horner steps use while compiling) rounds once,
    exactly as the emulation: the property the compiled erfinv rests on, at a small
    compile cost (the whole float64 erfinv takes minutes to compile: see the next test)."""
    import ftx.random._erfinv as E

    g = torch.Generator().manual_seed(3)
    a, b, c = (torch.randn(4096, generator=g, dtype=dtype) for _ in range(3))
    c = torch.cat([c, -(a * b)])  # near-cancellation: where a double rounding shows
    a, b = torch.cat([a, a]), torch.cat([b, b])
    torch._dynamo.reset()
    got = torch.compile(E.fused_multiply_add, fullgraph=True)(a, b, c)
    assert torch.equal(got, E.fma(a, b, c))


@pytest.mark.skipif(
    os.environ.get("FTX_LONG_TESTS", "") in ("", "0"),
    reason="compiling the whole float64 erfinv takes 10+ minutes on 2 CPUs; FTX_LONG_TESTS=1",
)
def test_float64_erfinv_same_under_compile() -> None:
    import ftx.random._erfinv as E

    u = fr.uniform(fr.key(7), (64, 64), torch.float64, -1.0, 1.0)
    u = torch.cat([u, 1.0 - torch.logspace(-1, -15.9, 64, dtype=torch.float64)[None]])
    torch._dynamo.reset()
    assert torch.equal(torch.compile(E.erfinv, fullgraph=True)(u), E.erfinv(u))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_truncated_normal_gradient_wrt_bounds_is_finite(dtype: torch.dtype) -> None:
    lo = torch.tensor(-1.0, dtype=dtype, requires_grad=True)
    hi = torch.tensor(2.0, dtype=dtype, requires_grad=True)
    fr.truncated_normal(fr.key(0), lo, hi, (64,), dtype).sum().backward()
    assert lo.grad is not None and hi.grad is not None
    assert bool(torch.isfinite(lo.grad)) and bool(torch.isfinite(hi.grad))
    assert 0 < float(lo.grad) and 0 < float(hi.grad)


# --------------------------------------------------------------------- devices


def test_same_numbers_on_every_device(device: str) -> None:
    k_cpu = fr.key(123)
    k = fr.key(123, device=device)
    assert k.device.type == device
    for f in (
        lambda k: fr.split(k, 5),
        lambda k: fr.bits(k, (333,)),
        lambda k: fr.randint(k, (50,), 0, 7),
        lambda k: fr.permutation(k, 50),
        lambda k: fr.bernoulli(k, 0.5, (100,)),
    ):
        out = f(k)
        assert out.device.type == device
        assert torch.equal(out.cpu(), f(k_cpu))
    torch.testing.assert_close(
        fr.uniform(k, (333,)).cpu(), fr.uniform(k_cpu, (333,)), rtol=0, atol=0
    )
    torch.testing.assert_close(
        fr.normal(k, (333,)).cpu(), fr.normal(k_cpu, (333,)), rtol=1e-6, atol=1e-6
    )


# Errors on bad input: tests/test_random_errors.py.
