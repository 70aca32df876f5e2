"""Bad arguments as source text, and the namespace they are evaluated in.

Every fuzz value is a short Python expression (``"torch.ones(1).expand(3)"``,
``"cyc_list()"``): evaluated fresh for every example, so no example sees another's
objects, and printed as-is in a failure's reproducer. Pools are tuples of such
expressions; ``strategies`` turns them into hypothesis strategies, adding generated
shapes, numbers and nested trees.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import functools
import json
import math
import operator
import os
import pathlib
import struct
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.utils._pytree as pytree
from hypothesis import strategies as st

import ftx


class FuzzUserError(Exception):
    """Raised by fuzz callables on purpose: must reach the caller unchanged."""


# ----------------------------------------------------------------------------- helpers


def cyc_list() -> list[Any]:
    a: list[Any] = [torch.ones(2)]
    a.append(a)
    return a


def cyc_dict() -> dict[str, Any]:
    d: dict[str, Any] = {"w": torch.ones(2)}
    d["self"] = d
    return d


def cyc_deep() -> dict[str, Any]:
    """A cycle two levels down: ``{"a": [{"b": <the outer dict>}]}``."""
    d: dict[str, Any] = {"t": torch.ones(2)}
    d["a"] = [{"b": d}]
    return d


def deep(n: int = 3000) -> Any:
    """A list nested ``n`` deep with a tensor at the bottom (beyond the recursion limit)."""
    x: Any = torch.ones(1)
    for _ in range(n):
        x = [x]
    return x


def inference_tensor(*shape: int) -> torch.Tensor:
    with torch.inference_mode():
        return torch.ones(*shape or (3,))


def inference_key() -> torch.Tensor:
    with torch.inference_mode():
        return ftx.random.key(0)


class Pair(NamedTuple):
    a: Any
    b: Any


@ftx.tree.register_dataclass
@dataclasses.dataclass
class Box:
    w: Any
    tag: str = ftx.tree.static_field(default="box")


class Opaque:
    """An unregistered class: a leaf to every pytree walker."""

    def __repr__(self) -> str:
        return "Opaque()"


# -------------------------------------------------------------------- fuzz callables

def _tleaves(x: Any) -> list[Any]:
    return [t for t in pytree.tree_leaves(x) if isinstance(t, torch.Tensor)]


def f_sum(x: Any, *rest: Any) -> Any:
    """The sum of every tensor in ``x`` (robust: non-tensor leaves are ignored)."""
    total: Any = torch.tensor(0.0)
    for t in _tleaves(x):
        total = total + t.sum()
    return total


def f_id(x: Any, *rest: Any) -> Any:
    return x


def f_sin(x: Any, *rest: Any) -> Any:
    """``sin`` of every tensor leaf of ``x``; other leaves pass through."""
    return pytree.tree_map(lambda t: torch.sin(t) if isinstance(t, torch.Tensor) else t, x)


def f_aux(x: Any, *rest: Any) -> tuple[torch.Tensor, Any]:
    return f_sum(x), {"n": torch.tensor(1.0)}


def f_nullary() -> torch.Tensor:
    return torch.tensor(0.0)


def f_raise(*args: Any, **kw: Any) -> Any:
    raise FuzzUserError("raised by the user's function")


def f_str(*args: Any, **kw: Any) -> Any:
    return "not a tensor"


def f_none(*args: Any, **kw: Any) -> Any:
    return None


def f_int_out(x: Any, *rest: Any) -> torch.Tensor:
    return torch.tensor(3)


def f_complex_out(x: Any, *rest: Any) -> torch.Tensor:
    return (f_sum(x) * 1j) if torch.is_tensor(f_sum(x)) else torch.tensor(1j)


def f_vec(x: Any, *rest: Any) -> torch.Tensor:
    return torch.stack([f_sum(x), f_sum(x)])


def f_cyc_out(*args: Any, **kw: Any) -> Any:
    return cyc_list()


def f_tuple1(x: Any, *rest: Any) -> Any:
    return (f_sum(x),)


def f_triple(x: Any, *rest: Any) -> Any:
    return (f_sum(x), 1, 2)


def f_item(x: Any, *rest: Any) -> Any:
    s = f_sum(x)
    return s * 2 if float(s) > 0 else s


def f_meta_out(*args: Any, **kw: Any) -> Any:
    return torch.ones((), device="meta")


def f_gen(*args: Any, **kw: Any) -> Any:
    yield torch.tensor(0.0)


def f_np_out(*args: Any, **kw: Any) -> Any:
    return np.float64(1.0)


def f_float_out(*args: Any, **kw: Any) -> Any:
    return 1.0


# custom_vjp / custom_jvp rules
def fwd_ok(x: Any, *rest: Any) -> Any:
    return f_sin(x), x


def fwd_no_pair(x: Any, *rest: Any) -> Any:
    return f_sin(x)


def bwd_ok(res: Any, g: Any) -> Any:
    return (pytree.tree_map(lambda r, gg: torch.cos(r) * gg if isinstance(r, torch.Tensor)
                            else gg, res, g),)


def bwd_not_tuple(res: Any, g: Any) -> Any:
    return g


def bwd_two(res: Any, g: Any) -> Any:
    return (g, g)


def bwd_shape(res: Any, g: Any) -> Any:
    return (torch.ones(7),)


def bwd_dtype(res: Any, g: Any) -> Any:
    return (torch.ones(3, dtype=torch.float64),)


def bwd_int(res: Any, g: Any) -> Any:
    return (torch.ones(3, dtype=torch.int64),)


def jvp_ok(primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return f_sin(x), pytree.tree_map(
        lambda a, b: torch.cos(a) * b if isinstance(a, torch.Tensor) else b, x, t)


def jvp_not_pair(primals: Any, tangents: Any) -> Any:
    return torch.sin(primals[0])


def jvp_shape(primals: Any, tangents: Any) -> Any:
    return torch.sin(primals[0]), torch.ones(7)


def jvp_dtype(primals: Any, tangents: Any) -> Any:
    return torch.sin(primals[0]), torch.ones(3, dtype=torch.float64)


def jvp_nonlinear(primals: Any, tangents: Any) -> Any:
    return torch.sin(primals[0]), tangents[0] ** 2


def jvp_primal_wrong(primals: Any, tangents: Any) -> Any:
    return torch.ones(5), tangents[0]


def make_custom_vjp(fun: Any, fwd: Any, bwd: Any, nondiff: Any = ()) -> Any:
    f = ftx.custom_vjp(fun, nondiff_argnums=nondiff)
    f.defvjp(fwd, bwd)
    return f


def make_custom_jvp(fun: Any, rule: Any, nondiff: Any = ()) -> Any:
    f = ftx.custom_jvp(fun, nondiff_argnums=nondiff)
    f.defjvp(rule)
    return f


def pg_sq(x: Any, *rest: Any) -> Any:
    """A picograd function: the sum of the squares of ``x``'s leaves (Vars or numbers)."""
    total: Any = 0.0
    for v in pytree.tree_leaves(x):
        if v is not None:
            total = total + v * v
    return total


