"""Benchmark case modules, one group per file; ``load_all`` imports every one of them.

A module registers its cases at import time with ``benchmarks.case(group, name,
setup)`` and ``@c.impl(...)``. A module whose own imports fail (an optional
dependency missing) is reported by ``load_all`` and the rest still run.
"""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> dict[str, str]:
    """Import every module in this package; return ``{module: error}`` for those that failed."""
    failed: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
    return failed
