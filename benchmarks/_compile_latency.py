"""``python -m benchmarks --compile-latency``: what the first call of a compiled function costs.

For every compiled implementation (``ftx.jit``, ``torch.compile``, ``jax.jit``) of the
selected cases, fresh Python processes measure its first call:

* **cold**: a new process with an empty inductor cache (``TORCHINDUCTOR_CACHE_DIR`` set
  to a new temporary folder): what the very first run of a program pays, torch's
  one-time start-up included (loading inductor, probing the C++ compiler, building
  its headers);
* **warm**: a new process re-using the folder the cold one filled: a second run of the
  same program (inductor's FX-graph and AOT-autograd caches hit);
* **own**: a new process with another empty cache folder that first compiles a
  trivial function the same way (``ftx.jit``/``torch.compile``/``jax.jit`` of
  ``x * 2 + 1``; its time is the **start-up** column), then the implementation: the
  function's own compile, broken down by phase from
  dynamo's wall-clock totals (``torch._dynamo.utils.calculate_time_spent``) and
  per-call records (``compilation_time_metrics``): dynamo's tracing, guard building,
  AOT autograd, inductor lowering and code generation, the C++ compiler.

The compile time of a call is its wall time minus the time of a later (compiled) call
(the **per call** column: the median of five later calls, a rough figure; the run-time
benchmarks time calls properly). JAX's cache is in memory only by default, so its rows
have cold and own columns and no warm one.

Each ``ftx.jit`` implementation gets one more row per entry of ``JIT_VARIANTS``,
labelled like ``ftx.jit... [cpp_wrapper off]``: the own compile (and the per-call time)
with those inductor options passed to every ``ftx.jit`` of the process, as a user would
write ``ftx.jit(f, options={"cpp_wrapper": False})``, to weigh the C++ build against the
per-call gain.

The children run ``python -m benchmarks._compile_latency CASE IMPL MODE``; the parent
prints a table and writes ``DIR/compile-latency-<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Labelled variants of every ftx.jit row (own compile only): label -> ftx.jit options.
# ``cpp_wrapper off``: every kernel its own C++ build, Python wrapper code; ``one C++ build``:
# the C++ wrapper and the kernels built as one file at -O3 (ftx.jit's CPU default until it
# added ``cpp_wrapper_build_separate``).
JIT_VARIANTS: dict[str, dict[str, Any]] = {
    "cpp_wrapper off": {"cpp_wrapper": False},
    "one C++ build": {"cpp_wrapper_build_separate": False},
}

PHASES = ("dynamo", "guards", "aot_autograd", "cache_load", "inductor", "cpp_compile", "other")
RESULT_TAG = "COMPILE-LATENCY-RESULT "


# ---------------------------------------------------------------- phase breakdown


def _sum(metrics: Mapping[str, Sequence[float]], key: str) -> float:
    return float(sum(metrics.get(key, ())))


def metrics_delta(
    before: Mapping[str, Sequence[float]], after: Mapping[str, Sequence[float]]
) -> dict[str, list[float]]:
    """The entries ``compilation_time_metrics`` gained between two snapshots (name -> times)."""
    return {k: list(v[len(before.get(k, ())):]) for k, v in after.items()
            if len(v) > len(before.get(k, ()))}


def phases(
    spent: Mapping[str, float], records: Mapping[str, Sequence[float]], compile_s: float
) -> dict[str, float]:
    """Seconds per compiler phase of one compile, from dynamo's wall-clock totals.

    ``spent`` is the change of ``torch._dynamo.utils.calculate_time_spent()`` over the
    compile: main-thread wall time in nested regions, ``entire_frame_compile`` (dynamo's
    whole frame compile) > ``backend_compile`` (AOT autograd and what it calls) >
    ``inductor_compile`` > ``code_gen`` (inductor's code generation and the C++ build).
    ``records`` is the change of ``compilation_time_metrics`` (per-call durations):
    ``build_guards``, and ``compile_file`` (the C++ compiler; several may run at once in
    worker threads, so the C++ phase is the main thread's ``async_compile.wait`` when it
    waited, else the sum of ``compile_file``, and never more than ``code_gen``).

    When AOT autograd's cache hits, no inductor compile runs: the compiled module is
    loaded (``AOTAutogradCache.inductor_load``, the ``cache_load`` phase).

    Returns dynamo (tracing, outside guards), guards, AOT autograd, cache load, inductor
    (lowering, scheduling, code generation), C++ compile and ``other``: the rest of
    ``compile_s`` (ftx's and dynamo's Python around the compile, the first run).
    """
    # A backward graph compiled lazily at the first backward (torch.compile of a module
    # outside a traced grad) is its own region, AOT autograd and inductor outside the frame.
    bwd = spent.get("entire_backward_compile", 0.0)
    frame = spent.get("entire_frame_compile", 0.0) + bwd
    backend = min(spent.get("backend_compile", 0.0) + bwd, frame) if frame else 0.0
    ind = min(spent.get("inductor_compile", 0.0), backend) if backend else 0.0
    code_gen = min(spent.get("code_gen", 0.0), ind) if ind else 0.0
    wait = spent.get("async_compile.wait", 0.0)
    cpp = min(wait if wait > 0 else _sum(records, "compile_file"), code_gen)
    guards = min(_sum(records, "build_guards"), max(0.0, frame - backend))
    load = min(_sum(records, "AOTAutogradCache.inductor_load"), max(0.0, backend - ind))
    out = {
        "dynamo": max(0.0, frame - backend - guards),
        "guards": guards,
        "aot_autograd": max(0.0, backend - ind - load),
        "cache_load": load,
        "inductor": max(0.0, ind - cpp),
        "cpp_compile": cpp,
    }
    out["other"] = max(0.0, compile_s - frame)
    return out


def jax_peer(impl: str, jax_impls: Sequence[str]) -> str | None:
    """The JAX implementation an ftx/torch one is compared with: the same name with
    ``jax.`` for ``ftx.`` when the case has it, else the case's only compiled JAX one."""
    if impl.startswith("ftx."):
        twin = "jax." + impl[len("ftx."):]
        if twin in jax_impls:
            return twin
    return jax_impls[0] if len(jax_impls) == 1 else None


# ---------------------------------------------------------------- child process


def _torch_snapshot() -> tuple[dict[str, list[float]], dict[str, float], dict[str, int]]:
    """Dynamo's per-call records, its wall-clock totals and its counters, copied."""
    from torch._dynamo.utils import calculate_time_spent, compilation_time_metrics, counters

    metrics = {k: list(v) for k, v in compilation_time_metrics.items()}
    spent = {k: float(v) for k, v in calculate_time_spent().items()}
    flat = {
        "unique_graphs": int(counters["stats"]["unique_graphs"]),
        "graph_breaks": int(sum(counters["graph_break"].values())),
        "fxgraph_cache_hit": int(counters["inductor"]["fxgraph_cache_hit"]),
        "fxgraph_cache_miss": int(counters["inductor"]["fxgraph_cache_miss"]),
        "autograd_cache_hit": int(counters["aot_autograd"]["autograd_cache_hit"]),
        "autograd_cache_miss": int(counters["aot_autograd"]["autograd_cache_miss"]),
    }
    return metrics, spent, flat


def spent_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0) > 0}


