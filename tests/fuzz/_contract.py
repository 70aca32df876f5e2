"""The contract every public call keeps on bad input (DESIGN.md 1.5 and 1.3).

``check(case, srcs)`` evaluates the argument expressions, snapshots every tensor
and container in them, calls the API under a time limit and then asserts:

(a) it returned, or raised ``TypeError`` / ``ValueError`` (a user callable's own
    exception passes through unchanged);
(b) the message reads ``ftx.<api>: <required>, got <came>. <fix>``;
(c) the inputs are unchanged: values, ``_version``, ``requires_grad``, ``.grad``,
    containers' contents;
(d) no global state leaked: grad mode, default dtype and device, the functorch
    interpreter stack, inference mode, the recursion limit;
(e) for file APIs, a failed call changed no file;
(f) it finished within ``TIME_LIMIT`` seconds.

A broken promise is a :class:`Violation` (an ``AssertionError``), unless
``_allow.allowed`` documents it. With ``FTX_FUZZ_RECORD=<file>`` violations are
appended to that JSON-lines file instead of failing (``tests/fuzz/report.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import signal
import sys
import traceback
from collections.abc import Iterator
from typing import Any

import torch

from . import _allow
from ._values import NS, FuzzUserError, strategy

TIME_LIMIT = 10.0
MESSAGE = re.compile(r"^ftx\.[\w.]+: .+, got .+\.", re.S)
FTX_DIR = os.path.dirname(os.path.abspath(sys.modules["ftx"].__file__ or ""))
RECORD = os.environ.get("FTX_FUZZ_RECORD")


class Violation(AssertionError):
    pass


class FuzzTimeout(BaseException):
    """Raised by the alarm: a ``BaseException`` so that ``except Exception`` can't eat it."""


@dataclasses.dataclass(frozen=True)
class Api:
    """One public call: ``call`` is an expression over the slot names.

    Attributes:
        name: the public name (``"grad"``, ``"tree.map"``).
        call: e.g. ``"ftx.grad(fun, argnums=argnums)(x)"``.
        slots: slot name -> (good expression, bad strategy, bad pool), from :func:`S`.
        owner: the file that implements it (for the report).
        files: check that a failed call changes no file in the example's folder.
        mutable: slots the call may legitimately change (``load_params``'s module).
        passthrough: slots handed to the user's function unvalidated (``jit``'s arguments):
            an error the function raises on them is the function's.
        good_raises: the exception class name the good call raises by design
            (``distributed.initialize`` outside ``torchrun``); ``None``: it succeeds.
    """

    name: str
    call: str
    slots: dict[str, tuple[str, Any, tuple[str, ...]]]
    owner: str
    files: bool = False
    mutable: tuple[str, ...] = ()
    passthrough: tuple[str, ...] = ()
    good_raises: str | None = None


def S(good: str, *pools: tuple[str, ...], gen: tuple[Any, ...] = ()) -> tuple[str, Any, Any]:
    """A slot: its good expression, the strategy of bad ones (pools merged, deduplicated) and
    the merged pool itself."""
    pool = tuple(dict.fromkeys(v for p in pools for v in p))
    return good, strategy(pool, *gen), pool


# ------------------------------------------------------------------------ snapshots


def _tensor_state(t: torch.Tensor) -> tuple[Any, ...]:
    try:
        version = t._version
    except RuntimeError:  # inference tensors have no version counter
        version = None
    g = t.grad if t.is_leaf else None
    return (
        tuple(t.shape), t.dtype, t.device, t.requires_grad, version,
        None if g is None else (id(g), g._version),
    )


def _values(t: torch.Tensor) -> torch.Tensor | None:
    if t.is_meta or t.dtype in (torch.qint8, torch.quint8, torch.qint32):
        return None
    try:
        v = t.detach()
        if v.is_sparse:
            v = v.to_dense()
        if v.names and any(n is not None for n in v.names):
            v = v.rename(None)
        return v.clone()
    except Exception:
        return None


def _same_values(a: torch.Tensor, b: torch.Tensor) -> bool:
    try:
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if torch.equal(a, b):
            return True
        if a.is_floating_point() or a.is_complex():
            na, nb = a.isnan(), b.isnan()
            return torch.equal(na, nb) and torch.equal(a[~na], b[~nb])
        return False
    except Exception:
        return True  # a dtype torch cannot compare: the version counter still guards it


