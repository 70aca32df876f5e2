"""Every Python block in README.md and docs/*.md runs, as a reader would paste it.

The blocks of one page run in order in one namespace (like a notebook), so a page
may build on its earlier blocks. A block preceded by an HTML comment
``<!-- not-run: <reason> -->`` is illustrative (it needs a GPU, several processes,
or shows a mistake) and is skipped here; the reason is required.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(
    r"(?P<skip><!--\s*not-run:(?P<why>[^>]*)-->\s*\n)?^```(?:python|py)\s*\n(?P<code>.*?)^```",
    re.S | re.M,
)


def blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip_reason)`` for each Python block of ``page``."""
    text = page.read_text()
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("code")) + 1
        why = m.group("why").strip() if m.group("skip") else None
        out.append((line, m.group("code"), why))
    return out


PAGE_IDS = [p.relative_to(ROOT).as_posix() for p in PAGES]


def test_pages_found() -> None:
    assert (ROOT / "README.md") in PAGES and len(PAGES) > 5
    assert sum(len(blocks(p)) for p in PAGES) > 20


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_page_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    # A real, importable module: torch.compile (ftx.jit) looks the frame's globals up in
    # sys.modules and would quietly run a page's jitted functions eagerly otherwise.
    module = types.ModuleType(f"ftx_docs_{page.stem}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    torch.manual_seed(0)
    ran = 0
    for line, code, why in blocks(page):
        if why is not None:
            assert why, f"{page.name}:{line}: a not-run block must say why"
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as e:
            raise AssertionError(f"{page.name}, block at line {line} failed: {e!r}") from e
        ran += 1
    if not blocks(page):
        pytest.skip(f"{page.name} has no Python blocks")
