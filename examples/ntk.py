"""The empirical neural tangent kernel of an MLP via ftx.jacrev + ftx.vmap.

    python examples/ntk.py --n1 16 --n2 12

NTK(x1, x2) = J(x1) J(x2)^T, where J(x) is the Jacobian of the network's
output with respect to all its parameters. ``ftx.vmap(ftx.jacrev(f))`` gives
every example's Jacobian as a parameter-shaped pytree in one call; the kernel
contracts them leaf by leaf. The script checks the result against the naive
route (a flattened parameter vector and ``torch.autograd.functional.jacobian``
one example at a time) in float64. No training, so ``--steps``, ``--checkpoint``
and ``--resume`` have nothing to do here: the flags exist for uniformity.
"""

from __future__ import annotations

from typing import Any

import _common
import torch

import ftx


def ntk(model: Any, params: Any, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    """Empirical NTK: (N1, N2, out, out)."""

    def f(params: Any, x: torch.Tensor) -> torch.Tensor:
        return model(params, x[None])[0]  # (out,)

    jac = ftx.vmap(ftx.jacrev(f), in_axes=(None, 0))
    j1, j2 = jac(params, x1), jac(params, x2)  # leaves (N, out, *param_shape)
    terms = [
        torch.einsum("iaf,jbf->ijab", a.flatten(2), b.flatten(2))
        for a, b in zip(ftx.tree.leaves(j1), ftx.tree.leaves(j2))
    ]
    return torch.stack(terms).sum(0)


def naive_ntk(model: Any, params: Any, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
    leaves, treedef = ftx.tree.flatten(params)
    sizes = [t.numel() for t in leaves]
    flat = torch.cat([t.reshape(-1) for t in leaves])

    def f_flat(theta: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        parts = torch.split(theta, sizes)
        p = ftx.tree.unflatten(treedef, [q.view_as(t) for q, t in zip(parts, leaves)])
        return model(p, x[None])[0]

    def jac(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = torch.autograd.functional.jacobian(lambda th: f_flat(th, x), flat)
        return out

    J1 = torch.stack([jac(x) for x in x1])  # (N1, out, P)
    J2 = torch.stack([jac(x) for x in x2])
    return torch.einsum("iap,jbp->ijab", J1, J2)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = _common.parser(__doc__.splitlines()[0], steps=0)
    p.add_argument("--n1", type=int, default=16)
    p.add_argument("--n2", type=int, default=12)
    p.add_argument("--width", type=int, default=64)
    args = p.parse_args(argv)
    device = _common.device_of(args)
    dtype = torch.float64
    model = ftx.nn.MLP([4, args.width, args.width, 3], activation=ftx.nn.Tanh())
    kp, k1, k2 = ftx.random.split(ftx.random.key(args.seed).to(device), 3)
    params = model.init(kp, dtype=dtype, device=device)
    state = _common.restore(args, {"params": params}, device)
    params = state["params"]
    x1 = ftx.random.normal(k1, (args.n1, 4), dtype=dtype)
    x2 = ftx.random.normal(k2, (args.n2, 4), dtype=dtype)

    kernel = ntk(model, params, x1, x2)
    reference = naive_ntk(model, params, x1, x2)
    err = float((kernel - reference).abs().max() / reference.abs().max())
    _common.save(args, {"params": params})
    print(f"NTK shape {tuple(kernel.shape)} (n1, n2, out, out); "
          f"relative difference to the naive Jacobian product: {err:.2e}")
    diag = torch.einsum("iiaa->i", ntk(model, params, x1, x1))
    print(f"trace of NTK(x, x) per example: mean {float(diag.mean()):.3f}")
    if err > 1e-10:
        raise SystemExit("the vmap/jacrev NTK disagrees with the naive route")
    return {"error": err, "kernel": kernel}


if __name__ == "__main__":
    main()