KEY_RECORDS = ("bytecode_tracing", "build_guards", "create_aot_dispatcher_function",
               "AOTAutogradCache.inductor_load", "PyCodeCache.load_by_key_path",
               "compile_fx_inner", "compile_file", "async_compile.wait",
               "_compile.compile_inner")


def _primer(kind: str) -> float:
    """Compile and run a trivial function the implementation's way; its wall time."""
    t0 = time.perf_counter()
    if kind == "jax":
        import jax
        import jax.numpy as jnp

        jax.block_until_ready(jax.jit(lambda x: x * 2 + 1)(jnp.ones(4)))  # type: ignore[no-untyped-call]
    else:
        import torch

        import ftx

        f = ftx.jit(lambda x: x * 2 + 1) if kind == "ftx" else torch.compile(lambda x: x * 2 + 1)
        f(torch.ones(4))
    return time.perf_counter() - t0


def _use_jit_options(options: Mapping[str, Any]) -> None:
    """Make every later ``ftx.jit(f, ...)`` of this process ``ftx.jit(f, options=...)``
    (the caller's own options win), the primer's and the case's alike."""
    import functools

    import ftx

    base = ftx.jit

    @functools.wraps(base)
    def jit(fun: Any, **kw: Any) -> Any:
        if kw.get("mode") is None:
            kw["options"] = {**options, **(kw.get("options") or {})}
        return base(fun, **kw)

    ftx.jit = jit


