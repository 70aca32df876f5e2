"""ftx.io's file format: a safetensors file whose metadata holds the pytree as JSON.

The metadata key ``"ftx.io"`` holds ``{"format": 1, "tree": skeleton, "leaves": table}``:

* ``table`` lists the leaves in ``ftx.tree`` flattening order. A tensor leaf is
  ``{"path", "kind": "tensor", "name", "dtype", "shape", "crc32"}`` where ``name``
  is its safetensors key (its state-dict path when that is unique) and ``crc32``
  the checksum of its bytes; a Python scalar leaf is ``{"path", "kind":
  "bool"|"int"|"float"|"str", "value"}`` stored as a JSON scalar.
* ``skeleton`` mirrors the containers: ``null`` for ``None``, ``{"dict": [[key,
  child], ...]}``, ``{"odict": ...}`` for ``OrderedDict``, ``{"list": [...]}``,
  ``{"tuple": [...]}``, ``{"leaf": i}``, and ``{"node": "module.Type", "keys":
  [["attr", name] | ["index", i] | ["key", k], ...], "children": [...]}`` for any
  other registered pytree node (dataclasses, namedtuples). Only ``like=`` rebuilds
  those types (loading never imports or calls user code); without it they come
  back as dicts keyed by field name.
"""

from __future__ import annotations

import collections
import json
import zlib
from typing import Any

import torch
import torch.utils._pytree as _pytree

FORMAT = 1
META_KEY = "ftx.io"

# safetensors dtype codes -> torch dtypes (the ones the safetensors package maps).
ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U64": torch.uint64, "U32": torch.uint32, "U16": torch.uint16, "U8": torch.uint8,
    "BOOL": torch.bool, "C64": torch.complex64,
    "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")


def crc32(data: bytes | memoryview) -> int:
    """CRC-32 of a byte buffer."""
    return zlib.crc32(data) & 0xFFFFFFFF


def tensor_bytes(t: torch.Tensor) -> memoryview:
    """The raw bytes of a contiguous CPU tensor (any dtype, bfloat16 and bool included)."""
    flat = t.reshape(-1)
    if flat.numel() == 0:
        return memoryview(b"")
    arr: Any = flat.view(torch.uint8).numpy()
    return memoryview(arr).cast("B")


def _key_json(entry: Any) -> list[Any]:
    if isinstance(entry, _pytree.GetAttrKey):
        return ["attr", entry.name]
    if isinstance(entry, _pytree.SequenceKey):
        return ["index", entry.idx]
    if isinstance(entry, _pytree.MappingKey) and isinstance(entry.key, str | int):
        return ["key", entry.key]
    return ["attr", str(entry)]  # pragma: no cover - exotic key types


