"""Pytree tools on PyTorch's own pytree registry.

Contract: a pytree is any nesting of containers registered with
PyTorch's pytree registry (dict, list, tuple, namedtuple, OrderedDict, and
dataclasses registered through :func:`register_dataclass`) whose other values
are leaves. Because ftx uses the registry that ``torch.func``,
``torch.compile`` and ``torch.export`` use, a node registered here flattens the
same way everywhere.

``None`` follows JAX: it is an empty subtree, not a leaf. :func:`leaves` and
:func:`flatten` skip it, :func:`map` keeps it where it stands and never calls
``f`` on it, and :func:`unflatten` puts it back.

Paths are strings in the ``nn.Module`` state-dict form: ``"0.weight"``,
``"encoder.layers.1.bias"``.

Example:
    >>> import torch, ftx
    >>> params = {"0": {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}}
    >>> [p for p, _ in ftx.tree.leaves_with_path(params)]
    ['0.weight', '0.bias']
    >>> ftx.tree.norm(ftx.tree.scale(params, 2.0)).item()
    4.898979663848877
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import torch

from ._internal import torch_compat as _tc
from ._internal.errors import check_callable, check_real, describe, msg, nesting_error

__all__ = [
    "TreeDef",
    "add",
    "allclose",
    "flatten",
    "flatten_with_path",
    "keystr",
    "leaves",
    "leaves_with_path",
    "map",
    "map_with_path",
    "norm",
    "ones_like",
    "ravel",
    "register_dataclass",
    "scale",
    "static_field",
    "structure",
    "sub",
    "unflatten",
    "vdot",
    "zeros_like",
]

PyTree = Any
T = TypeVar("T")

def keystr(path: Sequence[Any]) -> str:
    """Turn a torch key path into a state-dict style string (``"0.weight"``)."""
    try:
        entries = list(path)
    except TypeError:
        raise TypeError(msg("tree.keystr", "path must be a sequence of key entries",
                            describe(path), "Pass a key path from flatten_with_path's torch "
                            "counterpart, e.g. (MappingKey('a'), SequenceKey(0)).")) from None
    parts: list[str] = []
    for entry in entries:
        if isinstance(entry, _tc.MappingKey):
            parts.append(str(entry.key))
        elif isinstance(entry, _tc.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, _tc.GetAttrKey):
            parts.append(entry.name)
        else:  # exotic key types from third-party nodes
            parts.append(str(entry))
    return ".".join(parts)


_node_type = _tc.node_type


def _children(x: Any) -> list[tuple[str, Any]] | None:
    """``(key, child)`` pairs of a registered pytree node, ``None`` for a leaf."""
    node = _tc.SUPPORTED_NODES.get(_node_type(x))
    if node is None:
        return None
    with_keys = getattr(node, "flatten_with_keys_fn", None)
    if with_keys is not None:
        pairs, _ = with_keys(x)
        return [(keystr([k]), c) for k, c in pairs]
    kids, _ = node.flatten_fn(x)
    return [(str(i), c) for i, c in enumerate(kids)]


def _raw_flatten(
    api: str, name: str, tree: PyTree, is_leaf: Callable[[Any], bool] | None
) -> tuple[list[Any], _tc.TreeSpec]:
    """torch's ``tree_flatten`` (``None`` counted as a leaf); a cycle is a ``ValueError``."""
    try:
        return _tc.tree_flatten(tree, is_leaf=is_leaf)
    except RecursionError:
        raise nesting_error(api, name, tree, _children) from None


def _raw_flatten_with_path(
    api: str, name: str, tree: PyTree, is_leaf: Callable[[Any], bool] | None
) -> tuple[list[tuple[Any, Any]], _tc.TreeSpec]:
    try:
        return _tc.tree_flatten_with_path(tree, is_leaf=is_leaf)
    except RecursionError:
        raise nesting_error(api, name, tree, _children) from None


