"""Fixtures of the bad-input fuzz suite (the --fuzz-long option lives in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._run import examples


@pytest.fixture
def fuzz_examples(request: pytest.FixtureRequest) -> int:
    return examples(request.config)


@pytest.fixture
def fuzz_dir(tmp_path: Path) -> str:
    return str(tmp_path)
