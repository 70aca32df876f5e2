"""Gradient all-reduce of a 10M-parameter tree on 2 CPU processes (gloo, loopback).

    python -m benchmarks.distributed_allreduce            # 10M parameters in 100 tensors
    python -m benchmarks.distributed_allreduce --quick    # 1M parameters, fewer rounds

Compares, in one run and on the same gradients:

- ``ftx bucketed``: ``ftx.distributed.all_reduce(grads, op="mean")`` (25 MiB buckets);
- ``per-tensor``: one ``torch.distributed.all_reduce`` per leaf, then divide;
- ``DDP backward`` against ``backward + ftx bucketed``: a ``DistributedDataParallel``
  module whose 100 parameters are the tree, where the reduction happens inside
  ``loss.backward()``, against the same backward on the bare module followed by
  ftx's bucketed all-reduce of its gradients;
- ``ftx overlapped``: ``ftx.distributed.grad(loss)(params)`` on the same loss as a pure
  function of the 100 tensors: the bucketed reduction starts inside the backward
  pass (hooks on the autograd graph), as DDP's does.

Collectives need every rank, so this case cannot run inside the single-process
harness: it spawns two processes that time each method in interleaved rounds
(a barrier before each timed call; medians over the calls; rank 0 reports).
Ratios are to ``per-tensor`` and to ``DDP backward``. Both processes share
this machine's cores, so absolute times mean little: quote the ratios.
"""

from __future__ import annotations

import argparse
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


def _per_tensor(grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, g in grads.items():
        t = g.clone()
        dist.all_reduce(t)
        out[k] = t.div_(dist.get_world_size())
    return out


def _worker(rank: int, world: int, port: int, numel: int, n_tensors: int, calls: int,
            rounds: int, out_path: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    size = numel // n_tensors
    g = torch.Generator().manual_seed(rank)
    grads = {f"p{i}": torch.randn(size, generator=g) for i in range(n_tensors)}

    coef = [torch.randn(size, generator=g) for _ in range(n_tensors)]

    class Linearish(torch.nn.Module):
        """loss = sum_i <p_i, c_i>: a backward that costs little next to the reduction."""

        def __init__(self) -> None:
            super().__init__()
            self.ps = torch.nn.ParameterList(
                [torch.nn.Parameter(torch.zeros(size)) for _ in range(n_tensors)])

        def forward(self) -> torch.Tensor:
            return torch.stack([(p * c).sum() for p, c in zip(self.ps, coef)]).sum()

    module, bare = Linearish(), Linearish()  # DDP hooks the module's parameters: two copies
    held = [torch.nn.parallel.DistributedDataParallel(module)]

    def ddp_backward() -> Any:
        module.zero_grad(set_to_none=True)
        held[0]().backward()  # DDP reduces the gradients inside backward
        return [p.grad for p in module.parameters()]

    def backward_then_ftx() -> Any:
        bare.zero_grad(set_to_none=True)
        bare().backward()
        return ftx.distributed.all_reduce({str(i): p.grad for i, p in
                                           enumerate(bare.parameters())})

    def pure_loss(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([(ps[str(i)] * c).sum() for i, c in enumerate(coef)]).sum()

    pure_params = {str(i): torch.zeros(size) for i in range(n_tensors)}
    overlapped = ftx.distributed.grad(pure_loss)

    methods: dict[str, Callable[[], Any]] = {
        "per-tensor": lambda: _per_tensor(grads),
        "ftx bucketed": lambda: ftx.distributed.all_reduce(grads, op="mean"),
        "ftx bucketed, no check": lambda: ftx.distributed.all_reduce(grads, check=False),
        "DDP backward": ddp_backward,
        "backward + ftx bucketed": backward_then_ftx,
        "ftx overlapped": lambda: overlapped(pure_params),
    }
    # Agreement first: both reductions give the same numbers; DDP equals backward + ftx.
    a, b = methods["per-tensor"](), methods["ftx bucketed"]()
    agree = max(float((a[k] - b[k]).abs().max()) for k in grads)
    d, e = ddp_backward(), backward_then_ftx()
    agree_ddp = max(float((x - e[str(i)]).abs().max()) for i, x in enumerate(d))
    o = overlapped(pure_params)
    agree_ddp = max(agree_ddp, max(float((x - o[str(i)]).abs().max()) for i, x in enumerate(d)))
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(rounds):
        for name, fn in methods.items():
            fn()  # warm-up
            for _ in range(calls):
                dist.barrier()
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"times": times, "agree": agree, "agree_ddp": agree_ddp}, f)
    dist.barrier()
    held.clear()  # release DDP's reducer before tearing the group down
    dist.destroy_process_group()


def run(numel: int, n_tensors: int, calls: int, rounds: int) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        mp.start_processes(_worker, args=(2, port, numel, n_tensors, calls, rounds, out),
                           nprocs=2, join=True, start_method="spawn")
        with open(out) as f:
            res: dict[str, Any] = json.load(f)
    med = {k: statistics.median(v) for k, v in res["times"].items()}
    res["median_s"] = med
    res["ratios"] = {
        "ftx bucketed / per-tensor": med["ftx bucketed"] / med["per-tensor"],
        "backward + ftx bucketed / DDP backward":
            med["backward + ftx bucketed"] / med["DDP backward"],
        "ftx overlapped / DDP backward": med["ftx overlapped"] / med["DDP backward"],
    }
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    numel, calls, rounds = (1_000_000, 3, 2) if args.quick else (10_000_000, 10, 3)
    res = run(numel, 100, calls, rounds)
    print(f"all-reduce of {numel:,} float32 parameters in 100 tensors, 2 processes (gloo), "
          f"torch {torch.__version__}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"agreement: per-tensor vs ftx {res['agree']:.1e}; DDP vs backward+ftx and vs "
          f"ftx overlapped {res['agree_ddp']:.1e}")
    for k, v in res["median_s"].items():
        print(f"  {k:<26} median {v * 1e3:9.2f} ms")
    for k, v in res["ratios"].items():
        print(f"  {k:<40} {v:.2f}x")
    ok = res["agree"] < 1e-5 and res["agree_ddp"] < 1e-5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
