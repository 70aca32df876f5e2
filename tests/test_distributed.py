"""ftx.distributed on real 2-process gloo groups on the loopback address."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

import ftx

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: ftx importable from this checkout, one thread."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1", **extra)


def launch(scenario: str, tmp: Path, ranks: tuple[int, ...] = (0, 1), world: int = 2,
           timeout: float = 20.0, wait: float = 90.0, worker: str = "tests._dist_worker"
           ) -> dict[int, Any]:
    port = _free_port()
    procs = []
    for r in ranks:
        env = _env(RANK=str(r), WORLD_SIZE=str(world), LOCAL_RANK=str(r),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   FTX_TEST_TIMEOUT=str(timeout))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", worker, scenario, str(tmp)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + wait
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    out = {}
    for r in ranks:
        f = tmp / f"rank{r}.json"
        if f.exists():
            out[r] = json.loads(f.read_text())
    return out


def test_collectives_values_dtypes_and_purity(tmp_path: Path) -> None:
    res = launch("collectives", tmp_path)
    assert set(res) == {0, 1}, res
    for r in (0, 1):
        o = res[r]
        assert "error" not in o, o
        for mb in ("25.0", "1e-06"):
            assert o[f"mean-{mb}"]["a"] == [[0.0, 1.5, 3.0], [4.5, 6.0, 7.5]]
            assert o[f"sum-{mb}"]["a"] == [[0.0, 3.0, 6.0], [9.0, 12.0, 15.0]]
            assert o[f"max-{mb}"]["b"] == [3.0, -2.0]
            assert o[f"min-{mb}"]["b"] == [1.5, -4.0]
            assert o[f"sum-{mb}"]["c"] == [9]
            assert o[f"mean-{mb}"]["c"] == [4]  # integer mean floors, dtype kept
            assert o[f"mean-{mb}"]["dtypes"] == ["torch.float64", "torch.float32", "torch.int64"]
            assert o[f"mean-{mb}"]["none"] and o[f"mean-{mb}"]["empty"] == [0]
        assert o["unchanged"]
        assert o["broadcast_a"] == [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]]
        assert o["gather"] == [[0.0, 0.0], [1.0, 1.0]]
        assert o["empty_tree"]


def test_data_parallel_equals_single_process_and_ddp(tmp_path: Path) -> None:
    res = launch("train", tmp_path)
    assert set(res) == {0, 1}, res
    for r in (0, 1):
        assert "error" not in res[r], res[r]
        assert res[r]["moved"] > 1e-3  # training did something
        assert res[r]["dp_vs_full"] <= 1e-10
        assert res[r]["ddp_vs_dp"] <= 1e-10


def test_mismatched_trees_name_the_path_on_every_rank(tmp_path: Path) -> None:
    res = launch("mismatch", tmp_path)
    assert set(res) == {0, 1}, res
    for r in (0, 1):
        assert res[r]["error"] == "ValueError", res[r]
        assert "every rank must pass a tree of one structure" in res[r]["message"]
        assert "'w:(3,):torch.float64'" in res[r]["message"]
        assert "'w:(4,):torch.float64'" in res[r]["message"]


def test_a_rank_that_dies_makes_the_other_fail_not_hang(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = launch("dies", tmp_path, timeout=10.0)
    assert res[0]["error"] == "CollectiveError", res
    assert "every rank must take part" in res[0]["message"]
    assert time.monotonic() - t0 < 60


def test_a_rank_that_never_joins_times_out(tmp_path: Path) -> None:
    t0 = time.monotonic()
    res = launch("collectives", tmp_path, ranks=(0,), timeout=3.0)
    assert res[0]["error"] == "CollectiveError", res
    assert "all ranks must join" in res[0]["message"]
    assert time.monotonic() - t0 < 45


def test_single_process_helpers_and_errors() -> None:
    assert ftx.distributed.rank() == 0 and ftx.distributed.world_size() == 1
    batch = {"x": torch.arange(12).reshape(6, 2), "y": torch.arange(6)}
    part = ftx.distributed.shard(batch, rank=2, world_size=3)
    assert part["x"].tolist() == [[8, 9], [10, 11]] and part["y"].tolist() == [4, 5]
    with pytest.raises(ValueError, match=r"ftx.distributed.shard: the batch size must divide"):
        ftx.distributed.shard(batch, rank=0, world_size=4)
    with pytest.raises(ValueError, match=r"ftx.distributed.shard: rank must lie in"):
        ftx.distributed.shard(batch, rank=3, world_size=3)
    with pytest.raises(ValueError, match=r"one batch size along dimension 0"):
        ftx.distributed.shard({"x": torch.ones(4), "y": torch.ones(3)}, rank=0, world_size=1)
    with pytest.raises(ValueError, match=r"ftx.distributed.all_reduce: needs an initialised"):
        ftx.distributed.all_reduce({"x": torch.ones(1)})
    with pytest.raises(ValueError, match=r"op must be one of"):
        ftx.distributed.all_reduce({"x": torch.ones(1)}, op="prod")  # type: ignore[arg-type]


def _cyclic() -> list[Any]:
    a: list[Any] = [torch.ones(2)]
    a.append(a)
    return a


D = ftx.distributed


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        pytest.param(lambda: D.shard({"x": torch.ones(4)}, rank=1.5, world_size=2), TypeError,
                     r"ftx\.distributed\.shard: rank must be an int, got float 1\.5\.", id="rank"),
        pytest.param(lambda: D.shard({"x": torch.ones(4)}, rank=0, world_size=0), ValueError,
                     r"ftx\.distributed\.shard: world_size must lie in \[1, inf\], got 0\.",
                     id="world_size"),
        pytest.param(lambda: D.shard(_cyclic(), rank=0, world_size=1), ValueError,
                     r"ftx\.distributed\.shard: batch must be a pytree without cycles, got a "
                     r"container at path '1'", id="shard-cycle"),
        pytest.param(lambda: D.all_reduce({"x": torch.ones(1)}, op=["sum"]), TypeError,
                     r"ftx\.distributed\.all_reduce: op must be one of .*, got \['sum'\]\.",
                     id="op-kind"),
        pytest.param(lambda: D.all_reduce({"x": torch.ones(1)}, bucket_mb=-1), ValueError,
                     r"ftx\.distributed\.all_reduce: bucket_mb must be a finite number > 0\.0, "
                     r"got -1\.", id="bucket_mb"),
        pytest.param(lambda: D.all_reduce({"x": "a"}), TypeError,
                     r"ftx\.distributed\.all_reduce: every leaf must be a tensor, got str 'a' at "
                     r"'x'\.", id="leaf-before-group"),
        pytest.param(lambda: D.all_reduce({"x": torch.ones(1)}, check="yes"), TypeError,
                     r"ftx\.distributed\.all_reduce: check must be a bool, got str", id="check"),
        pytest.param(lambda: D.broadcast({"x": torch.ones(1)}, src="0"), TypeError,
                     r"ftx\.distributed\.broadcast: src must be an int, got str '0'\.", id="src"),
        pytest.param(lambda: D.all_gather({"x": torch.ones(1)}, group="world"), TypeError,
                     r"ftx\.distributed\.all_gather: group must be a ProcessGroup or None, got "
                     r"str 'world'\.", id="group"),
        pytest.param(lambda: D.rank(group=5), TypeError,
                     r"ftx\.distributed\.rank: group must be a ProcessGroup or None",
                     id="rank-group"),
        pytest.param(lambda: D.initialize(backend="bogus"), ValueError,
                     r"ftx\.distributed\.initialize: backend must be one of .*gloo.*, got "
                     r"'bogus'\.", id="backend"),
        pytest.param(lambda: D.initialize(backend=5), TypeError,
                     r"ftx\.distributed\.initialize: backend must be a str or None, got int 5\.",
                     id="backend-kind"),
        pytest.param(lambda: D.initialize(timeout=-1), ValueError,
                     r"ftx\.distributed\.initialize: timeout must be a finite number > 0\.0, got "
                     r"-1\.", id="timeout"),
        pytest.param(lambda: D.initialize(timeout=float("inf")), ValueError,
                     r"ftx\.distributed\.initialize: timeout must be a finite number", id="inf"),
        pytest.param(lambda: D.initialize(timeout="60"), TypeError,
                     r"ftx\.distributed\.initialize: timeout must be a real number, got str",
                     id="timeout-kind"),
        pytest.param(lambda: D.initialize(init_method=5), TypeError,
                     r"ftx\.distributed\.initialize: init_method must be a str or None, got int",
                     id="init_method"),
    ],
)
def test_bad_arguments_fail_before_any_group(call: Any, exc: type[Exception], pattern: str
                                              ) -> None:
    with pytest.raises(exc, match=pattern):
        call()
    assert not torch.distributed.is_initialized()


def test_ddp_example_under_torchrun_matches_single_process(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
               str(ROOT / "examples" / "ddp_mlp_digits.py"), "--quiet", "--checkpoint", str(ck),
               *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=_env())

    first = torchrun("--steps", "5")
    assert first.returncode == 0, first.stdout + first.stderr
    proc = torchrun("--steps", "10", "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("test accuracy") == 1  # only rank 0 logs
    ddp_params = ftx.io.load(str(ck / "final_params.safetensors"))
    sys.path.insert(0, str(ROOT / "examples"))
    import mlp_digits

    single = mlp_digits.main(["--steps", "10", "--quiet"])["params"]
    for a, b in zip(ftx.tree.leaves(ddp_params), ftx.tree.leaves(single)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_allreduce_benchmark_quick_run_agrees() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.distributed_allreduce", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agreement: per-tensor vs ftx 0.0e+00" in proc.stdout
    assert "ftx overlapped 0.0e+00" in proc.stdout
