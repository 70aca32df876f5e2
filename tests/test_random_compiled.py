"""ftx.random.normal's compiled route (ftx/random/_compiled.py): the same bits as the eager
route and as jax.random.normal, one compile for every shape, no recompiles, a silent
eager fallback; and forward-mode derivatives of erfinv (jvp/jacfwd).

The float32 kernel is compiled once for the module (about 15-60 s on 2 CPUs, less with
Inductor's on-disk cache warm); float64 takes as long again and runs with
FTX_LONG_TESTS=1. Both routes were also compared on 2**20 draws by hand (equal).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import ftx
import ftx.random as fr
from ftx._internal import torch_compat as _tc
from ftx.random import _compiled as K

from .test_random import (
    NORMAL_DIGESTS,
    NORMAL_SHAPES,
    NORMAL_ULP,
    SEEDS,
    bits_of,
    digest,
    jkey,
    ulp_distance,
)

jr = pytest.importorskip("jax.random")
jax = pytest.importorskip("jax")

LONG = os.environ.get("FTX_LONG_TESTS", "") not in ("", "0")
N = 1 << 16


def _entries() -> int:
    return sum(1 for _ in _tc.cache_entries(K._kernel.__code__))


def _compile_kernel(dtype: torch.dtype) -> None:
    """Large draws: eager until their time passes the budget (made tiny here), then the
    call that crosses it compiles."""
    k = fr.key(11)
    want = fr._normal_draw(k, (K.MIN_NUMEL,), dtype)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(K, "COMPILE_AFTER_S", 1e-9)
        assert torch.equal(fr.normal(k, (K.MIN_NUMEL,), dtype), want)  # eager, counted
        assert 0 < K._state[(dtype, "cpu")]
        assert torch.equal(fr.normal(k, (K.MIN_NUMEL,), dtype), want)  # compiles
    assert K._state[(dtype, "cpu")] == K._READY


@pytest.fixture(scope="module")
def compiled() -> Iterator[None]:
    """The float32 kernel, compiled once (on with FTX_SLOW_ROUTES=1 too)."""
    mp = pytest.MonkeyPatch()
    mp.setattr(_tc, "RANDOM_COMPILED", True)
    K.reset()
    torch._dynamo.reset()
    _compile_kernel(torch.float32)
    yield
    mp.undo()
    K.reset()


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No kernel and no counts; the route on; small draws count (fast eager draws)."""
    monkeypatch.setattr(_tc, "RANDOM_COMPILED", True)
    monkeypatch.setattr(K, "MIN_NUMEL", 256)
    monkeypatch.delenv("FTX_RANDOM_COMPILE_AFTER", raising=False)
    saved = (dict(K._state), list(K._compiled))
    K._state.clear()
    yield
    K._state.clear()
    K._state.update(saved[0])
    K._compiled[:] = saved[1]


def test_float32_same_bits_as_eager_and_jax(compiled: None) -> None:
    entries = _entries()
    for seed in (0, 7):
        got = fr.normal(fr.key(seed), (N,))
        assert torch.equal(got, fr._normal_draw(fr.key(seed), (N,), torch.float32))
        with jax.enable_x64(True):
            want = np.asarray(jr.normal(jkey(seed), (N,), "float32"))
        assert ulp_distance(got.numpy(), want) <= NORMAL_ULP[torch.float32]
    # the recorded jax.random.normal digest, every shape of n >= 2 through the kernel
    got_bits = [bits_of(fr.normal(fr.key(s), shape)) for s in SEEDS for shape in NORMAL_SHAPES]
    assert digest(got_bits) == NORMAL_DIGESTS[torch.float32]
    assert _entries() == entries  # one compile for all those shapes


