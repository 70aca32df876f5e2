"""ftx benchmarks: ftx against its peers (torch.func, torch.nn/optim, JAX) in one run.

Run ``python -m benchmarks [--device cpu|cuda] [--quick] [--filter PATTERN] [--out DIR]``.
Contract: a case (``benchmarks._harness.Case``) builds its inputs once, runs
every implementation on them in the same process, checks that all results
agree with the baseline's before timing, and reports medians and ratios to
the baseline. Cases live in ``benchmarks/cases/<group>.py``; every module
there is imported by ``benchmarks.cases.load_all()``, so a new group is one
new file (see docs/benchmarks.md).
"""

from ._harness import REGISTRY as REGISTRY
from ._harness import Case as Case
from ._harness import Config as Config
from ._harness import Impl as Impl
from ._harness import Result as Result
from ._harness import case as case
from ._harness import run_case as run_case
from ._harness import run_cases as run_cases
from ._harness import select as select

__all__ = [
    "REGISTRY",
    "Case",
    "Config",
    "Impl",
    "Result",
    "case",
    "run_case",
    "run_cases",
    "select",
]
