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
    if seconds == 0:
        return "0"
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


def machine_line(info: dict[str, Any]) -> str:
    """One readable line: CPU, cores, threads, versions, date, load average and allocator."""
    date = str(info.get("date", ""))
    try:
        date = _dt.datetime.fromisoformat(date).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        pass
    load = info.get("load_average")
    load_s = " / ".join(f"{x:.1f}" for x in load) if load else "n/a"
    gpu = f", {info['gpu']}" if info.get("gpu") else ""
    return (f"{info.get('cpu')} ({info.get('cpu_count')} cores{gpu}), torch {info.get('torch')} "
            f"({info.get('torch_threads')} threads), jax {info.get('jax')}, {date}, "
            f"load average {load_s} (1/5/15 min), malloc: {info.get('malloc', 'default')}")


def _group_number(x: float) -> str:
    """``3000`` -> ``"3 000"``; two significant digits above 100, fewer decimals as it grows."""
    if x >= 100:
        digits = len(str(int(x)))
        rounded = int(round(x, 2 - digits))
        return f"{rounded:,}".replace(",", " ")
    if x >= 10:
        return f"{x:.0f}"
    if x >= 2:
        return f"{x:.1f}"
    return f"{x:.2f}"


def speed_label(ratio: float) -> str:
    """A ratio to the baseline in words: ``0.000333`` -> ``"3 000x faster"``, ``1.3`` ->
    ``"1.30x slower"``; within 1% of the baseline, ``"same (1.00x)"``."""
    if ratio <= 0 or ratio != ratio:
        return "-"
    if 0.99 <= ratio <= 1.01:
        return f"same ({ratio:.2f}x)"
    if ratio < 1:
        return f"{_group_number(1 / ratio)}x faster"
    return f"{_group_number(ratio)}x slower"


def _axis_label(v: float, _pos: Any = None) -> str:
    if v <= 0:
        return ""
    if abs(v - 1) < 1e-9:
        return "baseline"
    return f"{_group_number(1 / v)}x\nfaster" if v < 1 else f"{_group_number(v)}x\nslower"


def _library(impl: str) -> str:
    low = impl.lower()
    if low.startswith("ftx"):
        return "ftx"
    if low.startswith(("jax", "optax")):
        return "JAX"
    return "torch / other"


_COLORS = {"ftx": "#1f77b4", "JAX": "#2ca02c", "torch / other": "#ff7f0e"}


def write_chart(path: Path, results: Sequence[Result], title: str, subtitle: str = "") -> bool:
    """One panel per group: each implementation's time against its case's baseline (log
    scale, bars drawn from the baseline at 1), labelled "3 000x faster" / "1.30x slower"
    with the median time; the command as title, the machine and date as subtitle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results if r.ok and r.ratio is not None]
    if not rows:
        return False
    with matplotlib.rc_context({"text.parse_math": False}):  # "$" in a --filter is plain text
        _draw(plt, path, rows, title, subtitle)
    return True


def _draw(plt: Any, path: Path, rows: Sequence[Result], title: str, subtitle: str) -> None:
    import math
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    groups: dict[str, list[Result]] = {}
    for r in rows:
        groups.setdefault(r.group, []).append(r)
    ratios = [float(r.ratio or 1.0) for r in rows]
    lo = min(min(ratios), 0.5) / 2.5
    hi = max(max(ratios), 2.0) * 2.5
    decades = [10.0**k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)]
    ticks = sorted({*decades, 1.0})
    heights = [len(g) + 1.2 for g in groups.values()]
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(12, 0.24 * sum(heights) + 1.6),
        gridspec_kw={"height_ratios": heights}, layout="constrained", squeeze=False,
    )
    for ax, (group, grows) in zip(axes[:, 0], groups.items()):
        y = list(range(len(grows)))[::-1]
        labels: list[str] = []
        prev_case = None
        for r in grows:
            short = r.case.split("/", 1)[1] if "/" in r.case else r.case
            labels.append(f"{short if r.case != prev_case else ''}   {r.impl}")
            prev_case = r.case
        for yi, r in zip(y, grows):
            ratio = float(r.ratio or 1.0)
            lib = _library(r.impl)
            if r.impl == r.baseline:
                ax.plot([1.0], [yi], marker="D", color="black", markersize=4)
            else:
                left, right = sorted((1.0, ratio))
                ax.barh(yi, right - left, left=left, height=0.7, color=_COLORS[lib])
            text = "baseline" if r.impl == r.baseline else speed_label(ratio)
            color = ("black" if r.impl == r.baseline or 0.99 <= ratio <= 1.01
                     else ("#1a7f37" if ratio < 1 else "#c0392b"))
            ax.annotate(f"{text}   {fmt_time(r.median_s)}", xy=(1.005, yi),
                        xycoords=("axes fraction", "data"), va="center", fontsize=7.5,
                        color=color)
        # a line between cases
        for k in range(1, len(grows)):
            if grows[k].case != grows[k - 1].case:
                ax.axhline(y[k] + 0.5, color="#cccccc", linewidth=0.6)
        ax.set_xscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.6, len(grows) - 0.4)
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(_axis_label))
        ax.tick_params(axis="x", labelsize=7)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=7.5)
        ax.axvline(1.0, color="black", linewidth=0.9)
        ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title(group, loc="left", fontsize=10, fontweight="bold")
    handles: list[Any] = [Patch(color=c, label=k) for k, c in _COLORS.items()]
    handles.append(Line2D([], [], marker="D", color="black", linestyle="", markersize=4,
                          label="baseline of the case (1x)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=8, frameon=False)
    sub = "\n".join(textwrap.wrap(subtitle, 150)) if subtitle else ""
    fig.suptitle(
        f"{title}\n{sub}\nmedian time per call against the case's baseline, timed in the same "
        "run (log scale: bars to the left are faster, to the right slower)",
        fontsize=8.5,
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)
