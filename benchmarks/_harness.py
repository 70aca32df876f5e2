"""Case registry, agreement check and timing for ``python -m benchmarks``.

A *case* measures one computation done several ways. It has a ``setup`` that
builds the shared inputs once (on the requested device, at the quick or full
size) and several *implementations*. Each implementation's ``make(inputs)``
does the per-implementation preparation (building a transformed function,
converting inputs to JAX arrays, creating an optimizer) and returns a
zero-argument callable: the thing that is timed. The first implementation, or
the one named by ``baseline``, is the case's baseline; every other one is
reported as a ratio to it.

Run order for one case: ``setup`` once; for each implementation, ``make``,
then one first call (timed alone: for compiled implementations this is the
compilation time), whose result is converted to float64 NumPy arrays and
compared with the baseline's; then a few warm-up calls. Then the timing,
``torch.utils.benchmark.Timer.blocked_autorange``, in interleaved rounds
(every implementation once per round) so that load changes on a shared
machine hit all implementations alike; the median and IQR are over all the
per-call times of all rounds. JAX callables are wrapped
in ``jax.block_until_ready`` so that asynchronous dispatch is timed whole.
"""

from __future__ import annotations

import importlib
import math
import re
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils import benchmark as tbench

# ---------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Config:
    """What a run asks for: device, size and timing budget."""

    device: str = "cpu"
    quick: bool = False
    compile: bool = True  # run torch.compile implementations (off by default with --quick)
    min_run_time: float = 0.5  # seconds per implementation for blocked_autorange, all rounds
    warmup: int = 2  # calls after the first one, before timing
    rounds: int = 3  # interleaved timing rounds over the case's implementations


@dataclass(frozen=True)
class Impl:
    """One way to compute a case's result.

    Attributes:
        name: label in the table ("ftx", "torch.func", "jax.jit", ...).
        make: ``make(inputs) -> fn``; ``fn()`` is timed and returns the result.
        requires: importable modules ("jax", "optax") or ftx attributes
            ("ftx.random.normal") this implementation needs; missing ones make
            it "skipped", never a crash.
        compiled: the first call compiles (``torch.compile``/``ftx.jit``); its
            time is reported as compile time. Skipped by ``--quick`` unless
            ``--compile`` is given.
        jax: the callable returns JAX arrays; timing blocks until they are ready.
        check: compare this implementation's result with a reference result.
        ref: the implementation whose result is the reference (default: the
            baseline); it must come earlier in the case. When the reference
            did not run (skipped), no comparison is made.
    """

    name: str
    make: Callable[[Any], Callable[[], Any]]
    requires: tuple[str, ...] = ()
    compiled: bool = False
    jax: bool = False
    check: bool = True
    ref: str | None = None


@dataclass
class Case:
    """A named computation with several implementations measured in one process."""

    name: str
    group: str
    setup: Callable[[Config], Any]
    impls: list[Impl] = field(default_factory=list)
    baseline: str | None = None
    rtol: float = 1e-4
    atol: float = 1e-5
    description: str = ""
    requires: tuple[str, ...] = ()
    full_only: bool = False  # too slow for --quick: listed as skipped there

    @property
    def full_name(self) -> str:
        return f"{self.group}/{self.name}"

    @property
    def baseline_name(self) -> str:
        if self.baseline is not None:
            return self.baseline
        return self.impls[0].name

    def impl(
        self,
        name: str,
        *,
        requires: Sequence[str] = (),
        compiled: bool = False,
        jax: bool = False,
        check: bool = True,
        ref: str | None = None,
    ) -> Callable[[Callable[[Any], Callable[[], Any]]], Callable[[Any], Callable[[], Any]]]:
        """Decorator adding an implementation: ``@case.impl("ftx") def make(inputs): ...``."""

        def deco(make: Callable[[Any], Callable[[], Any]]) -> Callable[[Any], Callable[[], Any]]:
            if any(i.name == name for i in self.impls):
                raise ValueError(f"benchmarks: case {self.full_name} already has impl {name!r}")
            self.impls.append(Impl(name, make, tuple(requires), compiled, jax, check, ref))
            return make

        return deco


