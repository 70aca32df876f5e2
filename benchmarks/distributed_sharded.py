"""Sharded training step (ZeRO-3) against DDP and FSDP2 on the nn.Module twin (2 CPU processes).

    python -m benchmarks.distributed_sharded            # MLP 784-1024-1024-1024-10, batch 256
    python -m benchmarks.distributed_sharded --quick    # MLP 784-256-256-10, fewer rounds
    python -m benchmarks.distributed_sharded --memory   # per-rank state at 1, 2 and 4 ranks

One training step (forward, backward, gradient reduction, Adam update) timed in
the same two processes on the same data (each rank its half of a global batch):

- ``ftx sharded``: params from ``ftx.distributed.shard_params`` (DTensor
  ``Shard(0)``), ``ftx.distributed.value_and_grad`` (all-gather before the
  forward pass, reduce-scatter overlapped with the backward pass),
  ``ftx.optim.adam`` on the shards;
- ``ftx data-parallel``: plain params, ``ftx.distributed.value_and_grad``
  (all-reduce overlapped with the backward pass), ``ftx.optim.adam``;
- ``DDP``: the ``nn.Sequential`` twin in ``DistributedDataParallel`` with
  ``torch.optim.Adam(foreach=True)``;
- ``FSDP2``: the twin with ``fully_shard`` on every ``Linear`` and on the root
  (the layout FSDP2's docs recommend), ``torch.optim.Adam(foreach=True)``;
- ``ftx all-gather only``: the sharded step's all-gather of the parameters alone,
  the most that prefetching it behind computation could save.

All four start from the same parameters; after one step they must agree (float32
rounding). Interleaved rounds, a barrier before each timed step, medians; rank
0 reports. Ratios are to DDP and to FSDP2 timed in the same run. The two
processes share this machine's cores, so quote ratios, not times.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import ftx


def _twin(sizes: list[int]) -> torch.nn.Sequential:
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _local_bytes(tensors: list[torch.Tensor]) -> int:
    total = 0
    for t in tensors:
        loc = t.to_local() if hasattr(t, "to_local") else t
        total += loc.numel() * loc.element_size()
    return total


def _worker(rank: int, world: int, port: int, sizes: list[int], batch: int, calls: int,
            rounds: int, out_path: str, memory_only: bool) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (world,))
    model = ftx.nn.MLP(sizes, activation=ftx.nn.ReLU())
    init = model.init(ftx.random.key(0))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, sizes[0], generator=g)
    y = torch.randint(0, sizes[-1], (batch,), generator=g)
    xb, yb = ftx.distributed.shard((x, y))
    lr = 1e-3

    def loss_fn(p: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(p, a), b)

    opt = ftx.optim.adam(lr=lr)
    vg = ftx.distributed.value_and_grad(loss_fn)
    sharded = {"params": ftx.distributed.shard_params(init, mesh)}
    sharded["opt"] = opt.init(sharded["params"])
    plain = {"params": ftx.tree.map(lambda t: t.clone(), init)}
    plain["opt"] = opt.init(plain["params"])

    def ftx_step(st: dict[str, Any]) -> None:
        _, grads = vg(st["params"], xb, yb)
        updates, st["opt"] = opt.update(grads, st["opt"], st["params"])
        st["params"] = ftx.optim.apply_updates(st["params"], updates)
        st["grads"] = grads

    ddp_twin, fsdp_twin = _twin(sizes), _twin(sizes)
    for twin in (ddp_twin, fsdp_twin):
        ftx.nn.load_params(twin, init)
    ddp = torch.nn.parallel.DistributedDataParallel(ddp_twin)
    for m in fsdp_twin:
        if isinstance(m, torch.nn.Linear):
            fully_shard(m, mesh=mesh)
    fully_shard(fsdp_twin, mesh=mesh)
    torch_opts = {name: torch.optim.Adam(m.parameters(), lr=lr, foreach=True)
                  for name, m in (("DDP", ddp), ("FSDP2", fsdp_twin))}

    def torch_step(name: str, m: torch.nn.Module) -> None:
        o = torch_opts[name]
        o.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(m(xb), yb).backward()
        o.step()

    methods: dict[str, Callable[[], None]] = {
        "ftx sharded": lambda: ftx_step(sharded),
        "ftx data-parallel": lambda: ftx_step(plain),
        "DDP": lambda: torch_step("DDP", ddp),
        "FSDP2": lambda: torch_step("FSDP2", fsdp_twin),
        # what prefetching could hide at most: the step's all-gather alone
        "ftx all-gather only": lambda: ftx.distributed.gather_params(sharded["params"]),
    }
    # Agreement: one step of each from the same parameters.
    for fn in methods.values():
        fn()
    full = ftx.distributed.gather_params(sharded["params"])
    outs = {
        "ftx data-parallel": plain["params"],
        "DDP": ftx.nn.params_of(ddp_twin),
        "FSDP2": {k: (v.full_tensor() if hasattr(v, "full_tensor") else v).detach()
                  for k, v in fsdp_twin.state_dict().items()},
    }
    flat = dict(ftx.tree.leaves_with_path(full))
    agree = {k: max(float((flat[p] - u).abs().max()) for p, u in ftx.tree.leaves_with_path(v))
             for k, v in outs.items()}
    ftx_state = [*ftx.tree.leaves(sharded["params"]), *ftx.tree.leaves(sharded["grads"]),
                 *ftx.tree.leaves(sharded["opt"])]
    fsdp_state = [*fsdp_twin.parameters(), *(p.grad for p in fsdp_twin.parameters()),
                  *(t for s in torch_opts["FSDP2"].state.values() for t in s.values())]
    mem = {"ftx sharded": _local_bytes(ftx_state), "FSDP2": _local_bytes(fsdp_state)}
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(0 if memory_only else rounds):
        for name, fn in methods.items():
            fn()  # warm-up
            for _ in range(calls):
                dist.barrier()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"times": times, "agree": agree, "memory": mem}, f)
    dist.barrier()
    ddp = None  # release DDP's reducer before tearing the group down
    dist.destroy_process_group()


def run(world: int, sizes: list[int], batch: int, calls: int, rounds: int,
        memory_only: bool = False) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.start_processes(_worker, args=(world, port, sizes, batch, calls, rounds, out,
                                          memory_only),
                           nprocs=world, join=True, start_method="spawn")
        with open(out) as f:
            res: dict[str, Any] = json.load(f)
    if not memory_only:
        med = {k: statistics.median(v) for k, v in res["times"].items()}
        res["median_s"] = med
        res["ratios"] = {
            "ftx sharded / FSDP2": med["ftx sharded"] / med["FSDP2"],
            "ftx sharded / DDP": med["ftx sharded"] / med["DDP"],
            "ftx data-parallel / DDP": med["ftx data-parallel"] / med["DDP"],
            "FSDP2 / DDP": med["FSDP2"] / med["DDP"],
            "ftx all-gather only / ftx sharded": med["ftx all-gather only"] / med["ftx sharded"],
        }
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--memory", action="store_true",
                   help="only the per-rank state (params + grads + Adam) at 1, 2, 4 ranks")
    args = p.parse_args(argv)
    sizes = [784, 256, 256, 10] if args.quick else [784, 1024, 1024, 1024, 10]
    n_params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.memory:
        print(f"per-rank bytes of params + grads + Adam state, MLP {sizes} ({n_params:,} "
              f"float32 parameters), torch {torch.__version__}, {stamp}")
        for world in (1, 2, 4):
            res = run(world, sizes, 64, 0, 0, memory_only=True)
            m = res["memory"]
            print(f"  {world} rank(s): ftx sharded {m['ftx sharded'] / 2**20:8.2f} MiB  "
                  f"FSDP2 {m['FSDP2'] / 2**20:8.2f} MiB")
        return 0
    calls, rounds = (3, 2) if args.quick else (10, 3)
    res = run(2, sizes, 256, calls, rounds)
    print(f"training step, MLP {sizes} ({n_params:,} float32 parameters), global batch 256, "
          f"2 processes (gloo), torch {torch.__version__}, {stamp}")
    print("agreement with ftx sharded after one step: " + ", ".join(
        f"{k} {v:.1e}" for k, v in res["agree"].items()))
    for k, v in res["median_s"].items():
        print(f"  {k:<20} median {v * 1e3:9.2f} ms")
    for k, v in res["ratios"].items():
        print(f"  {k:<34} {v:.2f}x")
    return 0 if max(res["agree"].values()) < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
