"""One rank of a gloo group for tests/test_distributed_sharded.py (overlap, sharding, checkpoints).

Run as ``python -m tests._dist_worker_sharded SCENARIO OUT_DIR`` with RANK, WORLD_SIZE,
MASTER_ADDR (loopback) and MASTER_PORT set. Writes ``OUT_DIR/rank{r}.json``; checkpoints
and the full (gathered) states the test compares go to OUT_DIR's parent folder, which
a chain of launches shares.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

import torch
import torch.distributed as dist

import ftx

D = torch.float64
STEPS, SAVE_AT, BATCH, LR = 50, 20, 64, 1e-2
MODEL = ftx.nn.MLP([64, 48, 48, 10], activation=ftx.nn.Tanh())
OPT = ftx.optim.adam(lr=LR)


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.data, dtype=D) / 16.0, torch.tensor(data.target)


def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The single-process loss, unchanged in every mode."""
    return ftx.nn.cross_entropy(MODEL(params, x), y)


def _batch(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    idx = ftx.random.permutation(ftx.random.fold_in(ftx.random.key(1), step), x.shape[0])[:BATCH]
    return x[idx], y[idx]


def _init() -> Any:
    return MODEL.init(ftx.random.key(0), dtype=D)


def single_process(steps: int = STEPS) -> Any:
    """The reference: one process, the whole batch, ftx.value_and_grad + ftx.optim.adam."""
    x, y = _digits()
    params = _init()
    state = OPT.init(params)
    vg = ftx.value_and_grad(loss_fn)
    for step in range(steps):
        _, g = vg(params, *_batch(step, x, y))
        updates, state = OPT.update(g, state, params)
        params = ftx.optim.apply_updates(params, updates)
    return params


def sharded_steps(state: dict[str, Any], start: int, stop: int, *,
                  on_step: Any = None) -> dict[str, Any]:
    """Sharded training (ZeRO-3): the state holds DTensor shards; the loss is unchanged."""
    x, y = _digits()
    vg = ftx.distributed.value_and_grad(loss_fn)
    for step in range(start, stop):
        if on_step is not None:
            on_step(step, state)
        xb, yb = ftx.distributed.shard(_batch(step, x, y))
        _, g = vg(state["params"], xb, yb)
        updates, opt = OPT.update(g, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt,
                 "step": step + 1}
        state["last_grads"] = g
    return state


def fresh_state() -> dict[str, Any]:
    params = ftx.distributed.shard_params(_init())
    return {"params": params, "opt": OPT.init(params), "step": 0}


def _shared() -> str:
    return os.path.dirname(os.path.abspath(sys.argv[2]))


def _maxdiff(a: Any, b: Any) -> float:
    return max(float((u - v).abs().max()) for u, v in zip(ftx.tree.leaves(a), ftx.tree.leaves(b)))


def _local_bytes(*trees: Any) -> int:
    """Bytes of the storages behind this rank's tensors (each storage counted once)."""
    seen: dict[int, int] = {}
    for tree in trees:
        for t in ftx.tree.leaves(tree):
            if isinstance(t, torch.Tensor):
                loc = t.to_local() if hasattr(t, "to_local") else t
                st = loc.untyped_storage()
                seen[st.data_ptr()] = st.nbytes()
    return sum(seen.values())


def _bitwise(a: Any, b: Any) -> bool:
    la, lb = ftx.tree.leaves_with_path(a), ftx.tree.leaves_with_path(b)
    return len(la) == len(lb) and all(
        pa == pb and torch.equal(torch.as_tensor(u), torch.as_tensor(v))
        for (pa, u), (pb, v) in zip(la, lb))


def _full(state: dict[str, Any]) -> dict[str, Any]:
    return ftx.distributed.gather_params({k: state[k] for k in ("params", "opt", "step")})


# ------------------------------------------------------------------------------ scenarios


def scenario_overlap(r: int, w: int) -> dict[str, Any]:
    """The overlapped data-parallel gradient against ftx.grad + all_reduce (today's path)."""
    x, y = _digits()
    xb, yb = ftx.distributed.shard(_batch(0, x, y))
    # "unused" gets no gradient: zero, as from ftx.grad
    params = {"net": _init(), "unused": torch.ones(3, dtype=D)}

    def loss(p: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return loss_fn(p["net"], a, b)

    out: dict[str, Any] = {}
    for mb in (25.0, 1e-3):  # one bucket, or one per leaf (the reduction starts mid-backward)
        ref = ftx.distributed.all_reduce(ftx.grad(loss)(params, xb, yb), bucket_mb=mb)
        v, g = ftx.distributed.value_and_grad(loss, bucket_mb=mb)(params, xb, yb)
        out[f"bitwise-{mb}"] = _bitwise(g, ref)
        out[f"value-{mb}"] = float(v) == float(loss(params, xb, yb))
    ref = ftx.distributed.all_reduce(ftx.grad(loss)(params, xb, yb), bucket_mb=1e-3)
    aux_fn = ftx.distributed.grad(lambda p, a, b: (loss(p, a, b), a.sum()), has_aux=True,
                                  bucket_mb=1e-3)
    g, aux = aux_fn(params, xb, yb)
    out["aux"] = _bitwise(g, ref) and float(aux) == float(xb.sum())
    g2 = ftx.distributed.grad(lambda a, p, b, c: loss(p, b, c), argnums=(1,),
                              bucket_mb=1e-3)(0, params, xb, yb)
    out["argnums"] = isinstance(g2, tuple) and _bitwise(g2[0], ref)
    out["unused_zero"] = bool((g["unused"] == 0).all()) and bool((ref["unused"] == 0).all())
    try:
        bad = {"w": torch.zeros(3 if r == 0 else 4, dtype=D)}
        ftx.distributed.grad(lambda p: p["w"].sum())(bad)
    except ValueError as e:
        out["mismatch"] = str(e)
    return out


def scenario_train(r: int, w: int) -> dict[str, Any]:
    """The overlap checks; sharded training equals one process; memory; a checkpoint at
    SAVE_AT on 2 ranks."""
    out_dir = _shared()
    ck = os.path.join(out_dir, "ckA")

    def on_step(step: int, state: dict[str, Any]) -> None:
        if step == SAVE_AT and w == 2:
            ftx.distributed.save(ck, {k: state[k] for k in ("params", "opt", "step")})
            full = _full(state)
            if r == 0:
                ftx.io.save(os.path.join(out_dir, "fullA.safetensors"), full)

    overlap = scenario_overlap(r, w)
    state = sharded_steps(fresh_state(), 0, STEPS, on_step=on_step)
    full_params = ftx.distributed.gather_params(state["params"])
    ref = single_process()
    final = _full(state)  # collective: every rank
    if r == 0 and w == 2:
        ftx.io.save(os.path.join(out_dir, "final2.safetensors"), final)
    local = {k: [t.to_local().shape[0] if t.dim() else 0 for t in ftx.tree.leaves(state[k])]
             for k in ("params",)}
    # clip_by_global_norm on the shards: the norm is global (DTensor reduces across ranks)
    clip = ftx.optim.clip_by_global_norm(1e-3)
    u, _ = clip.update(state["last_grads"], clip.init(state["params"]), state["params"])
    u_ref, _ = clip.update(ftx.distributed.gather_params(state["last_grads"]),
                           clip.init(full_params), full_params)
    return {
        "overlap": overlap,
        "clip_vs_full": _maxdiff(ftx.distributed.gather_params(u), u_ref),
        "clip_moved": _maxdiff(u_ref, ftx.distributed.gather_params(state["last_grads"])),
        "vs_single": _maxdiff(full_params, ref),
        "moved": _maxdiff(ref, _init()),
        "bytes": _local_bytes(state["params"], state["last_grads"], state["opt"]),
        "bytes_params": _local_bytes(state["params"]),
        "rows": local["params"],
        "is_dtensor": all(type(t).__name__ == "DTensor" for t in ftx.tree.leaves(
            (state["params"], state["last_grads"], state["opt"][0].exp_avg,
             state["opt"][0].exp_avg_sq))),
    }


def scenario_reshard4(r: int, w: int) -> dict[str, Any]:
    """Load the 2-rank checkpoint on 4 ranks (bitwise) and save it again from 4 ranks."""
    out_dir = _shared()
    st = ftx.distributed.load(os.path.join(out_dir, "ckA"), like=fresh_state())
    ref = ftx.io.load(os.path.join(out_dir, "fullA.safetensors"))
    same = _bitwise(_full(st), ref)
    ftx.distributed.save(os.path.join(out_dir, "ckB"), st)
    return {"bitwise": same, "step": st["step"],
            "files": sorted(os.listdir(os.path.join(out_dir, "ckB")))}


def scenario_reshard1(r: int, w: int) -> dict[str, Any]:
    """Load the 4-rank checkpoint on 1 rank and save it again from 1 rank."""
    out_dir = _shared()
    st = ftx.distributed.load(os.path.join(out_dir, "ckB"), like=fresh_state())
    ref = ftx.io.load(os.path.join(out_dir, "fullA.safetensors"))
    same = _bitwise(_full(st), ref)
    ftx.distributed.save(os.path.join(out_dir, "ckC"), st)
    return {"bitwise": same}


def scenario_resume2(r: int, w: int) -> dict[str, Any]:
    """Resume the 1-rank checkpoint on 2 ranks: ends bit for bit like the uninterrupted run."""
    out_dir = _shared()
    st = ftx.distributed.load(os.path.join(out_dir, "ckC"), like=fresh_state())
    st = sharded_steps(st, st["step"], STEPS)
    ref = ftx.io.load(os.path.join(out_dir, "final2.safetensors"))
    return {"bitwise": _bitwise(_full(st), ref), "step": st["step"]}


def scenario_dies(r: int, w: int) -> dict[str, Any]:
    """Checkpoint every 5 steps; rank 1 dies in the middle of step 7 (inside the forward pass)."""
    out_dir = _shared()
    ck = os.path.join(out_dir, "ck")

    def on_step(step: int, state: dict[str, Any]) -> None:
        if step and step % 5 == 0:
            ftx.distributed.save(ck, {k: state[k] for k in ("params", "opt", "step")})
            full = _full(state)
            if r == 0:
                ftx.io.save(os.path.join(out_dir, f"full{step}.safetensors"), full)

    global loss_fn
    plain = loss_fn

    def dying(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if r == 1 and dying.step == 7:  # type: ignore[attr-defined]
            os._exit(0)
        return plain(params, x, y)

    started = [0.0]

    def count(step: int, state: dict[str, Any]) -> None:
        dying.step = step  # type: ignore[attr-defined]
        on_step(step, state)
        started[0] = time.monotonic()  # the step itself starts

    loss_fn = dying
    try:
        sharded_steps(fresh_state(), 0, STEPS, on_step=count)
    except ftx.distributed.CollectiveError as e:
        return {"error": "CollectiveError", "message": str(e), "step": dying.step,  # type: ignore[attr-defined]
                "seconds": time.monotonic() - started[0]}
    return {"error": None}


def scenario_dies_in_save(r: int, w: int) -> dict[str, Any]:
    """Rank 1 dies during the second save, after writing its file, before the index moves."""
    out_dir = _shared()
    ck = os.path.join(out_dir, "ck")
    from ftx.distributed import _checkpoint

    real = _checkpoint._io.save
    saves = [0]

    def save_then_die(path: str, tree: Any) -> None:
        real(path, tree)
        saves[0] += 1
        if r == 1 and saves[0] == 2:
            os._exit(0)

    _checkpoint._io.save = save_then_die  # type: ignore[assignment]

    def on_step(step: int, state: dict[str, Any]) -> None:
        if step in (3, 6):
            ftx.distributed.save(ck, {k: state[k] for k in ("params", "opt", "step")})
            full = _full(state)
            if r == 0:
                ftx.io.save(os.path.join(out_dir, f"full{step}.safetensors"), full)

    try:
        sharded_steps(fresh_state(), 0, 10, on_step=on_step)
    except ftx.distributed.CollectiveError as e:
        return {"error": "CollectiveError", "message": str(e)}
    return {"error": None}


def main() -> None:
    scenario, out_dir = sys.argv[1], sys.argv[2]
    r = int(os.environ["RANK"])
    timeout = float(os.environ.get("FTX_TEST_TIMEOUT", "20"))
    result: dict[str, Any]
    try:
        ftx.distributed.initialize(backend="gloo", timeout=timeout)
        w = ftx.distributed.world_size()
        result = globals()[f"scenario_{scenario}"](r, w)
    except ftx.distributed.CollectiveError as e:
        result = {"error": "CollectiveError", "message": str(e)}
    except Exception as e:  # report, don't hang the test
        result = {"error": type(e).__name__, "message": str(e), "tb": traceback.format_exc()}
    with open(os.path.join(out_dir, f"rank{r}.json"), "w") as f:
        json.dump(result, f)
    if dist.is_initialized() and not scenario.startswith("dies"):
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
