"""Overlapped data-parallel gradients, sharded training and sharded checkpoints on real gloo groups.

Every test launches real processes (2 or 4 ranks on the loopback address) running
tests/_dist_worker_sharded.py; the references are computed in float64 by one
process on the whole batch (ftx.value_and_grad + ftx.optim.adam) and by today's
path (ftx.grad + ftx.distributed.all_reduce).
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import ftx

from .test_distributed import ROOT, _env, _free_port, launch

WORKER = "tests._dist_worker_sharded"


def run(scenario: str, tmp: Path, world: int, **kw: Any) -> dict[int, Any]:
    """Launch ``world`` ranks; their reports go to a fresh folder, shared files to ``tmp``."""
    out = tmp / f"{scenario}-{world}"
    out.mkdir()
    kw.setdefault("wait", 300.0)  # a loaded machine is slow; a hang still ends
    res = launch(scenario, out, ranks=tuple(range(world)), world=world, worker=WORKER, **kw)
    return res


def _ok(res: dict[int, Any], world: int) -> None:
    assert set(res) == set(range(world)), res
    for r in range(world):
        assert "error" not in res[r], res[r]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, Any]]:
    """One launch per world size (1, 2, 4): overlap checks, then 50 sharded Adam steps on the
    digits MLP in float64 against one process; the 2-rank run checkpoints at step 20."""
    tmp = tmp_path_factory.mktemp("sharded")
    out = {}
    for world in (2, 4, 1):
        out[world] = run("train", tmp, world)
        _ok(out[world], world)
    return tmp, out


@pytest.mark.parametrize("world", [2, 4])
def test_overlapped_gradient_equals_all_reduce_after_backward(
        trained: tuple[Path, dict[int, Any]], world: int) -> None:
    for o in (r["overlap"] for r in trained[1][world].values()):
        assert o["bitwise-25.0"] and o["bitwise-0.001"], o
        assert o["value-25.0"] and o["aux"] and o["argnums"] and o["unused_zero"], o
        assert "every rank must pass a tree of one structure" in o["mismatch"], o
        assert "'0.w:(3,):torch.float64:replicate' on rank 0" in o["mismatch"], o


@pytest.mark.parametrize("world", [1, 2, 4])
def test_sharded_training_equals_one_process(trained: tuple[Path, dict[int, Any]], world: int
                                             ) -> None:
    for o in trained[1][world].values():
        assert o["vs_single"] <= 1e-10, o
        assert o["moved"] > 1e-2 and o["is_dtensor"], o
        assert o["clip_vs_full"] <= 1e-15 and o["clip_moved"] > 1e-6, o  # a global norm


def test_per_rank_memory_falls_as_one_over_world_size(trained: tuple[Path, dict[int, Any]]
                                                     ) -> None:
    # Bytes of params + grads + Adam state behind each rank's tensors. The stated overhead:
    # each of the 4 per-parameter tensors (param, grad, exp_avg, exp_avg_sq) of each leaf
    # may hold one row more than 1/world of it (torch.chunk's split), and Adam's step
    # counter is replicated.
    res = trained[1]
    b1 = res[1][0]["bytes"]
    model = [(48, 64), (48,), (48, 48), (48,), (10, 48), (10,)]
    row_bytes = sum(math.prod(s[1:]) for s in model) * 8
    assert b1 >= 4 * sum(math.prod(s) for s in model) * 8
    for w in (2, 4):
        for o in res[w].values():
            assert o["bytes"] <= b1 / w + 4 * row_bytes + 64, (w, o["bytes"], b1)
        assert sum(o["bytes"] for o in res[w].values()) >= b1  # every element is held somewhere


def test_checkpoints_reshard_2_to_4_to_1_to_2_bit_for_bit(
        trained: tuple[Path, dict[int, Any]]) -> None:
    tmp = trained[0]
    # 2 -> 4 ranks: the step-20 checkpoint loads bit for bit and is saved again from 4 ranks
    res = run("reshard4", tmp, 4)
    _ok(res, 4)
    assert all(o["bitwise"] and o["step"] == 20 for o in res.values()), res
    assert res[0]["files"][-1] == "index.json" and len(res[0]["files"]) == 5
    # 4 -> 1 in this process, into plain tensors (no process group): bit for bit
    full = ftx.io.load(str(tmp / "fullA.safetensors"))
    back = ftx.distributed.load(tmp / "ckB", like=_zeros_like(full))
    assert ftx.tree.structure(back) == ftx.tree.structure(full)
    assert _same(back, full)
    # 4 -> 1 on a 1-rank group (DTensors), saved again; 1 -> 2: resumed to step 50, the
    # run ends bit for bit where the uninterrupted 2-rank run ended.
    res = run("reshard1", tmp, 1)
    _ok(res, 1)
    assert res[0]["bitwise"], res
    res = run("resume2", tmp, 2)
    _ok(res, 2)
    assert all(o["bitwise"] and o["step"] == 50 for o in res.values()), res


def test_a_rank_that_dies_mid_step_fails_the_others_and_the_checkpoint_survives(
        tmp_path: Path) -> None:
    res = run("dies", tmp_path, 2, timeout=10.0)
    assert res[0]["error"] == "CollectiveError", res
    assert "every rank must take part" in res[0]["message"]
    # raised in the step where rank 1 died, within the 10 s timeout (+ slack for a busy machine)
    assert res[0]["step"] == 7 and res[0]["seconds"] < 10.0 + 20.0, res
    _check_intact(tmp_path / "ck", tmp_path / "full5.safetensors", step=5)


def test_a_rank_that_dies_mid_save_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    res = run("dies_in_save", tmp_path, 2, timeout=10.0)
    assert res[0]["error"] == "CollectiveError", res
    # rank 1 wrote its new file, rank 0 its own, but the index still names step 3's files
    names = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert len(names) == 5 and names[-1] == "index.json", names
    _check_intact(tmp_path / "ck", tmp_path / "full3.safetensors", step=3)


def _same(a: Any, b: Any) -> bool:
    """Bit for bit: the same paths, tensors equal (dtype included), Python values equal."""
    la, lb = ftx.tree.leaves_with_path(a), ftx.tree.leaves_with_path(b)
    return len(la) == len(lb) and all(
        pa == pb and type(u) is type(v) and (
            u.dtype == v.dtype and torch.equal(u, v) if isinstance(u, torch.Tensor) else u == v)
        for (pa, u), (pb, v) in zip(la, lb))


def _zeros_like(tree: Any) -> Any:
    return ftx.tree.map(lambda x: torch.zeros_like(x) if isinstance(x, torch.Tensor) else x, tree)


def _check_intact(ck: Path, full_file: Path, step: int) -> None:
    full = ftx.io.load(str(full_file))
    back = ftx.distributed.load(ck, like=_zeros_like(full))
    assert int(back["step"]) == step
    assert _same(back, full)


def test_errors_without_a_group_and_bad_arguments(tmp_path: Path) -> None:
    D = ftx.distributed
    with pytest.raises(ValueError, match=r"ftx\.distributed\.shard_params: needs an initialised"):
        D.shard_params({"w": torch.ones(2)})
    with pytest.raises(TypeError, match=r"ftx\.distributed\.shard_params: mesh must be a 1-D "
                       r"DeviceMesh or None, got str"):
        D.shard_params({"w": torch.ones(2)}, mesh="world")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"shard_params: every leaf of params must be a tensor, "
                       r"got int 1 at 'n'"):
        D.shard_params({"n": 1})
    with pytest.raises(ValueError, match=r"ftx\.distributed\.value_and_grad: needs an initialised"):
        D.value_and_grad(lambda p: p["w"].sum())({"w": torch.ones(2)})
    with pytest.raises(TypeError, match=r"value_and_grad: fun must be callable"):
        D.value_and_grad(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"value_and_grad: bucket_mb must be a finite number"):
        D.value_and_grad(lambda p: p, bucket_mb=0)
    with pytest.raises(ValueError, match=r"value_and_grad: argnums must be a non-negative int"):
        D.grad(lambda p: p, argnums=())
    with pytest.raises(FileNotFoundError, match=r"ftx\.distributed\.load: path must be a "
                       r"checkpoint folder with an index\.json"):
        D.load(tmp_path, like={})
    (tmp_path / "index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"index\.json must be an ftx\.distributed\.checkpoint/1"):
        D.load(tmp_path, like={})
    D.save(tmp_path / "ck", {"w": torch.arange(3.0), "n": 4})  # one process: world 1
    with pytest.raises(ValueError, match=r"like must hold every leaf of the checkpoint, got no "
                       r"leaf at 'w'"):
        D.load(tmp_path / "ck", like={"n": 0})
    with pytest.raises(ValueError, match=r"the leaf at 'w' must have the saved shape and dtype"):
        D.load(tmp_path / "ck", like={"w": torch.zeros(4), "n": 0})
    back = D.load(tmp_path / "ck", like={"w": torch.zeros(3), "n": 0})
    assert back["n"] == 4 and back["w"].tolist() == [0.0, 1.0, 2.0]
    assert D.gather_params({"w": torch.ones(2)})["w"].tolist() == [1.0, 1.0]
    assert not torch.distributed.is_initialized()


def _torchrun(n: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={n}",
           "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
           str(ROOT / "examples" / "fsdp_mlp_digits.py"), "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=_env())


def test_fsdp_example_resumes_on_another_world_size_and_matches_one_process(
        tmp_path: Path) -> None:
    ck = str(tmp_path / "ck")
    first = _torchrun(2, "--steps", "5", "--checkpoint", ck)
    assert first.returncode == 0, first.stdout + first.stderr
    proc = _torchrun(4, "--steps", "10", "--checkpoint", ck, "--resume")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("test accuracy") == 1  # only rank 0 logs
    assert "per-rank state" in proc.stdout
    sharded = ftx.distributed.load(ck, like=_like_single())
    sys.path.insert(0, str(ROOT / "examples"))
    import mlp_digits

    single = mlp_digits.main(["--steps", "10", "--quiet"])["params"]
    for a, b in zip(ftx.tree.leaves(sharded["params"]), ftx.tree.leaves(single)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def _like_single() -> Any:
    model = ftx.nn.MLP([64, 128, 128, 10], activation=ftx.nn.ReLU())
    params = model.init(ftx.random.key(0))
    return {"params": params, "opt": ftx.optim.adam(lr=1e-3).init(params),
            "step": torch.zeros((), dtype=torch.int64)}


def test_sharded_benchmark_quick_run_agrees_with_ddp_and_fsdp2() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.distributed_sharded", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "agreement with ftx sharded after one step: ftx data-parallel 0.0e+00" in proc.stdout
    assert "ftx sharded / FSDP2" in proc.stdout