@dataclasses.dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: torch's ``TreeSpec`` plus where ``None`` stood.

    Attributes:
        spec: the ``torch.utils._tc.TreeSpec`` (``None`` counted as a leaf).
        nones: for each torch leaf, whether it was ``None``.
    """

    spec: _tc.TreeSpec
    nones: tuple[bool, ...]

    @property
    def num_leaves(self) -> int:
        """Number of real (non-``None``) leaves."""
        return len(self.nones) - sum(self.nones)

    def __repr__(self) -> str:
        return f"TreeDef(num_leaves={self.num_leaves}, spec={self.spec})"


def _flatten(
    api: str, name: str, tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Any], TreeDef]:
    """:func:`flatten` reporting errors as ``ftx.<api>`` about argument ``name``."""
    check_callable(api, "is_leaf", is_leaf, optional=True)
    raw, spec = _raw_flatten(api, name, tree, is_leaf)
    nones = tuple(x is None for x in raw)
    return [x for x in raw if x is not None], TreeDef(spec, nones)


def _flatten_with_path(
    api: str, name: str, tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[tuple[str, Any]], TreeDef]:
    """:func:`flatten_with_path` reporting errors as ``ftx.<api>`` about argument ``name``."""
    check_callable(api, "is_leaf", is_leaf, optional=True)
    raw, spec = _raw_flatten_with_path(api, name, tree, is_leaf)
    nones = tuple(x is None for _, x in raw)
    return [(keystr(p), x) for p, x in raw if x is not None], TreeDef(spec, nones)


def flatten(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Any], TreeDef]:
    """Flatten ``tree`` into ``(leaves, treedef)``; ``None`` subtrees are not leaves.

    A tree that contains itself (a cycle) or is nested deeper than Python's recursion
    limit is a ``ValueError`` naming where.

    Example:
        >>> leaves, treedef = flatten({"a": 1, "b": (2, None)})
        >>> leaves
        [1, 2]
        >>> unflatten(treedef, [10, 20])
        {'a': 10, 'b': (20, None)}
    """
    return _flatten("tree.flatten", "tree", tree, is_leaf)


def unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> PyTree:
    """Inverse of :func:`flatten` (JAX argument order: ``treedef`` first)."""
    if not isinstance(treedef, TreeDef):
        raise TypeError(msg("tree.unflatten", "treedef must be an ftx.tree.TreeDef",
                            type(treedef).__name__,
                            "Get one from ftx.tree.flatten or ftx.tree.structure."))
    try:
        items = list(leaves)
    except TypeError:
        raise TypeError(msg("tree.unflatten", "leaves must be an iterable of leaves",
                            describe(leaves), "Pass a list with one value per leaf.")) from None
    if len(items) != treedef.num_leaves:
        raise ValueError(msg("tree.unflatten", f"treedef has {treedef.num_leaves} leaves",
                             f"{len(items)} leaves", "Pass exactly one value per leaf."))
    it = iter(items)
    raw = [None if is_none else next(it) for is_none in treedef.nones]
    return _tc.tree_unflatten(raw, treedef.spec)


def leaves(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None) -> list[Any]:
    """The leaves of ``tree`` in flattening order, ``None`` skipped."""
    check_callable("tree.leaves", "is_leaf", is_leaf, optional=True)
    try:
        raw = _tc.tree_leaves(tree, is_leaf=is_leaf)
    except RecursionError:
        raise nesting_error("tree.leaves", "tree", tree, _children) from None
    return [x for x in raw if x is not None]


def structure(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None) -> TreeDef:
    """The :class:`TreeDef` of ``tree``."""
    return _flatten("tree.structure", "tree", tree, is_leaf)[1]


def flatten_with_path(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[tuple[str, Any]], TreeDef]:
    """Like :func:`flatten`, each leaf paired with its state-dict style path."""
    return _flatten_with_path("tree.flatten_with_path", "tree", tree, is_leaf)


def leaves_with_path(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> list[tuple[str, Any]]:
    """``[(path, leaf), ...]`` in flattening order, ``None`` skipped."""
    return _flatten_with_path("tree.leaves_with_path", "tree", tree, is_leaf)[0]


def _difference(api: str, first: PyTree, other: PyTree, i: int) -> str:
    """Where tree ``i`` first differs from the first tree (for the error message)."""
    a = [keystr(p) for p, _ in _raw_flatten_with_path(api, "tree", first, None)[0]]
    b = [keystr(p) for p, _ in _raw_flatten_with_path(api, f"tree {i}", other, None)[0]]
    for pa, pb in zip(a, b):
        if pa != pb:
            return f"path {pb or '<root>'!r} where the first tree has {pa or '<root>'!r}"
    if len(a) != len(b):
        extra = (b[len(a)] if len(b) > len(a) else a[len(b)]) or "<root>"
        return (f"{len(b)} entries against {len(a)}, None included (first unmatched path "
                f"{extra!r})")
    return "the same paths in other container types (e.g. a list for a tuple)"


def _check_same_structure(
    api: str, first: PyTree, spec: _tc.TreeSpec, others: Sequence[PyTree],
    is_leaf: Callable[[Any], bool] | None = None,
) -> list[list[Any]]:
    out = []
    for i, other in enumerate(others, start=1):
        raw, other_spec = _raw_flatten(api, f"tree {i}", other, is_leaf)
        if other_spec != spec:
            raise ValueError(msg(api, "every tree must have the structure of the first",
                                 f"tree {i} with {_difference(api, first, other, i)}",
                                 "Pass trees with the same containers and keys."))
        out.append(raw)
    return out


def map(
    f: Callable[..., Any],
    tree: PyTree,
    *rest: PyTree,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Apply ``f`` leaf by leaf over ``tree`` and the trees in ``rest``.

    ``None`` in ``tree`` stays ``None`` and ``f`` is not called there.

    Example:
        >>> map(lambda a, b: a + b, {"x": 1, "y": None}, {"x": 2, "y": None})
        {'x': 3, 'y': None}
    """
    check_callable("tree.map", "f", f)
    check_callable("tree.map", "is_leaf", is_leaf, optional=True)
    raw, spec = _raw_flatten("tree.map", "tree", tree, is_leaf)
    if not rest:
        return _tc.tree_unflatten([None if x is None else f(x) for x in raw], spec)
    others = _check_same_structure("tree.map", tree, spec, rest, is_leaf)
    out = [
        None if xs[0] is None else f(*xs)
        for xs in zip(raw, *others)
    ]
    return _tc.tree_unflatten(out, spec)