def _children(x: Any) -> list[tuple[str, Any]] | None:
    if isinstance(x, dict):
        return [(repr(k), v) for k, v in list(x.items())]
    if isinstance(x, list | tuple):
        return [(str(i), v) for i, v in enumerate(x)]
    if isinstance(x, set | frozenset):
        return [("*", v) for v in x]
    if isinstance(x, torch.nn.Module):
        return [(k, v) for k, v in x.state_dict(keep_vars=True).items()]
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return [(f.name, getattr(x, f.name, None)) for f in dataclasses.fields(x)]
    return None


@dataclasses.dataclass
class Snapshot:
    tensors: list[tuple[str, torch.Tensor, tuple[Any, ...], torch.Tensor | None]]
    containers: list[tuple[str, Any, tuple[Any, ...]]]

    @classmethod
    def of(cls, values: dict[str, Any]) -> Snapshot:
        tensors: list[Any] = []
        containers: list[Any] = []
        seen: set[int] = set()
        stack = [(name, v) for name, v in values.items()]
        while stack:
            path, x = stack.pop()
            if id(x) in seen:
                continue
            seen.add(id(x))
            if isinstance(x, torch.Tensor):
                tensors.append((path, x, _tensor_state(x), _values(x)))
                if x.is_leaf and x.grad is not None:
                    g = x.grad
                    tensors.append((path + ".grad", g, _tensor_state(g), _values(g)))
                continue
            kids = _children(x)
            if kids is None:
                continue
            if isinstance(x, list | dict | set):
                containers.append((path, x, tuple((k, id(v)) for k, v in kids)))
            stack.extend((f"{path}[{k}]", v) for k, v in kids)
        return cls(tensors, containers)

    def changes(self) -> list[str]:
        out = []
        for path, t, state, vals in self.tensors:
            now = _tensor_state(t)
            if now != state:
                fields = ("shape", "dtype", "device", "requires_grad", "_version", ".grad")
                diff = [f for f, a, b in zip(fields, state, now) if a != b]
                out.append(f"{path}: {', '.join(diff)} changed ({state} -> {now})")
            elif vals is not None:
                cur = _values(t)
                if cur is not None and not _same_values(vals, cur):
                    out.append(f"{path}: values changed")
        for path, c, kids in self.containers:
            kids_now = _children(c) or []
            if tuple((k, id(v)) for k, v in kids_now) != kids:
                out.append(f"{path}: container {type(c).__name__} changed")
        return out


# --------------------------------------------------------------------- global state


def global_state() -> dict[str, Any]:
    stack = torch._C._functorch.peek_interpreter_stack()
    return {
        "grad_enabled": torch.is_grad_enabled(),
        "default_dtype": torch.get_default_dtype(),
        "default_device": str(torch.get_default_device()),
        "functorch_stack": None if stack is None else repr(stack),
        "inference_mode": torch.is_inference_mode_enabled(),
        "recursion_limit": sys.getrecursionlimit(),
        "anomaly": torch.is_anomaly_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "fwd_grad": torch._C._is_fwd_grad_enabled(),
    }


def restore_state(state: dict[str, Any]) -> None:
    torch.set_grad_enabled(state["grad_enabled"])
    torch.set_default_dtype(state["default_dtype"])
    torch.set_default_device(None if state["default_device"] == "cpu" else
                             state["default_device"])
    sys.setrecursionlimit(state["recursion_limit"])
    torch.set_anomaly_enabled(state["anomaly"])
    torch.use_deterministic_algorithms(state["deterministic"])
    torch._C._set_fwd_grad_enabled(state["fwd_grad"])


# --------------------------------------------------------------------------- files


def files_state(folder: str | None) -> dict[str, str]:
    if folder is None or not os.path.isdir(folder):
        return {}
    out = {}
    for root, dirs, names in os.walk(folder):
        for n in names + dirs:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out[p] = hashlib.sha1(f.read()).hexdigest()
            else:
                out[p] = "link" if os.path.islink(p) else "dir/special"
    return out


