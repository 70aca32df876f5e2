"""Argument checks for ftx.random, in the contract's message form."""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

import torch

from .._internal.errors import describe, msg
from .._internal.torch_compat import top_level

# dtype -> (total bits, explicit mantissa bits), as jnp.finfo reports them.
FLOATS = {
    torch.float16: (16, 10),
    torch.bfloat16: (16, 7),
    torch.float32: (32, 23),
    torch.float64: (64, 52),
}
_KEY_FIX = "Make one with ftx.random.key(seed) or split an existing key."
# Largest element count (exclusive) of a shape: ftx computes in int64 words and split
# returns (*num, 2) of them, whose byte size must stay below torch's 2**63 limit.
MAX_ELEMENTS = 1 << 59
_SIZE_FIX = "Draw in pieces: split the key and draw one piece per new key."


def dense(api: str, name: str, x: torch.Tensor) -> None:
    """Sparse, quantized and other non-strided tensors are the wrong kind here."""
    if x.layout != torch.strided:
        raise TypeError(
            msg(
                f"random.{api}",
                f"{name} must be a dense (strided) tensor",
                f"{describe(x)} with layout {x.layout}",
                "Convert it with .to_dense().",
            )
        )


def check_key(api: str, key: object, *, batched: bool = False) -> torch.Tensor:
    if isinstance(key, torch.Tensor):
        dense(api, "key", key)
    if not isinstance(key, torch.Tensor) or key.dtype != torch.int64 or key.ndim < 1:
        raise TypeError(
            msg(
                f"random.{api}",
                "key must be an int64 tensor of shape (2,)",
                describe(key),
                _KEY_FIX,
            )
        )
    if key.shape[-1] != 2 or (not batched and key.ndim != 1):
        required = (
            "key must have shape (..., 2)" if batched else "key must be a single key of shape (2,)"
        )
        fix = _KEY_FIX if batched else "Map over a batch of keys with ftx.vmap."
        raise TypeError(msg(f"random.{api}", required, describe(key), fix))
    if key.device.type != "meta" and eager(key) and bool(((key >> 32) != 0).any()):
        words = key.reshape(-1, 2)[0].tolist() if key.numel() else []
        raise ValueError(
            msg(
                f"random.{api}",
                "key must hold two unsigned 32-bit words, each in [0, 2**32)",
                f"{describe(key)} with words such as {words}",
                _KEY_FIX,
            )
        )
    return key


def _size(d: object) -> int | None:
    """``d`` as a size (an int or anything with ``__index__``, not a bool), else None."""
    if type(d) is int:  # the common case (and the one torch.compile traces)
        return d
    if isinstance(d, bool) or (isinstance(d, torch.Tensor) and d.ndim != 0):
        return None
    try:
        return operator.index(d)  # type: ignore[arg-type]
    except TypeError:
        return None


def as_int(x: object) -> int | None:
    """``x`` as a Python int (ints, numpy integers; not bools, not tensors), else None."""
    if isinstance(x, torch.Tensor):
        return None
    return _size(x)


def check_shape(api: str, shape: object, name: str = "shape") -> tuple[int, ...]:
    single = _size(shape) if not isinstance(shape, (tuple, list, torch.Tensor)) else None
    dims = (single,) if single is not None else shape
    if not isinstance(dims, (Sequence, torch.Size)) or isinstance(dims, str):
        raise TypeError(
            msg(f"random.{api}", f"{name} must be a tuple of ints", describe(shape), "E.g. (3, 4).")
        )
    out = []
    for d in dims:
        size = _size(d)
        if size is None:
            raise TypeError(
                msg(
                    f"random.{api}",
                    f"{name} must be a tuple of ints",
                    describe(shape),
                    "E.g. (3, 4).",
                )
            )
        if size < 0:
            raise ValueError(
                msg(
                    f"random.{api}",
                    f"{name} must have non-negative sizes",
                    repr(shape),
                    "Sizes count elements, e.g. (3, 4).",
                )
            )
        out.append(size)
    check_size(api, out, name)
    return tuple(out)


def check_size(api: str, dims: Sequence[int], name: str = "shape") -> None:
    """Refuse, before allocating, sizes whose int64 buffers torch cannot index."""
    count = 1
    for d in dims:
        count *= max(d, 1)
    if count >= MAX_ELEMENTS:
        shown = dims[0] if name == "x" else tuple(dims)
        raise ValueError(
            msg(
                f"random.{api}",
                f"{name} must have fewer than 2**59 elements (zero sizes counted as 1)",
                f"{shown!r}, about 2**{math.log2(count):.1f} elements",
                _SIZE_FIX,
            )
        )


def check_device(api: str, device: object) -> torch.device | None:
    """``device`` as a ``torch.device`` that can hold tensors here (None stays None)."""
    if device is None:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(
            msg(
                f"random.{api}",
                "device must be a torch.device, a string or an int",
                describe(device),
                "E.g. device='cpu' or device=torch.device('cuda', 0).",
            )
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ValueError(
            msg(
                f"random.{api}",
                "device must name a torch device type such as 'cpu' or 'cuda:0'",
                repr(device),
                "See torch.device for the accepted names.",
            )
        ) from e
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, AssertionError, ValueError) as e:
        raise ValueError(
            msg(
                f"random.{api}",
                "device must be available in this process",
                f"{device!r} ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                "Pick one that torch can use here, e.g. 'cpu'.",
            )
        ) from e
    return dev


