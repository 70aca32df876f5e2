"""Train 8 MLPs at once with vmap over stacked parameters and optimizer states.

    python examples/ensemble.py --steps 300 --members 8

``ftx.vmap`` maps one training step over a leading "member" axis of the
parameter and Adam-state pytrees, so eight models train in one batched
computation. The script then trains the same eight one by one and checks that
both routes end at the same parameters, and reports each member's accuracy
and the ensemble's (averaged logits).
"""

from __future__ import annotations

from typing import Any

import _common
import torch

import ftx


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=300)
    p.add_argument("--members", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--no-check", action="store_true", help="skip the one-by-one check")
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32
    x_train, y_train, x_test, y_test = _common.digits(device, dtype, args.seed)

    model = ftx.nn.MLP([64, 64, 10], activation=ftx.nn.ReLU())
    opt = ftx.optim.adam(lr=args.lr)
    init_key, data_key = ftx.random.split(ftx.random.key(args.seed).to(device))
    member_keys = ftx.random.split(init_key, args.members)
    members = [model.init(k, dtype=dtype, device=device) for k in member_keys]
    stacked = ftx.tree.map(lambda *ps: torch.stack(ps), *members)

    def loss_fn(params: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(model(params, x), y)

    def step_one(params: Any, opt_state: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        loss, grads = ftx.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return ftx.optim.apply_updates(params, updates), opt_state, loss

    # Every member sees its own minibatch: data of shape (members, batch, ...).
    step_all = ftx.vmap(step_one, in_axes=(0, 0, 0, 0))

    def batches(step: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.stack([
            _common.batch_indices(ftx.random.fold_in(data_key, m), step, x_train.shape[0],
                                  args.batch_size)
            for m in range(args.members)
        ])
        return x_train[idx], y_train[idx]

    state = {"params": stacked, "opt": ftx.vmap(opt.init)(stacked),
             "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc=f"ensemble of {args.members}")
    for step in bar:
        xb, yb = batches(step)
        params, opt_state, loss = step_all(state["params"], state["opt"], xb, yb)
        state = {"params": params, "opt": opt_state, "step": torch.tensor(step + 1)}
        _common.set_postfix(bar, mean_loss=float(loss.mean()))
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    err = float("nan")
    if not args.no_check and not args.resume:
        singles = []
        for m in range(args.members):
            params_m, opt_m = members[m], opt.init(members[m])
            for step in range(args.steps):
                xb, yb = batches(step)
                params_m, opt_m, _ = step_one(params_m, opt_m, xb[m], yb[m])
            singles.append(params_m)
        one_by_one = ftx.tree.map(lambda *ps: torch.stack(ps), *singles)
        err = max(float((a - b).abs().max()) for a, b in
                  zip(ftx.tree.leaves(state["params"]), ftx.tree.leaves(one_by_one)))
        print(f"vmapped training vs one by one: max abs parameter difference {err:.2e}")
        if err > 1e-4:
            raise SystemExit("the vmapped ensemble disagrees with training one by one")

    with torch.no_grad():
        logits = ftx.vmap(model, in_axes=(0, None))(state["params"], x_test)  # (M, N, 10)
        accs = (logits.argmax(-1) == y_test).float().mean(1)
        ens = float((logits.mean(0).argmax(-1) == y_test).float().mean())
    print("member test accuracies: " + " ".join(f"{a:.3f}" for a in accs.tolist()))
    print(f"ensemble (mean logits) test accuracy: {ens:.4f}")
    return {"accuracy": ens, "members": accs.tolist(), "check_error": err,
            "params": state["params"]}


if __name__ == "__main__":
    main()