def test_kernel_runs_for_every_shape_without_recompiling(compiled: None) -> None:
    entries = _entries()
    graphs = _tc.dynamo_counters()["stats"]["unique_graphs"]
    calls = []
    real = K._run_cached

    def spy(key: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor | None:
        out = real(key, n, dtype)
        calls.append(out is not None)
        return out

    with pytest.MonkeyPatch.context() as m:
        m.setattr(K, "_run_cached", spy)
        for shape in [(2,), (3,), (5, 7), (1000,), (N + 1,), (2, 3, 4)]:
            k = fr.key(len(shape))
            assert torch.equal(fr.normal(k, shape), fr._normal_draw(k, shape, torch.float32))
    assert all(calls) and len(calls) == 6  # every draw ran the compiled kernel
    assert _entries() == entries
    assert _tc.dynamo_counters()["stats"]["unique_graphs"] == graphs


def test_guard_failures_and_transforms_run_eagerly(compiled: None) -> None:
    """Whatever the kernel's guards or the route refuse runs eagerly: same numbers, no
    new compile."""
    entries = _entries()
    graphs = _tc.dynamo_counters()["stats"]["unique_graphs"]
    k = fr.key(3)
    want = fr._normal_draw(k, (9,), torch.float32)
    with torch.inference_mode():
        assert torch.equal(fr.normal(k, (9,)), want)
    keys = torch.stack([fr.key(3), fr.key(4)])
    assert torch.equal(ftx.vmap(lambda kk: fr.normal(kk, (9,)))(keys)[0], want)
    x = torch.ones(9)
    g = torch.func.grad(lambda x: (x * fr.normal(k, (9,))).sum())(x)
    assert torch.equal(g, want)
    assert torch.equal(fr.normal(k[None].expand(3, 2)[1], (9,)), want)  # a strided key
    assert torch.equal(fr.normal(k, (1,)), fr._normal_draw(k, (1,), torch.float32))
    assert _entries() == entries
    assert _tc.dynamo_counters()["stats"]["unique_graphs"] == graphs


def test_threads_share_the_kernel(compiled: None) -> None:
    out: dict[int, torch.Tensor] = {}

    def draw(i: int) -> None:
        out[i] = fr.normal(fr.key(i), (4096,))

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert torch.equal(out[i], fr._normal_draw(fr.key(i), (4096,), torch.float32))


def test_small_draws_and_draws_within_the_budget_do_not_compile(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch, "compile", _no_compile)
    k = fr.key(0)
    fr.normal(k, (K.MIN_NUMEL - 1,))
    fr.normal(k, (K.MIN_NUMEL - 1,))
    assert (torch.float32, "cpu") not in K._state
    for _ in range(3):
        fr.normal(k, (K.MIN_NUMEL,))
    spent = K._state[(torch.float32, "cpu")]
    assert 0 < spent < K.COMPILE_AFTER_S  # eager seconds counted, no compile


def _no_compile(*args: object, **kwargs: object) -> object:
    raise AssertionError("compiled within the budget")


def test_budget_env_variable(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """FTX_RANDOM_COMPILE_AFTER=0 compiles on the first large draw; a bad value keeps the
    default budget."""
    attempts = []

    def broken(*args: object, **kwargs: object) -> object:
        attempts.append(1)
        raise RuntimeError("counted")

    monkeypatch.setattr(K, "_compiled", [])
    monkeypatch.setattr(torch, "compile", broken)
    k = fr.key(5)
    monkeypatch.setenv("FTX_RANDOM_COMPILE_AFTER", "not a number")
    fr.normal(k, (K.MIN_NUMEL,))
    assert not attempts
    monkeypatch.setenv("FTX_RANDOM_COMPILE_AFTER", "0")
    assert torch.equal(fr.normal(k, (K.MIN_NUMEL,)),
                       fr._normal_draw(k, (K.MIN_NUMEL,), torch.float32))
    assert len(attempts) == 1


def test_failed_compile_falls_back_to_eager_for_good(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = []

    def broken(*args: object, **kwargs: object) -> object:
        attempts.append(1)
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(K, "_compiled", [])
    monkeypatch.setattr(torch, "compile", broken)
    monkeypatch.setattr(K, "COMPILE_AFTER_S", 0.0)
    k = fr.key(2)
    want = fr._normal_draw(k, (K.MIN_NUMEL,), torch.float32)
    for _ in range(4):
        assert torch.equal(fr.normal(k, (K.MIN_NUMEL,)), want)
    assert K._state[(torch.float32, "cpu")] == K._FAILED
    assert len(attempts) == 1


def test_route_off_runs_eagerly(fresh: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """FTX_SLOW_ROUTES=1 sets RANDOM_COMPILED off; then nothing is counted or compiled."""
    monkeypatch.setattr(_tc, "RANDOM_COMPILED", False)
    monkeypatch.setattr(K, "COMPILE_AFTER_S", 0.0)
    k = fr.key(2)
    for _ in range(3):
        want = fr._normal_draw(k, (K.MIN_NUMEL,), torch.float32)
        assert torch.equal(fr.normal(k, (K.MIN_NUMEL,)), want)
    assert not K._state


def test_slow_routes_env_turns_the_route_off() -> None:
    code = "from ftx._internal import torch_compat as t; print(t.routes()['RANDOM_COMPILED'])"
    env = {**os.environ, "FTX_SLOW_ROUTES": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.skipif(not LONG, reason="compiling the float64 kernel takes ~1 min; FTX_LONG_TESTS=1")
def test_float64_same_bits_as_eager_and_jax(compiled: None) -> None:
    _compile_kernel(torch.float64)
    for seed in (0, 7):
        got = fr.normal(fr.key(seed), (N,), torch.float64)
        assert torch.equal(got, fr._normal_draw(fr.key(seed), (N,), torch.float64))
        with jax.enable_x64(True):
            want = np.asarray(jr.normal(jkey(seed), (N,), "float64"))
        assert ulp_distance(got.numpy(), want) <= NORMAL_ULP[torch.float64]
    got_bits = [
        bits_of(fr.normal(fr.key(s), shape, torch.float64))
        for s in SEEDS
        for shape in NORMAL_SHAPES
    ]
    assert digest(got_bits) == NORMAL_DIGESTS[torch.float64]


# ------------------------------------------------------------- forward-mode derivatives


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_erfinv_jvp_equals_its_vjp(dtype: torch.dtype) -> None:
    """erfinv's exact value carries the smooth formula's tangent under jvp too (it was
    dropped: jvp gave 0), equal to torch.erfinv's derivative to rounding."""
    from ftx.random._erfinv import erfinv

    x = torch.linspace(-0.999, 0.999, 101, dtype=dtype)
    v = torch.ones_like(x)
    value, tangent = torch.func.jvp(erfinv, (x,), (v,))[:2]
    assert torch.equal(value, erfinv(x))
    vjp = torch.func.vjp(erfinv, x)[1]
    torch.testing.assert_close(tangent, vjp(v)[0])
    want = torch.func.jvp(torch.erfinv, (x,), (v,))[1]
    torch.testing.assert_close(tangent, want, rtol=1e-4, atol=0)


def test_truncated_normal_jacfwd_equals_jacrev() -> None:
    def f(lo: torch.Tensor) -> torch.Tensor:
        return fr.truncated_normal(fr.key(0), lo, 2.0, (5,), torch.float64)

    lo = torch.tensor(-1.0, dtype=torch.float64)
    fwd = torch.func.jacfwd(f)(lo)
    assert bool((fwd != 0).all())
    torch.testing.assert_close(fwd, torch.func.jacrev(f)(lo))
