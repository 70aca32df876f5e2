#!/usr/bin/env bash
# The test command (README "Two commands", .ci/run): the suite, the suite's route tests
# again with every fast route off (the fallbacks are code too), mypy strict on ftx/, ruff,
# and the API reference built with every warning an error.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q -n 2
# FTX_SLOW_ROUTES=1: torch_compat turns off the engine route of grad/vjp, the direct
# engine call, jit's direct call path, the foreach kernels and the fast flattener.
FTX_SLOW_ROUTES=1 python -m pytest -q -n 2 -p no:cacheprovider \
  tests/test_differential.py tests/test_fast_path.py tests/test_regressions_issue14.py \
  tests/test_transforms.py tests/test_composition.py tests/test_jit.py tests/test_tree.py \
  tests/test_optim_trajectories.py tests/test_optim_api.py tests/test_custom_transforms.py \
  tests/test_optim_donate.py tests/test_donation.py tests/test_checkpoint_closures.py
mypy
ruff check .
# No --quiet: it would hide the warnings --strict turns into errors.
mkdocs build --strict --site-dir "$(mktemp -d)"
