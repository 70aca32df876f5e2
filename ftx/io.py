"""Safe checkpoints: pytrees of tensors in safetensors files, written atomically.

Contract: :func:`save` writes any pytree (nested dicts, lists, tuples,
``None``, registered dataclasses and namedtuples) whose leaves are tensors or
Python ``bool``/``int``/``float``/``str`` scalars; :func:`load` gives it back
with the same structure (registered node types need ``like=``), dtypes
(``bfloat16``, ``int64``, ``bool``... included) and values. The file is a plain
safetensors file (tensor names are the leaves' state-dict paths, so other tools
read it too) and the tree's structure is JSON in its metadata: loading an
untrusted file runs no code (no pickle). Python scalars are stored as JSON
scalars in the metadata, not as 0-d tensors, so they come back as the same
Python type. Each tensor carries a CRC-32, so a truncated or corrupted file is
a ``ValueError``, never a partial tree. The write is atomic: a crash or a kill
mid-save leaves the previous file intact.

Example:
    >>> import os, tempfile, torch, ftx
    >>> tree = {"w": torch.ones(2, 3), "step": torch.tensor(7), "meta": (1.5, None)}
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.safetensors")
    >>> ftx.io.save(path, tree)
    >>> back = ftx.io.load(path)
    >>> back["step"], back["meta"], back["w"].shape
    (tensor(7), (1.5, None), torch.Size([2, 3]))
"""

from __future__ import annotations

import json
import os
from typing import Any

import safetensors.torch
import torch

from . import _io_file
from . import _io_format as _fmt
from . import tree as _tree
from ._errors import describe as _describe

__all__ = ["load", "save"]

PyTree = Any
_SCALARS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}


def _check_path(api: str, path: Any) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"ftx.io.{api}: path must be a str or os.PathLike, got {_describe(path)}. "
            "Pass a file name such as 'ckpt.safetensors'."
        )
    return str(os.fspath(path))


def _scalar_kind(x: Any) -> str | None:
    for t, name in _SCALARS.items():
        if type(x) is t:
            return name
    for t, name in _SCALARS.items():  # subclasses such as numpy.float64
        if t is not bool and isinstance(x, t):
            return name
    return None


def _leaf_where(path: str) -> str:
    return repr(path) if path else "the root"


def save(path: str | os.PathLike[str], tree: PyTree) -> None:
    """Save a pytree of tensors to a safetensors file, atomically.

    Args:
        path: the file to (over)write; its folder must exist.
        tree: nested dicts (str or int keys), lists, tuples, ``None`` and registered
            pytree nodes, with tensor leaves of any shape and dtype (on any device;
            saved from CPU copies) or Python ``bool``/``int``/``float``/``str``.
            Non-contiguous tensors are saved contiguous; a tensor appearing at
            several paths (tied weights) is stored once and comes back as one
            tensor; other views of one storage are saved as independent tensors.

    Returns:
        None. ``path`` holds the complete new file, or (on any error) its old content.

    Example:
        >>> import os, tempfile, torch
        >>> path = os.path.join(tempfile.mkdtemp(), "params.safetensors")
        >>> save(path, {"0": {"weight": torch.zeros(4, 3), "bias": torch.zeros(4)}})
        >>> import safetensors.torch; sorted(safetensors.torch.load_file(path))
        ['0.bias', '0.weight']
    """
    file = _check_path("save", path)
    flat, _ = _tree.flatten_with_path(tree)
    tensors: dict[str, torch.Tensor] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    table: list[dict[str, Any]] = []
    for i, (p, leaf) in enumerate(flat):
        if isinstance(leaf, torch.Tensor):
            if leaf.layout != torch.strided or leaf.is_meta or leaf.is_quantized:
                raise TypeError(
                    f"ftx.io.save: tensor leaves must be dense tensors with data, got "
                    f"{leaf.layout} {'meta ' if leaf.is_meta else ''}tensor at "
                    f"{_leaf_where(p)}. Convert it with .to_dense() or materialize it."
                )
            if leaf.dtype not in _fmt.ST_DTYPES.values():
                raise TypeError(
                    f"ftx.io.save: tensor dtypes must be supported by safetensors, got "
                    f"{leaf.dtype} at {_leaf_where(p)}. Cast it, e.g. .to(torch.float32)."
                )
            key = (
                leaf.device, leaf.untyped_storage().data_ptr(), leaf.storage_offset(),
                tuple(leaf.shape), leaf.stride(), leaf.dtype,
            )
            name = views.get(key) if leaf.numel() else None
            if name is None:
                name = p if p and p not in tensors else f"{p or '<root>'}#{i}"
                t = leaf.detach().to("cpu").contiguous()
                if t.numel() and t.untyped_storage().data_ptr() in storages:
                    t = t.clone()  # another view of a saved storage: store its own copy
                tensors[name] = t
                if leaf.numel():
                    views[key] = name
                    storages.add(t.untyped_storage().data_ptr())
            t = tensors[name]
            table.append({
                "path": p, "kind": "tensor", "name": name, "dtype": _fmt.dtype_name(t.dtype),
                "shape": list(t.shape), "crc32": _fmt.crc32(_fmt.tensor_bytes(t)),
            })
            continue
        kind = _scalar_kind(leaf)
        if kind is None:
            raise TypeError(
                f"ftx.io.save: leaves must be tensors or Python bool/int/float/str, got "
                f"{_describe(leaf)} at {_leaf_where(p)}. Convert it with torch.as_tensor(...)."
            )
        value = {"bool": bool, "int": int, "float": float, "str": str}[kind](leaf)
        table.append({"path": p, "kind": kind, "value": value})
    meta = {"format": _fmt.FORMAT, "tree": _fmt.encode_skeleton(tree), "leaves": table}
    data = safetensors.torch.save(tensors, metadata={_fmt.META_KEY: json.dumps(meta)})
    _io_file.atomic_write(file, data)


