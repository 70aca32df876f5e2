"""Tensors a function closes over: found in closure cells, lifted out and put back.

A ``torch.autograd.Function`` sees only the tensors it is applied to. A tensor that the
function it runs reads from a closure cell (``lambda x: w @ x`` with ``w`` from the
enclosing scope) is invisible to it: under a ``torch.func`` transform it reaches the
function as a wrapper of a level that is no longer active (its derivative is then lost
without a word, or torch fails an internal assert), and under plain autograd the
``Function``'s forward runs with grad mode off, so no edge to it is recorded.

:func:`captured` finds the cells holding such tensors (in the functions given, in the
closures of the functions their cells hold, up to :data:`MAX_DEPTH` levels); a
:class:`Captured` lists their tensor leaves (what the ``autograd.Function`` is applied to,
with the call's own tensors) and :meth:`Captured.bound` puts the function's view of those
tensors back into the cells while it runs. Tensors reached only through globals or object
attributes (a bound ``nn.Module`` method, a module's parameters) are not seen.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import torch
import torch.autograd.forward_ad as _fwad

from .. import tree as _tree
from .._internal import torch_compat as _tc

__all__ = ["MAX_DEPTH", "Captured", "as_closure", "captured", "tracked"]

MAX_DEPTH = 8  # nested closures followed


def as_closure(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` itself, or for a ``functools.partial`` an equivalent closure over its arguments.

    The partial's bound arguments then live in closure cells (``args``, ``keywords``),
    where :func:`captured` finds them and :meth:`Captured.bound` can replace them.
    """
    if not isinstance(fn, functools.partial):
        return fn
    func, args, keywords = fn.func, fn.args, fn.keywords

    def call(*a: Any, **k: Any) -> Any:
        return func(*args, *a, **{**keywords, **k})

    call.__qualname__ = f"functools.partial({_function_name(func)})"
    return call


def tracked(x: torch.Tensor) -> bool:
    """True when a transform or autograd may differentiate ``x``.

    A functorch-wrapped tensor (it came from an active ``grad``/``jvp``/``vmap`` level),
    a tensor that requires grad while grad mode is on, or a forward-AD dual.
    """
    if _tc.is_wrapped(x):
        return True
    if x.requires_grad and torch.is_grad_enabled():
        return True
    if _fwad._current_level >= 0:  # a torch.autograd.forward_ad level is open
        return _fwad.unpack_dual(x).tangent is not None  # type: ignore[no-untyped-call]
    return False


def _cell_tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if value is None or isinstance(value, (bool, int, float, complex, str, type)):
        return []
    return [x for x in _tree.leaves(value) if isinstance(x, torch.Tensor)]


def _function_name(f: Any) -> str:
    return str(getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or "fun")


class Captured:
    """The closure cells of a call's functions that hold tracked tensors.

    ``tensors`` are their tensor leaves in order, ``where[i]`` names the variable and the
    function closing over ``tensors[i]`` (for error messages).
    """

    __slots__ = ("cells", "defs", "tensors", "where")

    def __init__(self) -> None:
        self.cells: list[Any] = []
        self.defs: list[_tree.TreeDef] = []
        self.tensors: list[torch.Tensor] = []
        self.where: list[str] = []

    def __len__(self) -> int:
        return len(self.tensors)

    def _add(self, cell: Any, name: str, owner: str) -> None:
        leaves, treedef = _tree.flatten_with_path(cell.cell_contents)
        self.cells.append(cell)
        self.defs.append(treedef)
        for path, x in leaves:
            if isinstance(x, torch.Tensor):
                self.tensors.append(x)
                at = f" at path '{path}'" if path else ""
                self.where.append(f"'{name}'{at} in the closure of '{owner}'")

    @contextlib.contextmanager
    def bound(self, tensors: Sequence[torch.Tensor]) -> Iterator[None]:
        """Put ``tensors`` (one per entry of :attr:`tensors`) into the cells while in the block."""
        saved = [cell.cell_contents for cell in self.cells]
        it = iter(tensors)
        try:
            for cell, treedef, value in zip(self.cells, self.defs, saved):
                leaves = [
                    next(it) if isinstance(x, torch.Tensor) else x for x in _tree.leaves(value)
                ]
                cell.cell_contents = _tree.unflatten(treedef, leaves)
            yield
        finally:
            for cell, value in zip(self.cells, saved):
                cell.cell_contents = value


_EMPTY = Captured()


def closure_cells(functions: Iterable[Any]) -> Iterator[tuple[Any, int, Any, Any]]:
    """``(function, index, cell, value)`` for every filled closure cell of ``functions``
    that does not hold a function, following functions held in cells (up to
    ``MAX_DEPTH`` levels) instead; each function and each cell once, ``functions``'
    own cells first in their order."""
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(f, 0) for f in reversed(list(functions))]
    while stack:
        f, depth = stack.pop()
        closure = getattr(f, "__closure__", None)
        if not closure or id(f) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(f))
        for i, cell in enumerate(closure):
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later in the outer scope)
                continue
            if callable(value) and hasattr(value, "__closure__"):
                stack.append((value, depth + 1))
            elif id(cell) not in seen:
                seen.add(id(cell))
                yield f, i, cell, value


def captured(functions: Iterable[Any]) -> Captured:
    """The cells of ``functions`` (and of the functions in their cells) with tracked tensors.

    A cell whose tensors are all untracked (constants: plain tensors that need no
    gradient) is left alone; a cell is listed once even when several functions share it.
    """
    found: Captured | None = None
    for f, i, cell, value in closure_cells(functions):
        if any(tracked(x) for x in _cell_tensors(value)):
            if found is None:
                found = Captured()
            names = getattr(getattr(f, "__code__", None), "co_freevars", ())
            name = names[i] if i < len(names) else f"cell {i}"
            found._add(cell, name, _function_name(f))
    return _EMPTY if found is None else found
