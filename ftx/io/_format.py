"""ftx.io's file format: a safetensors file whose metadata holds the pytree as JSON.

Layout (format 2; ``ftx.io`` writes these bytes itself)::

    8 bytes   little-endian length n of the header (n a multiple of 8)
    n bytes   {"__metadata__":{"ftx.io.crc32":"<8 hex>","ftx.io":"<doc>"},
               "<tensor name>":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
              padded with spaces
    data      the tensors' bytes, back to back (widest dtypes first, so each
              tensor starts at a multiple of its item size)

``"ftx.io.crc32"`` always comes first, at a fixed place: it is the CRC-32 of
the length prefix and the header with those 8 hex digits read as ``00000000``.
Every tensor's own CRC-32 is in the doc, so the header checksum covers the
whole file: a flipped bit anywhere makes one of them mismatch.

The doc ``{"format": 2, "tree": skeleton, "leaves": table}``:

* ``table`` lists the leaves in ``ftx.tree`` flattening order. A tensor leaf is
  ``{"path", "kind": "tensor", "name", "dtype", "shape", "crc32"}`` where ``name``
  is its safetensors key (its state-dict path when that is unique) and ``crc32``
  the checksum of its bytes; a Python scalar leaf is ``{"path", "kind":
  "bool"|"int"|"float"|"str", "value"}`` stored as a JSON scalar.
* ``skeleton`` mirrors the containers: ``null`` for ``None``, ``{"dict": [[key,
  child], ...]}``, ``{"odict": ...}`` for ``OrderedDict``, ``{"list": [...]}``,
  ``{"tuple": [...]}``, ``{"leaf": i}`` (numbered 0, 1, 2... in order), and
  ``{"node": "module.Type", "keys": [["attr", name] | ["index", i] | ["key", k],
  ...], "children": [...]}`` for any other registered pytree node (dataclasses,
  namedtuples). Only ``like=`` rebuilds those types (loading never imports or
  calls user code); without it they come back as dicts keyed by field name.

Format 1 (ftx.io before the header checksum) is the same doc with ``"format": 1``
and no ``"ftx.io.crc32"``, written by the safetensors package; it still loads,
with only the tensors' bytes checksummed.
"""

from __future__ import annotations

import collections
import json
import zlib
from typing import Any

import torch

from .._internal import torch_compat as _tc

FORMAT = 2
LEGACY_FORMATS = (1,)
META_KEY = "ftx.io"
CRC_KEY = "ftx.io.crc32"
RESERVED_NAME = "__metadata__"
MAX_HEADER = 100_000_000  # the safetensors package's own limit
MAX_DEPTH = 100  # containers nested deeper are refused (JSON and recursion limits)
MAX_INT = 10**4300  # Python's default int <-> str limit: larger ints are refused
_CRC_HEAD = '{"__metadata__":{"' + CRC_KEY + '":"'
CRC_AT = len(_CRC_HEAD)  # where the 8 hex digits sit in the header
_ZERO_CRC = b"00000000"
_ENTRY_KEYS = {"dtype", "shape", "data_offsets"}

# safetensors dtype codes -> torch dtypes (the ones the safetensors package maps).
ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U64": torch.uint64, "U32": torch.uint32, "U16": torch.uint16, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}
ST_CODES: dict[torch.dtype, str] = {v: k for k, v in ST_DTYPES.items()}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def crc32(data: bytes | bytearray | memoryview, start: int = 0) -> int:
    """CRC-32 of a byte buffer (continuing from ``start``)."""
    return zlib.crc32(data, start) & 0xFFFFFFFF


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """The raw bytes of a contiguous CPU tensor (any dtype, bfloat16 and bool included)."""
    flat = t.reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    arr: Any = flat.view(torch.uint8).numpy()
    return memoryview(arr).cast("B")


# ---------------------------------------------------------------------------------
# Saving: walk the tree once (cycles, depth, keys), build the header.


