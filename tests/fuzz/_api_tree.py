"""Bad arguments for ftx.tree."""

from __future__ import annotations

from ._contract import Api, S
from ._values import FUNS, GEN_TREES, KINDS, NUMS, TENSORS, TREES

T = "{'a': torch.ones(3), 'b': [torch.zeros(2), None]}"
TREE = S(T, TREES, KINDS, TENSORS, gen=(GEN_TREES,))
OTHER = S(T, TREES, KINDS, TENSORS, (
    "{'a': torch.ones(2), 'b': [torch.zeros(2), None]}",
    "{'a': torch.ones(3, 1), 'b': [torch.zeros(2), None]}",
    "{'a': torch.ones(3, device='meta'), 'b': [torch.zeros(2), None]}",
    "{'a': torch.ones(3, dtype=torch.int64), 'b': [torch.zeros(2), None]}",
    "{'a': torch.ones(3), 'b': [torch.zeros(2), torch.ones(1)]}",
    "{'a': torch.ones(3), 'c': [torch.zeros(2), None]}",
    "{'a': 'x', 'b': [torch.zeros(2), None]}",
    "{'a': Opaque(), 'b': [torch.zeros(2), None]}",
    "{'a': torch.ones(3), 'b': (torch.zeros(2), None)}",
    "{'a': np.ones(3), 'b': [torch.zeros(2), None]}",
), gen=(GEN_TREES,))
FN = S("f_sin", FUNS, ("lambda x, y: x",))
IS_LEAF = S("None", FUNS, KINDS, ("f_raise",))
O = "ftx/tree.py"

APIS = [
    Api("tree.map", "ftx.tree.map(f, tree, is_leaf=is_leaf)",
        {"f": FN, "tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.map.rest", "ftx.tree.map(lambda x, y: x, tree, other)",
        {"tree": TREE, "other": OTHER}, O),
    Api("tree.map_with_path", "ftx.tree.map_with_path(f, tree, is_leaf=is_leaf)",
        {"f": S("lambda p, x: x", FUNS), "tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.map_with_path.rest", "ftx.tree.map_with_path(lambda p, x, y: x, tree, other)",
        {"tree": TREE, "other": OTHER}, O),
    Api("tree.leaves", "ftx.tree.leaves(tree, is_leaf=is_leaf)",
        {"tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.structure", "ftx.tree.structure(tree, is_leaf=is_leaf)",
        {"tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.flatten", "ftx.tree.flatten(tree, is_leaf=is_leaf)",
        {"tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.flatten_with_path", "ftx.tree.flatten_with_path(tree, is_leaf=is_leaf)",
        {"tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.leaves_with_path", "ftx.tree.leaves_with_path(tree, is_leaf=is_leaf)",
        {"tree": TREE, "is_leaf": IS_LEAF}, O),
    Api("tree.unflatten", "ftx.tree.unflatten(treedef, leaves)",
        {"treedef": S(f"ftx.tree.structure({T})", KINDS, TREES,
                      ("torch.utils._pytree.tree_structure([1])",)),
         "leaves": S("[torch.ones(3), torch.ones(2)]", KINDS, TREES,
                     ("[1]", "[1, 2, 3]", "iter([1, 2])", "(x for x in [1, 2])", "'ab'",
                      "{'a': 1, 'b': 2}", "torch.ones(2)", "np.ones(2)"))}, O),
    Api("tree.keystr", "ftx.tree.keystr(path)",
        {"path": S("(torch.utils._pytree.MappingKey('a'), torch.utils._pytree.SequenceKey(0))",
                   KINDS, ("['a', 0]", "(torch.utils._pytree.MappingKey(cyc_list()),)"))}, O),
    Api("tree.register_dataclass", "ftx.tree.register_dataclass(cls)",
        {"cls": S("dataclasses.make_dataclass('D', ['w'])", KINDS, (
            "Box", "Box(torch.ones(1))", "Opaque", "dataclasses.make_dataclass('D', [])",
            "int", "Pair"))}, O),
    Api("tree.static_field", "ftx.tree.static_field(**kw)",
        {"kw": S("{}", ("{'metadata': 5}", "{'metadata': {'static': False}}", "{'bogus': 1}",
                        "{'default': 1, 'default_factory': list}", "{'metadata': cyc_dict()}",
                        "{'init': 'no'}"))}, O),
    Api("tree.allclose", "ftx.tree.allclose(a, b, rtol=rtol, atol=atol)",
        {"a": TREE, "b": OTHER, "rtol": S("1e-5", NUMS, KINDS), "atol": S("1e-8", NUMS, KINDS)},
        O),
    Api("tree.add", "ftx.tree.add(a, b)", {"a": TREE, "b": OTHER}, O),
    Api("tree.add3", "ftx.tree.add(a, a, b)", {"a": TREE, "b": OTHER}, O),
    Api("tree.sub", "ftx.tree.sub(a, b)", {"a": TREE, "b": OTHER}, O),
    Api("tree.scale", "ftx.tree.scale(tree, scalar)",
        {"tree": TREE, "scalar": S("2.0", NUMS, KINDS, TENSORS)}, O),
    Api("tree.vdot", "ftx.tree.vdot(a, b)", {"a": TREE, "b": OTHER}, O),
    Api("tree.norm", "ftx.tree.norm(tree, ord=ord)",
        {"tree": TREE, "ord": S("2", NUMS, KINDS, ("float('inf')", "1", "-float('inf')"))}, O),
    Api("tree.zeros_like", "ftx.tree.zeros_like(tree)", {"tree": TREE}, O),
    Api("tree.ones_like", "ftx.tree.ones_like(tree)", {"tree": TREE}, O),
]
