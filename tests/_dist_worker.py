"""One rank of a 2-process gloo group for tests/test_distributed.py.

Run as ``python -m tests._dist_worker SCENARIO OUT_DIR`` with RANK, WORLD_SIZE,
MASTER_ADDR (loopback) and MASTER_PORT set. Writes ``OUT_DIR/rank{r}.json``.
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


def _mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    ).to(D)


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 5, generator=g, dtype=D), torch.randn(16, 3, generator=g, dtype=D)


def scenario_collectives(r: int, w: int) -> dict[str, Any]:
    tree = {
        "a": torch.arange(6, dtype=D).reshape(2, 3) * (r + 1),
        "b": [torch.tensor([1.5, -2.0], dtype=torch.float32) * (r + 1), None],
        "c": torch.tensor([3 * (r + 1)], dtype=torch.int64),
        "empty": torch.zeros(0, dtype=D),
    }
    before = ftx.tree.map(lambda x: x.clone(), tree)
    out: dict[str, Any] = {}
    for op in ("mean", "sum", "max", "min"):
        for mb in (25.0, 1e-6):  # one bucket per dtype, or one bucket per leaf
            red = ftx.distributed.all_reduce(tree, op=op, bucket_mb=mb)  # type: ignore[arg-type]
            out[f"{op}-{mb}"] = {
                "a": red["a"].tolist(), "b": red["b"][0].tolist(), "c": red["c"].tolist(),
                "dtypes": [str(red["a"].dtype), str(red["b"][0].dtype), str(red["c"].dtype)],
                "none": red["b"][1] is None, "empty": list(red["empty"].shape),
            }
    out["unchanged"] = ftx.tree.allclose(tree, before, rtol=0, atol=0)
    b = ftx.distributed.broadcast(tree, src=1)
    out["broadcast_a"] = b["a"].tolist()
    g = ftx.distributed.all_gather({"x": torch.full((2,), float(r), dtype=D)})
    out["gather"] = g["x"].tolist()
    out["empty_tree"] = ftx.distributed.all_reduce({}) == {}
    return out


def _loss(apply: Any, p: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((apply(p, x) - y) ** 2).mean()


def scenario_train(r: int, w: int) -> dict[str, Any]:
    apply, init = ftx.nn.from_module(_mlp())
    x, y = _data()
    lr, momentum, steps = 0.1, 0.9, 5
    opt = ftx.optim.sgd(lr=lr, momentum=momentum)
    grad = ftx.grad(lambda p, xb, yb: _loss(apply, p, xb, yb))

    def train(params: Any, xb: torch.Tensor, yb: torch.Tensor, reduce: bool) -> Any:
        state = opt.init(params)
        for _ in range(steps):
            g = grad(params, xb, yb)
            if reduce:
                g = ftx.distributed.all_reduce(g, op="mean")
            updates, state = opt.update(g, state, params)
            params = ftx.optim.apply_updates(params, updates)
        return params

    # (1) one process, whole batch; (2) data parallel: each rank its shard, gradients averaged
    full = train(init, x, y, reduce=False)
    xs, ys = ftx.distributed.shard((x, y))
    dp = train(ftx.distributed.broadcast(init, src=0), xs, ys, reduce=True)
    # (3) DistributedDataParallel on the nn.Module twin with torch.optim
    twin = _mlp()
    ddp = torch.nn.parallel.DistributedDataParallel(twin)
    torch_opt = torch.optim.SGD(ddp.parameters(), lr=lr, momentum=momentum)
    for _ in range(steps):
        torch_opt.zero_grad()
        ((ddp(xs) - ys) ** 2).mean().backward()
        torch_opt.step()
    ddp_params = ftx.nn.params_of(twin)

    def maxdiff(a: Any, b: Any) -> float:
        pairs = zip(ftx.tree.leaves(a), ftx.tree.leaves(b))
        return max(float((u - v).abs().max()) for u, v in pairs)

    return {"dp_vs_full": maxdiff(dp, full), "ddp_vs_dp": maxdiff(ddp_params, dp),
            "moved": maxdiff(full, init)}


def scenario_mismatch(r: int, w: int) -> dict[str, Any]:
    tree = {"w": torch.zeros(3 if r == 0 else 4, dtype=D), "b": torch.zeros(2, dtype=D)}
    try:
        ftx.distributed.all_reduce(tree)
    except ValueError as e:
        return {"error": "ValueError", "message": str(e)}
    return {"error": None}


def scenario_dies(r: int, w: int) -> dict[str, Any]:
    if r == 1:
        os._exit(0)  # dies without taking part
    t0 = time.monotonic()
    try:
        for _ in range(3):
            ftx.distributed.all_reduce({"x": torch.ones(1000, dtype=D)})
            time.sleep(0.2)
    except ftx.distributed.CollectiveError as e:
        return {"error": "CollectiveError", "message": str(e), "seconds": time.monotonic() - t0}
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
    if dist.is_initialized() and scenario != "dies":
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