def map_with_path(
    f: Callable[..., Any],
    tree: PyTree,
    *rest: PyTree,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Like :func:`map`, ``f(path, leaf, *rest_leaves)`` with a state-dict style path."""
    check_callable("tree.map_with_path", "f", f)
    check_callable("tree.map_with_path", "is_leaf", is_leaf, optional=True)
    raw, spec = _raw_flatten_with_path("tree.map_with_path", "tree", tree, is_leaf)
    others = _check_same_structure("tree.map_with_path", tree, spec, rest, is_leaf)
    out = [
        None if px[1] is None else f(keystr(px[0]), px[1], *xs)
        for px, *xs in zip(raw, *others)
    ] if others else [None if x is None else f(keystr(p), x) for p, x in raw]
    return _tc.tree_unflatten(out, spec)


def static_field(**kwargs: Any) -> Any:
    """A ``dataclasses.field`` marked static: it goes into the treedef, not the leaves."""
    metadata = kwargs.pop("metadata", None)
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(msg("tree.static_field", "metadata must be a mapping or None",
                            describe(metadata), "Pass metadata={'key': value}."))
    metadata = dict(metadata or {})
    metadata["static"] = True
    try:
        return dataclasses.field(metadata=metadata, **kwargs)
    except (TypeError, ValueError) as e:
        raise type(e)(msg("tree.static_field", "the keyword arguments of dataclasses.field",
                          f"{sorted(kwargs)} ({e})", "See help(dataclasses.field).")) from None


def register_dataclass(cls: type[T]) -> type[T]:
    """Register a dataclass as a pytree node (a decorator).

    Fields whose metadata has ``static=True`` (see :func:`static_field`) are
    treedef data: compared for structure equality, never transformed. The
    others are children. The node lives in torch's registry, so the dataclass
    works as a parameter container under bare ``torch.func.grad``/``vmap``.
    Registering a type twice is a ``ValueError``.

    Example:
        >>> import dataclasses, torch
        >>> @register_dataclass
        ... @dataclasses.dataclass
        ... class Affine:
        ...     w: torch.Tensor
        ...     b: torch.Tensor
        ...     name: str = static_field(default="affine")
        >>> leaves(Affine(torch.ones(2), torch.zeros(2)))
        [tensor([1., 1.]), tensor([0., 0.])]
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(msg("tree.register_dataclass", "needs a dataclass type", describe(cls),
                            "Decorate with @dataclasses.dataclass first (below "
                            "@register_dataclass)."))
    if cls in _tc.SUPPORTED_NODES:
        raise ValueError(msg("tree.register_dataclass", "a type not yet registered as a "
                             "pytree node", f"{cls.__qualname__}, already registered",
                             "Register each type once."))
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))
    init_names = {f.name for f in fields if f.init}

    def _flatten(obj: Any) -> tuple[list[Any], Any]:
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

    def _flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], Any]:
        children = [(_tc.GetAttrKey(n), getattr(obj, n)) for n in data]
        return children, tuple(getattr(obj, n) for n in meta)

    def _unflatten(values: Iterable[Any], context: Any) -> Any:
        kwargs = dict(zip(data, values))
        kwargs.update(zip(meta, context))
        init_kwargs = {k: v for k, v in kwargs.items() if k in init_names}
        obj = cls(**init_kwargs)
        for k, v in kwargs.items():
            if k not in init_names:
                object.__setattr__(obj, k, v)
        return obj

    _tc.register_node(
        cls,
        _flatten,
        _unflatten,
        serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
        flatten_with_keys_fn=_flatten_with_keys,
    )
    return cls


