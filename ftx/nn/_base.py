"""The layer protocol, parameter checks and the error messages every layer shares.

A layer is a frozen dataclass of hyper-parameters. ``init(key, *, dtype, device)``
returns a nested dict of tensors whose flattened paths are the twin
``nn.Module``'s state-dict keys; ``layer(params, x, *, key=None)`` is pure.

Each ``__call__`` does a few cheap checks inline (keys, dtype, the feature or
channel count) and only when one fails calls :meth:`Layer._diagnose`, the slow
path that works out exactly what is wrong and raises the contract's message.

Hyper-parameters are checked once, when the layer is built, by :func:`check_fields`
with the shared rules below (``FLAG``, ``POSITIVE``, ``pair(low)``, ``real(...)``,
...): ``TypeError`` for a wrong kind, ``ValueError`` for a wrong value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

import torch
from torch import Tensor, nn

from .._internal.errors import describe, msg

Params = dict[str, Any]
Shape = tuple[int, ...]

__all__ = ["Layer", "Params", "ParamsError"]


class ParamsError(ValueError):
    """Params whose paths or shapes differ from what the layer's ``init`` returns."""


def _flat_paths(params: Any, api: str = "nn") -> dict[str, Any]:
    """``{"0.weight": leaf, ...}`` for a nested dict of params (non-dict values are leaves).

    A dict that contains itself raises ``ValueError`` naming the path (not ``RecursionError``).
    """
    out: dict[str, Any] = {}
    try:
        _walk(params, "", out)
    except RecursionError:
        from ..optim._tree import cycle_error

        raise cycle_error(api, "params", params) from None
    return out


