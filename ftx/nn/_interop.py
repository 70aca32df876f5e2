"""Interop with ``torch.nn``: params out of modules, params into modules, modules as functions.

* :func:`params_of` -- a module's parameters and persistent buffers as a nested
  dict keyed like its state dict (tied weights appear once).
* :func:`load_params` -- copy such a pytree into a module, in place.
* :func:`to_module` -- the ``nn.Module`` twin of an ftx layer, holding given params.
* :func:`from_module` -- any module as a pure ``apply(params, *args)`` through
  ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import Layer, Params, _flat_paths

__all__ = ["from_module", "load_params", "params_of", "to_module"]


def _check_module(api: str, module: Any) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(msg(api, "module must be a torch.nn.Module", describe(module)))


def _diagnose_devices(
    api: str, flat: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
    err: Exception,
) -> None:
    """After the forward failed: raise ``ValueError`` if params and tensor inputs sit on
    different devices (e.g. a ``meta`` module called on CPU data); else return, so the
    module's own error passes through."""
    inputs = [a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)]
    held = {str(t.device) for t in flat.values() if isinstance(t, Tensor)}
    given = {str(t.device) for t in inputs}
    if len(held | given) > 1:
        raise ValueError(msg(
            api, "params and tensor inputs must be on one device",
            f"params on {sorted(held)} and inputs on {sorted(given)} "
            f"(torch: {str(err).splitlines()[0] if str(err) else type(err).__name__})",
            "Move the module (or its params) and the inputs to one device; a meta module "
            "needs module.to_empty(device=...) and loaded weights first.",
        )) from err


def _nest(flat: dict[str, Tensor]) -> Params:
    out: Params = {}
    for path, value in flat.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _named_state(module: nn.Module) -> dict[str, Tensor]:
    """Parameters and persistent buffers by state-dict key, each tensor once (tied: first name)."""
    flat: dict[str, Tensor] = dict(module.named_parameters())
    persistent = set(module.state_dict(keep_vars=True))
    for name, buf in module.named_buffers():
        if name in persistent:
            flat[name] = buf
    return flat


def params_of(module: nn.Module) -> Params:
    """A module's parameters and persistent buffers as a detached nested dict.

    Paths are the module's ``state_dict()`` keys (``"0.weight"`` becomes
    ``{"0": {"weight": ...}}``). Tied weights appear once, under their first
    name (as in ``named_parameters()``), so a gradient through ``from_module``
    sums both uses. Leaves are ``detach()``-ed views sharing memory with the
    module (no copy): clone them to snapshot a module you will keep training.

    Args:
        module: any ``nn.Module``.

    Returns:
        Nested dict of tensors.

    Example:
        >>> import torch, ftx
        >>> params = ftx.nn.params_of(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
        >>> ftx.tree.map(lambda p: tuple(p.shape), params)
        {'0': {'weight': (2, 3), 'bias': (2,)}}
    """
    _check_module("nn.params_of", module)
    return _nest({k: v.detach() for k, v in _named_state(module).items()})


def load_params(module: nn.Module, params: Params) -> nn.Module:
    """Copy ``params`` into ``module`` in place (under ``no_grad``); returns the module.

    All or nothing: every leaf is checked before the first copy, so a failed load
    leaves the module unchanged. Every path of :func:`params_of` must be present and
    nothing else; each leaf must be a tensor with data (not ``meta``) of the target's
    shape whose dtype casts safely to the target's (``torch.can_cast``: float64 into
    float32 is fine, complex into real or float into integer is not). Values are cast
    to each tensor's dtype and moved to its device, as ``load_state_dict`` does.

    Args:
        module: the ``nn.Module`` to fill.
        params: nested dict with the module's state-dict paths.

    Returns:
        ``module``.

    Example:
        >>> import torch, ftx
        >>> layer = ftx.nn.Linear(3, 2)
        >>> params = layer.init(ftx.random.key(0))
        >>> module = ftx.nn.load_params(torch.nn.Linear(3, 2), params)
        >>> torch.equal(module.weight, params["weight"])
        True
    """
    api = "nn.load_params"
    _check_module(api, module)
    if not isinstance(params, dict):
        raise TypeError(msg(api, "params must be a nested dict of tensors", describe(params)))
    targets = _named_state(module)
    flat = _flat_paths(params, api)
    missing = sorted(set(targets) - set(flat))
    extra = sorted(set(flat) - set(targets))
    if missing or extra:
        raise ValueError(
            msg(
                api,
                f"params must hold exactly the module's paths {sorted(targets)}",
                f"missing paths {missing} and extra paths {extra}",
                "Get matching params with ftx.nn.params_of(module) or layer.init(key).",
            )
        )
    for path, value in flat.items():  # every check before the first copy: all or nothing
        target = targets[path]
        if not isinstance(value, Tensor):
            raise TypeError(msg(api, f"params[{path!r}] must be a tensor", describe(value)))
        if value.shape != target.shape:
            raise ValueError(
                msg(
                    api,
                    f"params[{path!r}] must have shape {tuple(target.shape)}",
                    f"shape {tuple(value.shape)}",
                )
            )
        if not torch.can_cast(value.dtype, target.dtype):
            raise TypeError(
                msg(
                    api,
                    f"params[{path!r}] must have a dtype that casts safely to {target.dtype}",
                    f"dtype {value.dtype}",
                    "Convert it explicitly first if the loss of information is intended.",
                )
            )
        if value.is_meta and not target.is_meta:
            raise ValueError(
                msg(
                    api,
                    f"params[{path!r}] must hold data",
                    "a meta tensor",
                    "Materialise it first (e.g. layer.init(key) on a real device).",
                )
            )
    with torch.no_grad():
        for path, value in flat.items():
            targets[path].copy_(value)
    return module


