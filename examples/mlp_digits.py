"""Train an MLP classifier on scikit-learn's bundled digits data with ftx.

    python examples/mlp_digits.py                      # CPU, 1500 steps, ~97% test accuracy
    python examples/mlp_digits.py --plot curves.png    # loss curve + confusion matrix
    python examples/mlp_digits.py --checkpoint ckpt --steps 600
    python examples/mlp_digits.py --checkpoint ckpt --steps 1500 --resume

The model is ``ftx.nn.MLP`` (a pure function of a parameter pytree), the
optimizer ``ftx.optim.adam``, the step ``ftx.value_and_grad`` + update; the
whole training state is one pytree checkpointed with ``ftx.io``.
"""

from __future__ import annotations

from typing import Any

import _common  # the examples' shared flags and checkpoints (examples/_common.py)
import torch

import ftx


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=1500)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--plot", metavar="PNG", default=None, help="write loss curve + confusion")
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)

    model = ftx.nn.MLP([64, args.hidden, args.hidden, 10], activation=ftx.nn.ReLU())
    opt = ftx.optim.adam(lr=args.lr)
    key = ftx.random.key(args.seed).to(device)
    init_key, data_key = ftx.random.split(key)
    params = model.init(init_key, dtype=dtype, device=device)
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)

    def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(params, x), y)

    value_and_grad = ftx.value_and_grad(loss_fn)

    def train_step(state: dict[str, Any], x: torch.Tensor, y: torch.Tensor
                   ) -> tuple[dict[str, Any], torch.Tensor]:
        loss, grads = value_and_grad(state["params"], x, y)
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        params = ftx.optim.apply_updates(state["params"], updates)
        return {**state, "params": params, "opt": opt_state}, loss

    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="mlp_digits")
    losses = []  # this run's losses (a resumed run plots from where it resumed)
    for step in bar:
        idx = _common.batch_indices(data_key, step, x_train.shape[0], args.batch_size)
        state, loss = train_step(state, x_train[idx], y_train[idx])
        state["step"] = torch.tensor(step + 1)
        losses.append(float(loss))
        _common.set_postfix(bar, loss=losses[-1])
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    with torch.no_grad():
        pred = model(state["params"], x_test).argmax(-1)
    acc = float((pred == y_test).float().mean())
    print(f"test accuracy: {acc:.4f} ({int((pred == y_test).sum())}/{len(y_test)}), "
          f"final train loss: {losses[-1] if losses else float('nan'):.4f}")
    if args.plot:
        plot(args.plot, torch.tensor(losses), pred.cpu(), y_test.cpu())
        print(f"wrote {args.plot}")
    return {"accuracy": acc, "params": state["params"]}


def plot(path: str, losses: torch.Tensor, pred: torch.Tensor, target: torch.Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = torch.zeros(10, 10, dtype=torch.int64)
    conf.index_put_((target, pred), torch.ones_like(target), accumulate=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.5))
    a.plot(losses.numpy())
    a.set(xlabel="step", ylabel="cross-entropy", yscale="log", title="training loss")
    b.imshow(conf.numpy(), cmap="Blues")
    for i in range(10):
        for j in range(10):
            b.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=8)
    b.set(xlabel="predicted", ylabel="true", title="test confusion matrix",
          xticks=range(10), yticks=range(10))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