def pg_aux(x: Any, *rest: Any) -> Any:
    return pg_sq(x), "aux"


# nn helpers
def init(layer: Any) -> Any:
    """``layer.init(key(0))``: the good parameters of a layer."""
    return layer.init(ftx.random.key(0))


def run_layer(layer: Any, x: Any) -> Any:
    """Build, init and apply: how a layer's hyper-parameters are exercised."""
    return layer(layer.init(ftx.random.key(0)), x)


def bad_params(layer: Any, kind: str) -> Any:
    """``layer``'s parameters, broken one way (``kind``)."""
    params = init(layer)
    flat = ftx.tree.leaves_with_path(params)
    if not flat:
        return {"bogus": torch.ones(1)}
    path, leaf = flat[0]

    def put(value: Any) -> Any:
        return ftx.tree.map_with_path(lambda p, x: value if p == path else x, params)

    if kind == "drop":
        return _drop(params, path)
    if kind == "extra":
        out = dict(params)
        out["bogus"] = torch.ones(1)
        return out
    return put({
        "shape": lambda: torch.ones(*leaf.shape, 2),
        "shape0": lambda: torch.ones(0),
        "int": lambda: leaf.to(torch.int64),
        "f64": lambda: leaf.to(torch.float64),
        "f16": lambda: leaf.to(torch.float16),
        "meta": lambda: leaf.to("meta"),
        "expand": lambda: leaf.flatten()[:1].expand(leaf.numel()).reshape(leaf.shape),
        "nan": lambda: torch.full_like(leaf, float("nan")),
        "str": lambda: "w",
        "none": lambda: None,
        "np": lambda: leaf.numpy(),
        "complex": lambda: leaf.to(torch.complex64),
        "grad": lambda: leaf.clone().requires_grad_(),
    }[kind]())


