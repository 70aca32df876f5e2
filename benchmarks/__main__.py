"""``python -m benchmarks``: run the cases, print the table, write JSON and a PNG chart.

Exit status 0 when every implementation that ran agreed with its baseline,
1 when any result disagreed or raised (a skipped implementation is not a
failure), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from . import _harness, _report
from .cases import load_all


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="ftx against torch.func, torch.nn/optim and JAX, in one run.",
    )
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true",
                   help="small sizes and short timing (a smoke test, under a minute on CPU)")
    p.add_argument("--filter", default=None, metavar="PATTERN",
                   help="regular expression searched in 'group/case' names")
    p.add_argument("--out", default="bench-out", metavar="DIR",
                   help="folder for the JSON and PNG files (default: bench-out)")
    comp = p.add_mutually_exclusive_group()
    comp.add_argument("--compile", dest="compile", action="store_true", default=None,
                      help="run torch.compile implementations (default: on, off with --quick)")
    comp.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--min-run-time", type=float, default=None, metavar="SECONDS",
                   help="blocked_autorange budget per implementation (default 0.5, quick 0.05)")
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved timing rounds per case (default 3; 1 with --quick)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for torch (set_num_threads) and for JAX's CPU backend "
                        "(XLA_FLAGS); default: each library's own default")
    p.add_argument("--tuned-malloc", action="store_true",
                   help="opt in to a tuned allocator: glibc mallopt keeps freed memory in the "
                        "process and torch puts blocks >= 2 MiB on huge pages; every row is "
                        "labelled '(tuned malloc)'. Default: the allocators as pip users get them")
    p.add_argument("--compile-latency", action="store_true",
                   help="measure compile latency instead of run time: for each compiled "
                        "implementation, the first call in a fresh process with an empty "
                        "inductor cache, with a warm cache, and in a process that has already "
                        "compiled something (broken down by compiler phase)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(list(argv))


def limit_xla_threads(n: int) -> None:
    """Give JAX's CPU backend the same thread budget as torch (read when jax first loads)."""
    if "jax" in sys.modules:
        print("warning: jax was imported before --threads; its thread count is unchanged",
              file=sys.stderr)
        return
    flags = [f"intra_op_parallelism_threads={n}"]
    if n == 1:
        flags.insert(0, "--xla_cpu_multi_thread_eigen=false")
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *flags]).strip()