# ---------------------------------------------------------------------------
# Arithmetic used by optimizers and tests. Leaves are tensors or numbers; two tensor
# leaves at one path must have one shape (no broadcasting) and one device.


def _is_number(x: Any) -> bool:
    return isinstance(x, numbers.Number)


def _leafwise(
    api: str, op: Callable[..., Any], trees: Sequence[PyTree], *, numbers_ok: bool = True
) -> tuple[list[tuple[str, list[Any]]], _tc.TreeSpec, list[Any]]:
    """Apply ``op`` to each path's leaves (same structure, shapes and devices, checked).

    Returns ``([(path, leaves)...], spec, results)``; ``None`` paths give ``None``.
    """
    first = trees[0]
    raw, spec = _raw_flatten_with_path(api, "tree", first, None)
    others = _check_same_structure(api, first, spec, trees[1:])
    rows: list[tuple[str, list[Any]]] = []
    out: list[Any] = []
    for j, (kp, x) in enumerate(raw):
        xs = [x, *(o[j] for o in others)]
        path = keystr(kp)
        rows.append((path, xs))
        if x is None:
            out.append(None)
            continue
        _check_leaves(api, path, xs, numbers_ok)
        try:
            out.append(op(*xs))
        except (TypeError, ValueError, RuntimeError, OverflowError, NotImplementedError) as e:
            got = " and ".join(describe(v) for v in xs)
            raise ValueError(msg(api, "leaves that combine into one tensor",
                                 f"{got} at {path or '<root>'!r} ({type(e).__name__}: "
                                 f"{str(e)[:100]})", "Pass trees of matching leaves.")) from None
    return rows, spec, out


def _check_leaves(api: str, path: str, xs: list[Any], numbers_ok: bool) -> None:
    _check_kinds(api, path, xs, numbers_ok)
    where = path or "<root>"
    ts = [v for v in xs if isinstance(v, torch.Tensor)]
    for t in ts[1:]:
        if t.shape != ts[0].shape:
            raise ValueError(msg(api, "leaves at one path must have one shape",
                                 f"shapes {tuple(ts[0].shape)} and {tuple(t.shape)} at "
                                 f"{where!r}", "Pass trees of matching shapes."))
        if t.device != ts[0].device:
            raise ValueError(msg(api, "leaves at one path must be on one device",
                                 f"{ts[0].device} and {t.device} at {where!r}",
                                 "Move the trees to one device first."))


