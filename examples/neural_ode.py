"""Fit a neural ODE to a spiral: RK4 in ftx.lax.scan/fori_loop, gradients through the solver.

    python examples/neural_ode.py                        # CPU, 500 steps: error < 0.3
    python examples/neural_ode.py --plot spiral.png      # true vs fitted trajectory
    python examples/neural_ode.py --checkpoint ckpt --steps 250
    python examples/neural_ode.py --checkpoint ckpt --steps 500 --resume

The data is the spiral of torchdiffeq's classic demo, ``dy/dt = (y**3) A`` with
``A = [[-0.1, 2], [-2, -0.1]]`` from ``y(0) = (2, 0)``, sampled at ``--points``
times in ``[0, --t-max]`` (integrated with fine RK4 steps). The model is
``dy/dt = MLP(y**3)`` (2 -> hidden -> 2, tanh), integrated with classic RK4:
``ftx.lax.fori_loop`` takes ``--substeps`` RK4 steps between two sample times
and ``ftx.lax.scan`` runs over the sample times, so one solve is one
differentiable program and ``ftx.value_and_grad`` gives the gradient with
respect to the vector field's parameters through every solver step
(backpropagation through the solver, not the adjoint method).

Training follows torchdiffeq's demo: each step integrates a batch of short
segments of the trajectory (``--batch-time`` samples each, from random starting
points on the true trajectory) and minimises the mean absolute error; the
reported loss is the mean absolute error of the whole trajectory integrated
from ``y(0)``. With the defaults it falls below 0.3 (measured, seed 0: 1.575
untrained, 0.233 after 500 steps, one CPU thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import _common  # the examples' shared flags and checkpoints (examples/_common.py)
import torch

import ftx

Params = Any
Field = Callable[[torch.Tensor], torch.Tensor]

TRUE_A = [[-0.1, 2.0], [-2.0, -0.1]]


def rk4_step(f: Field, y: torch.Tensor, dt: float) -> torch.Tensor:
    """One classic Runge-Kutta step of ``dy/dt = f(y)``."""
    k1 = f(y)
    k2 = f(y + 0.5 * dt * k1)
    k3 = f(y + 0.5 * dt * k2)
    k4 = f(y + dt * k3)
    return y + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def odeint(f: Field, y0: torch.Tensor, n_points: int, dt_sample: float,
           substeps: int) -> torch.Tensor:
    """``y`` at ``n_points`` times ``0, dt_sample, ...``: ``(n_points,) + y0.shape``.

    ``scan`` over the sample intervals; inside each, ``fori_loop`` over ``substeps``
    RK4 steps (static bounds, so it is reverse-differentiable).
    """
    h = dt_sample / substeps

    def interval(y: torch.Tensor, _: Any) -> tuple[torch.Tensor, torch.Tensor]:
        y = ftx.lax.fori_loop(0, substeps, lambda i, y: rk4_step(f, y, h), y)
        return y, y

    _, ys = ftx.lax.scan(interval, y0, None, length=n_points - 1)
    return torch.cat([y0[None], ys])


def true_field(y: torch.Tensor) -> torch.Tensor:
    return (y**3) @ torch.tensor(TRUE_A, dtype=y.dtype, device=y.device)


def make_field(model: ftx.nn.MLP, params: Params) -> Field:
    return lambda y: model(params, y**3)


def trajectory(points: int, t_max: float, dtype: torch.dtype, device: torch.device
               ) -> torch.Tensor:
    """The true spiral at ``points`` times in ``[0, t_max]``, RK4 with 20 steps per sample."""
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64)
    with torch.no_grad():
        ys = odeint(true_field, y0, points, t_max / (points - 1), 20)
    return ys.to(dtype=dtype, device=device)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=500)
    p.add_argument("--points", type=int, default=200, help="samples of the trajectory (200)")
    p.add_argument("--t-max", type=float, default=10.0, help="trajectory length in time (10)")
    p.add_argument("--substeps", type=int, default=2, help="RK4 steps per sample interval (2)")
    p.add_argument("--batch-time", type=int, default=10, help="samples per segment (10)")
    p.add_argument("--batch-size", type=int, default=16, help="segments per step (16)")
    p.add_argument("--hidden", type=int, default=50)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--plot", metavar="PNG", default=None, help="write true vs fitted spiral")
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float32
    true_y = trajectory(args.points, args.t_max, dtype, device)
    dt = args.t_max / (args.points - 1)

    model = ftx.nn.MLP([2, args.hidden, 2], activation=ftx.nn.Tanh())
    key = ftx.random.key(args.seed)
    init_key, data_key = ftx.random.split(key)
    params = model.init(init_key, dtype=dtype, device=device)
    opt = ftx.optim.adam(lr=args.lr)
    state = {"params": params, "opt": opt.init(params), "step": torch.zeros((), dtype=torch.int64)}
    state = _common.restore(args, state, device)

    def segment_loss(params: Params, starts: torch.Tensor) -> torch.Tensor:
        """Integrate every segment from its true start (a batch in one solve)."""
        y0 = true_y[starts]  # (batch, 2)
        pred = odeint(make_field(model, params), y0, args.batch_time, dt, args.substeps)
        idx = starts[None, :] + torch.arange(args.batch_time, device=device)[:, None]
        return (pred - true_y[idx]).abs().mean()

    def full_loss(params: Params) -> torch.Tensor:
        pred = odeint(make_field(model, params), true_y[0], args.points, dt, args.substeps)
        return (pred - true_y).abs().mean()

    value_and_grad = ftx.value_and_grad(segment_loss)
    with torch.no_grad():
        first_loss = float(full_loss(state["params"]))
    bar = _common.progress(_common.steps_from(state, args.steps), args.steps - int(state["step"]),
                           quiet=args.quiet, desc="neural_ode")
    losses = []
    for step in bar:
        starts = ftx.random.randint(ftx.random.fold_in(data_key, step), (args.batch_size,), 0,
                                    args.points - args.batch_time).to(device)
        loss, grads = value_and_grad(state["params"], starts)
        updates, opt_state = opt.update(grads, state["opt"], state["params"])
        state = {"params": ftx.optim.apply_updates(state["params"], updates), "opt": opt_state,
                 "step": torch.tensor(step + 1)}
        losses.append(float(loss))
        _common.set_postfix(bar, loss=losses[-1])
        _common.maybe_save(args, state, step, args.steps)
    _common.save(args, state)

    with torch.no_grad():
        final = float(full_loss(state["params"]))
        fitted = odeint(make_field(model, state["params"]), true_y[0], args.points, dt,
                        args.substeps)
    print(f"trajectory mean absolute error: {final:.4f} (untrained: {first_loss:.4f})")
    if args.plot:
        plot(args.plot, true_y.cpu(), fitted.cpu(), losses)
        print(f"wrote {args.plot}")
    return {"loss": final, "first_loss": first_loss, "losses": losses, "params": state["params"]}


def plot(path: str, true_y: torch.Tensor, fitted: torch.Tensor, losses: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.5))
    a.plot(true_y[:, 0], true_y[:, 1], "g-", label="true")
    a.plot(fitted[:, 0], fitted[:, 1], "b--", label="neural ODE")
    a.set(xlabel="y1", ylabel="y2", title="phase portrait")
    a.legend()
    b.plot(losses)
    b.set(xlabel="step", ylabel="segment mean |error|", yscale="log", title="training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