def keep_freed_memory() -> str:
    """Make glibc keep freed memory in the process; return what was set (or why not).

    With glibc's defaults, blocks above a moving threshold come from fresh ``mmap``
    pages and freed memory at the top of the heap is returned to the system, so a
    program that allocates and frees large tensors every step (a pure optimizer's new
    moments and params; torch.optim's own temporaries) pays page faults that vary
    two-fold from one process to the next. Fixed thresholds remove that noise from the
    comparisons (it is what ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_`` do
    at start-up; docs/optim.md recommends them for CPU training).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return "default (no glibc mallopt)"
    m_trim_threshold, m_mmap_threshold = -1, -3
    if mallopt(m_mmap_threshold, 32 << 20) != 1 or mallopt(m_trim_threshold, 2**31 - 1) != 1:
        return "default (mallopt refused)"
    return "glibc mallopt: M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=2 GiB"


TUNED_LABEL = "tuned malloc"


def label_rows(results: Sequence[_harness.Result], label: str) -> None:
    """Append ``(label)`` to every row's implementation and baseline name (e.g. the tuned
    allocator's rows, so that they are never mistaken for what a default install gets)."""
    for r in results:
        r.impl = f"{r.impl} ({label})"
        r.baseline = f"{r.baseline} ({label})"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("python -m benchmarks: --device cuda needs a CUDA device, got none. "
              "Run with --device cpu.", file=sys.stderr)
        return 2
    if args.threads is not None:
        limit_xla_threads(args.threads)  # before the case modules are imported
    if args.compile_latency:
        from . import _compile_latency

        return _compile_latency.main(args, argv)
    failed_modules = load_all()
    for mod, err in failed_modules.items():
        print(f"warning: benchmarks/cases/{mod}.py could not be imported: {err}", file=sys.stderr)
    cases = _harness.select(_harness.REGISTRY.values(), args.filter)
    if args.list:
        for c in cases:
            print(f"{c.full_name:45s} {', '.join(i.name for i in c.impls)}")
        return 0
    if not cases:
        print(f"python -m benchmarks: no case matches --filter {args.filter!r}", file=sys.stderr)
        return 2
    cfg = _harness.Config(
        device=args.device,
        quick=args.quick,
        compile=(not args.quick) if args.compile is None else args.compile,
        min_run_time=args.min_run_time if args.min_run_time is not None
        else (0.05 if args.quick else 0.5),
        warmup=1 if args.quick else 3,
        rounds=1 if args.quick else args.rounds,
    )
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    malloc = keep_freed_memory() if args.tuned_malloc else "default"
    if os.environ.get("THP_MEM_ALLOC_ENABLE") == "1":
        malloc += "; torch THP_MEM_ALLOC_ENABLE=1 (huge pages for blocks >= 2 MiB)"
    info = _report.machine_info()  # date and load average at the start of the run
    info["malloc"] = malloc
    results = _harness.run_cases(cases, cfg, progress=not args.no_progress)
    if malloc != "default":
        label_rows(results, TUNED_LABEL)

    print(_report.format_table(results))
    notes = _report.format_notes(results)
    if notes:
        print(notes)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = (f"benchmarks-{args.device}" + ("-quick" if args.quick else "")
            + ("-tuned-malloc" if args.tuned_malloc else ""))
    _report.write_json(out / f"{stem}.json", results, cfg, argv, info)
    command = f"python -m benchmarks {' '.join(argv)}".strip()
    subtitle = _report.machine_line(info)
    charted = _report.write_chart(out / f"{stem}.png", results, command, subtitle)
    md = _report.format_table(results, markdown=True)
    (out / f"{stem}.md").write_text(
        f"`{command}` on {subtitle}\n\n{md}\n"
        + (f"\n```\n{notes}\n```\n" if notes else ""),
        encoding="utf-8",
    )
    print(f"\nwrote {out / f'{stem}.json'}, {out / f'{stem}.md'}"
          + (f" and {out / f'{stem}.png'}" if charted else ""))

    bad = [r for r in results if r.failed]
    for r in bad:
        print(f"FAILED {r.case} [{r.impl}]: {r.status}", file=sys.stderr)
    if failed_modules:
        return 1
    return 1 if bad else 0


def _reexec_with_huge_pages() -> None:
    """Start this run again with ``THP_MEM_ALLOC_ENABLE=1`` (Linux, with --tuned-malloc).

    PyTorch reads that variable once, at its first CPU allocation: with it, blocks of
    2 MiB and more are 2 MiB-aligned and ``madvise(MADV_HUGEPAGE)``-ed. glibc serves
    blocks over 32 MiB with fresh ``mmap`` pages whatever ``mallopt`` says, so a 67 MB
    per-sample-gradient output otherwise costs some 16 000 page faults per call (4.6x
    the whole call for MLP 256-256-10). JAX's CPU runtime reuses its buffers and does not
    pay this, so the comparison would otherwise time the C library's page faults.
    """
    if (
        sys.platform.startswith("linux")
        and os.environ.get("THP_MEM_ALLOC_ENABLE") != "1"
        and "--tuned-malloc" in sys.argv[1:]
        and not any(a in ("-h", "--help", "--list") for a in sys.argv[1:])
    ):
        os.environ["THP_MEM_ALLOC_ENABLE"] = "1"
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks", *sys.argv[1:]])


if __name__ == "__main__":
    _reexec_with_huge_pages()
    sys.exit(main())