def _drop(params: Any, path: str) -> Any:
    if isinstance(params, dict):
        head, _, rest = path.partition(".")
        if not rest:
            return {k: v for k, v in params.items() if k != head}
        return {k: (_drop(v, rest) if k == head else v) for k, v in params.items()}
    return params


PARAM_KINDS = ("drop", "extra", "shape", "shape0", "int", "f64", "f16", "meta", "expand", "nan",
               "str", "none", "np", "complex", "grad")


# optim helpers
def P() -> dict[str, torch.Tensor]:
    return {"w": torch.ones(3), "b": torch.zeros(2)}


def G() -> dict[str, torch.Tensor]:
    return {"w": torch.full((3,), 0.5), "b": torch.full((2,), -0.5)}


def run_opt(opt: Any) -> Any:
    """Two steps of ``opt`` on small parameters: how hyper-parameters are exercised."""
    params = P()
    state = opt.init(params)
    for _ in range(2):
        updates, state = opt.update(G(), state, params)
        params = ftx.optim.apply_updates(params, updates)
    return params


def sched_bad(step: Any) -> Any:
    return "not a number"


def sched_nan(step: Any) -> Any:
    return float("nan")


def sched_raise(step: Any) -> Any:
    raise FuzzUserError("raised by the user's schedule")


# ----------------------------------------------------------------- io: lying files

_EX: dict[str, str] = {"dir": "/tmp"}


def set_example_dir(path: str) -> None:
    _EX["dir"] = path


def dpath(name: str = "ck.safetensors") -> str:
    return os.path.join(_EX["dir"], name)


def existing_ckpt(name: str = "ck.safetensors") -> str:
    """A valid checkpoint on disk (its path): a failed save must leave it intact."""
    p = dpath(name)
    if not os.path.exists(p):
        ftx.io.save(p, {"w": torch.arange(6.0).reshape(2, 3), "step": 3})
    return p


