"""The digits MLP trained with sharded parameters and Adam state (ZeRO-3 / FSDP) on ftx.distributed.

    torchrun --nproc_per_node=2 examples/fsdp_mlp_digits.py --checkpoint ck   # CPU, gloo
    torchrun --nproc_per_node=4 examples/fsdp_mlp_digits.py --checkpoint ck --resume
    torchrun --nproc_per_node=4 examples/fsdp_mlp_digits.py --device cuda     # GPUs, NCCL

Each rank holds only its rows of every parameter and of Adam's moments
(``ftx.distributed.shard_params``: DTensors with ``Shard(0)``), so the per-rank
state falls as ``1 / world_size``. Every step, ``ftx.distributed.value_and_grad``
gathers the parameters for the forward pass of the unchanged single-process
loss and reduce-scatters the gradients while the backward pass runs; each rank
then updates its own shard with ``ftx.optim.adam``. The global batch is
``mlp_digits.py``'s, so the run retraces the single-process one.
``ftx.distributed.save`` writes one file per rank plus an index, and
``--resume`` loads it on any number of ranks (2 -> 4 above).
"""

from __future__ import annotations

import os
from typing import Any

import _common
import torch

import ftx


def state_bytes(tree: Any) -> int:
    """Bytes this rank holds for the tree (DTensors: their local shard)."""
    total = 0
    for t in ftx.tree.leaves(tree):
        if isinstance(t, torch.Tensor):
            loc = t.to_local() if hasattr(t, "to_local") else t
            total += loc.numel() * loc.element_size()
    return total


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=1500)
    p.add_argument("--batch-size", type=int, default=64, help="global batch size")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--timeout", type=float, default=120.0, help="collective timeout (s)")
    args = p.parse_args(argv)
    device = _common.device_of(args)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    ftx.distributed.initialize(backend="nccl" if device.type == "cuda" else "gloo",
                               timeout=args.timeout)
    rank, world = ftx.distributed.rank(), ftx.distributed.world_size()
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must divide by world size {world}")
    if args.resume and not args.checkpoint:
        raise SystemExit("--resume needs --checkpoint DIR")
    lead = rank == 0
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)

    model = ftx.nn.MLP([64, args.hidden, args.hidden, 10], activation=ftx.nn.ReLU())
    opt = ftx.optim.adam(lr=args.lr)
    init_key, data_key = ftx.random.split(ftx.random.key(args.seed).to(device))
    params = ftx.distributed.shard_params(model.init(init_key, dtype=dtype, device=device))
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    if args.resume:
        state = ftx.distributed.load(args.checkpoint, like=state)

    def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(params, x), y)  # the single-process loss

    value_and_grad = ftx.distributed.value_and_grad(loss_fn)
    total = args.steps - int(state["step"])
    bar = _common.progress(_common.steps_from(state, args.steps), total,
                           quiet=args.quiet or not lead, desc=f"fsdp x{world}")
    for step in bar:
        idx = _common.batch_indices(data_key, step, x_train.shape[0], args.batch_size)
        xb, yb = ftx.distributed.shard((x_train[idx], y_train[idx]), rank, world)
        loss, grads = value_and_grad(state["params"], xb, yb)  # grads: this rank's shard
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        if lead:
            _common.set_postfix(bar, loss=float(loss))
        if args.checkpoint and args.save_every and (step + 1) % args.save_every == 0:
            ftx.distributed.save(args.checkpoint, state)  # every rank writes its shard
    if args.checkpoint:
        ftx.distributed.save(args.checkpoint, state)

    full = ftx.distributed.gather_params(state["params"])
    with torch.no_grad():
        pred = model(full, x_test).argmax(-1)
    acc = float((pred == y_test).float().mean())
    mine = state_bytes((state["params"], state["opt"]))
    if lead:
        print(f"world size {world}: test accuracy {acc:.4f}; per-rank state (params + Adam) "
              f"{mine / 1024:.1f} KiB")
    torch.distributed.destroy_process_group()
    return {"accuracy": acc, "params": full}


if __name__ == "__main__":
    main()
