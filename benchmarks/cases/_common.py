"""Shared pieces of the cases: pure MLPs as state dicts, their nn.Module and JAX twins."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ACTS = {"tanh": (torch.tanh, nn.Tanh), "sigmoid": (torch.sigmoid, nn.Sigmoid),
        "relu": (torch.relu, nn.ReLU)}


def module_mlp(sizes: Sequence[int], act: str = "tanh", seed: int = 0) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` (plus a final act for "sigmoid")."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or act == "sigmoid":
            layers.append(ACTS[act][1]())
    return nn.Sequential(*layers)


def params_of(module: nn.Module, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A detached copy of the state dict (keys like ``"0.weight"``)."""
    return {k: v.detach().clone().to(device) for k, v in module.state_dict().items()}


_LAYER_IDS: dict[tuple[str, ...], tuple[int, ...]] = {}


def _layer_ids(keys: tuple[str, ...]) -> tuple[int, ...]:
    """Sorted layer numbers of a state dict's keys, cached in eager runs (torch.compile
    traces the plain computation: a cache would be a guarded, mutated global there)."""
    if torch.compiler.is_compiling():
        return tuple(sorted({int(k.split(".")[0]) for k in keys}))
    ids = _LAYER_IDS.get(keys)
    if ids is None:
        ids = _LAYER_IDS[keys] = tuple(sorted({int(k.split(".")[0]) for k in keys}))
    return ids


def mlp_apply(params: dict[str, torch.Tensor], x: torch.Tensor, act: str = "tanh") -> torch.Tensor:
    """The pure twin of ``module_mlp``: ``params`` are its state dict.

    Same ops as the module (``F.linear`` per layer, then the activation), so that a
    comparison against ``nn.Module`` times the transform, not a different program.
    """
    f = ACTS[act][0]
    idx = _layer_ids(tuple(params))
    last = len(idx) - 1
    for j, i in enumerate(idx):
        x = F.linear(x, params[f"{i}.weight"], params[f"{i}.bias"])
        if j < last or act == "sigmoid":
            x = f(x)
    return x


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy, ``F.cross_entropy`` as the ``nn.Module`` baselines use it (one
    example of shape ``(C,)`` with a 0-d label, or a batch)."""
    return F.cross_entropy(logits, labels)


def jax_mlp_apply(params: dict[str, Any], x: Any, act: str = "tanh") -> Any:
    """The same MLP in ``jax.numpy``."""
    import jax
    import jax.numpy as jnp

    f = {"tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[act]
    idx = sorted({int(k.split(".")[0]) for k in params})
    for j, i in enumerate(idx):
        x = x @ params[f"{i}.weight"].T + params[f"{i}.bias"]
        if j < len(idx) - 1 or act == "sigmoid":
            x = f(x)
    return x


def jax_cross_entropy(logits: Any, labels: Any) -> Any:
    import jax
    import jax.numpy as jnp

    logp = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    return -jnp.take_along_axis(logp, labels[..., None], axis=-1).mean()


def to_jax(tree: Any) -> Any:
    """Torch tensors (any nesting of dict/list/tuple) to JAX arrays on the CPU."""
    import jax.numpy as jnp

    if isinstance(tree, dict):
        return {k: to_jax(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(to_jax(v) for v in tree)
    if isinstance(tree, torch.Tensor):
        return jnp.asarray(tree.detach().cpu().numpy())
    return tree


def classification_data(
    n: int, features: int, classes: int, device: str, seed: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return x.to(device), y.to(device)