def _err(file: str, what: str) -> ValueError:
    return ValueError(f"ftx.io.load: {file!r} must be {what}. Load an intact ftx.io checkpoint.")


def _read(file: str) -> tuple[list[dict[str, Any]], Any, dict[str, torch.Tensor], bool]:
    """Read and verify ``file``: (leaf table, skeleton, tensors by name, is plain).

    A plain safetensors file (no ftx metadata) has no skeleton: its tensors in
    file order make the table.
    """
    with open(file, "rb") as f:
        data = f.read()
    try:
        start, entries, meta = _fmt.parse_header(data)
        tensors = safetensors.torch.load(data)
    except ValueError as e:
        raise _err(file, str(e)) from None
    except Exception as e:  # safetensors' own SafetensorError
        raise _err(file, f"a valid safetensors file, got {type(e).__name__}: {e}") from None
    if _fmt.META_KEY not in meta:  # a plain safetensors file: a flat dict by name
        names = sorted(entries, key=lambda n: entries[n]["data_offsets"][0])
        return [{"path": n, "kind": "tensor", "name": n} for n in names], None, tensors, True
    try:
        doc = json.loads(meta[_fmt.META_KEY])
        table, skel = doc["leaves"], doc["tree"]
        if doc["format"] != _fmt.FORMAT:
            raise _err(file, f"in ftx.io format {_fmt.FORMAT}, got format {doc['format']!r}")
        for ent in table:
            if ent["kind"] == "tensor":
                name, st = ent["name"], entries[ent["name"]]
                t = tensors[name]
                if _fmt.dtype_name(t.dtype) != ent["dtype"] or list(t.shape) != ent["shape"]:
                    raise _err(file, f"consistent, got tensor {name!r} stored as {t.dtype} "
                                     f"{list(t.shape)} but recorded as {ent['dtype']} "
                                     f"{ent['shape']}")
                b, end = st["data_offsets"]
                if _fmt.crc32(memoryview(data)[start + b : start + end]) != ent["crc32"]:
                    raise _err(file, f"intact, got a checksum mismatch in tensor {name!r} "
                                     f"(path {ent['path']!r}): the file is corrupted")
            elif ent["kind"] not in ("bool", "int", "float", "str") or "value" not in ent:
                raise _err(file, f"consistent, got a leaf entry {json.dumps(ent)[:80]}")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        if isinstance(e, ValueError) and str(e).startswith("ftx.io.load"):
            raise
        raise _err(file, f"consistent, got unreadable ftx.io metadata ({type(e).__name__}: "
                         f"{e}): the file is corrupted") from None
    return table, skel, tensors, False


