"""Transform engines for the custom-rule, checkpoint and jit tests: torch.func and ftx.

A test parametrized over ``ENGINES`` runs the same checks with
``torch.func``'s transforms and with ftx's (grad, vjp, jvp, vmap, jacrev,
jacfwd, hessian), so a rule is shown to hold under both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch.func

import ftx

_NAMES = ("grad", "vjp", "jvp", "vmap", "jacrev", "jacfwd", "hessian")


@dataclass(frozen=True)
class Engine:
    name: str
    grad: Any
    vjp: Any
    jvp: Any
    vmap: Any
    jacrev: Any
    jacfwd: Any
    hessian: Any


TORCH_FUNC = Engine("torch.func", *(getattr(torch.func, n) for n in _NAMES))
FTX = Engine("ftx", *(getattr(ftx, n) for n in _NAMES))
ENGINES = [pytest.param(TORCH_FUNC, id="torch.func"), pytest.param(FTX, id="ftx")]
