"""Bad input never hurts: ftx.distributed (see tests/fuzz/_contract.py for the contract)."""

from __future__ import annotations

import pytest

from ._api_distributed import APIS
from ._contract import Api
from ._run import baselines, cases, run_baseline, run_case


@pytest.mark.parametrize("api", baselines(APIS))
def test_good_call(api: Api, fuzz_dir: str) -> None:
    run_baseline(api, fuzz_dir)


@pytest.mark.parametrize(("api", "slot"), cases(APIS))
def test_bad_input(api: Api, slot: str, fuzz_examples: int, fuzz_dir: str) -> None:
    run_case(api, slot, fuzz_examples, fuzz_dir)
