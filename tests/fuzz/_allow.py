"""Violations that are acceptable, each with its reason (documented behaviour).

An entry is a predicate over (api, slot, violation kind, exception). Keep this list
short: every entry is a promise of DESIGN.md 1.5 that ftx does not keep, on purpose.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Callable
from typing import Any

from . import _values

_USER_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_values.py")
# Slots that hold the user's callables (functions, rules, schedules).
CALLABLE_SLOTS = frozenset({"fun", "fwd", "bwd", "rule", "schedule", "f", "is_leaf"})
_ARITY = re.compile(r"^(<lambda>|[\w.]+)\(\)(:| takes| missing| got)")
# Names the fuzz callables (and the modules and builtins the pools pass as functions) report.
_USER_NAMES = frozenset(
    {n for n in dir(_values) if n.startswith(("f_", "fwd_", "bwd_", "jvp_", "sched_"))}
    | {"type", "print", "sin", "Linear", "<lambda>"}
)


_FTX = os.path.dirname(os.path.abspath(sys.modules["ftx"].__file__ or ""))
_NN_MODULES = os.path.join("torch", "nn", "modules") + os.sep


def _user_frame(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path == _USER_FILE or _NN_MODULES in path


def _raised_in_user_code(exc: BaseException | None) -> bool:
    """Whether ``exc`` came out of the user's callable (a fuzz function or an nn.Module):
    a frame of one lies below ftx's innermost frame."""
    if exc is None:
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    last_ftx = max((i for i, f in enumerate(frames)
                    if os.path.abspath(f.filename).startswith(_FTX + os.sep)), default=-1)
    return any(_user_frame(f.filename) for f in frames[last_ftx + 1:])


def _innermost_is_user_code(exc: BaseException | None) -> bool:
    """The exception was raised in the user's function's own frame (by a torch op it called)."""
    if exc is None:
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and _user_frame(frames[-1].filename)


Rule = Callable[[str, str, str, Any], bool]

# (reason, predicate(api, slot, kind, exc))
ALLOWED: list[tuple[str, Rule]] = [
    (
        "io.load documents FileNotFoundError for a path with no file (as open() does); its "
        "message still has the ftx form",
        lambda api, slot, kind, exc: api.startswith("io.load") and kind == "class"
        and type(exc) is FileNotFoundError and str(exc).startswith("ftx.io.load: "),
    ),
    (
        "calling the user's function with the documented arguments: a function of the wrong "
        "arity (or a builtin such as torch.sin given a picograd Var) raises Python's or "
        "torch's own TypeError, exactly as calling it directly would (JAX too)",
        lambda api, slot, kind, exc: kind == "message" and isinstance(exc, TypeError)
        and bool(_ARITY.match(str(exc))) and str(exc).split("(")[0].split(".")[0] in _USER_NAMES,
    ),
    (
        "an exception raised inside the user's own function (e.g. torch refusing .item() on "
        "a batched tensor) propagates unchanged: ftx validated its own arguments, the failure "
        "is the function's (JAX lets tracer errors out of user code the same way)",
        lambda api, slot, kind, exc: kind in ("class", "message") and slot in CALLABLE_SLOTS
        and _raised_in_user_code(exc),
    ),
    (
        "ftx hands the tensors it accepted to the user's function; a torch op in that function "
        "refusing them (sin of a float8 tensor, cos of a sparse one) raises from the function's "
        "own frame, and that error is the function's (JAX lets it through the same way)",
        lambda api, slot, kind, exc: kind in ("class", "message") and _innermost_is_user_code(exc),
    ),
    (
        "is_leaf's result is used as a truth value (as JAX and torch do); a result whose "
        "truth value raises (a meta or many-element tensor) raises its own error",
        lambda api, slot, kind, exc: slot == "is_leaf" and kind in ("class", "message")
        and ("cannot be called on meta tensors" in str(exc)
             or "Boolean value of Tensor" in str(exc)),
    ),
    (
        "ftx.distributed.initialize outside torchrun: joining the group fails and raises the "
        "documented CollectiveError (a RuntimeError) in the ftx message form",
        lambda api, slot, kind, exc: api == "distributed.initialize" and kind == "class"
        and type(exc).__name__ == "CollectiveError"
        and str(exc).startswith("ftx.distributed.initialize: "),
    ),
]


def allowed(api: str, slot: str, kind: str, exc: BaseException | None,
            passthrough: tuple[str, ...] = ()) -> bool:
    if slot in passthrough and kind in ("class", "message") and _raised_in_user_code(exc):
        return True  # PASSTHROUGH below
    return any(rule(api, slot, kind, exc) for _, rule in ALLOWED)


PASSTHROUGH = (
    "arguments an API hands to the user's function as they are (Api.passthrough: jit's "
    "call arguments, checkpoint's): an error the function itself raises on them (torch's "
    "sum refusing float8) is the function's and propagates unchanged"
)