REGISTRY: dict[str, Case] = {}


def case(
    group: str,
    name: str,
    setup: Callable[[Config], Any],
    *,
    baseline: str | None = None,
    rtol: float = 1e-4,
    atol: float = 1e-5,
    description: str = "",
    requires: Sequence[str] = (),
    full_only: bool = False,
) -> Case:
    """Create a case and add it to the registry; add implementations with ``@c.impl``.

    Args:
        group: the case module's group ("wrapper", "train_step", ...).
        name: the case's name inside its group; the full name is ``group/name``.
        setup: ``setup(cfg) -> inputs``, run once per run; read ``cfg.quick`` and
            ``cfg.device`` to size and place the inputs.
        baseline: the implementation the others are compared with and divided
            by (default: the first one added).
        rtol, atol: tolerances of the agreement check (float64 comparison).
        description: a line for the JSON file.
        requires: modules or ftx attributes the whole case needs.
        full_only: skip the case under ``--quick`` (it cannot be made small).
    """
    c = Case(name, group, setup, [], baseline, rtol, atol, description, tuple(requires),
             full_only)
    if c.full_name in REGISTRY:
        raise ValueError(f"benchmarks: case {c.full_name} is registered twice")
    REGISTRY[c.full_name] = c
    return c


def select(cases: Iterable[Case], pattern: str | None) -> list[Case]:
    """Cases whose ``group/name`` matches the regular expression ``pattern`` (search)."""
    if not pattern:
        return list(cases)
    rx = re.compile(pattern)
    return [c for c in cases if rx.search(c.full_name)]


# ---------------------------------------------------------------- results


@dataclass
class Result:
    """One row of the report."""

    case: str
    group: str
    impl: str
    baseline: str
    status: str  # "ok", "skipped: ...", "mismatch: ...", "error: ..."
    median_s: float | None = None
    iqr_s: float | None = None
    min_s: float | None = None  # fastest block: the least disturbed by a busy machine
    runs: int = 0
    first_call_s: float | None = None
    compiled: bool = False
    ratio: float | None = None
    delta_s: float | None = None  # median minus the baseline's median (wrapper cost)
    max_abs_diff: float | None = None
    description: str = ""
    notes: list[str] = field(default_factory=list)  # ftx warnings from make and the first call

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def failed(self) -> bool:
        return self.status.startswith(("mismatch", "error"))


# ---------------------------------------------------------------- requirements


def missing_requirement(req: str) -> str | None:
    """Why ``req`` ("jax", "ftx.random.normal") is unavailable, or None when it is there."""
    parts = req.split(".")
    try:
        obj: Any = importlib.import_module(parts[0])
    except ImportError:
        return f"needs {parts[0]}"
    for i, attr in enumerate(parts[1:], start=1):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            try:
                obj = importlib.import_module(".".join(parts[: i + 1]))
            except ImportError:
                return "not implemented" if parts[0] == "ftx" else f"needs {req}"
    return None


def _jax_backend_problem(device: str) -> str | None:
    if device == "cpu":
        return None
    import jax

    if jax.default_backend() == "cpu":
        return "jax has no GPU backend here"
    # JAX multiplies float32 matrices in TF32 on NVIDIA GPUs by default; torch does not
    # (torch.backends.cuda.matmul.allow_tf32 is False). Compare like with like: full float32.
    jax.config.update("jax_default_matmul_precision", "highest")
    return None


# ---------------------------------------------------------------- comparison