def encode_skeleton(tree: Any) -> Any:
    """The JSON skeleton of ``tree``; leaves numbered in ``ftx.tree`` order."""
    counter = [0]

    def enc(x: Any, path: str) -> Any:
        if x is None:
            return None
        t = type(x)
        if t is dict or t is collections.OrderedDict:
            items = []
            for k, v in x.items():
                if isinstance(k, bool) or not isinstance(k, str | int):
                    where = path or "<root>"
                    raise TypeError(
                        f"ftx.io.save: dict keys must be str or int, got {type(k).__name__} "
                        f"{k!r:.40} at {where!r}. Use string keys."
                    )
                items.append([k, enc(v, f"{path}.{k}" if path else str(k))])
            return {"dict" if t is dict else "odict": items}
        if t is list or t is tuple:
            children = [enc(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(x)]
            return {"list" if t is list else "tuple": children}
        if _pytree.tree_is_leaf(x):
            counter[0] += 1
            return {"leaf": counter[0] - 1}
        # any other registered node: flatten one level, keeping the children's keys
        kids, _ = _pytree.tree_flatten_with_path(x, is_leaf=lambda y: y is not x)
        keys = [_key_json(kp[0]) if kp else ["index", i] for i, (kp, _) in enumerate(kids)]
        children = [enc(c, f"{path}.{k[1]}" if path else str(k[1])) for k, (_, c) in
                    zip(keys, kids)]
        return {"node": f"{t.__module__}.{t.__qualname__}", "keys": keys, "children": children}

    return enc(tree, "")


def decode_skeleton(skel: Any, leaves: list[Any], strict: bool = False) -> Any:
    """Rebuild the tree from its skeleton and leaves (``like=None`` path).

    Registered nodes (dataclasses, namedtuples) come back as dicts keyed by field
    name (lists when their keys are indices); ``strict`` raises ``LookupError``
    ``(type name, path)`` instead.
    """

    def dec(s: Any, path: str) -> Any:
        if s is None:
            return None
        if not isinstance(s, dict) or len(s) not in (1, 3):
            raise ValueError(f"bad skeleton entry {s!r:.60}")
        if "leaf" in s:
            return leaves[s["leaf"]]
        if "dict" in s or "odict" in s:
            pairs: list[Any] = s["dict"] if "dict" in s else s["odict"]
            items = [(k, dec(v, f"{path}.{k}" if path else str(k))) for k, v in pairs]
            return dict(items) if "dict" in s else collections.OrderedDict(items)
        if "list" in s or "tuple" in s:
            seq: list[Any] = s["list"] if "list" in s else s["tuple"]
            kids = [dec(v, f"{path}.{i}" if path else str(i)) for i, v in enumerate(seq)]
            return kids if "list" in s else tuple(kids)
        if "node" in s:
            if strict:
                raise LookupError(s["node"], path or "<root>")
            keys, children = s["keys"], s["children"]
            vals = [dec(c, f"{path}.{k[1]}" if path else str(k[1])) for k, c in
                    zip(keys, children)]
            if keys and all(k[0] == "index" for k in keys):
                return vals
            return {k[1]: v for k, v in zip(keys, vals)}
        raise ValueError(f"bad skeleton entry {s!r:.60}")

    return dec(skel, "")


def parse_header(data: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Check the safetensors framing of ``data``; return ``(data_start, entries, metadata)``.

    Raises ``ValueError`` (without the ``ftx.io.load:`` prefix) saying what is wrong.
    """
    size = len(data)
    if size < 8:
        raise ValueError(
            f"a safetensors file (8-byte header length, JSON header, data), got a file of "
            f"{size} bytes: it is truncated or not a safetensors file"
        )
    n = int.from_bytes(data[:8], "little")
    if n > size - 8:
        raise ValueError(
            f"a safetensors file, got a header length of {n} bytes in a file of {size} bytes: "
            "it is truncated or not a safetensors file"
        )
    try:
        header = json.loads(data[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as e:
        raise ValueError(
            f"a safetensors file, got a header that is not valid JSON ({e}): the file is "
            "corrupted or not a safetensors file"
        ) from None
    if not isinstance(header, dict):
        raise ValueError("a safetensors file, got a header that is not a JSON object")
    meta = header.pop("__metadata__", None) or {}
    end = 0
    for name, ent in header.items():
        ok = (
            isinstance(ent, dict)
            and ent.get("dtype") in ST_DTYPES
            and isinstance(ent.get("shape"), list)
            and all(isinstance(d, int) and d >= 0 for d in ent["shape"])
            and isinstance(ent.get("data_offsets"), list)
            and len(ent["data_offsets"]) == 2
            and all(isinstance(o, int) for o in ent["data_offsets"])
            and 0 <= ent["data_offsets"][0] <= ent["data_offsets"][1]
        )
        if not ok:
            raise ValueError(
                f"a safetensors file, got a malformed header entry for tensor {name!r} "
                f"({json.dumps(ent)[:80]}): the file is corrupted"
            )
        end = max(end, ent["data_offsets"][1])
    expected = 8 + n + end
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
    if not isinstance(meta, dict):
        raise ValueError("a safetensors file, got __metadata__ that is not a JSON object")
    return 8 + n, header, meta