def _kind(impl: Any) -> str:
    if impl.jax:
        return "jax"
    return "ftx" if impl.name.startswith("ftx") else "torch"


def child(case_name: str, impl_name: str, mode: str, quick: bool, device: str,
          threads: int | None, jit_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Run in a fresh process: time one implementation's first call and its phases
    (with ``jit_options``, every ``ftx.jit`` of the process gets those options)."""
    t0 = time.perf_counter()
    import torch

    import ftx  # noqa: F401  (its import is part of what a user pays)

    if jit_options:
        _use_jit_options(jit_options)

    from . import _harness
    from .cases import load_all

    if threads is not None:
        torch.set_num_threads(threads)
    load_all()
    import_s = time.perf_counter() - t0
    c = _harness.REGISTRY[case_name]
    impl = next(i for i in c.impls if i.name == impl_name)
    kind = _kind(impl)
    inputs = c.setup(_harness.Config(device=device, quick=quick))
    start_up = _primer(kind) if mode == "own" else None
    before, spent0, flat0 = _torch_snapshot()
    fn = impl.make(inputs)
    if impl.jax:
        fn = _harness._wrap_jax(fn)
    _harness._sync(device)
    t1 = time.perf_counter()
    fn()
    _harness._sync(device)
    first_s = time.perf_counter() - t1
    mid, spent1, flat1 = _torch_snapshot()
    steady: list[float] = []
    for _ in range(5):
        t2 = time.perf_counter()
        fn()
        _harness._sync(device)
        steady.append(time.perf_counter() - t2)
    after, _, flat2 = _torch_snapshot()
    steady_s = sorted(steady)[len(steady) // 2]
    compile_s = max(0.0, first_s - steady_s)
    later = metrics_delta(mid, after)
    records = metrics_delta(before, mid)
    spent = spent_delta(spent0, spent1)
    return {
        "case": case_name,
        "impl": impl_name,
        "mode": mode,
        "kind": kind,
        "import_s": import_s,
        "start_up_s": start_up,
        "first_call_s": first_s,
        "steady_s": steady_s,
        "compile_s": compile_s,
        "phases": None if kind == "jax" else phases(spent, records, compile_s),
        "spent": spent,
        "records": {k: sum(records[k]) for k in KEY_RECORDS if k in records},
        "counters": {k: flat1[k] - flat0[k] for k in flat0},
        "frames_compiled_on_later_calls": len(later.get("_compile.compile_inner", ())),
        "graphs_on_later_calls": flat2["unique_graphs"] - flat1["unique_graphs"],
    }


# ---------------------------------------------------------------- parent


def run_child(case_name: str, impl_name: str, mode: str, cache_dir: str, *, quick: bool,
              device: str, threads: int | None, timeout: float = 1800,
              jit_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One fresh ``python -m benchmarks._compile_latency`` process; its result or error."""
    env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache_dir)
    if threads is not None:
        flags = f"intra_op_parallelism_threads={threads}"
        if threads == 1:
            flags = "--xla_cpu_multi_thread_eigen=false " + flags
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + flags).strip()
    cmd = [sys.executable, "-m", "benchmarks._compile_latency", case_name, impl_name, mode,
           "--device", device]
    if quick:
        cmd.append("--quick")
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if jit_options:
        cmd += ["--jit-options", json.dumps(dict(jit_options))]
    root = Path(__file__).resolve().parents[1]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": case_name, "impl": impl_name, "mode": mode,
                "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith(RESULT_TAG):
            out: dict[str, Any] = json.loads(line[len(RESULT_TAG):])
            out["process_wall_s"] = wall
            return out
    tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    return {"case": case_name, "impl": impl_name, "mode": mode,
            "error": f"exit {proc.returncode}: {tail}"}


