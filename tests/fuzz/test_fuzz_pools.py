"""The fuzz pools themselves: every bad-value expression evaluates (no typo hides a case)."""

from __future__ import annotations

import pytest

from . import _values
from ._contract import evaluate

POOLS = {
    name: value for name, value in vars(_values).items()
    if name.isupper() and isinstance(value, tuple) and all(isinstance(v, str) for v in value)
}


@pytest.mark.parametrize("name", sorted(POOLS))
def test_pool_evaluates(name: str, tmp_path: object) -> None:
    _values.set_example_dir(str(tmp_path))
    for src in POOLS[name]:
        if name == "PARAM_KINDS":
            continue  # names, used as bad_params(layer, kind)
        if name == "LYING":
            src = f"lying({src!r})"
        evaluate(src)