def to_module(layer: Layer, params: Params) -> nn.Module:
    """The ``nn.Module`` twin of ``layer``, holding ``params`` (copied).

    The module's dtype and device are those of the params (float32 on CPU for
    paramless layers).

    Args:
        layer: an ftx layer.
        params: its params, e.g. from ``layer.init(key)``.

    Returns:
        A fresh ``nn.Module`` with the same maths and state-dict keys.

    Example:
        >>> import torch, ftx
        >>> mlp = ftx.nn.MLP([3, 4, 2])
        >>> params = mlp.init(ftx.random.key(0))
        >>> module = ftx.nn.to_module(mlp, params)
        >>> x = torch.randn(5, 3)
        >>> torch.allclose(module(x), mlp(params, x))
        True
    """
    api = "nn.to_module"
    if not isinstance(layer, Layer):
        raise TypeError(msg(api, "layer must be an ftx.nn layer", describe(layer)))
    leaves = list(_flat_paths(params, api).values()) if isinstance(params, dict) else []
    module = layer.twin()
    if leaves and isinstance(leaves[0], Tensor):
        module = module.to(device=leaves[0].device, dtype=leaves[0].dtype)
    return load_params(module, params)


def from_module(module: nn.Module) -> tuple[Callable[..., Any], Params]:
    """Any ``nn.Module`` as a pure function: ``(apply_fn, params)``.

    ``apply_fn(params, *args, **kwargs)`` runs ``module(*args, **kwargs)`` with
    the given params and buffers through ``torch.func.functional_call`` (tied
    weights stay tied), so it works under ``ftx.grad``, ``ftx.vmap`` and
    ``torch.compile``. ``params`` is :func:`params_of(module) <params_of>`, buffers
    included; the module itself is not changed by ``apply_fn`` (modules that
    update buffers in ``forward``, like ``BatchNorm`` in training mode, update
    the passed buffer tensors instead).

    Args:
        module: any ``nn.Module``.

    Returns:
        ``(apply_fn, params)``.

    Example:
        >>> import torch, ftx
        >>> module = torch.nn.Linear(3, 2)
        >>> apply_fn, params = ftx.nn.from_module(module)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(apply_fn(params, x), module(x))
        True
    """
    api = "nn.from_module"
    _check_module(api, module)
    params = params_of(module)
    expected = frozenset(_named_state(module))

    def apply_fn(params: Params, *args: Any, **kwargs: Any) -> Any:
        flat = _flat_paths(params, f"{api}.apply")
        if flat.keys() != expected:
            missing = sorted(expected - flat.keys())
            extra = sorted(flat.keys() - expected)
            raise ValueError(
                msg(
                    f"{api}.apply",
                    f"params must hold exactly the module's paths {sorted(expected)}",
                    f"missing paths {missing} and extra paths {extra}",
                    "Use the params from_module returned (or a pytree of that structure).",
                )
            )
        try:
            return torch.func.functional_call(module, flat, args, kwargs, tie_weights=True)
        except RuntimeError as err:
            _diagnose_devices(f"{api}.apply", flat, args, kwargs, err)
            raise
        except TypeError as err:  # a non-tensor leaf (else the module's own error)
            bad = [k for k, v in flat.items() if not isinstance(v, Tensor)]
            if bad:
                raise TypeError(msg(
                    f"{api}.apply", "every leaf of params must be a tensor",
                    f"{describe(flat[bad[0]])} at path {bad[0]!r}",
                    "Use the params from_module returned (or tensors of those shapes).",
                )) from err
            raise

    apply_fn.__doc__ = f"Pure forward of {type(module).__name__} (from ftx.nn.from_module)."
    return apply_fn, params
