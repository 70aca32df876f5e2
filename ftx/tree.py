"""Pytree tools on PyTorch's own registry (``torch.utils._pytree``).

Contract: a pytree is any nesting of containers registered with
``torch.utils._pytree`` (dict, list, tuple, namedtuple, OrderedDict, and
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
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
import torch.utils._pytree as _pytree

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
    parts: list[str] = []
    for entry in path:
        if isinstance(entry, _pytree.MappingKey):
            parts.append(str(entry.key))
        elif isinstance(entry, _pytree.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, _pytree.GetAttrKey):
            parts.append(entry.name)
        else:  # pragma: no cover - exotic key types from third-party nodes
            parts.append(str(entry))
    return ".".join(parts)


@dataclasses.dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: torch's ``TreeSpec`` plus where ``None`` stood.

    Attributes:
        spec: the ``torch.utils._pytree.TreeSpec`` (``None`` counted as a leaf).
        nones: for each torch leaf, whether it was ``None``.
    """

    spec: _pytree.TreeSpec
    nones: tuple[bool, ...]

    @property
    def num_leaves(self) -> int:
        """Number of real (non-``None``) leaves."""
        return len(self.nones) - sum(self.nones)

    def __repr__(self) -> str:
        return f"TreeDef(num_leaves={self.num_leaves}, spec={self.spec})"


def flatten(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[Any], TreeDef]:
    """Flatten ``tree`` into ``(leaves, treedef)``; ``None`` subtrees are not leaves.

    Example:
        >>> leaves, treedef = flatten({"a": 1, "b": (2, None)})
        >>> leaves
        [1, 2]
        >>> unflatten(treedef, [10, 20])
        {'a': 10, 'b': (20, None)}
    """
    raw, spec = _pytree.tree_flatten(tree, is_leaf=is_leaf)
    nones = tuple(x is None for x in raw)
    return [x for x in raw if x is not None], TreeDef(spec, nones)


def unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> PyTree:
    """Inverse of :func:`flatten` (JAX argument order: ``treedef`` first)."""
    if not isinstance(treedef, TreeDef):
        raise TypeError(
            f"ftx.tree.unflatten: treedef must be an ftx.tree.TreeDef, got "
            f"{type(treedef).__name__}. Get one from ftx.tree.flatten or ftx.tree.structure."
        )
    items = list(leaves)
    if len(items) != treedef.num_leaves:
        raise ValueError(
            f"ftx.tree.unflatten: treedef has {treedef.num_leaves} leaves, got "
            f"{len(items)} leaves. Pass exactly one value per leaf."
        )
    it = iter(items)
    raw = [None if is_none else next(it) for is_none in treedef.nones]
    return _pytree.tree_unflatten(raw, treedef.spec)


def leaves(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None) -> list[Any]:
    """The leaves of ``tree`` in flattening order, ``None`` skipped."""
    return [x for x in _pytree.tree_leaves(tree, is_leaf=is_leaf) if x is not None]


def structure(tree: PyTree, is_leaf: Callable[[Any], bool] | None = None) -> TreeDef:
    """The :class:`TreeDef` of ``tree``."""
    return flatten(tree, is_leaf=is_leaf)[1]


