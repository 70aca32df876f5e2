"""The compiled route of eager ``ftx.random.normal``: one kernel per dtype and device.

Eager ``normal`` is a few hundred elementwise tensor ops (Threefry's 20 rounds in
int32, the uniform, XLA's ``erf_inv`` with its fused multiply-adds), each a pass over
memory: about 27x ``torch.randn`` on 2**20 floats. Here the same tensor program,
``draw(key, (n,), dtype)``, is compiled once with ``torch.compile(dynamic=True,
fullgraph=True)``: Inductor fuses it into one loop and lowers ``prims.fma`` to a
hardware fma, so the numbers are the eager route's bit for bit (the fmas there are
``torch.addcmul`` or the exact emulation; both round once).

Policy (``ftx.random.normal``'s docstring and docs/random.md say it too):

* Only top-level eager calls (no ``torch.func`` transform, not while compiling) for
  float32/float64 on CPU, with ``torch_compat.RANDOM_COMPILED`` on (off with
  ``FTX_SLOW_ROUTES=1``, and on torch versions where ``ftx.jit``'s direct route is off).
* The second draw of at least ``MIN_NUMEL`` elements of a dtype in a process compiles
  (so a one-off draw never pays a compile); the compile runs on that call.
* Shapes are symbolic: one compile serves every size. Later calls check the cached
  entry's guards and run its code directly; when no entry passes (another grad mode,
  a changed global setting, ``torch._dynamo.reset()``), the draw runs eagerly: this
  route never recompiles.
* A failed compile (no C++ compiler, an Inductor error) falls back to the eager route
  for good, silently. One thread compiles at a time; others run eagerly meanwhile.
"""

from __future__ import annotations

import math
import threading
import types
from collections.abc import Callable
from typing import Any

import torch

from .._internal import torch_compat as _tc

MIN_NUMEL = 1 << 16  # draws at least this large count toward compiling
COMPILE_ON = 2  # the how-manieth such draw (per dtype) compiles

_DTYPES = (torch.float32, torch.float64)
_READY, _FAILED = -1, -2

_lock = threading.Lock()
_state: dict[tuple[torch.dtype, str], int] = {}  # large eager draws so far, or _READY/_FAILED
_compiled: list[Callable[..., Any]] = []
_runners: dict[types.CodeType, Callable[..., Any] | None] = {}
_draw: Callable[[torch.Tensor, tuple[int, ...], torch.dtype], torch.Tensor] | None = None


def register(draw: Callable[[torch.Tensor, tuple[int, ...], torch.dtype], torch.Tensor]) -> None:
    """Set the eager draw (``ftx.random``'s ``_normal_draw``) that the kernel compiles."""
    global _draw
    _draw = draw


def _kernel(key: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor:
    assert _draw is not None
    return _draw(key, (n,), dtype)


def reset() -> None:
    """Forget every compiled kernel and count (for tests)."""
    with _lock:
        _state.clear()
        _compiled.clear()
        _runners.clear()


def _runner(ecode: types.CodeType) -> Callable[..., Any] | None:
    if ecode not in _runners:
        whole = ecode.co_freevars == () and not any(
            name.startswith("__resume") for name in ecode.co_names
        )
        _runners[ecode] = (
            types.FunctionType(ecode, _kernel.__globals__, "_kernel") if whole else None
        )
    return _runners[ecode]


def _run_cached(key: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor | None:
    """The compiled entry whose guards pass, run directly; ``None`` when none does."""
    loc = {"key": key, "n": n, "dtype": dtype}
    for entry in _tc.cache_entries(_kernel.__code__):
        ecode, guards = entry.code, entry.guard_manager
        if ecode is None or isinstance(guards, _tc.DeletedGuardManager):
            continue
        if guards.check(loc):
            run = _runner(ecode)
            return None if run is None else run(key, n, dtype)
    return None


def _compile(key: torch.Tensor, n: int, dtype: torch.dtype) -> torch.Tensor | None:
    """Compile the kernel (once per process) and draw with it; ``None`` on failure."""
    try:
        if not _compiled:
            _compiled.append(torch.compile(_kernel, dynamic=True, fullgraph=True))
        out = _compiled[0](key, n, dtype)
    except Exception:  # no C++ compiler, an Inductor or dynamo error: stay eager
        return None
    return out if isinstance(out, torch.Tensor) else None


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
    """``draw(key, shape, dtype)`` through the compiled kernel, or ``None``: the caller
    then runs the eager route (same numbers)."""
    if not _tc.RANDOM_COMPILED or dtype not in _DTYPES or key.device.type != "cpu":
        return None
    n = math.prod(shape)
    if n < 2 or n > 1 << 32 or not _tc.top_level([key]):
        return None
    slot = (dtype, str(key.device))
    count = _state.get(slot, 0)
    if count == _FAILED:
        return None
    k = key.detach().contiguous()
    with torch.no_grad():
        if count == _READY:
            out = _run_cached(k, n, dtype)
            return None if out is None else out.reshape(shape)
        if n < MIN_NUMEL or _tc.compile_stance() != "default":
            return None
        if count + 1 < COMPILE_ON:
            _state[slot] = count + 1
            return None
        if not _lock.acquire(blocking=False):  # another thread is compiling
            return None
        try:
            if _state.get(slot, 0) in (_READY, _FAILED):
                return None
            out = _compile(k, n, dtype)
            _state[slot] = _FAILED if out is None else _READY
        finally:
            _lock.release()
    return None if out is None else out.reshape(shape)
