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
Python type. Each tensor carries a CRC-32 and the header its own, so a flipped
bit anywhere, a truncated file or a wrong one is a ``ValueError``, never a
partial or different tree. The write is atomic: a crash or a kill mid-save
leaves the previous file intact (the next save removes the dead process's temp
file). ``save`` replaces only regular files (never a device, a FIFO, a folder)
and refuses, before touching the old file, what the file could not give back.

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

import io
import json
import os
from typing import Any

import torch

from .. import tree as _tree
from .._internal.errors import describe as _describe
from .._internal.errors import msg as _msg
from . import _file as _io_file
from . import _format as _fmt

__all__ = ["load", "save"]

PyTree = Any
_SCALARS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}
_where = _fmt.where


def _check_path(api: str, path: Any) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(_msg(f"io.{api}", "path must be a str or os.PathLike", _describe(path),
                             "Pass a file name such as 'ckpt.safetensors'."))
    file = os.fspath(path)
    if not isinstance(file, str):
        raise TypeError(_msg(f"io.{api}", "path must be a str or a str os.PathLike",
                             f"a path of {type(file).__name__}", "Pass a str path."))
    if not file or "\0" in file:
        raise ValueError(_msg(f"io.{api}", "path must be a non-empty file name without NUL "
                              "characters", repr(file)[:80], "Pass e.g. 'ckpt.safetensors'."))
    return file


def _check_target(file: str) -> None:
    """Refuse (before anything is written) a path save must not replace."""
    folder = os.path.dirname(os.path.abspath(file))
    if not os.path.basename(file) or not os.path.basename(os.path.abspath(file)):
        raise ValueError(_msg("io.save", "path must name a file", f"the folder path {file!r}",
                              "Add a file name such as 'ckpt.safetensors'."))
    if not os.path.isdir(folder):
        raise FileNotFoundError(_msg("io.save", "path's folder must exist",
                                     f"{file!r}, whose folder {folder!r} does not",
                                     "Create the folder first (os.makedirs)."))
    problem = _io_file.target_problem(file)
    if problem is not None:
        raise ValueError(_msg(
            "io.save", "path must name a regular file, a symbolic link to one, or nothing yet",
            f"{problem} at {file!r}", "Save to a checkpoint file; ftx.io.save never replaces "
            "devices, pipes, sockets or folders."))


def _scalar_kind(x: Any) -> str | None:
    for t, name in _SCALARS.items():
        if type(x) is t:
            return name
    for t, name in _SCALARS.items():  # subclasses such as numpy.float64
        if t is not bool and isinstance(x, t):
            return name
    return None


def _walk(api: str, what: str, tree: Any) -> tuple[Any, list[tuple[str, Any]]]:
    try:
        return _fmt.walk(tree)
    except _fmt.TreeError as e:
        cls, required, got, fix = e.args
        raise cls(_msg(f"io.{api}", what + required, got, fix)) from None


def _cpu_copy(p: str, leaf: torch.Tensor) -> torch.Tensor:
    """A contiguous CPU tensor with ``leaf``'s values and plain bits (conj/neg resolved)."""
    try:
        return leaf.detach().resolve_conj().resolve_neg().to("cpu").contiguous()
    except (RuntimeError, MemoryError) as e:
        raise ValueError(_msg(
            "io.save", "tensor leaves must be copyable to contiguous CPU memory",
            f"{_describe(leaf)} at {_where(p)} ({type(e).__name__}: {str(e)[:120]})",
            "Save plain tensors (outside transforms) that fit in memory.")) from None