def key_problem(k: Any) -> tuple[type[Exception], str, str] | None:
    """Why dict key ``k`` cannot be saved: ``(error class, what came, how to fix)``."""
    if isinstance(k, bool) or not isinstance(k, str | int):
        return TypeError, f"{type(k).__name__} {k!r:.40}", "Use str or int keys."
    if isinstance(k, int):
        if abs(k) >= MAX_INT:
            return (ValueError, f"an int key of {abs(k).bit_length()} bits (more than 4300 "
                    "digits)", "Use a shorter key.")
        return None
    if k == "":
        return ValueError, "an empty string key", "Name the entry."
    if k == RESERVED_NAME:
        return (ValueError, "the key '__metadata__' (reserved by safetensors)",
                "Rename the entry.")
    try:
        k.encode("utf-8")
    except UnicodeEncodeError:
        return (ValueError, f"the key {k!r:.40}, which is not valid Unicode (a lone "
                "surrogate)", "Use a key that encodes as UTF-8.")
    return None


def _key_json(entry: Any) -> list[Any]:
    if isinstance(entry, _tc.GetAttrKey):
        return ["attr", entry.name]
    if isinstance(entry, _tc.SequenceKey):
        return ["index", entry.idx]
    if isinstance(entry, _tc.MappingKey):
        return ["key", entry.key]
    return ["attr", entry]  # refused by the key check unless a string


class TreeError(Exception):
    """A tree that cannot be saved: ``(error class, what is required, what came, fix)``."""


