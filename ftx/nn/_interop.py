"""Interop with ``torch.nn``: params out of modules, params into modules, modules as functions.

* :func:`params_of` -- a module's parameters and persistent buffers as a nested
  dict keyed like its state dict (tied weights appear once); :func:`state_of` -- the
  buffers alone.
* :func:`load_params` -- copy such a pytree into a module, in place.
* :func:`to_module` -- the ``nn.Module`` twin of an ftx layer, holding given params.
* :func:`from_module` -- any module as a pure ``apply(params, *args)`` through
  ``torch.func.functional_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, overload

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import Layer, Params, _flat_paths

__all__ = ["from_module", "load_params", "params_of", "state_of", "to_module"]


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


def _buffer_names(module: nn.Module) -> set[str]:
    """State-dict keys of the persistent buffers (not tied to an earlier name)."""
    flat = _named_state(module)
    params = {name for name, _ in module.named_parameters()}
    return {name for name in flat if name not in params}


def params_of(module: nn.Module, *, buffers: bool = True) -> Params:
    """A module's parameters and persistent buffers as a detached nested dict.

    Paths are the module's ``state_dict()`` keys (``"0.weight"`` becomes
    ``{"0": {"weight": ...}}``). Tied weights appear once, under their first
    name (as in ``named_parameters()``), so a gradient through ``from_module``
    sums both uses. Leaves are ``detach()``-ed views sharing memory with the
    module (no copy): clone them to snapshot a module you will keep training.

    Args:
        module: any ``nn.Module``.
        buffers: include the persistent buffers (``BatchNorm``'s running statistics);
            ``False`` gives the parameters only, the counterpart of :func:`state_of`.

    Returns:
        Nested dict of tensors.

    Example:
        >>> import torch, ftx
        >>> params = ftx.nn.params_of(torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()))
        >>> ftx.tree.map(lambda p: tuple(p.shape), params)
        {'0': {'weight': (2, 3), 'bias': (2,)}}
    """
    _check_module("nn.params_of", module)
    if buffers is not True and buffers is not False:
        raise TypeError(msg("nn.params_of", "buffers must be True or False", describe(buffers)))
    flat = _named_state(module)
    if not buffers:
        skip = _buffer_names(module)
        flat = {k: v for k, v in flat.items() if k not in skip}
    return _nest({k: v.detach() for k, v in flat.items()})


def state_of(module: nn.Module) -> Params:
    """A module's persistent buffers (its state) as a detached nested dict.

    The state of the ftx twins with state (``BatchNorm*``): ``running_mean``,
    ``running_var``, ``num_batches_tracked`` under their state-dict paths. With
    ``params_of(module, buffers=False)`` it partitions ``params_of(module)``.

    Args:
        module: any ``nn.Module``.

    Returns:
        Nested dict of (detached, shared-memory) buffer tensors.

    Example:
        >>> import torch, ftx
        >>> module = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
        >>> ftx.tree.map(lambda t: tuple(t.shape), ftx.nn.state_of(module))
        {'1': {'running_mean': (2,), 'running_var': (2,), 'num_batches_tracked': ()}}
    """
    _check_module("nn.state_of", module)
    names = _buffer_names(module)
    return _nest({k: v.detach() for k, v in _named_state(module).items() if k in names})


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


def _merge(a: Params, b: Params) -> Params:
    """Deep union of two nested dicts (params and state share the layer-index keys)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def to_module(layer: Layer, params: Params, state: Params | None = None) -> nn.Module:
    """The ``nn.Module`` twin of ``layer``, holding ``params`` (and ``state``) (copied).

    The module's dtype and device are those of the params (float32 on CPU for
    paramless layers). For layers with state (``BatchNorm*``), ``state`` fills the
    buffers (``running_mean``, ...); ``None`` keeps the twin's fresh buffers.

    Args:
        layer: an ftx layer.
        params: its params, e.g. from ``layer.init(key)``.
        state: its state, e.g. from ``layer.init_state()`` or a training call.

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
    elif state and isinstance(state, dict):
        floats = [t for t in _flat_paths(state, api).values()
                  if isinstance(t, Tensor) and t.is_floating_point()]
        if floats:
            module = module.to(device=floats[0].device, dtype=floats[0].dtype)
    buffers = _buffer_names(module)
    if not buffers:
        if state:
            raise ValueError(msg(api, "state must be None or {} for a layer without state",
                                 describe(state)))
        return load_params(module, params)
    if state is None:
        state = state_of(module)
    if not isinstance(state, dict):
        raise TypeError(msg(api, "state must be a nested dict of tensors", describe(state)))
    if not isinstance(params, dict):
        raise TypeError(msg(api, "params must be a nested dict of tensors", describe(params)))
    return load_params(module, _merge(params, state))


@overload
def from_module(
    module: nn.Module, *, split_state: Literal[False] = False
) -> tuple[Callable[..., Any], Params]: ...


@overload
def from_module(
    module: nn.Module, *, split_state: Literal[True]
) -> tuple[Callable[..., Any], Params, Params]: ...


def from_module(module: nn.Module, *, split_state: bool = False) -> tuple[Any, ...]:
    """Any ``nn.Module`` as a pure function: ``(apply_fn, params)``.

    ``apply_fn(params, *args, **kwargs)`` runs ``module(*args, **kwargs)`` with
    the given params and buffers through ``torch.func.functional_call`` (tied
    weights stay tied), so it works under ``ftx.grad``, ``ftx.vmap`` and
    ``torch.compile``. ``params`` is :func:`params_of(module) <params_of>`, buffers
    included. Nothing is mutated: neither the module nor the tensors passed in
    ``params``. A module that updates buffers in ``forward`` (``BatchNorm`` in
    training mode) updates copies, which ``apply_fn`` drops; to get them back use
    ``split_state=True``.

    With ``split_state=True`` the result is ``(apply_fn, params, state)``: ``params``
    holds the parameters only (``params_of(module, buffers=False)``), ``state`` the
    buffers (:func:`state_of`), and ``apply_fn(params, state, *args, **kwargs)``
    returns ``(output, new_state)``, the buffers after the forward (the same tensors
    values as the module's own would be; the caller's are untouched).

    Args:
        module: any ``nn.Module`` (its ``training`` flag decides what ``forward`` does).
        split_state: separate the buffers into a state that is passed and returned.

    Returns:
        ``(apply_fn, params)``, or ``(apply_fn, params, state)`` with ``split_state``.

    Example:
        >>> import torch, ftx
        >>> module = torch.nn.Linear(3, 2)
        >>> apply_fn, params = ftx.nn.from_module(module)
        >>> x = torch.randn(4, 3)
        >>> torch.allclose(apply_fn(params, x), module(x))
        True
        >>> bn = torch.nn.BatchNorm1d(3)                       # training mode
        >>> apply_bn, params, state = ftx.nn.from_module(bn, split_state=True)
        >>> y, new_state = apply_bn(params, state, torch.randn(8, 3))
        >>> int(new_state["num_batches_tracked"]), int(bn.num_batches_tracked)
        (1, 0)
    """
    api = "nn.from_module"
    _check_module(api, module)
    if split_state is not True and split_state is not False:
        raise TypeError(msg(api, "split_state must be True or False", describe(split_state)))
    buffers = frozenset(_buffer_names(module))
    everything = frozenset(_named_state(module))
    expected = everything - buffers if split_state else everything

    def check(name: str, tree: Any, paths: frozenset[str]) -> dict[str, Any]:
        flat = _flat_paths(tree, f"{api}.apply")
        if flat.keys() != paths:
            missing = sorted(paths - flat.keys())
            extra = sorted(flat.keys() - paths)
            raise ValueError(
                msg(
                    f"{api}.apply",
                    f"{name} must hold exactly the module's paths {sorted(paths)}",
                    f"missing paths {missing} and extra paths {extra}",
                    f"Use the {name} from_module returned (or a pytree of that structure).",
                )
            )
        return flat

    def call(flat: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return torch.func.functional_call(module, flat, args, kwargs, tie_weights=True)
        except RuntimeError as err:
            _diagnose_devices(f"{api}.apply", flat, args, kwargs, err)
            raise
        except (TypeError, AttributeError) as err:  # a non-tensor leaf (else the module's own)
            bad = [k for k, v in flat.items() if not isinstance(v, Tensor)]
            if bad:
                raise TypeError(msg(
                    f"{api}.apply", "every leaf of params must be a tensor",
                    f"{describe(flat[bad[0]])} at path {bad[0]!r}",
                    "Use the params from_module returned (or tensors of those shapes).",
                )) from err
            raise

    def copies(flat: dict[str, Any]) -> dict[str, Any]:
        """The buffers cloned, so that a forward updating them in place mutates nothing
        the caller holds."""
        return {k: (v.clone() if k in buffers and isinstance(v, Tensor) else v)
                for k, v in flat.items()}

    def apply_fn(params: Params, *args: Any, **kwargs: Any) -> Any:
        flat = check("params", params, expected)
        return call(copies(flat) if buffers else flat, args, kwargs)

    def apply_with_state(params: Params, state: Params, *args: Any, **kwargs: Any) -> Any:
        flat = check("params", params, expected)
        flat_state = copies(check("state", state, buffers))
        out = call({**flat, **flat_state}, args, kwargs)
        return out, _nest(flat_state)

    name = type(module).__name__
    if split_state:
        apply_with_state.__doc__ = (f"Pure forward of {name} (from ftx.nn.from_module): "
                                    "(params, state, *args) -> (output, new_state).")
        params = params_of(module, buffers=False)
        return apply_with_state, params, state_of(module)
    apply_fn.__doc__ = f"Pure forward of {name} (from ftx.nn.from_module)."
    return apply_fn, params_of(module)
