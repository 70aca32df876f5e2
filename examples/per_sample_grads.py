"""DP-SGD style training: per-example gradients with ftx.vmap(ftx.grad), clipping, noise.

    python examples/per_sample_grads.py --steps 300

Each step computes one gradient per example with ``ftx.vmap(ftx.grad(loss))``,
clips each to ``--clip`` in global L2 norm, sums them, adds Gaussian noise of
standard deviation ``--noise * --clip`` drawn from ``ftx.random`` (a key folded
with the step, so runs are reproducible and resumable), and averages. Before
training it checks the per-example gradients against a Python loop and prints
the speed-up of the vectorised version.
"""

from __future__ import annotations

import time
from typing import Any

import _common
import torch

import ftx


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=300)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--clip", type=float, default=1.0)
    p.add_argument("--noise", type=float, default=0.5)
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)

    model = ftx.nn.MLP([64, 64, 10], activation=ftx.nn.Tanh())
    opt = ftx.optim.sgd(lr=args.lr, momentum=0.9)
    init_key, data_key, noise_key = ftx.random.split(ftx.random.key(args.seed).to(device), 3)
    params = model.init(init_key, dtype=dtype, device=device)

    def loss_one(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of ONE example: x (64,), y ()."""
        return ftx.nn.cross_entropy(model(params, x[None]), y[None])

    per_example_grads = ftx.vmap(ftx.grad(loss_one), in_axes=(None, 0, 0))

    # Check against a Python loop, and time both.
    xb, yb = x_train[: args.batch_size], y_train[: args.batch_size]
    batched = per_example_grads(params, xb, yb)
    grad_one = ftx.grad(loss_one)
    looped = [grad_one(params, xb[i], yb[i]) for i in range(xb.shape[0])]
    stacked = ftx.tree.map(lambda *gs: torch.stack(gs), *looped)
    err = max(float((a - b).abs().max()) for a, b in
              zip(ftx.tree.leaves(batched), ftx.tree.leaves(stacked)))
    print(f"per-example gradients vs Python loop: max abs difference {err:.2e}")
    if err > 1e-5:
        raise SystemExit("per-example gradients disagree with the loop")

    def best_of(fn: Any, reps: int = 5) -> float:
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return sorted(times)[len(times) // 2]

    per_example_grads(params, xb, yb)  # warm-up, not timed
    t_loop = best_of(lambda: [grad_one(params, xb[i], yb[i]) for i in range(xb.shape[0])], 3)
    t_vmap = best_of(lambda: per_example_grads(params, xb, yb))
    print(f"batch {args.batch_size}: loop {t_loop * 1e3:.1f} ms, vmap {t_vmap * 1e3:.2f} ms, "
          f"speed-up {t_loop / t_vmap:.1f}x (median of a few runs on this machine)")

    def private_grad(params: Any, x: torch.Tensor, y: torch.Tensor, key: torch.Tensor) -> Any:
        g = per_example_grads(params, x, y)
        leaves = ftx.tree.leaves(g)
        norms = torch.sqrt(sum(l.reshape(l.shape[0], -1).pow(2).sum(1) for l in leaves))
        factor = (args.clip / (norms + 1e-6)).clamp(max=1.0)  # (batch,)
        keys = ftx.random.split(key, len(leaves))
        noisy = [
            (l * factor.view(-1, *[1] * (l.dim() - 1))).sum(0)
            + args.noise * args.clip * ftx.random.normal(k, l.shape[1:], dtype=l.dtype)
            for l, k in zip(leaves, keys)
        ]
        return ftx.tree.unflatten(ftx.tree.structure(params), [n / x.shape[0] for n in noisy])

    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="dp-sgd")
    for step in bar:
        idx = _common.batch_indices(data_key, step, x_train.shape[0], args.batch_size)
        grads = private_grad(state["params"], x_train[idx], y_train[idx],
                             ftx.random.fold_in(noise_key, step))
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        if step % 10 == 0:
            with torch.no_grad():
                loss = ftx.nn.cross_entropy(model(state["params"], x_train[idx]), y_train[idx])
            _common.set_postfix(bar, loss=float(loss))
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    with torch.no_grad():
        acc = float((model(state["params"], x_test).argmax(-1) == y_test).float().mean())
    print(f"test accuracy with DP-SGD (clip {args.clip}, noise {args.noise}): {acc:.4f}")
    return {"accuracy": acc, "grad_error": err, "speedup": t_loop / t_vmap,
            "params": state["params"]}


if __name__ == "__main__":
    main()
