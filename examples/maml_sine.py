"""MAML on sine-wave regression: gradients through the inner optimisation steps.

    python examples/maml_sine.py --steps 1000

A task is ``y = A sin(x - phase)``, A in [0.1, 5], phase in [0, pi], x in
[-5, 5]. The inner loop adapts the meta-parameters to a task with ``--inner``
plain SGD steps on 10 support points (``ftx.grad``); the outer loop
differentiates the query loss *through* those steps (``ftx.grad`` of a function
that calls ``ftx.grad``), vectorised over a meta-batch of tasks with
``ftx.vmap``, and updates the meta-parameters with ``ftx.optim.adam``. Prints
the post-adaptation loss on held-out tasks before and after meta-training.
"""

from __future__ import annotations

import math
from typing import Any

import _common
import torch

import ftx


def sample_tasks(key: torch.Tensor, n_tasks: int, k: int, dtype: torch.dtype
                 ) -> tuple[torch.Tensor, ...]:
    """Support and query sets for ``n_tasks`` tasks: x (T, k, 1), y (T, k, 1) each."""
    ka, kp, ks, kq = ftx.random.split(key, 4)
    amp = ftx.random.uniform(ka, (n_tasks, 1, 1), dtype=dtype, minval=0.1, maxval=5.0)
    phase = ftx.random.uniform(kp, (n_tasks, 1, 1), dtype=dtype, minval=0.0, maxval=math.pi)
    xs = ftx.random.uniform(ks, (n_tasks, k, 1), dtype=dtype, minval=-5.0, maxval=5.0)
    xq = ftx.random.uniform(kq, (n_tasks, k, 1), dtype=dtype, minval=-5.0, maxval=5.0)
    return xs, amp * torch.sin(xs - phase), xq, amp * torch.sin(xq - phase)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=1000)
    p.add_argument("--meta-batch", type=int, default=16)
    p.add_argument("--inner", type=int, default=1, help="inner SGD steps")
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--k", type=int, default=10, help="support/query points per task")
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32

    model = ftx.nn.MLP([1, 40, 40, 1], activation=ftx.nn.ReLU())
    opt = ftx.optim.adam(lr=args.lr)
    init_key, task_key, eval_key = ftx.random.split(ftx.random.key(args.seed).to(device), 3)
    params = model.init(init_key, dtype=dtype, device=device)

    def mse(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.mse_loss(model(params, x), y)

    def adapt(params: Any, xs: torch.Tensor, ys: torch.Tensor) -> Any:
        for _ in range(args.inner):
            g = ftx.grad(mse)(params, xs, ys)
            params = ftx.tree.map(lambda p, gi: p - args.inner_lr * gi, params, g)
        return params

    def post_adaptation_loss(params: Any, xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor,
                             yq: torch.Tensor) -> torch.Tensor:
        return mse(adapt(params, xs, ys), xq, yq)

    def meta_loss(params: Any, tasks: tuple[torch.Tensor, ...]) -> torch.Tensor:
        per_task = ftx.vmap(post_adaptation_loss, in_axes=(None, 0, 0, 0, 0))(params, *tasks)
        return per_task.mean()

    meta_value_and_grad = ftx.value_and_grad(meta_loss)
    eval_tasks = sample_tasks(eval_key, 100, args.k, dtype)
    before = float(meta_loss(params, eval_tasks))

    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="maml")
    for step in bar:
        tasks = sample_tasks(ftx.random.fold_in(task_key, step), args.meta_batch, args.k, dtype)
        loss, grads = meta_value_and_grad(state["params"], tasks)
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        _common.set_postfix(bar, meta_loss=float(loss))
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    after = float(meta_loss(state["params"], eval_tasks))
    print(f"post-adaptation MSE on 100 held-out tasks ({args.inner} inner step(s)): "
          f"before meta-training {before:.4f}, after {after:.4f}")
    return {"before": before, "after": after, "params": state["params"]}


if __name__ == "__main__":
    main()