def _to_device(t: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    return t if device is None or t.device == device else t.to(device)


def load(
    path: str | os.PathLike[str], like: PyTree = None, device: str | torch.device | None = None
) -> PyTree:
    """Load a pytree saved by :func:`save`; verified in full before anything is returned.

    Args:
        path: the file. A plain safetensors file (no ftx metadata) loads as a flat
            dict ``{name: tensor}``, or into ``like`` by state-dict paths.
        like: optional tree with the saved structure (e.g. ``opt.init(params)`` for an
            optimizer state): needed to get dataclasses, namedtuples and other
            registered nodes back as their own types (without it they come back as
            dicts keyed by field name). Its leaves must match the file's leaf by leaf
            (same paths; tensors of the same shape and dtype; scalars of the same type).
        device: where tensors go. ``None``: the device of the matching ``like`` leaf
            (``meta`` counts as CPU), else the CPU.

    Returns:
        The tree, with ``like``'s structure when given. Tensors that were one tensor at
        several paths are one tensor again.

    Raises:
        ValueError: the file is truncated, corrupted (checksum or header), not a
            safetensors file, or does not match ``like``; the message says which.

    Example:
        >>> import os, tempfile, torch
        >>> path = os.path.join(tempfile.mkdtemp(), "s.safetensors")
        >>> tree = (torch.arange(3), torch.ones(2, dtype=torch.bfloat16))
        >>> save(path, tree)
        >>> like = (torch.zeros(3, dtype=torch.int64), torch.zeros(2, dtype=torch.bfloat16))
        >>> load(path, like=like)
        (tensor([0, 1, 2]), tensor([1., 1.], dtype=torch.bfloat16))
    """
    file = _check_path("load", path)
    dev: torch.device | None = None
    if device is not None:
        if not isinstance(device, str | torch.device):
            raise TypeError(
                f"ftx.io.load: device must be a str, a torch.device or None, got "
                f"{_describe(device)}. Pass e.g. device='cpu'."
            )
        try:
            dev = torch.device(device)
        except RuntimeError as e:
            raise ValueError(
                f"ftx.io.load: device must name a torch device, got {device!r} ({e}). "
                "Pass e.g. 'cpu' or 'cuda:0'."
            ) from None
    table, skel, tensors, plain = _read(file)
    if like is None:
        if plain:
            skel = {"dict": [[x["name"], {"leaf": i}] for i, x in enumerate(table)]}
        moved = {n: _to_device(t, dev) for n, t in tensors.items()}
        leaves = [moved[x["name"]] if x["kind"] == "tensor" else x["value"] for x in table]
        try:
            return _fmt.decode_skeleton(skel, leaves)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise _err(file, f"consistent, got an unreadable tree skeleton ({err})") from None
    like_flat, like_def = _tree.flatten_with_path(like)
    if plain:  # a plain safetensors file: match like's paths to tensor names
        by_name = {x["name"]: x for x in table}
        missing = [p for p, _ in like_flat if p not in by_name]
        extra = sorted(set(by_name) - {p for p, _ in like_flat})
        if missing or extra:
            raise ValueError(
                f"ftx.io.load: like's paths must be the tensor names of the plain safetensors "
                f"file, got like paths not in the file {missing[:5]} and file tensors not in "
                f"like {extra[:5]}. Pass like= with the file's state-dict paths."
            )
        table = [by_name[p] for p, _ in like_flat]
    if len(like_flat) != len(table):
        first = next(
            (i for i, ((p, _), x) in enumerate(zip(like_flat, table)) if p != x["path"]),
            min(len(like_flat), len(table)),
        )
        theirs = like_flat[first][0] if first < len(like_flat) else "(none)"
        ours = table[first]["path"] if first < len(table) else "(none)"
        raise ValueError(
            f"ftx.io.load: like must have the file's {len(table)} leaves, got "
            f"{len(like_flat)}; first difference at leaf {first}: file path {ours!r}, like "
            f"path {theirs!r}. Pass like= a tree of the saved structure."
        )
    cache: dict[tuple[str, Any], torch.Tensor] = {}
    out = []
    for (p, want), ent in zip(like_flat, table):
        if p != ent["path"]:
            raise ValueError(
                f"ftx.io.load: like must have the file's leaf paths, got like path {p!r} "
                f"where the file has {ent['path']!r}. Pass like= a tree of the saved structure."
            )
        if isinstance(want, torch.Tensor):
            if ent["kind"] != "tensor":
                got = f"a Python {ent['kind']}"
            else:
                t = tensors[ent["name"]]
                if t.shape == want.shape and t.dtype == want.dtype:
                    d = dev if dev is not None else (
                        None if want.is_meta or want.device == t.device else want.device
                    )
                    key = (ent["name"], d)
                    if key not in cache:
                        cache[key] = _to_device(t, d)
                    out.append(cache[key])
                    continue
                got = f"Tensor(shape={tuple(t.shape)}, dtype={t.dtype})"
            raise ValueError(
                f"ftx.io.load: the leaf at {_leaf_where(p)} must match like's "
                f"{_describe(want)}, got {got} in the file. Pass like= with the saved "
                "shapes and dtypes."
            )
        kind = _scalar_kind(want)
        if kind is None:
            raise TypeError(
                f"ftx.io.load: like's leaves must be tensors or Python scalars, got "
                f"{_describe(want)} at {_leaf_where(p)}. Build like from real values."
            )
        if ent["kind"] != kind:
            got = "a tensor" if ent["kind"] == "tensor" else f"a Python {ent['kind']}"
            raise ValueError(
                f"ftx.io.load: the leaf at {_leaf_where(p)} must be a Python {kind} like "
                f"like's, got {got} in the file. Pass like= with the saved leaf types."
            )
        out.append(ent["value"])
    return _tree.unflatten(like_def, out)
