"""The chain every ``torch.optim`` twin shares: ``[negate] -> [L2 decay] -> core``."""

from __future__ import annotations

from collections.abc import Sequence

from ._base import GradientTransformation, chain_as, check_flag, check_hparam
from ._scale import negate
from ._weight_decay import decayed_weights

__all__ = ["torch_twin"]


def torch_twin(api: str, core: Sequence[GradientTransformation], *, weight_decay: float = 0.0,
               maximize: bool = False) -> GradientTransformation:
    """``core`` behind torch.optim's common options, in torch's op order.

    ``maximize`` negates the gradient first; ``weight_decay`` (L2, coupled) then adds
    ``weight_decay * param`` to it. Both are checked here, after the core's own
    hyper-parameters; errors name ``api``.
    """
    wd = check_hparam(api, "weight_decay", weight_decay)
    check_flag(api, "maximize", maximize)
    parts: list[GradientTransformation] = [negate(api)] if maximize else []
    if wd:
        parts.append(decayed_weights(api, wd))
    return chain_as(api, [*parts, *core])
