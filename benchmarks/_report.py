"""Machine description, printed table, JSON file and PNG chart of a benchmark run."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ._harness import Config, Result


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(mod: str) -> str | None:
    try:
        m = __import__(mod)
    except ImportError:
        return None
    return str(getattr(m, "__version__", "?"))


def machine_info() -> dict[str, Any]:
    """CPU model, core and thread counts, GPU, library versions, date and load."""
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "numpy": _version("numpy"),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda,
        "xla_flags": os.environ.get("XLA_FLAGS"),
    }
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def fmt_time(seconds: float | None) -> str:
    """Seconds in the most readable unit: ``12.3 us``, ``4.56 ms``, ``1.23 s``."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _row_cells(r: Result) -> list[str]:
    spread = f"{100 * r.iqr_s / r.median_s:.0f}%" if r.median_s and r.iqr_s is not None else ""
    ratio = f"{r.ratio:.3g}x" if r.ratio is not None else ("base" if r.impl == r.baseline else "-")
    if r.ok and r.impl == r.baseline:
        ratio = "1.00x (base)"
    compile_s = fmt_time(r.first_call_s) if (r.compiled and r.ok) else ""
    status = "" if r.ok else r.status
    if r.ok and r.notes:
        status = "see note"
    return [r.case, r.impl, fmt_time(r.median_s) if r.ok else "", spread, ratio, compile_s, status]


HEADER = ["case", "implementation", "median", "IQR/median", "ratio", "compile", "status"]


def format_table(results: Sequence[Result], markdown: bool = False) -> str:
    """A plain-text (or Markdown) table: case, implementation, median, spread, ratio, compile."""
    rows = [_row_cells(r) for r in results]
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        for cells, r in zip(rows, results):
            cells = [f"`{cells[0]}`", *cells[1:]] if cells[0] else cells
            del r
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in rows)) if rows else len(h)
              for i, h in enumerate(HEADER)]
    out = ["  ".join(h.ljust(w) for h, w in zip(HEADER, widths))]
    out.append("  ".join("-" * w for w in widths))
    prev = None
    for cells in rows:
        shown = list(cells)
        if cells[0] == prev:
            shown[0] = ""
        prev = cells[0]
        out.append("  ".join(c.ljust(w) for c, w in zip(shown, widths)).rstrip())
    return "\n".join(out)


def format_notes(results: Sequence[Result]) -> str:
    """The ftx warnings seen while preparing implementations (e.g. a jit fallback), one a line."""
    return "\n".join(f"note: {r.case} [{r.impl}]: {n}" for r in results for n in r.notes)


def write_json(
    path: Path,
    results: Sequence[Result],
    cfg: Config,
    argv: Sequence[str],
    machine: dict[str, Any] | None = None,
) -> None:
    """Machine, configuration, command and one record per (case, implementation).

    ``machine`` is ``machine_info()`` taken when the run started (default: now);
    the load average at the end is added as ``load_average_at_end``.
    """
    machine = dict(machine_info() if machine is None else machine)
    if hasattr(os, "getloadavg"):
        machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    doc = {
        "machine": machine,
        "command": "python -m benchmarks " + " ".join(argv),
        "config": asdict(cfg),
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def write_chart(path: Path, results: Sequence[Result], title: str) -> bool:
    """Horizontal bars of each implementation's ratio to its case's baseline (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ok and r.ratio is not None]
    if not rows:
        return False
    labels = [f"{r.case}  [{r.impl}]" for r in rows]
    ratios = [float(r.ratio or 0.0) for r in rows]
    colors = [
        "tab:gray" if r.impl == r.baseline
        else ("tab:blue" if r.impl.startswith("ftx") else "tab:orange")
        for r in rows
    ]
    with matplotlib.rc_context({"text.parse_math": False}):  # "$" in a --filter is plain text
        _draw(plt, path, rows, labels, ratios, colors, title)
    return True


def _draw(plt: Any, path: Path, rows: Sequence[Result], labels: list[str],
          ratios: list[float], colors: list[str], title: str) -> None:
    fig, ax = plt.subplots(figsize=(10, 0.22 * len(rows) + 1.5))
    y = list(range(len(rows)))[::-1]
    ax.barh(y, ratios, color=colors)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("time / baseline time (log scale; < 1 is faster than the baseline)")
    ax.set_title(title, fontsize=9)
    for yi, r in zip(y, ratios):
        ax.text(r, yi, f" {r:.2f}x", va="center", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
