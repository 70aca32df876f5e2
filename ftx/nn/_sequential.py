"""``Sequential``: layers applied in order, params (and state) keyed like ``nn.Sequential``."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg
from ._base import (
    Layer,
    Params,
    ParamsError,
    Shape,
    check_init,
    check_key,
    check_params,
    split_key,
)

__all__ = ["Sequential"]


@dataclasses.dataclass(frozen=True, init=False)
class Sequential(Layer):
    """Apply ``layers`` in order; the twin of ``nn.Sequential``.

    Params: ``{str(i): params_i}`` for each layer ``i`` that has parameters,
    so paramless layers leave gaps in the indices exactly as in
    ``nn.Sequential``'s state dict. ``init`` splits the key into one per layer;
    a ``key`` passed to the call is split the same way (for ``Dropout``).

    Args:
        *layers: ftx layers.

    Call ``seq(params, x, key=None)``; returns the last layer's output. With layers that
    have state (``BatchNorm*``), call ``seq(params, x, state=state, training=...)`` with
    ``state = seq.init_state()`` (``{str(i): state_i}``, keyed like the params) and get
    ``(y, new_state)``; params and state together are ``nn.Sequential``'s state dict.

    Example:
        >>> import torch, ftx
        >>> seq = ftx.nn.Sequential(ftx.nn.Linear(3, 4), ftx.nn.ReLU(), ftx.nn.Linear(4, 2))
        >>> params = seq.init(ftx.random.key(0))
        >>> ftx.tree.map(lambda p: tuple(p.shape), params)
        {'0': {'weight': (4, 3), 'bias': (4,)}, '2': {'weight': (2, 4), 'bias': (2,)}}
        >>> seq(params, torch.ones(5, 3)).shape
        torch.Size([5, 2])
        >>> net = ftx.nn.Sequential(ftx.nn.Linear(3, 4), ftx.nn.BatchNorm1d(4), ftx.nn.ReLU())
        >>> params, state = net.init(ftx.random.key(0)), net.init_state()
        >>> y, state = net(params, torch.randn(8, 3), state=state, training=True)
        >>> sorted(state["1"])
        ['num_batches_tracked', 'running_mean', 'running_var']
    """

    layers: tuple[Layer, ...]

    def __init__(self, *layers: Layer) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    msg(
                        "nn.Sequential",
                        f"every layer must be an ftx.nn layer, layer {i}",
                        describe(layer),
                        "Wrap torch modules with ftx.nn.from_module instead.",
                    )
                )
        object.__setattr__(self, "layers", tuple(layers))
        plan = tuple(
            (layer, str(i) if layer.param_shapes() else None) for i, layer in enumerate(layers)
        )
        object.__setattr__(self, "_plan", plan)
        object.__setattr__(self, "_keys", {name for _, name in plan if name is not None})
        # the layers with state (BatchNorm, Sequentials holding one): index -> state key
        stateful = tuple(str(i) if layer.state_shapes() else None
                         for i, layer in enumerate(layers))
        object.__setattr__(self, "_stateful", stateful)
        object.__setattr__(self, "_state_keys", {n for n in stateful if n is not None})

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """One key per layer (``split(key, len(layers))``); params of layers that have some."""
        check_init(self.api, key, dtype, device)
        if not self.layers:
            return {}
        keys = split_key(key, len(self.layers))
        params: Params = {}
        for i, (layer, name) in enumerate(self._plan):  # type: ignore[attr-defined]
            if name is not None:
                params[name] = layer.init(keys[i], dtype=dtype, device=device)
        return params

    def init_state(self, *, dtype: torch.dtype = torch.float32, device: Any = None) -> Params:
        """``{str(i): layers[i].init_state(...)}`` for the layers with state (``{}`` if none)."""
        super().init_state(dtype=dtype, device=device)
        return {name: layer.init_state(dtype=dtype, device=device)
                for layer, name in zip(self.layers, self._stateful)  # type: ignore[attr-defined]
                if name is not None}

    def __call__(self, params: Params, x: Any, *, key: Tensor | None = None,
                 state: Params | None = None, training: bool = True) -> Any:
        """``x -> layers[-1](... layers[0](x))``; ``(y, new_state)`` when ``state`` is given.

        ``state`` (from :meth:`init_state`) is threaded through the layers with state
        (``BatchNorm*``), each called with its ``state[str(i)]`` and ``training``; the
        others are called as without state. Without ``state``, layers with state run
        without running statistics (``training=True``) or raise (``training=False``).
        """
        if state is None and not self._state_keys:  # type: ignore[attr-defined]
            self._check_training(training)
            return self._call_stateless(params, x, key)
        return self._call_stateful(params, x, key, state, training)

    def _check_training(self, training: Any) -> None:
        if training is not True and training is not False:
            raise TypeError(msg(self.api, "training must be True or False",
                                describe(training)))

    def _call_stateless(self, params: Params, x: Any, key: Tensor | None) -> Any:
        plan = self._plan  # type: ignore[attr-defined]
        if key is not None:
            check_key(self.api, key)
        i = -1
        try:
            if params.keys() != self._keys:  # type: ignore[attr-defined]
                raise ParamsError()
            if key is None:
                for i, (layer, name) in enumerate(plan):  # noqa: B007 (i is read on error)
                    x = layer(params[name] if name is not None else {}, x)
            elif plan:
                keys = split_key(key, len(plan))
                for i, (layer, name) in enumerate(plan):
                    x = layer(params[name] if name is not None else {}, x, key=keys[i])
        except (ParamsError, AttributeError):
            check_params(self.api, params, self.param_shapes())
            raise
        except (ValueError, TypeError) as err:
            err.add_note(f"(raised in ftx.{self.api} by layer {i}: {plan[i][0]!r})")
            raise
        return x

    def _call_stateful(self, params: Params, x: Any, key: Tensor | None,
                       state: Params | None, training: bool) -> Any:
        plan = self._plan  # type: ignore[attr-defined]
        self._check_training(training)
        if key is not None:
            check_key(self.api, key)
        if state is not None and (type(state) is not dict
                                  or state.keys() != self._state_keys):  # type: ignore[attr-defined]
            check_params(self.api, state, self.state_shapes(), what="state")
        keys = split_key(key, len(plan)) if key is not None and plan else None
        new_state: Params = {}
        i = -1
        try:
            if params.keys() != self._keys:  # type: ignore[attr-defined]
                raise ParamsError()
            for i, ((layer, name), sname) in enumerate(
                    zip(plan, self._stateful)):  # type: ignore[attr-defined]
                p = params[name] if name is not None else {}
                k = keys[i] if keys is not None else None
                if sname is None:
                    x = layer(p, x) if k is None else layer(p, x, key=k)
                elif state is None:
                    x = layer(p, x, key=k, training=training)
                else:
                    x, new_state[sname] = layer(
                        p, x, key=k, state=state[sname], training=training)
        except (ParamsError, AttributeError) as err:
            check_params(self.api, params, self.param_shapes())
            if state is not None:
                check_params(self.api, state, self.state_shapes(), what="state")
            if i >= 0:
                err.add_note(f"(raised in ftx.{self.api} by layer {i}: {plan[i][0]!r})")
            raise
        except (ValueError, TypeError) as err:
            err.add_note(f"(raised in ftx.{self.api} by layer {i}: {plan[i][0]!r})")
            raise
        return x if state is None else (x, new_state)

    def state_shapes(self) -> dict[str, Shape]:
        out: dict[str, Shape] = {}
        for layer, name in zip(self.layers, self._stateful):  # type: ignore[attr-defined]
            if name is not None:
                out.update({f"{name}.{p}": s for p, s in layer.state_shapes().items()})
        return out

    def param_shapes(self) -> dict[str, Shape]:
        out: dict[str, Shape] = {}
        for layer, name in self._plan:  # type: ignore[attr-defined]
            if name is not None:
                out.update({f"{name}.{p}": s for p, s in layer.param_shapes().items()})
        return out

    def twin(self) -> nn.Module:
        return nn.Sequential(*(layer.twin() for layer in self.layers))

    @property
    def api(self) -> str:
        name: str = self.__dict__.get("_api", "nn.Sequential")  # MLP names itself
        return name

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