def _check_kinds(api: str, path: str, xs: list[Any], numbers_ok: bool) -> None:
    where = path or "<root>"
    for v in xs:
        if not (isinstance(v, torch.Tensor) or (numbers_ok and _is_number(v))):
            kind = "tensors or numbers" if numbers_ok else "tensors"
            raise TypeError(msg(api, f"leaves must be {kind}", f"{describe(v)} at {where!r}",
                                "Keep other values out of the tree or convert them with "
                                "torch.as_tensor."))


def add(tree: PyTree, *rest: PyTree) -> PyTree:
    """Leafwise sum of one or more trees of the same structure (and leaf shapes)."""
    if not rest:
        return tree
    _, spec, out = _leafwise("tree.add", lambda x, *ys: sum(ys, x), (tree, *rest))
    return _tc.tree_unflatten(out, spec)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b`` (same structure and leaf shapes)."""
    _, spec, out = _leafwise("tree.sub", lambda x, y: x - y, (a, b))
    return _tc.tree_unflatten(out, spec)


def _check_scalar(api: str, scalar: Any) -> None:
    if isinstance(scalar, torch.Tensor):
        if scalar.dim() != 0:
            raise ValueError(msg(api, "scalar must be a number or a 0-dim tensor",
                                 describe(scalar), "Pass one number (e.g. lr * 0.5)."))
        return
    if not _is_number(scalar):
        raise TypeError(msg(api, "scalar must be a number or a 0-dim tensor", describe(scalar),
                            "Pass one number (e.g. 0.5)."))
    if isinstance(scalar, int) and not isinstance(scalar, bool):
        check_real(api, "scalar", scalar, allow_inf=True)


def scale(tree: PyTree, scalar: float | torch.Tensor) -> PyTree:
    """Leafwise ``scalar * leaf``; ``scalar`` is a number or a 0-dim tensor."""
    _check_scalar("tree.scale", scalar)
    _, spec, out = _leafwise("tree.scale", lambda x: x * scalar, (tree,))
    return _tc.tree_unflatten(out, spec)


def vdot(a: PyTree, b: PyTree) -> torch.Tensor:
    """Sum over leaves of ``(a * b).sum()``: the inner product of two trees.

    The trees must have one structure; tensor leaves at one path, one shape.
    """
    _, _, terms = _leafwise(
        "tree.vdot", lambda x, y: torch.sum(x * y), (a, b), numbers_ok=False
    )
    terms = [t for t in terms if t is not None]
    if not terms:
        return torch.tensor(0.0)
    try:
        return torch.stack(terms).sum() if len(terms) > 1 else terms[0]
    except RuntimeError as e:
        raise ValueError(msg("tree.vdot", "leaves on one device", f"{type(e).__name__}: "
                             f"{str(e)[:100]}", "Move the trees to one device first.")) from None


def _tensor_leaves(api: str, tree: PyTree, *, floating: bool = False) -> list[torch.Tensor]:
    out = []
    for path, x in _flatten_with_path(api, "tree", tree)[0]:
        ok = isinstance(x, torch.Tensor) and (
            not floating or x.is_floating_point() or x.is_complex()
        )
        if not ok:
            kind = "floating or complex tensors" if floating else "tensors"
            raise TypeError(msg(api, f"leaves must be {kind}", f"{describe(x)} at "
                                f"{path or '<root>'!r}", "Convert it with .float() or keep "
                                "it out of the tree."))
        out.append(x)
    return out


def norm(tree: PyTree, ord: float = 2) -> torch.Tensor:
    """Global norm of all leaves together (L2 by default; ``ord=inf`` for max-abs).

    Leaves must be floating or complex tensors on one device.
    """
    o = check_real("tree.norm", "ord", ord, allow_inf=True)
    ls = _tensor_leaves("tree.norm", tree, floating=True)
    if not ls:
        return torch.tensor(0.0)
    if len({x.device for x in ls}) > 1:
        raise ValueError(msg("tree.norm", "leaves on one device",
                             ", ".join(sorted({str(x.device) for x in ls})),
                             "Move the tree to one device first."))
    try:
        return _norm(ls, o)
    except (RuntimeError, NotImplementedError) as e:
        raise ValueError(msg("tree.norm", "leaves torch can take the norm of",
                             f"{type(e).__name__}: {str(e)[:100]}",
                             "Pass dense floating tensors.")) from None


def _norm(ls: list[torch.Tensor], o: float) -> torch.Tensor:
    if o == math.inf:
        maxes = [x.abs().max() for x in ls if x.numel()]
        if not maxes:
            return torch.zeros((), dtype=ls[0].abs().dtype, device=ls[0].device)
        out: torch.Tensor = torch.stack(maxes).max()
        return out
    flat = torch.stack([torch.linalg.vector_norm(x, o) for x in ls])
    total: torch.Tensor = torch.linalg.vector_norm(flat, o)
    return total


def _like(api: str, make: Callable[[torch.Tensor], torch.Tensor], tree: PyTree) -> PyTree:
    pairs, spec = _raw_flatten_with_path(api, "tree", tree, None)
    out: list[torch.Tensor | None] = []
    for kp, x in pairs:
        if x is None:
            out.append(None)
            continue
        _check_kinds(api, keystr(kp), [x], False)
        try:
            out.append(make(x))
        except (RuntimeError, NotImplementedError) as e:
            raise ValueError(msg(api, "leaves torch can fill", f"{describe(x)} at "
                                 f"{keystr(kp) or '<root>'!r} ({type(e).__name__}: "
                                 f"{str(e)[:80]})", "Pass dense tensors.")) from None
    return _tc.tree_unflatten(out, spec)


def zeros_like(tree: PyTree) -> PyTree:
    """A tree of zeros with the leaves' shapes, dtypes and devices (tensor leaves only)."""
    return _like("tree.zeros_like", torch.zeros_like, tree)


