"""``clip_by_global_norm``: torch.nn.utils.clip_grad_norm_ as a pure transform."""

from __future__ import annotations

from typing import Any

import torch

from .._internal import torch_compat as _tc
from ._base import GradientTransformation, Leaves, Update, _Spec, check_hparam, from_spec
from ._kernels import Route

__all__ = ["clip_by_global_norm"]


class _ClipSpec(_Spec):
    """Not elementwise: every leaf's scale depends on the norm of all leaves."""

    api = "optim.clip_by_global_norm"

    def __init__(self, max_norm: float) -> None:
        self.max_norm = max_norm

    def update_leaves(
        self, grads: Leaves, state: Any, params: Leaves | None, route: Route, own: bool
    ) -> Update:
        if not grads:
            return grads, state, own
        if route.batched:
            norms = list(_tc.foreach_norm(grads, 2))
        else:
            norms = [torch.linalg.vector_norm(g, 2) for g in grads]
        device = grads[0].device
        total = torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]), 2)
        coef = torch.clamp(self.max_norm / (total + 1e-6), max=1.0)
        if route.batched:
            if own:
                _tc.foreach_mul_(grads, coef)
                return grads, state, True
            return list(_tc.foreach_mul(grads, coef)), state, True
        if own and route.fast:
            return [g.mul_(coef.to(g.device)) for g in grads], state, True
        return [g * coef.to(g.device) for g in grads], state, True


def clip_by_global_norm(max_norm: float) -> GradientTransformation:
    """Scale all updates by ``min(1, max_norm / (global_norm + 1e-6))``.

    The same numbers as ``torch.nn.utils.clip_grad_norm_(params, max_norm)``
    (L2 norm over all leaves together), without a host synchronisation.

    Args:
        max_norm: a positive float (``0`` would zero every update).

    Returns:
        A stateless ``GradientTransformation``.

    Example:
        >>> import torch, ftx
        >>> tx = ftx.optim.clip_by_global_norm(1.0)
        >>> u, _ = tx.update({"a": torch.tensor([3.0]), "b": torch.tensor([4.0])}, tx.init(None))
        >>> [round(v.item(), 4) for v in u.values()]
        [0.6, 0.8]
    """
    api = "optim.clip_by_global_norm"
    return from_spec(_ClipSpec(check_hparam(api, "max_norm", max_norm, low_open=True)))
