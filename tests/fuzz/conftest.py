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


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case runs in its own folder: a bad path that names a file (``"bogus"``) must
    not leave files in the repository."""
    monkeypatch.chdir(tmp_path)
