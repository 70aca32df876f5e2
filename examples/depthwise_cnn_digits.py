"""Train a depthwise-separable CNN (DepthwiseConv2d + pointwise Conv2d) on the digits data.

    python examples/depthwise_cnn_digits.py --steps 1500

The 8x8 digit images go through two depthwise-separable blocks (a 3x3
``ftx.nn.DepthwiseConv2d`` per channel, then a 1x1 ``ftx.nn.Conv2d`` that mixes
channels), max-pooling and a linear classifier; all pure functions of one
parameter pytree, trained with ``ftx.optim.adam``.
"""

from __future__ import annotations

from typing import Any

import _common
import torch

import ftx
from ftx import nn


def build(width: int = 32) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, width, 3, padding=1),                 # 8x8, a plain stem
        nn.ReLU(),
        nn.DepthwiseConv2d(width, 3, padding=1),           # depthwise 3x3
        nn.Conv2d(width, 2 * width, 1),                    # pointwise 1x1
        nn.ReLU(),
        nn.MaxPool2d(2),                                   # 4x4
        nn.DepthwiseConv2d(2 * width, 3, padding=1),
        nn.Conv2d(2 * width, 2 * width, 1),
        nn.ReLU(),
        nn.MaxPool2d(2),                                   # 2x2
        nn.Flatten(),
        nn.Linear(2 * width * 4, 10),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--width", type=int, default=32)
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)
    x_train, x_test = x_train.reshape(-1, 1, 8, 8), x_test.reshape(-1, 1, 8, 8)

    model = build(args.width)
    opt = ftx.optim.adam(lr=args.lr)
    init_key, data_key = ftx.random.split(ftx.random.key(args.seed).to(device))
    params = model.init(init_key, dtype=dtype, device=device)
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)

    def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(params, x), y)

    value_and_grad = ftx.value_and_grad(loss_fn)
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="depthwise_cnn_digits")
    loss = torch.tensor(float("nan"))
    for step in bar:
        idx = _common.batch_indices(data_key, step, x_train.shape[0], args.batch_size)
        loss, grads = value_and_grad(state["params"], x_train[idx], y_train[idx])
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        _common.set_postfix(bar, loss=float(loss))
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    with torch.no_grad():
        pred = model(state["params"], x_test).argmax(-1)
    acc = float((pred == y_test).float().mean())
    n_params = sum(t.numel() for t in ftx.tree.leaves(state["params"]))
    print(f"test accuracy: {acc:.4f} ({int((pred == y_test).sum())}/{len(y_test)}), "
          f"final train loss: {float(loss):.4f}, parameters: {n_params}")
    return {"accuracy": acc, "params": state["params"]}


if __name__ == "__main__":
    main()