def check_float_dtype(api: str, dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            msg(
                f"random.{api}",
                "dtype must be a torch.dtype",
                describe(dtype),
                "E.g. dtype=torch.float32.",
            )
        )
    if dtype not in FLOATS:
        raise ValueError(
            msg(
                f"random.{api}",
                "dtype must be float16, bfloat16, float32 or float64",
                str(dtype),
                "Draw floats and convert them, or use randint for integers.",
            )
        )
    return dtype


def as_tensor(
    api: str,
    name: str,
    x: object,
    dtype: torch.dtype,
    device: torch.device,
    *,
    integer: bool = False,
) -> torch.Tensor:
    """A scalar or tensor argument as a tensor of ``dtype`` on ``device``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(x, torch.Tensor):
        dense(api, name, x)
        if x.is_complex() or (integer and x.is_floating_point()):
            kind = "an integer" if integer else "a real (not complex)"
            raise TypeError(
                msg(
                    f"random.{api}",
                    f"{name} must be {kind} tensor",
                    describe(x),
                    "Pass real values.",
                )
            )
        try:
            return x.to(device=device, dtype=dtype)
        except (RuntimeError, NotImplementedError) as e:
            raise ValueError(
                msg(
                    f"random.{api}",
                    f"{name} must be movable to the key's device {device}",
                    f"{describe(x)} on {x.device}",
                    "Put it on the key's device.",
                )
            ) from e
    if isinstance(x, bool) or not isinstance(x, kinds):
        kind = "an int or integer tensor" if integer else "a number or tensor"
        raise TypeError(
            msg(f"random.{api}", f"{name} must be {kind}", describe(x), "E.g. 0.5 or a tensor.")
        )
    try:
        return torch.tensor(x, dtype=dtype, device=device)
    except (OverflowError, RuntimeError) as e:
        info = torch.finfo(dtype) if dtype.is_floating_point else torch.iinfo(dtype)
        raise ValueError(
            msg(
                f"random.{api}",
                f"{name} must be representable in {dtype}",
                describe(x),
                f"Pass a value within [{info.min:.6g}, {info.max:.6g}].",
            )
        ) from e


def check_broadcast(api: str, shape: tuple[int, ...], *params: torch.Tensor) -> None:
    try:
        full = tuple(torch.broadcast_shapes(shape, *(p.shape for p in params)))  # type: ignore[no-untyped-call]
    except RuntimeError:
        full = None
    if full != shape:
        shapes = ", ".join(str(tuple(p.shape)) for p in params)
        raise ValueError(
            msg(
                f"random.{api}",
                f"parameter shapes must broadcast to shape {shape}",
                f"parameter shapes {shapes}",
                "Pass shape=None to use the parameters' broadcast shape.",
            )
        )


def eager(*xs: object) -> bool:
    """Values can be inspected: plain numbers, or tensors outside any transform or compile."""
    tensors = [x for x in xs if isinstance(x, torch.Tensor)]
    return not tensors or top_level(tensors)


def check_order(api: str, lo: object, hi: object, names: str, *, strict: bool = False) -> None:
    if isinstance(lo, torch.Tensor) or isinstance(hi, torch.Tensor):
        if not eager(lo, hi):
            return
        lo_t, hi_t = torch.as_tensor(lo), torch.as_tensor(hi)
        if lo_t.device.type == "meta" or hi_t.device.type == "meta":
            return
        ok = (lo_t < hi_t) if strict else (lo_t <= hi_t)  # NaN fails both
        bad = not bool(ok.all())
    else:
        bad = not (lo < hi if strict else lo <= hi)  # type: ignore[operator]
    if bad:
        rel = "<" if strict else "<="
        a, b = names.split(",")
        raise ValueError(
            msg(
                f"random.{api}",
                f"{a} {rel} {b} is required",
                f"{a}={lo!r}, {b}={hi!r}",
                f"Swap or fix the bounds so that {a} {rel} {b}.",
            )
        )


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _allocation_failed(e: BaseException) -> bool:
    """torch's out-of-memory errors: ``torch.OutOfMemoryError`` (CUDA and others) and the
    CPU allocator's plain ``RuntimeError``."""
    text = str(e)
    return isinstance(e, torch.OutOfMemoryError) or (
        "can't allocate memory" in text or "out of memory" in text.lower()
    )


def memory_errors(api: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Turn torch's out-of-memory errors inside a sampler into a ``ValueError`` in the
    contract's form (a shape torch can index may still be too large for the device).
    Nothing changes while compiling, where the wrapper is traced through."""

    def wrap(f: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(f)
        def sampler(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            if torch.compiler.is_compiling():
                return f(*args, **kwargs)
            try:
                return f(*args, **kwargs)
            except RuntimeError as e:
                if not _allocation_failed(e):
                    raise
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise ValueError(
                    msg(
                        f"random.{api}",
                        "the draw must fit in the device's memory",
                        f"a request torch could not allocate ({first[:200]})",
                        _SIZE_FIX,
                    )
                ) from e

        return sampler

    return wrap