def to_numpy_leaves(tree: Any) -> list[np.ndarray]:
    """Flatten a result (tensors, JAX arrays, numbers, nested dict/list/tuple) to float64 arrays.

    Nested dicts are flattened to dotted state-dict paths and walked in sorted
    path order, so that a torch state dict, an ftx parameter tree and a JAX
    dict of the same parameters line up; ``None`` is an empty subtree.
    """
    out: list[np.ndarray] = []

    def flat_items(d: dict[Any, Any], prefix: str) -> list[tuple[str, Any]]:
        items: list[tuple[str, Any]] = []
        for k, v in d.items():
            path = f"{prefix}{k}"
            if isinstance(v, dict):
                items.extend(flat_items(v, path + "."))
            else:
                items.append((path, v))
        return items

    def walk(x: Any) -> None:
        if x is None:
            return
        if isinstance(x, dict):
            for _, v in sorted(flat_items(x, ""), key=lambda kv: kv[0]):
                walk(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                walk(v)
        elif isinstance(x, torch.Tensor):
            t = x.detach()
            if t.is_complex():
                t = torch.view_as_real(t)
            out.append(t.to("cpu", torch.float64).numpy().copy())
        elif isinstance(x, (int, float, bool, np.number)):
            out.append(np.asarray(x, dtype=np.float64))
        else:  # JAX arrays and other array-likes
            out.append(np.array(x, dtype=np.float64, copy=True))

    walk(tree)
    return out


def compare(
    ref: list[np.ndarray], got: list[np.ndarray], rtol: float, atol: float
) -> tuple[str | None, float]:
    """``(problem or None, max abs difference)`` between two flattened results."""
    if len(ref) != len(got):
        return f"{len(got)} leaves against the reference's {len(ref)}", math.inf
    worst = 0.0
    for i, (a, b) in enumerate(zip(ref, got)):
        if a.shape != b.shape:
            return f"leaf {i} has shape {b.shape}, reference {a.shape}", math.inf
        if a.size == 0:
            continue
        with np.errstate(invalid="ignore"):  # inf - inf: equal infinities differ by 0
            d = np.where(a == b, 0.0, np.abs(a - b))
        diff = float(np.nanmax(d)) if not np.isnan(d).all() else math.nan
        worst = max(worst, diff)
        if not np.allclose(b, a, rtol=rtol, atol=atol, equal_nan=True):
            return f"leaf {i} differs by {diff:.3g} (rtol={rtol}, atol={atol})", diff
    return None, worst


# ---------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _wrap_jax(fn: Callable[[], Any]) -> Callable[[], Any]:
    import jax

    def run() -> Any:
        return jax.block_until_ready(fn())

    return run


def time_fn(fn: Callable[[], Any], min_run_time: float) -> tbench.Measurement:
    """``blocked_autorange`` on ``fn()`` with torch's current thread count (it syncs CUDA)."""
    timer = tbench.Timer(
        stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()
    )
    return timer.blocked_autorange(min_run_time=min_run_time)


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}"[:160]


def _ftx_notes(caught: Sequence[warnings.WarningMessage]) -> list[str]:
    """ftx's own warnings (e.g. ``ftx.jit`` falling back to eager), first line, deduplicated."""
    notes: list[str] = []
    for w in caught:
        text = str(w.message).strip().splitlines()[0][:200] if str(w.message).strip() else ""
        if text.startswith("ftx.") and text not in notes:
            notes.append(text)
    return notes


def _not_implemented(exc: BaseException) -> bool:
    return isinstance(exc, NotImplementedError)


