"""Griffe extension for the API reference: read ftx's docstring conventions as written.

ftx's docstrings are Google style as Napoleon reads them; griffe's Google parser
differs on three points, which this extension bridges before parsing (the source is
never touched):

- ``Example:`` (singular) is griffe's "example" admonition, whose body is rendered as
  Markdown (``>>>`` lines become block quotes); Napoleon reads it as an examples
  section. Rewritten to ``Examples:`` so doctests render as code.
- ``a, b: description`` in ``Args:`` documents several parameters at once (Napoleon
  accepts it); griffe takes ``"a, b"`` as one unknown parameter. Split into one entry
  per name, each with the shared description.
- Sphinx roles (``:func:`grad```, ``:class:`~ftx.tree.TreeDef```) are shown as
  inline code rather than as raw role text.

Loaded by mkdocs.yml (``extensions:``); not part of the package.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^Example:[ \t]*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|exc|obj|const):`(~?)([^`]+)`")
_ARGS = re.compile(
    r"^(?:Args|Arguments|Params|Parameters|Keyword Args|Keyword Arguments|Other Parameters):\s*$"
)
_MULTI = re.compile(
    r"^(?P<indent>[ \t]+)(?P<names>\*{0,2}\w+(?:[ \t]*,[ \t]*\*{0,2}\w+)+)"
    r"(?P<rest>[ \t]*(?:\([^)]*\))?:(?:[ \t].*)?)$"
)


def _role(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"`{target.rsplit('.', 1)[-1] if tilde else target}`"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _split_multi_params(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if not _ARGS.match(line):
            continue
        item_indent: int | None = None
        while i < len(lines) and (not lines[i].strip() or lines[i][0] in " \t"):
            line = lines[i]
            if not line.strip():
                out.append(line)
                i += 1
                continue
            if item_indent is None:
                item_indent = _indent(line)
            body: list[str] = []
            j = i + 1
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) > item_indent:
                body.append(lines[j])
                j += 1
            match = _MULTI.match(line) if _indent(line) == item_indent else None
            if match:
                for name in match["names"].split(","):
                    out.append(f"{match['indent']}{name.strip()}{match['rest']}")
                    out.extend(body)
            else:
                out.append(line)
                out.extend(body)
            i = j
    return "\n".join(out)


def _normalize(text: str) -> str:
    text = _EXAMPLE.sub("Examples:", text)
    text = _ROLE.sub(_role, text)
    return _split_multi_params(text)


class FtxDocstrings(griffe.Extension):
    """Rewrite each docstring as it is loaded (see the module docstring)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _normalize(obj.docstring.value)
