"""The digits MLP trained data-parallel on torch.distributed with ftx.distributed.

    torchrun --nproc_per_node=2 examples/ddp_mlp_digits.py                  # CPU, gloo
    torchrun --nproc_per_node=2 examples/ddp_mlp_digits.py --device cuda    # GPUs, NCCL
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --master_port=29500 \\
        --nproc_per_node=4 examples/ddp_mlp_digits.py --device cuda         # two machines

Every rank holds the same parameters (rank 0's, broadcast at the start), takes
its shard of each global minibatch, computes gradients with
``ftx.value_and_grad`` and averages them with ``ftx.distributed.all_reduce``
(bucketed, like DistributedDataParallel), then applies the same Adam update.
The global batch is the same as ``mlp_digits.py``'s, so the run retraces the
single-process one. Only rank 0 logs and writes checkpoints; ``--resume``
loads on rank 0 and broadcasts the state to the others.
"""

from __future__ import annotations

import os
from typing import Any

import _common
import torch

import ftx


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
    lead = rank == 0
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)

    model = ftx.nn.MLP([64, args.hidden, args.hidden, 10], activation=ftx.nn.ReLU())
    opt = ftx.optim.adam(lr=args.lr)
    init_key, data_key = ftx.random.split(ftx.random.key(args.seed).to(device))
    params = model.init(init_key, dtype=dtype, device=device)
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    if lead:
        state = _common.restore(args, state, device)
    state = ftx.distributed.broadcast(state, src=0)  # everyone starts from rank 0's state

    def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(params, x), y)

    value_and_grad = ftx.value_and_grad(loss_fn)
    total = args.steps - int(state["step"])
    bar = _common.progress(_common.steps_from(state, args.steps), total,
                           quiet=args.quiet or not lead, desc=f"ddp x{world}")
    for step in bar:
        idx = _common.batch_indices(data_key, step, x_train.shape[0], args.batch_size)
        xb, yb = ftx.distributed.shard((x_train[idx], y_train[idx]), rank, world)
        loss, grads = value_and_grad(state["params"], xb, yb)
        grads = ftx.distributed.all_reduce(grads, op="mean")
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        if lead:
            _common.set_postfix(bar, loss=float(loss))
            _common.maybe_save(args, state, step, args.steps)
    if lead:
        _common.save(args, state)

    with torch.no_grad():
        pred = model(state["params"], x_test).argmax(-1)
    acc = float((pred == y_test).float().mean())
    if lead:
        print(f"world size {world}: test accuracy {acc:.4f}")
        if args.checkpoint:
            ftx.io.save(os.path.join(args.checkpoint, "final_params.safetensors"),
                        state["params"])
    torch.distributed.destroy_process_group()
    return {"accuracy": acc, "params": state["params"]}


if __name__ == "__main__":
    main()