def measure(cases: Sequence[Any], *, quick: bool, device: str, threads: int | None,
            progress: bool = True) -> list[dict[str, Any]]:
    """For each compiled implementation: cold, warm (not for JAX) and own-compile runs."""
    rows: list[dict[str, Any]] = []
    for c in cases:
        jax_impls = [i.name for i in c.impls if i.compiled and i.jax]
        for impl in c.impls:
            if not impl.compiled:
                continue
            missing = next((p for p in map(_missing, (*c.requires, *impl.requires)) if p), None)
            row: dict[str, Any] = {"case": c.full_name, "impl": impl.name,
                                   "kind": "jax" if impl.jax else "torch",
                                   "jax_peer": None if impl.jax else jax_peer(impl.name, jax_impls)}
            if missing is not None:
                row["error"] = f"skipped: {missing}"
                rows.append(row)
                continue
            modes = ("cold", "own") if impl.jax else ("cold", "warm", "own")
            shared = tempfile.mkdtemp(prefix="ftx-bench-inductor-")
            own = tempfile.mkdtemp(prefix="ftx-bench-inductor-")
            try:
                for mode in modes:
                    if progress:
                        print(f"compile latency: {c.full_name} [{impl.name}] {mode} ...",
                              file=sys.stderr, flush=True)
                    row[mode] = run_child(c.full_name, impl.name, mode,
                                          own if mode == "own" else shared,
                                          quick=quick, device=device, threads=threads)
            finally:
                shutil.rmtree(shared, ignore_errors=True)
                shutil.rmtree(own, ignore_errors=True)
            rows.append(row)
            if impl.jax or not impl.name.startswith("ftx.jit"):
                continue
            for label, options in JIT_VARIANTS.items():
                name = f"{impl.name} [{label}]"
                if progress:
                    print(f"compile latency: {c.full_name} [{name}] own ...", file=sys.stderr,
                          flush=True)
                own = tempfile.mkdtemp(prefix="ftx-bench-inductor-")
                try:
                    result = run_child(c.full_name, impl.name, "own", own, quick=quick,
                                       device=device, threads=threads, jit_options=options)
                finally:
                    shutil.rmtree(own, ignore_errors=True)
                rows.append({**row, "impl": name, "variant": label,
                             "cold": None, "warm": None, "own": result})
    for row in rows:  # own compile against the case's jax.jit own compile
        peer = row.get("jax_peer")
        mine = (row.get("own") or {}).get("compile_s")
        if peer and mine is not None:
            other = next((r for r in rows if r["case"] == row["case"] and r["impl"] == peer),
                         None)
            theirs = ((other or {}).get("own") or {}).get("compile_s")
            if theirs:
                row["own_vs_jax"] = mine / theirs
    return rows


def _missing(req: str) -> str | None:
    from ._harness import missing_requirement

    return missing_requirement(req)


HEADER = ["case", "implementation", "cold process", "warm cache", "start-up", "own compile",
          "per call", "dynamo", "guards", "AOT", "cache load", "inductor", "C++", "other", "graphs",
          "recompiles", "own / jax.jit"]


