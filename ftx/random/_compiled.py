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
* It compiles once the eager draws of at least ``MIN_NUMEL`` elements of a dtype have
  taken ``COMPILE_AFTER_S`` seconds in the process (the ``FTX_RANDOM_COMPILE_AFTER``
  environment variable, read on each such draw, overrides it; 0 compiles on the first
  large draw). The compile costs seconds (a warm Inductor cache) to tens of seconds (an
  empty one), so a program that draws little (a model's initialisation) never pays it,
  and one that draws a lot pays it once it has spent about as long on eager draws: at
  most about twice the time of the better choice made in hindsight (the ski-rental
  rule). The compile runs on the call that crosses the budget.
* Shapes are symbolic: one compile serves every size. Later calls check the cached
  entry's guards and run its code directly; when no entry passes (another grad mode,
  a changed global setting, ``torch.compiler.reset()``), the draw runs eagerly: this
  route never recompiles.
* A failed compile (no C++ compiler, an Inductor error) falls back to the eager route
  for good, silently. One thread compiles at a time; others run eagerly meanwhile.
"""

from __future__ import annotations

import math
import os
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import torch

from .._internal import torch_compat as _tc

MIN_NUMEL = 1 << 16  # draws at least this large count toward compiling
COMPILE_AFTER_S = 10.0  # seconds of such eager draws (per dtype) before compiling

_DTYPES = (torch.float32, torch.float64)
_READY, _FAILED = -1, -2

_lock = threading.Lock()
# seconds of large eager draws so far, or _READY/_FAILED
_state: dict[tuple[torch.dtype, str], float] = {}
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


def _budget() -> float:
    raw = os.environ.get("FTX_RANDOM_COMPILE_AFTER")
    if raw is None:
        return COMPILE_AFTER_S
    try:
        return max(float(raw), 0.0)
    except ValueError:
        return COMPILE_AFTER_S


def normal(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """``draw(key, shape, dtype)``: through the compiled kernel when it is ready (or the
    eager draws have used up the budget), else eagerly (the same numbers)."""
    assert _draw is not None
    out = _try(key, shape, dtype)
    if out is not None:
        return out
    if not _counts(key, shape, dtype):
        return _draw(key, shape, dtype)
    start = time.perf_counter()
    out = _draw(key, shape, dtype)
    spent = time.perf_counter() - start
    slot = (dtype, str(key.device))  # no lock: a racing thread at worst loses a sum
    count = _state.get(slot, 0.0)
    if count >= 0:
        _state[slot] = count + spent
    return out


def _counts(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> bool:
    """Whether this eager draw counts toward the compile budget."""
    return (
        _tc.RANDOM_COMPILED
        and dtype in _DTYPES
        and key.device.type == "cpu"
        and MIN_NUMEL <= math.prod(shape) <= 1 << 32
        and _state.get((dtype, str(key.device)), 0.0) >= 0
        and _tc.top_level([key])
        and _tc.compile_stance() == "default"
    )


def _try(key: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor | None:
    """The draw through the compiled kernel, or ``None``: the caller then runs the eager
    route (same numbers)."""
    if not _tc.RANDOM_COMPILED or dtype not in _DTYPES or key.device.type != "cpu":
        return None
    n = math.prod(shape)
    if n < 2 or n > 1 << 32:
        return None
    slot = (dtype, str(key.device))
    count = _state.get(slot, 0.0)
    if count == _FAILED or (count != _READY and (n < MIN_NUMEL or count < _budget())):
        return None
    if not _tc.top_level([key]):
        return None
    k = key.detach().contiguous()
    with torch.no_grad():
        if count == _READY:
            out = _run_cached(k, n, dtype)
            return None if out is None else out.reshape(shape)
        if _tc.compile_stance() != "default":
            return None
        if not _lock.acquire(blocking=False):  # another thread is compiling
            return None
        try:
            if _state.get(slot, 0.0) in (_READY, _FAILED):
                return None
            out = _compile(k, n, dtype)
            _state[slot] = _FAILED if out is None else _READY
        finally:
            _lock.release()
    return None if out is None else out.reshape(shape)
