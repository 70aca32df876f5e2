"""Fit y = Xw + b + noise with ftx.nn.Linear and ftx.optim.sgd; compare with lstsq.

    python examples/linear_regression.py --steps 500 --seed 0

Prints the distance between the fitted (w, b) and ``torch.linalg.lstsq``'s
least-squares solution, which full-batch gradient descent converges to.
"""

from __future__ import annotations

from typing import Any

import _common
import torch

import ftx


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=500)
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--features", type=int, default=5)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--noise", type=float, default=0.1)
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float64

    key = ftx.random.key(args.seed).to(device)
    kx, kw, kn, kinit = ftx.random.split(key, 4)
    x = ftx.random.normal(kx, (args.samples, args.features), dtype=dtype)
    w_true = ftx.random.normal(kw, (1, args.features), dtype=dtype)
    y = x @ w_true.T + 0.5 + args.noise * ftx.random.normal(kn, (args.samples, 1), dtype=dtype)

    model = ftx.nn.Linear(args.features, 1)
    opt = ftx.optim.sgd(lr=args.lr, momentum=0.9)
    params = model.init(kinit, dtype=dtype, device=device)
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)

    def loss_fn(params: Any) -> torch.Tensor:
        return ftx.nn.mse_loss(model(params, x), y)

    value_and_grad = ftx.value_and_grad(loss_fn)
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="linear_regression")
    loss = torch.tensor(float("nan"))
    for step in bar:
        loss, grads = value_and_grad(state["params"])
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        _common.set_postfix(bar, loss=float(loss))
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    ones = torch.ones(args.samples, 1, dtype=dtype, device=device)
    solution = torch.linalg.lstsq(torch.cat([x, ones], 1), y).solution.squeeze(1)
    fitted = torch.cat([state["params"]["weight"].squeeze(0), state["params"]["bias"]])
    dist = float(torch.linalg.vector_norm(fitted - solution))
    print(f"final loss: {float(loss):.6f}")
    print(f"distance to torch.linalg.lstsq's solution: {dist:.3e}")
    return {"distance": dist, "params": state["params"]}


if __name__ == "__main__":
    main()
