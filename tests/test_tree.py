"""ftx.tree: structure, paths, dataclasses, arithmetic; None and empty trees."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

import ftx
from tests.helpers import tree_allclose


@ftx.tree.register_dataclass
@dataclasses.dataclass
class Affine:
    w: torch.Tensor
    b: torch.Tensor
    name: str = ftx.tree.static_field(default="affine")


TREES = [
    pytest.param({}, id="empty-dict"),
    pytest.param(None, id="none"),
    pytest.param((), id="empty-tuple"),
    pytest.param({"a": torch.ones(2), "b": [torch.zeros(3), None, (torch.ones(1),)]}, id="nested"),
    pytest.param(torch.arange(3.0), id="bare-leaf"),
]


@pytest.mark.parametrize("tree", TREES)
def test_flatten_unflatten_roundtrip(tree: object) -> None:
    leaves, treedef = ftx.tree.flatten(tree)
    assert all(x is not None for x in leaves)
    assert treedef.num_leaves == len(leaves)
    back = ftx.tree.unflatten(treedef, leaves)
    assert ftx.tree.structure(back) == treedef
    assert ftx.tree.allclose(back, tree)


def test_none_is_an_empty_subtree_like_jax() -> None:
    tree = {"a": 1.0, "b": None, "c": (2.0, None)}
    assert ftx.tree.leaves(tree) == [1.0, 2.0]
    calls = []
    out = ftx.tree.map(lambda x: calls.append(x) or x * 10, tree)
    assert out == {"a": 10.0, "b": None, "c": (20.0, None)}
    assert calls == [1.0, 2.0]


def test_map_several_trees_and_structure_mismatch() -> None:
    a = {"x": torch.ones(2), "y": torch.zeros(2)}
    b = {"x": torch.ones(2) * 2, "y": torch.ones(2)}
    out = ftx.tree.map(lambda u, v, w: u + v + w, a, b, b)
    tree_allclose(out, {"x": torch.full((2,), 5.0), "y": torch.full((2,), 2.0)})
    with pytest.raises(ValueError, match=r"ftx.tree.map: every tree must have the structure"):
        ftx.tree.map(lambda u, v: u + v, a, {"x": torch.ones(2)})


def test_paths_are_state_dict_keys() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    nested = {"0": {"weight": 1, "bias": 2}, "2": {"weight": 3, "bias": 4}}
    paths = [p for p, _ in ftx.tree.leaves_with_path(nested)]
    assert paths == list(net.state_dict().keys())
    seen = ftx.tree.map_with_path(lambda p, x: f"{p}={x}", nested)
    assert seen["2"]["bias"] == "2.bias=4"
    assert ftx.tree.leaves_with_path(Affine(torch.ones(1), torch.ones(1)))[0][0] == "w"


def test_unflatten_errors() -> None:
    _, treedef = ftx.tree.flatten({"a": 1, "b": 2})
    with pytest.raises(ValueError, match="treedef has 2 leaves, got 1 leaves"):
        ftx.tree.unflatten(treedef, [1])
    with pytest.raises(TypeError, match="treedef must be an ftx.tree.TreeDef"):
        ftx.tree.unflatten("nope", [1, 2])  # type: ignore[arg-type]


def test_register_dataclass_static_fields_and_torch_func() -> None:
    f64 = torch.float64
    p = Affine(torch.tensor([1.0, 2.0], dtype=f64), torch.tensor(0.5, dtype=f64))
    leaves, treedef = ftx.tree.flatten(p)
    assert len(leaves) == 2
    assert ftx.tree.structure(Affine(p.w, p.b, name="other")) != treedef

    def loss(q: Affine) -> torch.Tensor:
        return (q.w**2).sum() * q.b

    g = torch.func.grad(loss)(p)
    assert isinstance(g, Affine) and g.name == "affine"
    tree_allclose(g.w, 2 * p.w * p.b)
    tree_allclose(g.b, (p.w**2).sum())
    batched = Affine(torch.ones(4, 2, dtype=torch.float64), torch.arange(4.0, dtype=torch.float64))
    out = torch.func.vmap(loss)(batched)
    tree_allclose(out, 2 * torch.arange(4.0, dtype=torch.float64))
    with pytest.raises(TypeError, match="needs a dataclass type"):
        ftx.tree.register_dataclass(int)


def test_arithmetic() -> None:
    a = {"x": torch.tensor([3.0, 4.0]), "y": None, "z": [torch.tensor(12.0)]}
    b = ftx.tree.ones_like(a)
    tree_allclose(ftx.tree.add(a, b, b), {"x": torch.tensor([5.0, 6.0]), "y": None,
                                          "z": [torch.tensor(14.0)]})
    tree_allclose(ftx.tree.sub(a, b), {"x": torch.tensor([2.0, 3.0]), "y": None,
                                       "z": [torch.tensor(11.0)]})
    tree_allclose(ftx.tree.scale(a, 0.5), {"x": torch.tensor([1.5, 2.0]), "y": None,
                                           "z": [torch.tensor(6.0)]})
    assert ftx.tree.vdot(a, b).item() == 19.0
    assert ftx.tree.norm(a).item() == pytest.approx(13.0)
    assert ftx.tree.norm(a, ord=math.inf).item() == 12.0
    assert ftx.tree.norm({}).item() == 0.0
    assert ftx.tree.vdot({}, {}).item() == 0.0
    tree_allclose(ftx.tree.zeros_like(a), {"x": torch.zeros(2), "y": None, "z": [torch.zeros(())]})
    with pytest.raises(ValueError, match=r"structure of the first, got tree 1 with 1 entries "
                       r"against 3, None included \(first unmatched path 'y'\)"):
        ftx.tree.vdot(a, {"x": torch.ones(2)})


def test_allclose() -> None:
    a = {"x": torch.ones(2)}
    assert ftx.tree.allclose(a, {"x": torch.ones(2) + 1e-9})
    assert not ftx.tree.allclose(a, {"x": torch.ones(2) + 1e-3})
    assert not ftx.tree.allclose(a, {"y": torch.ones(2)})
    assert not ftx.tree.allclose(a, {"x": torch.ones(3)})


def test_against_jax_tree_util() -> None:
    jax = pytest.importorskip("jax")
    tree = {"a": 1, "b": [2, None, (3,)], "c": {"d": 4}}
    assert ftx.tree.leaves(tree) == jax.tree_util.tree_leaves(tree)
    assert ftx.tree.map(lambda x: x * 2, tree) == jax.tree_util.tree_map(lambda x: x * 2, tree)


def _cyclic_list() -> list[object]:
    a: list[object] = [torch.ones(1)]
    a.append(a)
    return a


def _deep(n: int) -> object:
    x: object = torch.ones(1)
    for _ in range(n):
        x = [x]
    return x


def _cyclic_dict() -> dict[str, object]:
    d: dict[str, object] = {"w": torch.ones(1)}
    d["a"] = [{"b": d}]
    return d


@pytest.mark.parametrize(
    ("call", "exc", "pattern"),
    [
        pytest.param(lambda: ftx.tree.leaves(_cyclic_list()), ValueError,
                     r"ftx\.tree\.leaves: tree must be a pytree without cycles, got a container "
                     r"at path '1' that contains itself \(or one of its parents\)\. Build",
                     id="cycle-list"),
        pytest.param(lambda: ftx.tree.flatten(_cyclic_dict()), ValueError,
                     r"ftx\.tree\.flatten: tree must be a pytree without cycles, got a container "
                     r"at path 'a\.0\.b'", id="cycle-dict"),
        pytest.param(lambda: ftx.tree.map(lambda x: x, _deep(5000)), ValueError,
                     r"ftx\.tree\.map: tree must be a pytree nested less deeply than Python's "
                     r"recursion limit, got a tree nested deeper than \d+ levels\.",
                     id="too-deep"),
        pytest.param(lambda: ftx.tree.map(lambda x, y: x, {"a": 1}, _cyclic_list()), ValueError,
                     r"ftx\.tree\.map: tree 1 must be a pytree without cycles", id="cycle-rest"),
        pytest.param(lambda: ftx.tree.add({"a": torch.ones(3)}, {"a": torch.ones(2)}), ValueError,
                     r"ftx\.tree\.add: leaves at one path must have one shape, got shapes "
                     r"\(3,\) and \(2,\) at 'a'\.", id="add-shapes"),
        pytest.param(lambda: ftx.tree.sub({"a": [torch.ones(3)]},
                                          {"a": [torch.ones(3, device="meta")]}), ValueError,
                     r"ftx\.tree\.sub: leaves at one path must be on one device, got cpu and "
                     r"meta at 'a\.0'\.", id="sub-devices"),
        pytest.param(lambda: ftx.tree.add({"a": torch.ones(3)}, {"a": "x"}), TypeError,
                     r"ftx\.tree\.add: leaves must be tensors or numbers, got str 'x' at 'a'\.",
                     id="add-kind"),
        pytest.param(lambda: ftx.tree.sub({"a": 1}, {"b": 1}), ValueError,
                     r"ftx\.tree\.sub: every tree must have the structure of the first, got "
                     r"tree 1 with path 'b' where the first tree has 'a'\.", id="sub-structure"),
        pytest.param(lambda: ftx.tree.scale({"a": torch.ones(2)}, "2"), TypeError,
                     r"ftx\.tree\.scale: scalar must be a number or a 0-dim tensor, got str",
                     id="scale-kind"),
        pytest.param(lambda: ftx.tree.scale({"a": torch.ones(2)}, torch.ones(3)), ValueError,
                     r"ftx\.tree\.scale: scalar must be a number or a 0-dim tensor, got "
                     r"Tensor\(shape=\(3,\)", id="scale-shape"),
        pytest.param(lambda: ftx.tree.scale({"a": torch.ones(2)}, 10**400), ValueError,
                     r"ftx\.tree\.scale: scalar must be a number a float64 can hold, got an "
                     r"int of 1329 bits\.", id="scale-huge"),
        pytest.param(lambda: ftx.tree.vdot({"a": 1.0}, {"a": 2.0}), TypeError,
                     r"ftx\.tree\.vdot: leaves must be tensors, got float 1\.0 at 'a'\.",
                     id="vdot-kind"),
        pytest.param(lambda: ftx.tree.norm([torch.ones(2, dtype=torch.int64)]), TypeError,
                     r"ftx\.tree\.norm: leaves must be floating or complex tensors, got "
                     r"Tensor\(shape=\(2,\), dtype=torch\.int64\) at '0'\.", id="norm-int"),
        pytest.param(lambda: ftx.tree.norm([torch.ones(2)], ord=float("nan")), ValueError,
                     r"ftx\.tree\.norm: ord must be a number \(not NaN\), got nan\.",
                     id="norm-ord"),
        pytest.param(lambda: ftx.tree.norm([torch.ones(2)], ord="fro"), TypeError,
                     r"ftx\.tree\.norm: ord must be a real number, got str 'fro'\.",
                     id="norm-ord-kind"),
        pytest.param(lambda: ftx.tree.zeros_like({"a": 1.5}), TypeError,
                     r"ftx\.tree\.zeros_like: leaves must be tensors, got float 1\.5 at 'a'\.",
                     id="zeros_like"),
        pytest.param(lambda: ftx.tree.allclose(1.0, 1.0, rtol=-1), ValueError,
                     r"ftx\.tree\.allclose: rtol must be a number \(not NaN\) >= 0\.0, got -1\.",
                     id="allclose-rtol"),
        pytest.param(lambda: ftx.tree.allclose({"a": "x"}, {"a": "x"}), TypeError,
                     r"ftx\.tree\.allclose: leaves must be tensors or numbers, got str 'x' at "
                     r"'a'\.", id="allclose-kind"),
        pytest.param(lambda: ftx.tree.allclose([torch.ones(1, device="meta")],
                                               [torch.ones(1, device="meta")]), ValueError,
                     r"ftx\.tree\.allclose: leaves whose values can be compared, got .* at '0'",
                     id="allclose-meta"),
        pytest.param(lambda: ftx.tree.map(None, {"a": 1}), TypeError,
                     r"ftx\.tree\.map: f must be callable, got NoneType None\. Pass a function\.",
                     id="map-f"),
        pytest.param(lambda: ftx.tree.leaves({"a": 1}, is_leaf=3), TypeError,
                     r"ftx\.tree\.leaves: is_leaf must be callable or None, got int 3\.",
                     id="is_leaf"),
        pytest.param(lambda: ftx.tree.unflatten(ftx.tree.structure([1]), None), TypeError,
                     r"ftx\.tree\.unflatten: leaves must be an iterable of leaves, got NoneType",
                     id="unflatten-leaves"),
        pytest.param(lambda: ftx.tree.keystr(None), TypeError,
                     r"ftx\.tree\.keystr: path must be a sequence of key entries, got NoneType",
                     id="keystr"),
        pytest.param(lambda: ftx.tree.static_field(metadata=5), TypeError,
                     r"ftx\.tree\.static_field: metadata must be a mapping or None, got int 5\.",
                     id="static_field-metadata"),
        pytest.param(lambda: ftx.tree.static_field(bogus=1), TypeError,
                     r"ftx\.tree\.static_field: the keyword arguments of dataclasses\.field, got "
                     r"\['bogus'\]", id="static_field-kwargs"),
        pytest.param(lambda: ftx.tree.register_dataclass(Affine), ValueError,
                     r"ftx\.tree\.register_dataclass: a type not yet registered as a pytree "
                     r"node, got Affine, already registered\.", id="register-twice"),
    ],
)
def test_bad_input_errors(call: object, exc: type[Exception], pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        call()  # type: ignore[operator]


def test_norm_of_empty_leaves() -> None:
    assert ftx.tree.norm([torch.ones(0)], ord=math.inf).item() == 0.0
    assert ftx.tree.norm([torch.ones(0)]).item() == 0.0