def _walk(params: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(params, Mapping):
        for k, v in params.items():
            path = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                _walk(v, path + ".", out)
            else:
                out[path] = v


def check_params(
    api: str, params: Any, shapes: Mapping[str, Shape], what: str = "params"
) -> None:
    """Raise when ``params`` is not a dict holding exactly ``shapes``' paths and shapes.

    ``what="state"`` checks a layer's state the same way (its messages say ``state``).
    """
    build = ("Build state with layer.init_state() or ftx.nn.state_of(twin_module)."
             if what == "state" else
             "Build params with layer.init(key) or ftx.nn.params_of(twin_module).")
    if not isinstance(params, Mapping):
        raise TypeError(
            msg(
                api,
                f"{what} must be a dict of tensors (the pytree from init"
                f"{'_state' if what == 'state' else ''})",
                describe(params),
                build.replace("(twin_module)", "(module)"),
            )
        )
    flat = _flat_paths(params, api)
    missing = sorted(p for p in shapes if p not in flat)
    extra = sorted(p for p in flat if p not in shapes)
    if missing or extra:
        raise ParamsError(
            msg(
                api,
                f"{what} must hold exactly the paths {sorted(shapes)}",
                f"missing paths {missing} and extra paths {extra}",
                build,
            )
        )
    for path, want in shapes.items():
        leaf = flat[path]
        if not isinstance(leaf, Tensor):
            raise TypeError(
                msg(api, f"{what}[{path!r}] must be a tensor", describe(leaf))
            )
        if tuple(leaf.shape) != tuple(want):
            raise ParamsError(
                msg(
                    api,
                    f"{what}[{path!r}] must have shape {tuple(want)}",
                    f"shape {tuple(leaf.shape)}",
                    f"The {what} belong{'s' if what == 'state' else ''} to a layer with other "
                    "hyper-parameters.",
                )
            )


def check_dtypes(api: str, params: Any, x: Any) -> None:
    """Raise ``TypeError`` unless ``x`` is a floating tensor with the params' dtype."""
    if not isinstance(x, Tensor):
        raise TypeError(msg(api, "input x must be a tensor", describe(x)))
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(
            msg(api, "input x must be a floating tensor", f"dtype {x.dtype}", "Cast it: x.float().")
        )
    for path, leaf in _flat_paths(params, api).items():
        if isinstance(leaf, Tensor) and leaf.dtype != x.dtype:
            raise TypeError(
                msg(
                    api,
                    "input and params must share one dtype",
                    f"input {x.dtype} and params[{path!r}] {leaf.dtype}",
                    "Cast one side, e.g. x.to(params_dtype) or init(key, dtype=x.dtype).",
                )
            )
        if isinstance(leaf, Tensor) and leaf.device != x.device:
            raise ValueError(
                msg(
                    api,
                    "input and params must be on one device",
                    f"input on {x.device} and params[{path!r}] on {leaf.device}",
                    "Move one side, e.g. x.to(device) or init(key, device=x.device).",
                )
            )


def kaiming_bound(fan_in: int) -> float:
    """``1/sqrt(fan_in)``: torch's default bound for weights (kaiming_uniform, a=sqrt(5))
    and biases alike; 0 when ``fan_in`` is 0."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0


def uniform_init(
    key: Tensor, shape: Shape, bound: float, dtype: torch.dtype, device: Any
) -> Tensor:
    """``U(-bound, bound)`` of ``shape`` drawn from an ``ftx.random`` key on ``device``."""
    from .. import random as fr

    if device is not None:
        key = key.to(device)
    out: Tensor = fr.uniform(key, shape, dtype=dtype, minval=-bound, maxval=bound)
    return out


def split_key(key: Tensor, num: int) -> Tensor:
    """``ftx.random.split(key, num)``: ``(num, 2)`` keys."""
    from .. import random as fr

    out: Tensor = fr.split(key, num)
    return out


def check_key(api: str, key: Any) -> None:
    """Raise ``TypeError`` unless ``key`` is one ``ftx.random`` key (int64 tensor, shape (2,))."""
    if not (isinstance(key, Tensor) and key.dtype == torch.int64 and key.shape == (2,)):
        raise TypeError(
            msg(
                api,
                "key must be an ftx.random key (one int64 tensor of shape (2,))",
                describe(key),
                "Make one with ftx.random.key(seed); map over a batch of keys with ftx.vmap.",
            )
        )
    if key.is_meta or key.layout is not torch.strided:
        raise ValueError(msg(api, "key must hold data (a dense tensor on a real device)",
                             f"{describe(key)} on {key.device} with layout {key.layout}",
                             "Make one with ftx.random.key(seed)."))


# ``init_state`` takes no key; the shared argument check gets a valid stand-in.
_STATE_KEY = torch.zeros(2, dtype=torch.int64)

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_init(api: str, key: Any, dtype: Any, device: Any) -> None:
    """The arguments of ``init``: one key, a real floating dtype, a usable device."""
    check_key(api, key)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(msg(api, "dtype must be a torch.dtype", describe(dtype),
                            "E.g. dtype=torch.float32."))
    if dtype not in _FLOATS:
        raise ValueError(msg(api, "dtype must be float16, bfloat16, float32 or float64",
                             str(dtype), "Parameters are real floating tensors."))
    if device is None:
        return
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(msg(api, "device must be a torch.device, a string or an int",
                            describe(device), "E.g. device='cpu' or device='cuda:0'."))
    try:
        torch.empty(0, device=device)
    except (RuntimeError, ValueError, AssertionError) as err:
        raise ValueError(msg(api, "device must be a device torch can use in this process",
                             f"{device!r} ({str(err).splitlines()[0] if str(err) else err!r})",
                             "E.g. device='cpu'.")) from err


# ---------------------------------------------------------------------------
# Hyper-parameter rules: ``rule(api, name, value) -> normalised value``.

Rule = Callable[[str, str, Any], Any]


def check_fields(layer: Any, **rules: Rule) -> None:
    """Check the named fields of a frozen dataclass layer; store the normalised values."""
    api = layer.api
    for name, rule in rules.items():
        value = rule(api, name, getattr(layer, name))
        object.__setattr__(layer, name, value)


def FLAG(api: str, name: str, value: Any) -> bool:
    """``True`` or ``False`` (not 0/1, not strings)."""
    if not isinstance(value, bool):
        raise TypeError(msg(api, f"{name} must be True or False", describe(value)))
    return value


# The largest size torch can index (int64); anything above it fails deep inside torch.
MAX_SIZE = 2**63 - 1


def _too_big(api: str, name: str, v: int) -> ValueError:
    got = str(v) if v < 10**30 else f"an int of {v.bit_length()} bits"
    return ValueError(msg(api, f"{name} must be < 2**63 (torch's int64 sizes)", got,
                          "Pass a realistic size."))


def _is_int(value: Any) -> bool:
    return type(value) is not bool and isinstance(value, numbers.Integral)


def _int(api: str, name: str, value: Any) -> int:
    if not _is_int(value):
        raise TypeError(msg(api, f"{name} must be an int", describe(value)))
    v = int(value)
    if not -MAX_SIZE - 1 <= v <= MAX_SIZE:  # torch takes int64 only
        got = str(v) if abs(v) < 10**30 else f"an int of {v.bit_length()} bits"
        raise ValueError(msg(api, f"{name} must fit in int64 (|{name}| < 2**63)", got,
                             "Pass a realistic value."))
    return v


def INT(api: str, name: str, value: Any) -> int:
    """Any int (bool refused)."""
    return _int(api, name, value)


def at_least(low: int) -> Rule:
    """An int ``>= low``."""

    def rule(api: str, name: str, value: Any) -> int:
        v = _int(api, name, value)
        if v < low:
            raise ValueError(msg(api, f"{name} must be >= {low}", str(v)))
        if v > MAX_SIZE:
            raise _too_big(api, name, v)
        return v

    return rule


POSITIVE = at_least(1)


def pair(low: int) -> Rule:
    """An int or a pair of ints, each ``>= low``, normalised to a pair (as ``torch.nn``)."""

    def rule(api: str, name: str, value: Any) -> tuple[int, int]:
        if _is_int(value):
            out = (int(value), int(value))
        elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(_is_int, value)):
            out = (int(value[0]), int(value[1]))
        else:
            raise TypeError(msg(api, f"{name} must be an int or a pair of ints", describe(value)))
        if min(out) < low:
            raise ValueError(msg(api, f"{name} must be >= {low}", str(out)))
        if max(out) > MAX_SIZE:
            raise _too_big(api, name, max(out))
        return out

    return rule


def ntuple(n: int, low: int) -> Rule:
    """An int or a sequence of ``n`` ints, each ``>= low``, normalised to an ``n``-tuple."""

    def rule(api: str, name: str, value: Any) -> tuple[int, ...]:
        if _is_int(value):
            out = (int(value),) * n
        elif isinstance(value, (tuple, list)) and len(value) == n and all(map(_is_int, value)):
            out = tuple(int(v) for v in value)
        else:
            what = "an int" if n == 1 else f"an int or a tuple of {n} ints"
            raise TypeError(msg(api, f"{name} must be {what}", describe(value)))
        if min(out) < low:
            raise ValueError(msg(api, f"{name} must be >= {low}", str(out if n > 1 else out[0])))
        if max(out) > MAX_SIZE:
            raise _too_big(api, name, max(out))
        return out

    return rule


def real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
         high_open: bool = False) -> Rule:
    """A finite real number in the given range, as a ``float`` (bool refused)."""

    def rule(api: str, name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(msg(api, f"{name} must be a real number", describe(value)))
        try:
            v = float(value)
        except OverflowError:  # an int beyond float64 (10**400): out of any range
            v = math.inf
        ok = math.isfinite(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
        if not ok:
            if low is not None and high is not None:
                rng = (f"in {'(' if low_open else '['}{low:g}, {high:g}"
                       f"{')' if high_open else ']'}")
            elif low is not None:
                rng = f"{'>' if low_open else '>='} {low:g}"
            else:
                rng = "finite"
            got = (f"a number of about 2**{int(math.log2(abs(value)))}"
                   if math.isinf(v) and isinstance(value, numbers.Integral) else repr(value))
            raise ValueError(msg(api, f"{name} must be {rng}", got))
        return v

    return rule


def choice(*options: str) -> Rule:
    """One of the given strings."""

    def rule(api: str, name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(msg(api, f"{name} must be one of {options}", describe(value)))
        if value not in options:
            raise ValueError(msg(api, f"{name} must be one of {options}", repr(value)))
        return value

    return rule


def optional(inner: Rule) -> Rule:
    """``None`` or what ``inner`` accepts."""

    def rule(api: str, name: str, value: Any) -> Any:
        return None if value is None else inner(api, name, value)

    return rule


def LAYER(api: str, name: str, value: Any) -> Any:
    """An ftx.nn layer instance."""
    if not isinstance(value, Layer):
        raise TypeError(msg(api, f"{name} must be an ftx.nn layer (an instance)",
                            describe(value), "E.g. ftx.nn.ReLU(), not ftx.nn.ReLU."))
    return value


def as_pair(api: str, name: str, value: Any) -> tuple[int, int]:
    """Normalise an int or a pair of ints to a pair, as ``torch.nn`` does."""
    out: tuple[int, int] = pair(-(1 << 62))(api, name, value)
    return out


def check_positive(api: str, **values: int) -> None:
    """Raise unless every value is an int >= 1 (``TypeError`` for non-ints)."""
    for name, value in values.items():
        POSITIVE(api, name, value)


def check_input(api: str, x: Any, floating: bool = True) -> None:
    """Raise ``TypeError`` unless ``x`` is a tensor (a floating one when ``floating``)."""
    if not isinstance(x, Tensor):
        raise TypeError(msg(api, "input x must be a tensor", describe(x)))
    if floating and not x.is_floating_point():
        raise TypeError(
            msg(api, "input x must be a floating tensor", f"dtype {x.dtype}",
                "Cast it: x.float().")
        )


_KERNEL_FLOATS = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})


def kernel_error(api: str, x: Any, err: Exception) -> NoReturn:
    """Slow path after an elementwise kernel refused ``x``: raise the contract's error.

    Layers call the kernel first and come here only when it raised, so the common case
    pays nothing for the checks of layout and dtype torch does anyway.
    """
    check_input(api, x)
    if x.layout is not torch.strided:
        raise TypeError(msg(api, "input x must be a dense (strided) tensor",
                            f"layout {x.layout}", "Convert it: x.to_dense().")) from err
    if x.dtype not in _KERNEL_FLOATS:
        raise TypeError(msg(api, "input x must be float16, bfloat16, float32 or float64",
                            f"dtype {x.dtype}", "Cast it: x.float().")) from err
    raise ValueError(msg(api, "an input torch's kernel accepts",
                         f"{describe(x)} on device {x.device} "
                         f"(torch: {str(err).splitlines()[0] if str(err) else type(err).__name__})",
                         "Move x to a device and dtype torch supports.")) from err


def input_error(api: str, required: str, x: Tensor, fix: str = "") -> ValueError:
    """A ``ValueError`` for an input of the wrong shape, naming both shapes."""
    return ValueError(msg(api, required, f"input of shape {tuple(x.shape)}", fix))


class Layer:
    """Base class of ftx layers: frozen dataclasses of hyper-parameters.

    Subclasses define ``init``, ``__call__``, :meth:`param_shapes`,
    :meth:`twin` and, when inputs have a shape contract, :meth:`_check_input`.
    """

    def init(
        self, key: Tensor, *, dtype: torch.dtype = torch.float32, device: Any = None
    ) -> Params:
        """Initial parameters (paramless layers: ``{}``, after the same argument checks)."""
        check_init(self.api, key, dtype, device)
        return {}

    def __call__(self, params: Params, x: Any, *, key: Tensor | None = None) -> Any:
        raise NotImplementedError

    def param_shapes(self) -> dict[str, Shape]:
        """Flattened param paths (state-dict keys) and shapes; ``{}`` without params."""
        return {}

    def state_shapes(self) -> dict[str, Shape]:
        """Flattened state paths (the twin's buffer names) and shapes; ``{}`` for the
        stateless layers (all but ``BatchNorm*`` and containers holding one).

        A layer with state is called ``layer(params, x, state=state, training=...)`` and
        then returns ``(y, new_state)``; see ``docs/nn.md`` (layers with state).
        """
        return {}

    def init_state(self, *, dtype: torch.dtype = torch.float32, device: Any = None) -> Params:
        """The initial state (a nested dict keyed like the twin's buffers); ``{}`` when
        the layer has none. Floating leaves take ``dtype``, integer counters stay int64."""
        check_init(self.api, _STATE_KEY, dtype, device)
        return {}

    def twin(self) -> nn.Module:
        """A fresh ``nn.Module`` computing the same maths (float32, CPU, torch's init)."""
        raise NotImplementedError

    @property
    def api(self) -> str:
        return f"nn.{type(self).__name__}"

    def _check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` when ``x``'s shape breaks the layer's contract."""

    def _diagnose(self, params: Any, x: Any, err: Exception | None = None) -> NoReturn:
        """Slow path after a failed inline check or kernel: raise the precise error."""
        check_params(self.api, params, self.param_shapes())
        check_dtypes(self.api, params, x)
        self._check_input(x)
        detail = f" (torch: {str(err).splitlines()[0]})" if err is not None else ""
        raise ValueError(
            msg(self.api, "params and input the kernel accepts", f"input {describe(x)}{detail}")
        ) from err


def check_empty(layer: Layer, params: Any, x: Any, floating: bool = False) -> None:
    """Slow path for paramless layers: ``params`` must be ``{}`` (or ``None``) and ``x`` a
    tensor (a floating one when ``floating``)."""
    if params is not None and not isinstance(params, Mapping):
        check_params(layer.api, params, {})
    if params:
        check_params(layer.api, params, {})
    check_input(layer.api, x, floating)