def _cells(row: Mapping[str, Any]) -> list[str]:
    from ._report import fmt_time

    def first(mode: str) -> str:
        r = row.get(mode)
        if r is None:
            return "-"
        return "error" if "error" in r else fmt_time(r["first_call_s"])

    own = row.get("own") or {}
    ph = own.get("phases") or {}
    cnt = own.get("counters") or {}
    later = own.get("frames_compiled_on_later_calls")
    ratio = row.get("own_vs_jax")
    if "error" in row:
        return [row["case"], row["impl"], row["error"], *[""] * (len(HEADER) - 3)]
    return [
        row["case"], row["impl"], first("cold"), first("warm"),
        fmt_time(own.get("start_up_s")) if own.get("start_up_s") is not None else "-",
        fmt_time(own["compile_s"]) if "compile_s" in own else
        ("error" if "error" in own else "-"),
        fmt_time(own["steady_s"]) if "steady_s" in own else "-",
        *[fmt_time(ph[p]) if p in ph else "-" for p in PHASES],
        str(cnt.get("unique_graphs", "-")) if ph else "-",
        str(later) if later is not None and row["kind"] != "jax" else "-",
        f"{ratio:.2f}x" if ratio is not None else "",
    ]


def format_table(rows: Sequence[Mapping[str, Any]], markdown: bool = False) -> str:
    cells = [_cells(r) for r in rows]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for c in cells:
            lines.append("| " + " | ".join([f"`{c[0]}`", *c[1:]]) + " |")
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(HEADER)]
    out = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(x.ljust(w) for x, w in zip(c, widths)).rstrip() for c in cells]
    return "\n".join(out)


def errors(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """``case [impl] mode: error`` for every child that failed (skips are not errors)."""
    bad = []
    for r in rows:
        for mode in ("cold", "warm", "own"):
            e = (r.get(mode) or {}).get("error")
            if e:
                bad.append(f"{r['case']} [{r['impl']}] {mode}: {e}")
    return bad


def main(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The ``--compile-latency`` run: measure, print, write JSON and Markdown."""
    from . import _harness, _report
    from .cases import load_all

    failed = load_all()
    for mod, err in failed.items():
        print(f"warning: benchmarks/cases/{mod}.py could not be imported: {err}", file=sys.stderr)
    cases = [c for c in _harness.select(_harness.REGISTRY.values(), args.filter)
             if any(i.compiled for i in c.impls)]
    if not cases:
        print(f"python -m benchmarks: no case with a compiled implementation matches --filter "
              f"{args.filter!r}", file=sys.stderr)
        return 2
    info = _report.machine_info()
    rows = measure(cases, quick=args.quick, device=args.device, threads=args.threads,
                   progress=not args.no_progress)
    table = format_table(rows)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"compile-latency-{args.device}" + ("-quick" if args.quick else "")
    if hasattr(os, "getloadavg"):
        info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    command = f"python -m benchmarks {' '.join(argv)}".strip()
    doc = {"machine": info, "command": command, "rows": rows}
    (out / f"{stem}.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(
        f"`{command}` on {_report.machine_line(info)}\n\n{format_table(rows, markdown=True)}\n",
        encoding="utf-8")
    print(f"\nwrote {out / f'{stem}.json'} and {out / f'{stem}.md'}")
    bad = errors(rows)
    for line in bad:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if bad or failed else 0


def rerender(path: Path) -> str:
    """The Markdown table of a saved ``compile-latency-*.json``, phases recomputed from the
    raw regions it stores (``spent``, ``records``) with this version of ``phases``."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    for row in doc["rows"]:
        for mode in ("cold", "warm", "own"):
            r = row.get(mode)
            if r and r.get("phases") is not None and "spent" in r:
                r["phases"] = phases(r["spent"], {k: [v] for k, v in r["records"].items()},
                                     r["compile_s"])
    return format_table(doc["rows"], markdown=True)


def _child_main(argv: Sequence[str]) -> int:
    if len(argv) == 2 and argv[0] == "--render":
        print(rerender(Path(argv[1])))
        return 0
    p = argparse.ArgumentParser(prog="python -m benchmarks._compile_latency")
    p.add_argument("case")
    p.add_argument("impl")
    p.add_argument("mode", choices=["cold", "warm", "own"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--jit-options", type=json.loads, default=None,
                   help="inductor options (JSON) given to every ftx.jit of the process")
    a = p.parse_args(list(argv))
    res = child(a.case, a.impl, a.mode, a.quick, a.device, a.threads, a.jit_options)
    print(RESULT_TAG + json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