# ---------------------------------------------------------------------------- run


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def fire(signum: int, frame: Any) -> None:
        raise FuzzTimeout(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


_CODE: dict[str, Any] = {}


def evaluate(src: str, scope: dict[str, Any] | None = None) -> Any:
    code = _CODE.get(src)
    if code is None:
        code = _CODE[src] = compile(src, f"<fuzz: {src[:40]}>", "eval")
    return eval(code, {**NS, **scope} if scope else NS)


def where(exc: BaseException) -> str:
    """``file:line`` of the innermost ftx frame of ``exc``'s traceback, else the raise site."""
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if os.path.abspath(f.filename).startswith(FTX_DIR + os.sep)]
    f = inside[-1] if inside else (frames[-1] if frames else None)
    if f is None:
        return "?"
    name = os.path.relpath(f.filename, os.path.dirname(FTX_DIR)) if inside else \
        os.path.basename(f.filename)
    return f"{name}:{f.lineno}"


def owner_of(exc: BaseException | None, api: Api) -> str:
    if exc is None:
        return api.owner
    frames = traceback.extract_tb(exc.__traceback__)
    inside = [f for f in frames if os.path.abspath(f.filename).startswith(FTX_DIR + os.sep)]
    if not inside:
        return api.owner
    return os.path.relpath(inside[-1].filename, os.path.dirname(FTX_DIR))


def recursing(exc: BaseException | None) -> str | None:
    """For a RecursionError: the ftx file with the most frames in the traceback."""
    if not isinstance(exc, RecursionError):
        return None
    counts: dict[str, int] = {}
    for f in traceback.extract_tb(exc.__traceback__):
        path = os.path.abspath(f.filename)
        if path.startswith(FTX_DIR + os.sep):
            rel = os.path.relpath(path, os.path.dirname(FTX_DIR))
            counts[rel] = counts.get(rel, 0) + 1
    return max(counts, key=lambda k: counts[k]) if counts else None


def repro(api: Api, srcs: dict[str, str]) -> str:
    assigns = "; ".join(f"{k} = {v}" for k, v in srcs.items())
    return f"{assigns}; {api.call}" if assigns else api.call


def check(api: Api, srcs: dict[str, str], slot: str, folder: str | None = None) -> None:
    """Run one example; raise :class:`Violation` (or record it) if the contract breaks."""
    values = {k: evaluate(v) for k, v in srcs.items()}
    snap = Snapshot.of({k: v for k, v in values.items() if k not in api.mutable})
    before = global_state()
    disk = files_state(folder) if api.files else None
    exc: BaseException | None = None
    try:
        with time_limit(TIME_LIMIT):
            evaluate(api.call, dict(values))
    except FuzzTimeout as e:
        exc = e
    except Exception as e:
        exc = e
    problems: list[tuple[str, str]] = []
    if isinstance(exc, FuzzTimeout):
        problems.append(("timeout", f"no answer within {TIME_LIMIT} s"))
    elif exc is not None and type(exc) is not FuzzUserError:
        text = str(exc)
        if not isinstance(exc, TypeError | ValueError):
            problems.append(("class", f"{type(exc).__name__}: {text[:300]}"))
        elif not MESSAGE.match(text):
            problems.append(("message", f"{type(exc).__name__}: {text[:300]}"))
    after = global_state()
    if after != before:
        diff = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        problems.append(("state", f"global state leaked: {diff}"))
        restore_state(before)
    for change in snap.changes():
        problems.append(("mutated", change))
    if disk is not None and exc is not None:
        now = files_state(folder)
        if now != disk:
            diff = sorted(set(now.items()) ^ set(disk.items()))
            problems.append(("files", f"a failed call changed files: {diff[:4]}"))
    problems = [p for p in problems
                if not _allow.allowed(api.name, slot, p[0], exc, api.passthrough)]
    if not problems:
        return
    record = {
        "api": api.name, "slot": slot, "value": srcs[slot], "owner": owner_of(
            exc if problems[0][0] in ("class", "message", "timeout") else None, api),
        "api_owner": api.owner, "kind": problems[0][0], "detail": problems[0][1],
        "exc": None if exc is None else type(exc).__name__,
        "where": None if exc is None else where(exc), "repro": repro(api, srcs),
        "recursing": recursing(exc),
        "all": problems,
    }
    if RECORD:
        with open(RECORD, "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
        return
    lines = [f"ftx.{api.name} broke the bad-input contract ({slot} = {srcs[slot]}):"]
    lines += [f"  [{k}] {d}" for k, d in problems]
    if exc is not None:
        lines.append(f"  raised at {where(exc)}")
    lines.append(f"  repro: {repro(api, srcs)}")
    raise Violation("\n".join(lines)) from exc