def ones_like(tree: PyTree) -> PyTree:
    """A tree of ones with the leaves' shapes, dtypes and devices (tensor leaves only)."""
    return _like("tree.ones_like", torch.ones_like, tree)


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when ``a`` and ``b`` have one structure and every leaf pair is close.

    Leaves may be tensors or numbers; shapes must match exactly (no broadcasting).
    ``rtol`` and ``atol`` are non-negative numbers.
    """
    rt = check_real("tree.allclose", "rtol", rtol, low=0.0, allow_inf=True)
    at = check_real("tree.allclose", "atol", atol, low=0.0, allow_inf=True)
    la, ta = _flatten_with_path("tree.allclose", "a", a)
    lb, tb = _flatten_with_path("tree.allclose", "b", b)
    if ta != tb:
        return False
    for (path, x), (_, y) in zip(la, lb):
        _check_kinds("tree.allclose", path, [x, y], True)
        xt = torch.as_tensor(x)
        yt = torch.as_tensor(y)
        if xt.shape != yt.shape:
            return False
        try:
            if xt.device != yt.device:
                yt = yt.to(xt.device)
            if xt.dtype != yt.dtype:
                dt = torch.promote_types(xt.dtype, yt.dtype)
                xt, yt = xt.to(dt), yt.to(dt)
            if not torch.allclose(xt, yt, rt, at):
                return False
        except (RuntimeError, NotImplementedError) as e:
            raise ValueError(msg("tree.allclose", "leaves whose values can be compared",
                                 f"{describe(x)} and {describe(y)} at {path or '<root>'!r} "
                                 f"({type(e).__name__}: {str(e)[:80]})",
                                 "Compare tensors with data (not meta) on one device.")) from None
    return True


def ravel(tree: PyTree) -> tuple[torch.Tensor, Callable[[torch.Tensor], PyTree]]:
    """Ravel a pytree of tensors into one 1-D tensor, as ``jax.flatten_util``'s ravel does.

    The leaves (in :func:`flatten` order, ``None`` skipped; torch's registry keeps a
    dict's insertion order where JAX sorts the keys) are flattened and concatenated.
    Their dtypes are promoted with ``torch.promote_types``, which agrees with JAX's
    promotion (64-bit mode) for bool, int, float and complex dtypes. The
    inverse ``unravel(flat)`` splits a vector of the same length back into the tree,
    each leaf in its own shape and dtype. As in JAX, when all leaves share one dtype
    ``unravel`` keeps the dtype of the vector it gets (``unravel(flat.double())`` gives
    float64 leaves); with mixed dtypes the vector must have the promoted dtype and each
    leaf is cast back (complex to real keeps the real part). Both directions are plain
    tensor operations, so they work under ``grad``, ``vmap`` and ``jit``.

    Args:
        tree: a pytree whose leaves are tensors (any shapes; one device).

    Returns:
        ``(flat, unravel)``: ``flat`` of shape ``(total number of elements,)``; for a
        tree without leaves an empty tensor of the default dtype (JAX: float32).
        ``unravel(v)`` takes a tensor of shape ``flat.shape`` and returns the tree.

    Example:
        >>> import torch, ftx
        >>> params = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
        >>> flat, unravel = ftx.tree.ravel(params)
        >>> flat                    # the dict's order: w, then b
        tensor([1., 1., 1., 1., 0., 0.])
        >>> unravel(2 * flat)["w"]
        tensor([[2., 2.],
                [2., 2.]])
    """
    with_path, treedef = _flatten_with_path("tree.ravel", "tree", tree)
    for path, x in with_path:
        if not isinstance(x, torch.Tensor):
            raise TypeError(msg("tree.ravel", "leaves must be tensors", f"{describe(x)} at "
                                f"{path or '<root>'!r}", "Wrap numbers with torch.tensor(...) "
                                "or keep them out of the tree."))
        if x.layout != torch.strided:
            raise TypeError(msg("tree.ravel", "leaves must be dense (strided) tensors",
                                f"layout {x.layout} at {path or '<root>'!r}",
                                "Convert it with .to_dense()."))
    xs = [x for _, x in with_path]
    if not xs:
        return torch.zeros(0), functools.partial(_unravel, treedef, (), (), None)
    if len({x.device for x in xs}) > 1:
        raise ValueError(msg("tree.ravel", "leaves on one device",
                             ", ".join(sorted({str(x.device) for x in xs})),
                             "Move the tree to one device first."))
    dtypes = tuple(x.dtype for x in xs)
    to = functools.reduce(torch.promote_types, dtypes)
    flat = torch.cat([x.reshape(-1) if x.dtype == to else x.reshape(-1).to(to) for x in xs])
    single = all(d == to for d in dtypes)
    sizes = tuple(x.numel() for x in xs)
    shapes = tuple(tuple(x.shape) for x in xs)
    cast = None if single else (dtypes, to)
    return flat, functools.partial(_unravel, treedef, sizes, shapes, cast)


def _unravel(
    treedef: TreeDef,
    sizes: tuple[int, ...],
    shapes: tuple[tuple[int, ...], ...],
    cast: tuple[tuple[torch.dtype, ...], torch.dtype] | None,
    flat: torch.Tensor,
) -> PyTree:
    """The inverse of :func:`ravel` for one tree (bound with ``functools.partial``)."""
    n = sum(sizes)
    if not isinstance(flat, torch.Tensor):
        raise TypeError(msg("tree.ravel", "unravel takes a tensor", describe(flat),
                            "Pass a 1-D tensor like the one ravel returned."))
    if tuple(flat.shape) != (n,):
        raise ValueError(msg("tree.ravel", f"unravel takes a 1-D tensor of shape ({n},)",
                             f"shape {tuple(flat.shape)}", "Pass a vector with one entry per "
                             "element of the raveled tree (under vmap, map its batch axis)."))
    if cast is not None and flat.dtype != cast[1]:
        raise TypeError(msg("tree.ravel", f"unravel of a tree with mixed dtypes takes the "
                            f"promoted dtype {cast[1]}", f"dtype {flat.dtype}",
                            f"Convert the vector with .to({cast[1]}) first (as JAX requires)."))
    chunks = torch.split(flat, list(sizes)) if sizes else ()
    leaves = [c.reshape(s) for c, s in zip(chunks, shapes)]
    if cast is not None:
        leaves = [_cast(x, d) for x, d in zip(leaves, cast[0])]
    return unflatten(treedef, leaves)


def _cast(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``x`` in ``dtype``; complex to real keeps the real part (JAX's cast, without a warning)."""
    if x.dtype == dtype:
        return x
    if x.is_complex() and not dtype.is_complex:
        x = x.real
    return x.to(dtype)
