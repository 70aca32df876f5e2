"""The API reference site (mkdocs.yml, docs/reference/): public paths, every public name.

The strict build itself (`mkdocs build --strict`) runs in .ci/run after the tests; these
checks need neither mkdocs nor a build.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

import ftx

ROOT = Path(__file__).resolve().parent.parent
REFERENCE = ROOT / "docs" / "reference"
DIRECTIVE = re.compile(r"^::: (\S+)\s*$", re.MULTILINE)
MODULE_PAGES = {
    "ftx.tree": "tree.md",
    "ftx.random": "random.md",
    "ftx.nn": "nn.md",
    "ftx.nn.functional": "nn_functional.md",
    "ftx.optim": "optim.md",
    "ftx.io": "io.md",
    "ftx.picograd": "picograd.md",
    "ftx.distributed": "distributed.md",
    "ftx.test_util": "test_util.md",
    "ftx.lax": "lax.md",
}


def _directives() -> dict[str, list[str]]:
    return {p.name: DIRECTIVE.findall(p.read_text()) for p in sorted(REFERENCE.glob("*.md"))}


def test_reference_uses_public_paths_only() -> None:
    # Private module paths (ftx._transforms.api.grad) break when internals move.
    for page, idents in _directives().items():
        for ident in idents:
            assert not any(part.startswith("_") for part in ident.split(".")), (page, ident)
            if ident in MODULE_PAGES:
                importlib.import_module(ident)
            else:
                module, _, name = ident.rpartition(".")
                assert hasattr(importlib.import_module(module), name), (page, ident)


def test_every_public_name_has_a_page() -> None:
    pages = _directives()
    transforms = {i.removeprefix("ftx.") for i in pages["transforms.md"]}
    modules = {name for name in ftx.__all__ if isinstance(getattr(ftx, name), ModuleType)}
    functions = set(ftx.__all__) - modules - {"__version__"}
    assert functions <= transforms, sorted(functions - transforms)
    for module, page in MODULE_PAGES.items():
        assert module in pages[page], (module, page)
    assert {f"ftx.{m}" for m in modules} <= set(MODULE_PAGES), modules


def test_mkdocs_config_names_the_pages() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in REFERENCE.glob("*.md"):
        assert f"reference/{page.name}" in config, page.name
    assert "docstring_style: google" in config


def _extension() -> ModuleType:
    pytest.importorskip("griffe", reason="the docs extra is not installed")
    spec = importlib.util.spec_from_file_location("griffe_ftx", REFERENCE / "griffe_ftx.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extension_reads_ftx_conventions() -> None:
    normalize = _extension()._normalize
    doc = (
        "Summary, see :func:`grad` and :class:`~ftx.tree.TreeDef`.\n"
        "\n"
        "Args:\n"
        "    x: the input.\n"
        "    rank, world_size (int): default to the\n"
        "        process group's.\n"
        "\n"
        "Returns:\n"
        "    a, b: not an Args section, left alone.\n"
        "\n"
        "Example:\n"
        "    >>> 1 + 1\n"
        "    2\n"
    )
    assert normalize(doc) == (
        "Summary, see `grad` and `TreeDef`.\n"
        "\n"
        "Args:\n"
        "    x: the input.\n"
        "    rank (int): default to the\n"
        "        process group's.\n"
        "    world_size (int): default to the\n"
        "        process group's.\n"
        "\n"
        "Returns:\n"
        "    a, b: not an Args section, left alone.\n"
        "\n"
        "Examples:\n"
        "    >>> 1 + 1\n"
        "    2\n"
    )


def test_extension_parses_split_params() -> None:
    griffe = _extension().griffe
    ext = _extension().FtxDocstrings()
    func = griffe.Function(
        "shard",
        parameters=griffe.Parameters(
            griffe.Parameter("rank", annotation="int"),
            griffe.Parameter("world_size", annotation="int"),
        ),
    )
    func.docstring = griffe.Docstring(
        "Slice.\n\nArgs:\n    rank, world_size: default to the group's.\n", parent=func
    )
    ext.on_instance(obj=func, node=None, agent=None)
    sections = func.docstring.parse("google", warnings=True)
    params = next(s for s in sections if s.kind.value == "parameters")
    assert [p.name for p in params.value] == ["rank", "world_size"]
