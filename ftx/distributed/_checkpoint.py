"""Sharded checkpoints: one safetensors file per rank plus an index, loadable on any world size.

Layout of a checkpoint folder::

    index.json                               the commit point (written last, atomically)
    <generation>-rank<r>-of-<w>.safetensors  rank r's shards (ftx.io: atomic, CRC-checked)

``save`` is collective: every rank writes its own file (its rows of each sharded
leaf; rank 0 also the replicated leaves and Python scalars), the ranks meet at a
barrier, rank 0 replaces ``index.json`` (naming the new generation) and, after a
second barrier, removes the files of older generations. A rank that dies before
the index is replaced leaves the previous checkpoint whole: its index still names
the previous generation's files, which nobody has touched. ``load`` reads the
index and builds each rank's leaves from the rows of the saved files they overlap,
so a checkpoint written on ``w`` ranks loads on any other number (or into plain
tensors in one process) bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from .. import io as _io
from .._internal.errors import describe, msg
from ..io import _file as _io_file
from ..tree import _flatten_with_path, unflatten
from . import _layout as L
from ._collectives import _run
from ._sharded import describe_leaves

T = TypeVar("T")
FORMAT = "ftx.distributed.checkpoint/1"
INDEX = "index.json"
_FILE = re.compile(r"^([0-9a-f]{32})-rank(\d+)-of-(\d+)\.safetensors$")
_SCALARS = (bool, int, float, str)


def _check_dir(api: str, path: Any) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(msg(f"distributed.{api}", "path must be a str or os.PathLike",
                            describe(path), "Pass a folder name such as 'ckpt'."))
    folder = os.fspath(path)
    if not isinstance(folder, str) or not folder or "\0" in folder:
        raise ValueError(msg(f"distributed.{api}", "path must be a non-empty folder name",
                             repr(folder)[:80], "Pass a folder name such as 'ckpt'."))
    return folder


def _file_name(gen: str, r: int, w: int) -> str:
    return f"{gen}-rank{r}-of-{w}.safetensors"


def save(path: str | os.PathLike[str], tree: Any) -> None:
    """Save a (sharded) training state into the folder ``path``; every rank must call it.

    Leaves may be DTensors from :func:`shard_params` (each rank writes its rows),
    plain tensors (rank 0 writes them; they must be the same on every rank) and
    Python ``bool``/``int``/``float``/``str`` scalars. The folder must be one every
    rank sees (a shared file system across machines). The checkpoint is replaced as
    a whole or not at all: a crash or a dead rank mid-save leaves the previous one.

    Example (under ``torchrun``)::

        ftx.distributed.save("ckpt", {"params": params, "opt": opt_state, "step": step})
    """
    api = "distributed.save"
    folder = _check_dir("save", path)
    pairs, treedef = _flatten_with_path(api, "tree", tree)
    tensors = [(p, x) for p, x in pairs if isinstance(x, torch.Tensor)]
    for p, x in pairs:
        if not isinstance(x, (torch.Tensor, *_SCALARS)):
            raise TypeError(msg(api, "every leaf must be a tensor or a bool/int/float/str",
                                f"{describe(x)} at {p or '<root>'!r}",
                                "Keep other objects out of the checkpoint."))
    leaves, mesh = describe_leaves(api, tensors)
    joined = dist.is_available() and dist.is_initialized()
    group = mesh.get_group() if mesh is not None else None
    r = dist.get_rank(group) if joined else 0
    w = dist.get_world_size(group) if joined else 1
    box = [uuid.uuid4().hex]
    if w > 1:
        _run("save", lambda: dist.broadcast_object_list(box, src=_global(group, 0), group=group))
    gen = box[0]
    meta: dict[str, dict[str, Any]] = {}
    kinds = {p: lf for (p, _), lf in zip(tensors, leaves)}
    mine: list[Any] = []
    for p, x in pairs:
        lf = kinds.get(p)
        if lf is None:
            meta[p] = {"kind": "scalar"}
            mine.append(x if r == 0 else None)
        else:
            meta[p] = {"kind": lf.kind, "shape": list(lf.shape), "dtype": str(lf.dtype)}
            keep = lf.kind == L.SHARD or r == 0
            mine.append(L.local(x).detach() if keep else None)
    os.makedirs(folder, exist_ok=True)
    _io.save(os.path.join(folder, _file_name(gen, r, w)), unflatten(treedef, mine))
    if w > 1:
        _run("save", lambda: dist.barrier(group=group))
    if r == 0:
        index = {"format": FORMAT, "generation": gen, "world_size": w, "leaves": meta}
        data = json.dumps(index, indent=1).encode()
        _io_file.atomic_write(os.path.join(folder, INDEX), [data])
    if w > 1:
        _run("save", lambda: dist.barrier(group=group))
    if r == 0:
        for name in os.listdir(folder):
            m = _FILE.match(name)
            if m and m.group(1) != gen:
                os.unlink(os.path.join(folder, name))


def _global(group: Any, r: int) -> int:
    return r if group is None else dist.get_global_rank(group, r)


def _read_index(folder: str) -> dict[str, Any]:
    api = "distributed.load"
    file = os.path.join(folder, INDEX)
    if not os.path.isfile(file):
        raise FileNotFoundError(msg(api, "path must be a checkpoint folder with an index.json",
                                    repr(folder), "Pass the folder given to "
                                    "ftx.distributed.save."))
    try:
        with open(file, encoding="utf-8") as f:
            index = json.load(f)
        ok = (index["format"] == FORMAT and _FILE.match(_file_name(index["generation"], 0, 1))
              and isinstance(index["world_size"], int) and index["world_size"] >= 1
              and isinstance(index["leaves"], dict))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ValueError(msg(api, f"index.json must be an {FORMAT} index", f"{file!r}",
                             "Pass a folder written by ftx.distributed.save."))
    out: dict[str, Any] = index
    return out


def load(path: str | os.PathLike[str], like: T) -> T:
    """Load a checkpoint from :func:`save` into the structure and placements of ``like``.

    ``like`` is the state as this run would start it: DTensor leaves (from
    :func:`shard_params` on this run's mesh, or an optimizer's ``init`` of them) get
    this rank's rows, plain tensors get the full values, so a checkpoint saved on 2
    ranks loads on 1, 4 or 2 of them, bit for bit. Each rank reads only the files
    that hold its rows; no collective runs. Shapes and dtypes must match ``like``'s.

    Example (under ``torchrun``)::

        state = ftx.distributed.load("ckpt", like={"params": params, "opt": opt_state,
                                                   "step": 0})
    """
    api = "distributed.load"
    folder = _check_dir("load", path)
    index = _read_index(folder)
    gen, ws, saved = index["generation"], index["world_size"], index["leaves"]
    pairs, treedef = _flatten_with_path(api, "like", like)
    paths = [p for p, _ in pairs]
    for p in paths:
        if p not in saved:
            raise ValueError(msg(api, "every leaf of like must be in the checkpoint",
                                 f"{p or '<root>'!r}, which is not", "Pass the structure that "
                                 "was saved."))
    extra = sorted(set(saved) - set(paths))
    if extra:
        raise ValueError(msg(api, "like must hold every leaf of the checkpoint",
                             f"no leaf at {extra[0]!r}", "Pass the structure that was saved."))
    files: dict[int, dict[str, Any]] = {}

    def read(j: int) -> dict[str, Any]:
        if j not in files:
            tree = _io.load(os.path.join(folder, _file_name(gen, j, ws)))
            files[j] = dict(_flatten_with_path(api, "checkpoint", tree)[0])
        return files[j]

    tensors = [(p, x) for p, x in pairs if isinstance(x, torch.Tensor)]
    leaves, mesh = describe_leaves(api, tensors)
    targets = {p: lf for (p, _), lf in zip(tensors, leaves)}
    out: list[Any] = []
    for p, x in pairs:
        m = saved[p]
        lf = targets.get(p)
        if m.get("kind") == "scalar" or lf is None:
            if lf is not None or m.get("kind") != "scalar":
                raise ValueError(msg(api, f"the leaf at {p!r} must be of the saved kind",
                                     f"{describe(x)} for a saved {m.get('kind')}",
                                     "Pass the structure that was saved."))
            out.append(read(0)[p])
            continue
        if list(lf.shape) != m["shape"] or str(lf.dtype) != m["dtype"]:
            raise ValueError(msg(api, f"the leaf at {p!r} must have the saved shape and dtype "
                                 f"{tuple(m['shape'])}, {m['dtype']}",
                                 f"{lf.shape}, {lf.dtype}", "Build like as the run that saved."))
        a, b = lf.rows(lf.rank) if lf.kind == L.SHARD else (0, lf.shape[0] if lf.shape else 0)
        t = _assemble(read, p, m, ws, a, b)
        out.append(L.wrap(t.to(lf.device).contiguous(), lf, mesh))
    result: T = unflatten(treedef, out)
    return result


def _assemble(read: Any, p: str, m: dict[str, Any], ws: int, a: int, b: int) -> torch.Tensor:
    """Rows ``[a, b)`` of the saved leaf ``p`` (the whole leaf when it is 0-d)."""
    shape = tuple(m["shape"])
    if m["kind"] != L.SHARD:
        t: torch.Tensor = read(0)[p]
        return t if not shape else t[a:b]
    n0 = shape[0]
    pr = -(-n0 // ws)
    pieces = []
    for j in range(ws):
        lo, hi = min(j * pr, n0), min((j + 1) * pr, n0)
        o0, o1 = max(a, lo), min(b, hi)
        if o0 < o1:
            pieces.append(read(j)[p][o0 - lo : o1 - lo])
    if not pieces:
        empty: torch.Tensor = read(0)[p][:0]
        return empty
    return torch.cat(pieces) if len(pieces) > 1 else pieces[0]
