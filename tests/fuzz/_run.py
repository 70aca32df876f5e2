"""Turn API tables into pytest cases and run one case's examples under hypothesis."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from . import _values
from ._contract import RECORD, Api, check, evaluate
from ._xfail import XFAIL

# Examples per (api, slot) case; FTX_FUZZ_LONG=1 or --fuzz-long runs 20x as many.
EXAMPLES = 12
LONG_FACTOR = 20


def case_id(api: Api, slot: str) -> str:
    return f"{api.name}[{slot}]"


def cases(apis: list[Api]) -> list[Any]:
    """One pytest param per (api, slot), strictly xfailed while its owner fixes it."""
    out = []
    for api in apis:
        for slot in api.slots:
            cid = case_id(api, slot)
            marks = []
            if cid in XFAIL and not RECORD:
                owners = ", ".join(XFAIL[cid])
                marks.append(pytest.mark.xfail(strict=True, reason=f"owner fixing: {owners}"))
            out.append(pytest.param(api, slot, id=cid, marks=marks))
    return out


def baselines(apis: list[Api]) -> list[Any]:
    return [pytest.param(api, id=api.name) for api in apis]


def good_srcs(api: Api) -> dict[str, str]:
    return {k: slot[0] for k, slot in api.slots.items()}


def run_baseline(api: Api, folder: str) -> None:
    """The table's own good call must succeed and mutate nothing (else the table is wrong)."""
    _values.set_example_dir(folder)
    srcs = good_srcs(api)
    values = {k: evaluate(v) for k, v in srcs.items()}
    if api.good_raises is None:
        evaluate(api.call, values)
        return
    with pytest.raises(Exception) as info:
        evaluate(api.call, values)
    assert type(info.value).__name__ == api.good_raises, info.value


def run_case(api: Api, slot: str, examples: int, folder: str) -> None:
    pool = api.slots[slot][1]
    counter = [0]

    def one(src: str) -> None:
        counter[0] += 1
        sub = os.path.join(folder, f"ex{counter[0]}")
        os.makedirs(sub, exist_ok=True)
        _values.set_example_dir(sub)
        srcs = good_srcs(api)
        srcs[slot] = src
        check(api, srcs, slot, folder=sub)

    # No shrinking: a failure's message already holds a one-line reproducer, and a strictly
    # xfailed case must cost no more than a passing one.
    phases = [Phase.explicit, Phase.generate]
    run = settings(
        max_examples=examples, derandomize=True, deadline=None, database=None,
        phases=phases, print_blob=False,
        suppress_health_check=list(HealthCheck),
    )(given(pool)(one))
    run()


def examples(config: Any) -> int:
    long = config.getoption("--fuzz-long", default=False) or os.environ.get("FTX_FUZZ_LONG") == "1"
    return EXAMPLES * (LONG_FACTOR if long else 1)