def _write(name: str, data: bytes) -> str:
    p = dpath(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def _plain(header: Any, data: bytes = b"", length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    n = len(raw) if length is None else length
    return struct.pack("<Q", n) + raw + data


def _flip(data: bytes, at: int, bit: int) -> bytes:
    b = bytearray(data)
    b[at] ^= bit
    return bytes(b)


def lying(kind: str) -> str:
    """A file that lies about itself; its path."""
    def good() -> bytes:
        with open(existing_ckpt("good.safetensors"), "rb") as f:
            return f.read()

    t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    files: dict[str, Any] = {
        "empty": lambda: b"",
        "short": lambda: b"\x01\x02\x03",
        "truncated": lambda: good()[: len(good()) // 2],
        "truncated_data": lambda: good()[:-3],
        "random": lambda: bytes(np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8)),
        "zeros": lambda: b"\0" * 64,
        "huge_header_len": lambda: struct.pack("<Q", 2**62) + b"{}",
        "huge_header_len2": lambda: struct.pack("<Q", 2**64 - 1) + b"{}" + b" " * 6,
        "huge_shape": lambda: _plain({"x": {"dtype": "F32", "shape": [2**40, 2**40],
                                            "data_offsets": [0, 8]}}, b"\0" * 8),
        "huge_offsets": lambda: _plain({"x": {"dtype": "F32", "shape": [2],
                                              "data_offsets": [0, 2**62]}}, b"\0" * 8),
        "neg_shape": lambda: _plain({"x": {"dtype": "F32", "shape": [-2],
                                           "data_offsets": [0, 8]}}, b"\0" * 8),
        "bad_dtype": lambda: _plain({"x": {"dtype": "Q99", "shape": [2],
                                           "data_offsets": [0, 8]}}, b"\0" * 8),
        "float_shape": lambda: _plain({"x": {"dtype": "F32", "shape": [2.5],
                                             "data_offsets": [0, 8]}}, b"\0" * 8),
        "overlap": lambda: _plain({"x": t, "y": t}, b"\0" * 8),
        "not_dict": lambda: _plain([1, 2, 3]),
        "not_json": lambda: struct.pack("<Q", 8) + b"{not js}",
        "bad_utf8": lambda: struct.pack("<Q", 8) + b"{\xff\xfe\xfd  }",
        "deep_json": lambda: _plain(json.loads("[" * 50 + "]" * 50)),
        "deep_json2": lambda: struct.pack("<Q", 40008) + b"{\"a\":" + b"[" * 20000
        + b"]" * 20000 + b"}  ",
        "meta_not_str": lambda: _plain({"__metadata__": {"ftx.io": 5}}),
        "meta_garbage": lambda: _plain({"__metadata__": {"ftx.io": "{\"format\": 2}"}}),
        "meta_lies": lambda: _plain({"__metadata__": {"ftx.io": json.dumps(
            {"format": 1, "tree": {"leaf": 5}, "leaves": [{"path": "x", "kind": "tensor",
                                                            "name": "nope"}]})}}),
        "meta_huge_leaf": lambda: _plain({"__metadata__": {"ftx.io": json.dumps(
            {"format": 1, "tree": {"list": [{"leaf": 0}] * 3}, "leaves": [
                {"path": "0", "kind": "int", "value": 1}]})}}),
        "flipped": lambda: _flip(good(), -1, 1),
        "header_flipped": lambda: _flip(good(), 20, 4),
        "good_plain": lambda: _plain({"x": t}, b"\0" * 8),
    }
    return _write(f"lying_{kind}.safetensors", files[kind]())


LYING = (
    "empty", "short", "truncated", "truncated_data", "random", "zeros", "huge_header_len",
    "huge_header_len2", "huge_shape", "huge_offsets", "neg_shape", "bad_dtype",
    "float_shape", "overlap", "not_dict", "not_json", "bad_utf8", "deep_json", "deep_json2",
    "meta_not_str", "meta_garbage", "meta_lies", "meta_huge_leaf", "flipped",
    "header_flipped",
)


def fifo() -> str:
    p = dpath("fifo")
    if not os.path.exists(p):
        os.mkfifo(p)
    return p


# --------------------------------------------------------------------------- pools

KINDS: tuple[str, ...] = (
    "None", "'bogus'", "''", "b'bytes'", "{}", "[]", "()", "{'a': 1}", "[1, 2]", "{1, 2}",
    "object()", "Opaque()", "lambda *a, **k: None", "torch.nn.Linear(2, 2)", "np.ones(3)",
    "np.float64(1.5)", "np.int64(2)", "0", "1", "-1", "2**62", "-2**62", "10**400", "1.5",
    "float('nan')", "float('inf')", "-float('inf')", "1j", "True", "False", "cyc_list()",
    "cyc_dict()", "torch.float32", "torch.device('meta')", "Ellipsis", "slice(None)",
    "range(3)", "type", "print",
)

TENSORS: tuple[str, ...] = (
    "torch.ones(3, dtype=torch.int64)", "torch.ones(3, dtype=torch.int32)",
    "torch.ones(3, dtype=torch.bool)", "torch.ones(3, dtype=torch.uint8)",
    "torch.ones(3, dtype=torch.complex64)", "torch.ones(3, dtype=torch.float16)",
    "torch.ones(3, dtype=torch.bfloat16)", "torch.ones(3, dtype=torch.float64)",
    "torch.ones(3, device='meta')", "torch.empty(2**60, device='meta')",
    "torch.ones(1).expand(3)", "torch.ones(3, 4).t()", "torch.ones(6)[::2]",
    "torch.ones(())", "torch.ones(0)", "torch.ones(2, 3)", "torch.ones(1, 1, 1, 1, 1)",
    "torch.ones(0, 3)", "torch.full((3,), float('nan'))", "torch.full((3,), float('inf'))",
    "torch.ones(3, requires_grad=True)", "torch.nn.Parameter(torch.ones(3))",
    "inference_tensor(3)", "torch.ones(3).to_sparse()", "ftx.nn.NamedTensor(torch.ones(3), ('N',))",
    "torch.ones(3, dtype=torch.float8_e4m3fn)", "torch.ones(3, dtype=torch.uint32)",
    "torch.ones(2, 2, 2, 2).to(memory_format=torch.channels_last)",
)

TREES: tuple[str, ...] = (
    "{}", "[]", "()", "None", "[None]", "{'a': None}", "{'a': torch.ones(3)}",
    "[torch.ones(3), torch.ones(2)]", "(torch.ones(3), torch.ones(3))",
    "{'a': {'b': torch.ones(3)}}", "(torch.ones(3), 'x')", "[torch.ones(3), 1.5]",
    "{1: torch.ones(3)}", "{1: torch.ones(3), 'a': torch.ones(3)}", "{(1, 2): torch.ones(3)}",
    "{'a.b': torch.ones(3)}", "{'': torch.ones(3)}", "cyc_list()", "cyc_dict()", "cyc_deep()",
    "deep(3000)", "deep(50)", "collections.OrderedDict(a=torch.ones(3))",
    "collections.defaultdict(list, a=torch.ones(3))", "Pair(torch.ones(3), torch.ones(3))",
    "Box(torch.ones(3))", "[Opaque()]", "{'a': [torch.ones(3), {'b': (torch.ones(3),)}]}",
    "[torch.ones(3, dtype=torch.int64)]", "{'a': torch.ones(3, device='meta')}",
    "[torch.ones(1).expand(3)]", "[np.ones(3)]", "[[[]]]",
)

NUMS: tuple[str, ...] = (
    "-1", "0", "-0.0", "2**62", "-2**62", "10**400", "1e308 * 10", "float('nan')",
    "float('inf')", "-float('inf')", "1e-320", "-1e-3", "1j", "True", "False",
    "np.float32('nan')", "np.float64(0.5)", "torch.tensor(0.5)", "torch.tensor([0.1, 0.2])",
    "torch.tensor(float('nan'))", "torch.tensor(0.5, requires_grad=True)", "'0.1'", "None",
    "1.5", "100", "0.5", "(0.9, 0.999)",
)

INTS: tuple[str, ...] = (
    "-1", "0", "1", "2", "3", "-3", "2**40", "2**62", "-2**62", "2**64", "10**400", "1.5",
    "float('nan')", "True", "np.int64(2)", "torch.tensor(2)", "torch.tensor([1, 2])", "'2'",
    "None", "(1,)", "[1]",
)

SHAPES: tuple[str, ...] = (
    "-1", "(-1,)", "(2, -3)", "(2**62,)", "(2**31, 2**31)", "(2**62, 2**62)", "2**62",
    "(1.5,)", "'3'", "(None,)", "[[2]]", "(True,)", "(np.int64(2),)", "torch.Size([0])",
    "(0,)", "()", "torch.tensor([2, 3])", "(2, 'a')", "{2: 3}", "10**400", "(10**400,)",
)

DTYPES: tuple[str, ...] = (
    "torch.int64", "torch.int32", "torch.bool", "torch.uint8", "torch.uint32",
    "torch.complex64", "torch.float16", "torch.bfloat16", "torch.float8_e4m3fn",
    "torch.qint8", "'float32'", "float", "int", "np.float32", "None",
)

DEVICES: tuple[str, ...] = (
    "'meta'", "'cuda'", "'cuda:99'", "'bogus'", "'cpu:5'", "torch.device('meta')", "-1",
    "5", "'mps'", "None",
)

FUNS: tuple[str, ...] = (
    "None", "'f'", "42", "object()", "Opaque()", "f_nullary", "f_raise", "f_str", "f_none",
    "f_int_out", "f_complex_out", "f_vec", "f_cyc_out", "f_tuple1", "f_triple", "f_item",
    "f_meta_out", "f_gen", "f_np_out", "f_float_out", "f_id", "f_aux", "print",
    "torch.nn.Linear(3, 3)", "functools.partial(f_sum)", "torch.sin", "type",
)

ARGNUMS: tuple[str, ...] = (
    "(0, 0)", "()", "(1,)", "1", "-2", "5", "(0, 'a')", "[0]", "2**62", "-2**62", "True",
    "0.0", "np.int64(0)", "(0, -1)", "None", "'0'", "{0}", "(0, 1.0)", "torch.tensor(0)",
)

FLAGS: tuple[str, ...] = (
    "None", "1", "0", "'yes'", "'False'", "np.bool_(True)", "torch.tensor(True)", "[]",
    "float('nan')", "object()",
)

AXES: tuple[str, ...] = (
    "-3", "2", "5", "2**62", "1.5", "'0'", "(0, 0)", "[0]", "{'a': 0}", "(None,)",
    "((0,),)", "True", "np.int64(0)", "torch.tensor(0)", "(0, 'a')", "cyc_list()", "{}",
    "()", "None",
)

KEYS: tuple[str, ...] = (
    "torch.zeros(3, dtype=torch.int64)", "torch.zeros(2)", "torch.zeros(2, dtype=torch.int32)",
    "torch.zeros(4, 2, dtype=torch.int64)", "torch.tensor([-1, 2**40])",
    "torch.zeros(2, dtype=torch.int64, device='meta')",
    "torch.zeros(1, dtype=torch.int64).expand(2)", "torch.arange(4)[::2]",
    "torch.zeros((), dtype=torch.int64)", "torch.zeros(2, dtype=torch.uint32)",
    "torch.zeros(2, dtype=torch.bool)", "torch.zeros(0, 2, dtype=torch.int64)",
    "inference_key()", "torch.zeros(2, dtype=torch.float64, requires_grad=True)",
    "[0, 0]", "(0, 0)", "np.zeros(2, dtype=np.int64)", "0",
)

STRS: tuple[str, ...] = ("'bogus'", "''", "'MEAN'", "None", "1", "b'mean'", "['mean']")


def with_tuple(pool: tuple[str, ...]) -> tuple[str, ...]:
    """Each value wrapped in a 1-tuple (a primals/tangents tuple holding a bad leaf)."""
    return tuple(f"({v},)" for v in pool)


# ------------------------------------------------------------------------- strategies


def _shape_src(dims: list[int]) -> str:
    return "(" + "".join(f"{d}, " for d in dims) + ")"


# Sizes either small or far beyond any memory (refused at once): never "large but
# allocatable", which would make a case slow and risk the machine's memory.
_DIMS = st.sampled_from([-3, -1, 0, 1, 2, 3, 2**40, 2**62, 2**63])
GEN_SHAPES = st.lists(_DIMS, min_size=0, max_size=4).map(_shape_src)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64).map(
    lambda f: f"float({str(f)!r})"
)
GEN_NUMS = st.one_of(_FLOATS, st.integers(min_value=-(2**70), max_value=2**70).map(str))
_DT = st.sampled_from(["float32", "float64", "float16", "int64", "bool", "complex64"])
_LEAF = st.one_of(
    st.builds(lambda s, d: f"torch.ones({s}, dtype=torch.{d})",
              st.lists(st.integers(0, 3), max_size=3).map(_shape_src), _DT),
    st.sampled_from(["None", "1.5", "'s'", "Opaque()", "np.ones(2)", "torch.ones(1).expand(2)"]),
)
_KEY = st.sampled_from(["'a'", "'b'", "'0'", "1", "'a.b'", "''"])


def _node(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(children, max_size=3).map(lambda xs: "(" + "".join(x + ", " for x in xs) + ")"),
        st.dictionaries(_KEY, children, max_size=3).map(
            lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
        ),
    )


GEN_TREES = st.recursive(_LEAF, _node, max_leaves=6)


def strategy(pool: tuple[str, ...], *gen: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    base: st.SearchStrategy[str] = st.sampled_from(pool)
    return st.one_of(base, *gen) if gen else base


NS: dict[str, Any] = {
    name: value
    for name, value in globals().items()
    if not name.startswith("_") and name not in {"annotations", "st", "NS", "pytree"}
}
NS.update(
    torch=torch, np=np, ftx=ftx, math=math, nn=torch.nn, functools=functools,
    collections=collections, os=os, operator=operator, datetime=datetime,
    dataclasses=dataclasses, pathlib=pathlib,
)