def run_case(
    c: Case,
    cfg: Config,
    on_impl: Callable[[str], None] | None = None,
) -> list[Result]:
    """Set the case up once, check every implementation against the baseline, time them."""

    def row(impl: Impl, status: str, **kw: Any) -> Result:
        return Result(
            c.full_name, c.group, impl.name, c.baseline_name, status,
            compiled=impl.compiled, description=c.description, **kw,
        )

    results: list[Result] = []
    case_problem = next((p for p in map(missing_requirement, c.requires) if p), None)
    if case_problem is None and c.full_only and cfg.quick:
        case_problem = "full run only (too slow for --quick)"
    inputs: Any = None
    if case_problem is None:
        try:
            inputs = c.setup(cfg)
        except Exception as exc:
            case_problem = (
                "not implemented" if _not_implemented(exc) else f"error in setup: {_short(exc)}"
            )
            if not _not_implemented(exc):
                traceback.print_exc()
    if case_problem is not None:
        status = case_problem if case_problem.startswith("error") else f"skipped: {case_problem}"
        for impl in c.impls:
            if on_impl:
                on_impl(impl.name)
            results.append(row(impl, status))
        return results

    seen: dict[str, list[np.ndarray]] = {}
    prepared: list[tuple[Impl, Callable[[], Any], float, float | None]] = []
    ordered = sorted(c.impls, key=lambda i: i.name != c.baseline_name)  # baseline first
    for impl in ordered:
        if on_impl:
            on_impl(impl.name)
        problem = next((p for p in map(missing_requirement, impl.requires) if p), None)
        if problem is None and impl.jax:
            problem = _jax_backend_problem(cfg.device)
        if problem is None and impl.compiled and not impl.jax and not cfg.compile:
            problem = "torch.compile implementations are off (--quick or --no-compile)"
        if problem is not None:
            results.append(row(impl, f"skipped: {problem}"))
            continue
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fn = impl.make(inputs)
                if impl.jax:
                    fn = _wrap_jax(fn)
                _sync(cfg.device)
                t0 = time.perf_counter()
                first = fn()
                _sync(cfg.device)
                first_s = time.perf_counter() - t0
            got = to_numpy_leaves(first)
            del first
            notes = _ftx_notes(caught)
        except Exception as exc:
            if _not_implemented(exc):
                results.append(row(impl, "skipped: not implemented"))
            else:
                traceback.print_exc()
                results.append(row(impl, f"error: {_short(exc)}"))
            continue
        diff: float | None = None
        seen[impl.name] = got
        ref = seen.get(impl.ref or c.baseline_name)
        if impl.name != c.baseline_name and ref is not None and impl.check:
            problem, diff = compare(ref, got, c.rtol, c.atol)
            if problem is not None:
                results.append(row(impl, f"mismatch: {problem}", max_abs_diff=diff))
                continue
        try:
            # a slow eager call needs one warm-up at most; compiled ones get them all
            for _ in range(cfg.warmup if (impl.compiled or first_s < 0.1) else 1):
                fn()
        except Exception as exc:
            traceback.print_exc()
            results.append(row(impl, f"error: {_short(exc)}"))
            continue
        prepared.append((impl, fn, first_s, diff))
        results.append(row(impl, "ok", notes=notes))

    # Timing, interleaved: each round times every implementation once, so that a
    # change in the machine's load during the case hits all of them alike.
    times: dict[str, list[float]] = {impl.name: [] for impl, *_ in prepared}
    for _ in range(max(1, cfg.rounds)):
        for impl, fn, _first, _diff in prepared:
            m = time_fn(fn, cfg.min_run_time / max(1, cfg.rounds))
            times[impl.name].extend(float(t) for t in m.times)
    medians = {k: float(np.median(v)) for k, v in times.items()}
    base_median = medians.get(c.baseline_name)
    by_name = {r.impl: r for r in results}
    for impl, _fn, first_s, diff in prepared:
        r = by_name[impl.name]
        ts = times[impl.name]
        r.median_s = medians[impl.name]
        r.iqr_s = float(np.percentile(ts, 75) - np.percentile(ts, 25))
        r.min_s = float(min(ts))
        r.runs = len(ts)
        r.first_call_s = first_s
        r.max_abs_diff = diff
        r.ratio = r.median_s / base_median if base_median else None
        r.delta_s = r.median_s - base_median if base_median else None
    return results


def run_cases(
    cases: Sequence[Case],
    cfg: Config,
    progress: bool = True,
) -> list[Result]:
    """Run each case in turn, with a tqdm progress bar over implementations."""
    from tqdm import tqdm

    total = sum(len(c.impls) for c in cases)
    results: list[Result] = []
    with tqdm(total=total, disable=not progress, unit="impl", dynamic_ncols=True) as bar:
        for c in cases:

            def tick(name: str, c: Case = c) -> None:
                bar.set_description(f"{c.full_name} [{name}]"[:60])
                bar.update(1)

            results.extend(run_case(c, cfg, on_impl=tick))
    return results
