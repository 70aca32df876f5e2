"""Argument checks for ftx.random, in the contract's message form."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._errors import describe, msg
from ._functorch import top_level

# dtype -> (total bits, explicit mantissa bits), as jnp.finfo reports them.
FLOATS = {
    torch.float16: (16, 10),
    torch.bfloat16: (16, 7),
    torch.float32: (32, 23),
    torch.float64: (64, 52),
}
_KEY_FIX = "Make one with ftx.random.key(seed) or split an existing key."


def check_key(api: str, key: object, *, batched: bool = False) -> torch.Tensor:
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
    return key


def check_shape(api: str, shape: object, name: str = "shape") -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
    if not isinstance(dims, (Sequence, torch.Size)) or isinstance(dims, str):
        raise TypeError(
            msg(f"random.{api}", f"{name} must be a tuple of ints", describe(shape), "E.g. (3, 4).")
        )
    out = []
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int):
            raise TypeError(
                msg(
                    f"random.{api}",
                    f"{name} must be a tuple of ints",
                    describe(shape),
                    "E.g. (3, 4).",
                )
            )
        if d < 0:
            raise ValueError(
                msg(f"random.{api}", f"{name} must have non-negative sizes", repr(shape))
            )
        out.append(d)
    return tuple(out)


def check_float_dtype(api: str, dtype: object) -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(msg(f"random.{api}", "dtype must be a torch.dtype", describe(dtype)))
    if dtype not in FLOATS:
        raise ValueError(
            msg(
                f"random.{api}",
                "dtype must be float16, bfloat16, float32 or float64",
                str(dtype),
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
        if integer and (x.is_floating_point() or x.is_complex()):
            raise TypeError(msg(f"random.{api}", f"{name} must be an integer", describe(x)))
        return x.to(device=device, dtype=dtype)
    if isinstance(x, bool) or not isinstance(x, kinds):
        kind = "an int or integer tensor" if integer else "a number or tensor"
        raise TypeError(msg(f"random.{api}", f"{name} must be {kind}", describe(x)))
    return torch.tensor(x, dtype=dtype, device=device)


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
        bad = bool((lo_t >= hi_t).any()) if strict else bool((lo_t > hi_t).any())
    else:
        bad = bool(lo >= hi) if strict else bool(lo > hi)  # type: ignore[operator]
    if bad:
        rel = "<" if strict else "<="
        a, b = names.split(",")
        raise ValueError(
            msg(f"random.{api}", f"{a} {rel} {b} is required", f"{a}={lo!r}, {b}={hi!r}")
        )