def walk(tree: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """The JSON skeleton of ``tree`` and its ``(path, leaf)`` list in ``ftx.tree`` order.

    Raises :class:`TreeError` for a cycle, nesting deeper than ``MAX_DEPTH`` or a
    key that cannot be saved (see :func:`key_problem`).
    """
    flat: list[tuple[str, Any]] = []
    active: dict[int, str] = {}  # ids of the containers on the current path

    def child(path: str, k: Any) -> str:
        problem = key_problem(k)
        if problem is not None:
            cls, got, fix = problem
            raise TreeError(cls, "dict keys must be str or int that round-trip through the "
                            "file", f"{got} in the container at {where(path)}", fix)
        return f"{path}.{k}" if path else str(k)

    def enc(x: Any, path: str, depth: int) -> Any:
        if x is None:
            return None
        t = type(x)
        container = t in (dict, collections.OrderedDict, list, tuple) or (
            not _tc.tree_is_leaf(x))
        if not container:
            flat.append((path, x))
            return {"leaf": len(flat) - 1}
        if id(x) in active:
            raise TreeError(ValueError, "tree must not contain itself",
                            f"the {t.__name__} at {where(active[id(x)])} again at "
                            f"{where(path)} (a cycle)",
                            "Break the cycle: no container may hold itself.")
        if depth >= MAX_DEPTH:
            raise TreeError(ValueError, f"containers nested at most {MAX_DEPTH} deep",
                            f"deeper nesting at {where(path)}", "Flatten the tree.")
        active[id(x)] = path
        try:
            if t is dict or t is collections.OrderedDict:
                items = [[k, enc(v, child(path, k), depth + 1)] for k, v in x.items()]
                return {"dict" if t is dict else "odict": items}
            if t is list or t is tuple:
                kids = [enc(v, f"{path}.{i}" if path else str(i), depth + 1)
                        for i, v in enumerate(x)]
                return {"list" if t is list else "tuple": kids}
            # any other registered node: flatten one level, keeping the children's keys
            try:
                pairs, _ = _tc.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
            except Exception as e:  # e.g. a node registered without key paths
                raise TreeError(TypeError, "pytree nodes must flatten with key paths",
                                f"{t.__qualname__} at {where(path)} ({e})",
                                "Register it with ftx.tree.register_dataclass.") from None
            keys = [_key_json(kp[0]) if kp else ["index", i] for i, (kp, _) in
                    enumerate(pairs)]
            kids = []
            for k, (_, c) in zip(keys, pairs):
                sub = child(path, k[1]) if k[0] != "index" else (
                    f"{path}.{k[1]}" if path else str(k[1]))
                kids.append(enc(c, sub, depth + 1))
            return {"node": f"{t.__module__}.{t.__qualname__}", "keys": keys,
                    "children": kids}
        finally:
            del active[id(x)]

    return enc(tree, "", 0), flat


def where(path: str) -> str:
    """A leaf's path for messages: ``'a.0'`` or ``the root``."""
    return repr(path) if path else "the root"


def int_ok(v: int) -> bool:
    """Whether an int scalar fits JSON for every Python (at most 4300 digits)."""
    return abs(v) < MAX_INT


def build_header(doc: str, entries: list[tuple[str, str, list[int], int, int]]) -> bytes:
    """The length prefix and padded header, its checksum filled in.

    ``entries``: ``(name, dtype code, shape, begin, end)`` per stored tensor.
    """
    parts = [_CRC_HEAD, _ZERO_CRC.decode(), '","', META_KEY, '":', json.dumps(doc), "}"]
    for name, code, shape, b, e in entries:
        parts.append(f",{json.dumps(name)}:")
        parts.append(json.dumps({"dtype": code, "shape": shape, "data_offsets": [b, e]},
                                separators=(",", ":")))
    parts.append("}")
    text = "".join(parts).encode("ascii")
    text += b" " * (-len(text) % 8)
    head = bytearray(len(text).to_bytes(8, "little") + text)
    crc = crc32(head)
    head[8 + CRC_AT : 8 + CRC_AT + 8] = b"%08x" % crc
    return bytes(head)


# ---------------------------------------------------------------------------------
# Loading: parse and verify the header, validate the doc and the skeleton.


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(
                f"a safetensors file, got the key {k!r:.60} twice in one header object: the "
                "file is corrupted"
            )
        out[k] = v
    return out


def header_length(prefix: bytes, size: int) -> int:
    """The header length from the 8-byte prefix, checked against the file's ``size``.

    Raises ``ValueError`` (without the ``ftx.io.load:`` prefix) saying what is wrong.
    """
    if size < 8:
        raise ValueError(
            f"a safetensors file (8-byte header length, JSON header, data), got a file of "
            f"{size} bytes: it is truncated or not a safetensors file"
        )
    n = int.from_bytes(prefix, "little")
    if n > size - 8:
        raise ValueError(
            f"a safetensors file, got a header length of {n} bytes in a file of {size} bytes: "
            "it is truncated or not a safetensors file"
        )
    if n > MAX_HEADER:
        raise ValueError(
            f"a safetensors file with a header of at most {MAX_HEADER} bytes, got a header "
            f"length of {n} bytes: the file is corrupted or not a safetensors file"
        )
    return n


def parse_header(
    prefix: bytes, raw: bytes, size: int
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """Check the header of a file of ``size`` bytes: ``(entries in data order, metadata)``.

    Checks the JSON, every tensor entry, that the tensors tile the data region
    exactly, and for format 2 the header checksum. Raises ``ValueError`` (without
    the ``ftx.io.load:`` prefix) saying what is wrong.
    """
    if not raw.startswith(b"{"):
        raise ValueError(
            "a safetensors file, got a header that does not start with '{': it is corrupted "
            "or not a safetensors file"
        )
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ValueError("a safetensors file, got a header nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, duplicates
        if str(e).startswith("a safetensors file"):
            raise
        raise ValueError(
            f"a safetensors file, got a header that is not valid JSON ({e}): the file is "
            "corrupted or not a safetensors file"
        ) from None
    if not isinstance(header, dict):
        raise ValueError("a safetensors file, got a header that is not a JSON object")
    meta = header.pop("__metadata__", None)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ValueError("a safetensors file, got __metadata__ that is not a map of strings")
    if CRC_KEY in meta:
        _check_header_crc(prefix, raw, meta[CRC_KEY])
    entries = []
    for name, ent in header.items():
        if not _entry_ok(ent):
            raise ValueError(
                f"a safetensors file, got a malformed header entry for tensor {name!r:.60} "
                f"({json.dumps(ent)[:80]}): the file is corrupted"
            )
        entries.append((name, ent))
    entries.sort(key=lambda x: (x[1]["data_offsets"][0], x[1]["data_offsets"][1]))
    end = 0
    for name, ent in entries:
        lo, hi = ent["data_offsets"]
        if lo != end:
            raise ValueError(
                f"a safetensors file whose tensors fill the data back to back, got tensor "
                f"{name!r:.60} at byte {lo} where {end} was expected: the file is corrupted"
            )
        end = hi
    expected = 8 + len(raw) + end
    if size < expected:
        raise ValueError(
            f"a complete safetensors file of {expected} bytes, got {size} bytes: the file is "
            "truncated"
        )
    if size > expected:
        raise ValueError(
            f"a safetensors file of {expected} bytes, got {size} bytes ({size - expected} "
            "trailing bytes): the file is corrupted"
        )
    return entries, meta


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _entry_ok(ent: Any) -> bool:
    if not (isinstance(ent, dict) and set(ent) == _ENTRY_KEYS and ent["dtype"] in ST_DTYPES):
        return False
    shape, offs = ent["shape"], ent["data_offsets"]
    if not (isinstance(shape, list) and all(_is_int(d) and d >= 0 for d in shape)):
        return False
    if not (isinstance(offs, list) and len(offs) == 2 and all(_is_int(o) for o in offs)):
        return False
    numel, span = 1, 1
    for d in shape:
        numel, span = numel * d, span * max(d, 1)
    if span >= 2**62:  # torch could not even describe it (strides overflow)
        return False
    item = ST_DTYPES[ent["dtype"]].itemsize
    return bool(0 <= offs[0] and offs[1] - offs[0] == numel * item)


def _check_header_crc(prefix: bytes, raw: bytes, value: str) -> None:
    at = raw[CRC_AT : CRC_AT + 8]
    ok = (
        raw.startswith(_CRC_HEAD.encode())
        and at == value.encode("ascii", "replace")
        and len(value) == 8
        and all(c in "0123456789abcdef" for c in value)
    )
    if not ok:
        raise ValueError(
            f"an ftx.io header with its checksum at byte {8 + CRC_AT}, got {CRC_KEY} "
            f"{value!r:.20} elsewhere or malformed: the file is corrupted or was rewritten by "
            "another tool"
        )
    got = crc32(raw[CRC_AT + 8 :], crc32(_ZERO_CRC, crc32(raw[:CRC_AT], crc32(prefix))))
    if got != int(value, 16):
        raise ValueError(
            f"intact, got a header checksum mismatch (stored {value}, computed {got:08x}): "
            "the file is corrupted"
        )


def _skeleton_error(s: Any) -> ValueError:
    return ValueError(f"bad skeleton entry {json.dumps(s)[:60]}")


def check_skeleton(skel: Any, n_leaves: int) -> None:
    """Check a loaded skeleton: known entries, keys, depth, leaves numbered 0..n-1 in order.

    Raises ``ValueError`` saying what is wrong.
    """
    count = [0]

    def chk(s: Any, depth: int) -> None:
        if s is None:
            return
        if depth > MAX_DEPTH or not isinstance(s, dict):
            raise _skeleton_error(s)
        if set(s) == {"leaf"}:
            if not _is_int(s["leaf"]) or s["leaf"] != count[0]:
                raise _skeleton_error(s)
            count[0] += 1
            return
        if len(s) == 1 and next(iter(s)) in ("dict", "odict"):
            pairs = next(iter(s.values()))
            if not isinstance(pairs, list):
                raise _skeleton_error(s)
            for p in pairs:
                if not (isinstance(p, list) and len(p) == 2 and key_problem(p[0]) is None):
                    raise _skeleton_error(s)
                chk(p[1], depth + 1)
            return
        if len(s) == 1 and next(iter(s)) in ("list", "tuple"):
            kids = next(iter(s.values()))
            if not isinstance(kids, list):
                raise _skeleton_error(s)
            for c in kids:
                chk(c, depth + 1)
            return
        if set(s) == {"node", "keys", "children"}:
            keys, kids = s["keys"], s["children"]
            if not (isinstance(s["node"], str) and isinstance(keys, list)
                    and isinstance(kids, list) and len(keys) == len(kids)):
                raise _skeleton_error(s)
            for k in keys:
                ok = isinstance(k, list) and len(k) == 2 and (
                    (k[0] == "index" and _is_int(k[1]))
                    or (k[0] in ("attr", "key") and key_problem(k[1]) is None))
                if not ok:
                    raise _skeleton_error(s)
            for c in kids:
                chk(c, depth + 1)
            return
        raise _skeleton_error(s)

    chk(skel, 0)
    if count[0] != n_leaves:
        raise ValueError(f"a skeleton with {n_leaves} leaves, got {count[0]}")


def decode_skeleton(skel: Any, leaves: list[Any]) -> Any:
    """Rebuild the tree from a checked skeleton and its leaves (``like=None`` path).

    Registered nodes (dataclasses, namedtuples) come back as dicts keyed by field
    name (lists when their keys are indices).
    """

    def dec(s: Any) -> Any:
        if s is None:
            return None
        if "leaf" in s:
            return leaves[s["leaf"]]
        if "dict" in s:
            return {k: dec(v) for k, v in s["dict"]}
        if "odict" in s:
            return collections.OrderedDict((k, dec(v)) for k, v in s["odict"])
        if "list" in s:
            return [dec(v) for v in s["list"]]
        if "tuple" in s:
            return tuple(dec(v) for v in s["tuple"])
        keys, vals = s["keys"], [dec(c) for c in s["children"]]
        if keys and all(k[0] == "index" for k in keys):
            return vals
        return {k[1]: v for k, v in zip(keys, vals)}

    return dec(skel)


_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "bool": (bool,), "int": (int,), "float": (float,), "str": (str,),
}


def check_table(table: Any, entries: dict[str, dict[str, Any]]) -> None:
    """Check a loaded leaf table against the header's tensor entries.

    Raises ``ValueError`` saying what is wrong (which leaf and how).
    """
    if not isinstance(table, list):
        raise ValueError("a leaf table that is a list")
    used = set()
    for ent in table:
        if not (isinstance(ent, dict) and isinstance(ent.get("path"), str)):
            raise ValueError(f"a leaf entry with a path, got {json.dumps(ent)[:80]}")
        kind = ent.get("kind")
        if kind == "tensor":
            name = ent.get("name")
            st = entries.get(name) if isinstance(name, str) else None
            crc = ent.get("crc32")
            if (st is None or set(ent) != {"path", "kind", "name", "dtype", "shape", "crc32"}
                    or not isinstance(crc, int) or isinstance(crc, bool) or not 0 <= crc < 2**32):
                raise ValueError(f"a tensor leaf entry naming a stored tensor, got "
                                 f"{json.dumps(ent)[:80]}")
            want = dtype_name(ST_DTYPES[st["dtype"]])
            if ent["dtype"] != want or ent["shape"] != st["shape"]:
                raise ValueError(
                    f"consistent, got tensor {name!r} stored as {want} {st['shape']} but "
                    f"recorded as {ent['dtype']} {ent['shape']}"
                )
            used.add(name)
        elif kind in _SCALAR_TYPES:
            v = ent.get("value")
            ok = isinstance(v, _SCALAR_TYPES[kind]) and (kind == "bool" or type(v) is not bool)
            if set(ent) != {"path", "kind", "value"} or not ok:
                raise ValueError(f"a {kind} leaf entry, got {json.dumps(ent)[:80]}")
        else:
            raise ValueError(f"a leaf entry of a known kind, got {json.dumps(ent)[:80]}")
    unused = sorted(set(entries) - used)
    if unused:
        raise ValueError(f"a leaf table using every stored tensor, got {unused[:3]} unused")