def _tensor_leaves(
    flat: list[tuple[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """The leaf table and the tensors to store by name (a tensor at several paths once)."""
    tensors: dict[str, torch.Tensor] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[int] = set()
    table: list[dict[str, Any]] = []
    for i, (p, leaf) in enumerate(flat):
        if isinstance(leaf, torch.Tensor):
            if leaf.layout != torch.strided or leaf.is_meta or leaf.is_quantized:
                raise TypeError(_msg(
                    "io.save", "tensor leaves must be dense tensors with data",
                    f"{leaf.layout} {'meta ' if leaf.is_meta else ''}tensor at {_where(p)}",
                    "Convert it with .to_dense() or materialize it."))
            if leaf.dtype not in _fmt.ST_CODES:
                raise TypeError(_msg(
                    "io.save", "tensor dtypes must be supported by safetensors",
                    f"{leaf.dtype} at {_where(p)}", "Cast it, e.g. .to(torch.float32)."))
            try:
                ptr = leaf.untyped_storage().data_ptr()
            except (RuntimeError, NotImplementedError) as e:  # a torch.func wrapper
                raise TypeError(_msg(
                    "io.save", "tensor leaves must be plain tensors with storage",
                    f"{_describe(leaf)} at {_where(p)} ({type(e).__name__}: {str(e)[:80]})",
                    "Save outside torch.func / ftx transforms (return the value, then "
                    "save it).")) from None
            key: tuple[Any, ...] | None = (
                leaf.device, ptr, leaf.storage_offset(), tuple(leaf.shape), leaf.stride(),
                leaf.dtype, leaf.is_conj(), leaf.is_neg(),
            ) if leaf.numel() else None
            name = views.get(key) if key is not None else None
            if name is None:
                name = p if p else "<root>"
                if not p or name in tensors:
                    name = f"{name}#{i}"
                    while name in tensors:
                        name += "#"
                t = _cpu_copy(p, leaf)
                if t.numel() and t.untyped_storage().data_ptr() in storages:
                    t = t.clone()  # another view of a saved storage: store its own copy
                tensors[name] = t
                if key is not None:
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
            raise TypeError(_msg(
                "io.save", "leaves must be tensors or Python bool/int/float/str",
                f"{_describe(leaf)} at {_where(p)}", "Convert it with torch.as_tensor(...)."))
        value = {"bool": bool, "int": int, "float": float, "str": str}[kind](leaf)
        if kind == "int" and not _fmt.int_ok(value):
            raise ValueError(_msg(
                "io.save", "int leaves must have at most 4300 digits",
                f"an int of {abs(value).bit_length()} bits at {_where(p)}",
                "Store it as a string or a tensor of digits."))
        table.append({"path": p, "kind": kind, "value": value})
    return table, tensors


def save(path: str | os.PathLike[str], tree: PyTree) -> None:
    """Save a pytree of tensors to a safetensors file, atomically.

    Args:
        path: the file to (over)write; its folder must exist. It must be absent, a
            regular file or a symbolic link to one (the link is replaced by the new
            file, its target left alone); anything else is a ``ValueError``.
        tree: nested dicts (str or int keys), lists, tuples, ``None`` and registered
            pytree nodes, with tensor leaves of any shape and dtype (on any device;
            saved from CPU copies) or Python ``bool``/``int``/``float``/``str``.
            Non-contiguous tensors are saved contiguous; a tensor appearing at several
            paths (tied weights) is stored once and comes back as one tensor; other
            views of one storage are saved as independent tensors. Refused: cycles,
            nesting deeper than 100, the key ``"__metadata__"``, empty string keys,
            keys that are not valid Unicode, ints of more than 4300 digits.

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
    _check_target(file)
    skel, flat = _walk("save", "", tree)
    table, tensors = _tensor_leaves(flat)
    doc = json.dumps({"format": _fmt.FORMAT, "tree": skel, "leaves": table})
    # widest item size first, so every tensor starts aligned to its own item size
    order = sorted(tensors, key=lambda n: -tensors[n].element_size())
    entries, offset = [], 0
    for name in order:
        t = tensors[name]
        size = t.numel() * t.element_size()
        entries.append((name, _fmt.ST_CODES[t.dtype], list(t.shape), offset, offset + size))
        offset += size
    header = _fmt.build_header(doc, entries)
    _io_file.remove_stale_temps(file)
    chunks: list[bytes | memoryview] = [header]
    chunks += [_fmt.tensor_bytes(tensors[n]) for n in order]
    _io_file.atomic_write(file, chunks, check=lambda: _check_target(file))


def _err(file: str, what: str) -> ValueError:
    """The ``ValueError`` for a file that is not an intact checkpoint; ``what`` reads
    ``"<required>, got <came>"`` (the form of the file-format checks' messages)."""
    required, _, got = what.partition(", got ")
    return ValueError(_msg("io.load", f"{file!r} must be {required}", got or "another file",
                           "Load an intact ftx.io checkpoint."))


def _read_tensors(
    f: io.FileIO, file: str, entries: list[tuple[str, dict[str, Any]]], crcs: dict[str, int]
) -> dict[str, torch.Tensor]:
    """Read the data region (tensors in file order) into fresh tensors, checking CRCs."""
    tensors = {}
    for name, st in entries:
        t = torch.empty(st["shape"], dtype=_fmt.ST_DTYPES[st["dtype"]])
        view = _fmt.tensor_bytes(t)
        if _io_file.read_exactly(f, view) != len(view):
            raise _err(file, "a complete safetensors file, got fewer bytes than its size while "
                             "reading: the file is truncated (or shrank while loading)")
        if name in crcs and _fmt.crc32(view) != crcs[name]:
            raise _err(file, f"intact, got a checksum mismatch in tensor {name!r}: the file is "
                             "corrupted")
        tensors[name] = t
    return tensors


def _parse_doc(file: str, meta: dict[str, str], entries: dict[str, Any]) -> tuple[Any, Any]:
    """The checked ``(leaf table, skeleton)`` of an ftx.io file's metadata."""
    if _fmt.META_KEY not in meta:
        raise _err(file, f"an ftx.io file with its tree, got {_fmt.CRC_KEY!r} without "
                         f"{_fmt.META_KEY!r} in the metadata: the file is corrupted")
    try:
        doc = json.loads(meta[_fmt.META_KEY])
    except (ValueError, RecursionError) as e:
        raise _err(file, f"consistent, got unreadable ftx.io metadata ({type(e).__name__}: "
                         f"{str(e)[:80]}): the file is corrupted") from None
    if not isinstance(doc, dict) or set(doc) != {"format", "tree", "leaves"}:
        raise _err(file, f"consistent, got ftx.io metadata {meta[_fmt.META_KEY][:60]!r}")
    fmt, checked = doc["format"], _fmt.CRC_KEY in meta
    if checked and fmt != _fmt.FORMAT:
        raise _err(file, f"in ftx.io format {_fmt.FORMAT}, got format {fmt!r}")
    if not checked and fmt not in _fmt.LEGACY_FORMATS:
        what = "no header checksum" if fmt == _fmt.FORMAT else f"format {fmt!r}"
        raise _err(file, f"in ftx.io format {_fmt.FORMAT} (with a header checksum) or "
                         f"{_fmt.LEGACY_FORMATS[0]}, got {what}: the file is corrupted")
    try:
        _fmt.check_table(doc["leaves"], entries)
        _fmt.check_skeleton(doc["tree"], len(doc["leaves"]))
    except ValueError as e:
        raise _err(file, f"consistent, got unreadable ftx.io metadata ({e})") from None
    return doc["leaves"], doc["tree"]


def _read(file: str) -> tuple[list[dict[str, Any]], Any, dict[str, torch.Tensor], bool]:
    """Read and verify ``file``: (leaf table, skeleton, tensors by name, is plain).

    A plain safetensors file (no ftx metadata) has no skeleton: its tensors in
    file order make the table.
    """
    try:
        opened = _io_file.open_regular(file)
    except FileNotFoundError:
        raise FileNotFoundError(_msg("io.load", "path must name an existing file",
                                     f"{file!r}, which does not exist",
                                     "Check the name, or save first.")) from None
    if isinstance(opened, str):
        raise ValueError(_msg("io.load", "path must name a regular file", f"{opened} at "
                              f"{file!r}", "Load a checkpoint file; ftx.io.load never reads "
                              "devices, pipes, sockets or folders."))
    f, size = opened
    with f:
        prefix = f.read(8) if size >= 8 else b""
        try:
            n = _fmt.header_length(prefix, size)
            raw = f.read(n)
            if len(raw) != n:
                raise ValueError("a complete safetensors file, got a shorter header than its "
                                 "length: the file is truncated (or shrank while loading)")
            entries, meta = _fmt.parse_header(prefix, raw, size)
        except ValueError as e:
            raise _err(file, str(e)) from None
        by_name = {name: st for name, st in entries}
        if _fmt.META_KEY not in meta and _fmt.CRC_KEY not in meta:  # plain: flat by name
            tensors = _read_tensors(f, file, entries, {})
            return ([{"path": n, "kind": "tensor", "name": n} for n, _ in entries], None,
                    tensors, True)
        table, skel = _parse_doc(file, meta, by_name)
        crcs: dict[str, int] = {}
        for ent in table:
            if ent["kind"] == "tensor" and crcs.setdefault(ent["name"], ent["crc32"]) != \
                    ent["crc32"]:
                raise _err(file, f"consistent, got two checksums for tensor {ent['name']!r}")
        return table, skel, _read_tensors(f, file, entries, crcs), False


def _to_device(t: torch.Tensor, device: torch.device | None) -> torch.Tensor:
    return t if device is None or t.device == device else t.to(device)


def _check_device(device: Any) -> torch.device | None:
    if device is None:
        return None
    if not isinstance(device, str | torch.device):
        raise TypeError(_msg("io.load", "device must be a str, a torch.device or None",
                             _describe(device), "Pass e.g. device='cpu'."))
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(_msg("io.load", "device must name a torch device", f"{device!r} ({e})",
                              "Pass e.g. 'cpu' or 'cuda:0'.")) from None
    try:
        torch.empty(0, device=dev)
    except Exception as e:  # e.g. "Torch not compiled with CUDA enabled" (AssertionError)
        raise ValueError(_msg("io.load", "device must be available here",
                              f"{device!r} ({type(e).__name__}: {str(e)[:100]})",
                              "Pass a device this machine has, e.g. 'cpu'.")) from None
    return dev


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
            Files of format 1 (ftx.io before the header checksum) load too.
        device: where tensors go. ``None``: the device of the matching ``like`` leaf
            (``meta`` counts as CPU), else the CPU.

    Returns:
        The tree, with ``like``'s structure when given. Tensors that were one tensor at
        several paths are one tensor again.

    Raises:
        ValueError: the file is truncated, corrupted (a flipped bit anywhere: checksum
            of the header or of a tensor), not a safetensors file, not a regular file
            (devices, FIFOs, folders are never opened), or does not match ``like``;
            the message says which.
        FileNotFoundError: there is no file at ``path``.

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
    dev = _check_device(device)
    if like is not None:
        _walk("load", "like's ", like)  # cycles, depth, keys: before the file is read
        like_flat, like_def = _tree.flatten_with_path(like)
    table, skel, tensors, plain = _read(file)
    if like is None:
        if plain:
            skel = {"dict": [[x["name"], {"leaf": i}] for i, x in enumerate(table)]}
        moved = {n: _to_device(t, dev) for n, t in tensors.items()}
        leaves = [moved[x["name"]] if x["kind"] == "tensor" else x["value"] for x in table]
        return _fmt.decode_skeleton(skel, leaves)
    if plain:  # a plain safetensors file: match like's paths to tensor names
        by_name = {x["name"]: x for x in table}
        missing = [p for p, _ in like_flat if p not in by_name]
        extra = sorted(set(by_name) - {p for p, _ in like_flat})
        if missing or extra:
            raise ValueError(_msg(
                "io.load", "like's paths must be the tensor names of the plain safetensors file",
                f"like paths not in the file {missing[:5]} and file tensors not in like "
                f"{extra[:5]}", "Pass like= with the file's state-dict paths.",
            ))
        table = [by_name[p] for p, _ in like_flat]
    if len(like_flat) != len(table):
        first = next(
            (i for i, ((p, _), x) in enumerate(zip(like_flat, table)) if p != x["path"]),
            min(len(like_flat), len(table)),
        )
        theirs = like_flat[first][0] if first < len(like_flat) else "(none)"
        ours = table[first]["path"] if first < len(table) else "(none)"
        raise ValueError(_msg(
            "io.load", f"like must have the file's {len(table)} leaves",
            f"{len(like_flat)}; first difference at leaf {first}: file path {ours!r}, like "
            f"path {theirs!r}", "Pass like= a tree of the saved structure.",
        ))
    cache: dict[tuple[str, Any], torch.Tensor] = {}
    out = []
    for (p, want), ent in zip(like_flat, table):
        if p != ent["path"]:
            raise ValueError(_msg(
                "io.load", "like must have the file's leaf paths",
                f"like path {p!r} where the file has {ent['path']!r}",
                "Pass like= a tree of the saved structure.",
            ))
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
            raise ValueError(_msg(
                "io.load", f"the leaf at {_where(p)} must match like's {_describe(want)}",
                f"{got} in the file", "Pass like= with the saved shapes and dtypes.",
            ))
        kind = _scalar_kind(want)
        if kind is None:
            raise TypeError(_msg(
                "io.load", "like's leaves must be tensors or Python scalars",
                f"{_describe(want)} at {_where(p)}", "Build like from real values.",
            ))
        if ent["kind"] != kind:
            got = "a tensor" if ent["kind"] == "tensor" else f"a Python {ent['kind']}"
            raise ValueError(_msg(
                "io.load", f"the leaf at {_where(p)} must be a Python {kind} like like's",
                f"{got} in the file", "Pass like= with the saved leaf types.",
            ))
        out.append(ent["value"])
    return _tree.unflatten(like_def, out)