def flatten_with_path(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> tuple[list[tuple[str, Any]], TreeDef]:
    """Like :func:`flatten`, each leaf paired with its state-dict style path."""
    raw, spec = _pytree.tree_flatten_with_path(tree, is_leaf=is_leaf)
    nones = tuple(x is None for _, x in raw)
    return [(keystr(p), x) for p, x in raw if x is not None], TreeDef(spec, nones)


def leaves_with_path(
    tree: PyTree, is_leaf: Callable[[Any], bool] | None = None
) -> list[tuple[str, Any]]:
    """``[(path, leaf), ...]`` in flattening order, ``None`` skipped."""
    return flatten_with_path(tree, is_leaf=is_leaf)[0]


def _check_same_structure(api: str, first: TreeDef, others: Sequence[PyTree]) -> list[list[Any]]:
    out = []
    for i, other in enumerate(others, start=1):
        raw, spec = _pytree.tree_flatten(other)
        if spec != first.spec:
            raise ValueError(
                f"ftx.tree.{api}: every tree must have the structure of the first, "
                f"got tree {i} with structure {spec} against {first.spec}. "
                "Pass trees with the same containers and keys."
            )
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
    raw, spec = _pytree.tree_flatten(tree, is_leaf=is_leaf)
    if not rest:
        return _pytree.tree_unflatten([None if x is None else f(x) for x in raw], spec)
    others = _check_same_structure("map", TreeDef(spec, ()), rest)
    out = [
        None if xs[0] is None else f(*xs)
        for xs in zip(raw, *others)
    ]
    return _pytree.tree_unflatten(out, spec)


def map_with_path(
    f: Callable[..., Any],
    tree: PyTree,
    *rest: PyTree,
    is_leaf: Callable[[Any], bool] | None = None,
) -> PyTree:
    """Like :func:`map`, ``f(path, leaf, *rest_leaves)`` with a state-dict style path."""
    raw, spec = _pytree.tree_flatten_with_path(tree, is_leaf=is_leaf)
    others = _check_same_structure("map_with_path", TreeDef(spec, ()), rest)
    out = [
        None if px[1] is None else f(keystr(px[0]), px[1], *xs)
        for px, *xs in zip(raw, *others)
    ] if others else [None if x is None else f(keystr(p), x) for p, x in raw]
    return _pytree.tree_unflatten(out, spec)


def static_field(**kwargs: Any) -> Any:
    """A ``dataclasses.field`` marked static: it goes into the treedef, not the leaves."""
    metadata = dict(kwargs.pop("metadata", {}) or {})
    metadata["static"] = True
    return dataclasses.field(metadata=metadata, **kwargs)


def register_dataclass(cls: type[T]) -> type[T]:
    """Register a dataclass as a pytree node (a decorator).

    Fields whose metadata has ``static=True`` (see :func:`static_field`) are
    treedef data: compared for structure equality, never transformed. The
    others are children. The node lives in torch's registry, so the dataclass
    works as a parameter container under bare ``torch.func.grad``/``vmap``.

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
        raise TypeError(
            f"ftx.tree.register_dataclass: needs a dataclass type, got {cls!r}. "
            "Decorate with @dataclasses.dataclass first (below @register_dataclass)."
        )
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))
    init_names = {f.name for f in fields if f.init}

    def _flatten(obj: Any) -> tuple[list[Any], Any]:
        return [getattr(obj, n) for n in data], tuple(getattr(obj, n) for n in meta)

    def _flatten_with_keys(obj: Any) -> tuple[list[tuple[Any, Any]], Any]:
        children = [(_pytree.GetAttrKey(n), getattr(obj, n)) for n in data]
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

    _pytree.register_pytree_node(
        cls,
        _flatten,
        _unflatten,
        serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
        flatten_with_keys_fn=_flatten_with_keys,
    )
    return cls


# ---------------------------------------------------------------------------
# Arithmetic used by optimizers and tests.


def add(tree: PyTree, *rest: PyTree) -> PyTree:
    """Leafwise sum of one or more trees of the same structure."""
    if not rest:
        return tree
    return map(lambda x, *ys: sum(ys, x), tree, *rest)


def sub(a: PyTree, b: PyTree) -> PyTree:
    """Leafwise ``a - b``."""
    return map(lambda x, y: x - y, a, b)


def scale(tree: PyTree, scalar: float | torch.Tensor) -> PyTree:
    """Leafwise ``scalar * leaf``."""
    return map(lambda x: x * scalar, tree)


def vdot(a: PyTree, b: PyTree) -> torch.Tensor:
    """Sum over leaves of ``(a * b).sum()``: the inner product of two trees."""
    la, lb = leaves(a), leaves(b)
    if len(la) != len(lb):
        raise ValueError(
            f"ftx.tree.vdot: trees must have the same number of leaves, got "
            f"{len(la)} and {len(lb)}. Pass trees of one structure."
        )
    terms = [torch.sum(x * y) for x, y in zip(la, lb)]
    if not terms:
        return torch.tensor(0.0)
    return torch.stack(terms).sum() if len(terms) > 1 else terms[0]


def norm(tree: PyTree, ord: float = 2) -> torch.Tensor:
    """Global norm of all leaves together (L2 by default; ``ord=inf`` for max-abs)."""
    ls = leaves(tree)
    if not ls:
        return torch.tensor(0.0)
    if ord == math.inf:
        out: torch.Tensor = torch.stack([x.abs().max() for x in ls if x.numel()]).max()
        return out
    flat = torch.stack([torch.linalg.vector_norm(x, ord) for x in ls])
    total: torch.Tensor = torch.linalg.vector_norm(flat, ord)
    return total


def zeros_like(tree: PyTree) -> PyTree:
    """A tree of zeros with the leaves' shapes, dtypes and devices."""
    return map(torch.zeros_like, tree)


def ones_like(tree: PyTree) -> PyTree:
    """A tree of ones with the leaves' shapes, dtypes and devices."""
    return map(torch.ones_like, tree)


def allclose(a: PyTree, b: PyTree, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when ``a`` and ``b`` have one structure and every leaf pair is close.

    Leaves may be tensors or numbers; shapes must match exactly (no broadcasting).
    """
    la, ta = flatten(a)
    lb, tb = flatten(b)
    if ta != tb:
        return False
    for x, y in zip(la, lb):
        xt = torch.as_tensor(x)
        yt = torch.as_tensor(y)
        if xt.shape != yt.shape:
            return False
        if xt.device != yt.device:
            yt = yt.to(xt.device)
        if not torch.allclose(xt, yt.to(xt.dtype) if xt.dtype != yt.dtype else yt, rtol, atol):
            return False
    return True

