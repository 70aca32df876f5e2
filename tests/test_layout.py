"""The house plan's two greps (issue 15), as tests: torch-private names appear only in
ftx/_internal/torch_compat.py, and every ``ftx.<api>: ...`` error text is built by
``ftx._internal.errors.msg`` (a few listed sites format on purpose)."""

from __future__ import annotations

import re
from pathlib import Path

FTX = Path(__file__).resolve().parent.parent / "ftx"
PRIVATE = re.compile(r"torch\._|_pytree|torch\.autograd\.graph\._")
HAND_BUILT = re.compile(r'f"ftx\.')
# Sites that format "ftx.<api>" themselves, each for a stated reason.
ALLOWED_HAND_BUILT = {
    "_internal/errors.py",  # msg() itself
    "test_util.py",  # check_grads' AssertionError follows JAX's form, not the contract
    "nn/_transformer.py",  # relabels a message msg() already built with the sub-layer name
    "_transforms/validate.py",  # fix texts passed to msg() as its fourth argument
}


def _sources() -> list[Path]:
    return sorted(FTX.rglob("*.py"))


def test_private_torch_names_only_in_torch_compat() -> None:
    hits = [
        f"{p.relative_to(FTX)}:{i}"
        for p in _sources()
        if p.relative_to(FTX).as_posix() != "_internal/torch_compat.py"
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert not hits, f"torch-private names outside ftx/_internal/torch_compat.py: {hits}"


def test_error_texts_built_by_msg() -> None:
    hits = [
        f"{p.relative_to(FTX)}:{i}"
        for p in _sources()
        if p.relative_to(FTX).as_posix() not in ALLOWED_HAND_BUILT
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if HAND_BUILT.search(line) and "msg(" not in line
    ]
    assert not hits, f"hand-built 'ftx.<api>:' texts (use errors.msg): {hits}"
