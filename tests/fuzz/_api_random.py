"""Bad arguments for ftx.random."""

from __future__ import annotations

from ._contract import Api, S
from ._values import (
    DEVICES,
    DTYPES,
    FLAGS,
    GEN_NUMS,
    GEN_SHAPES,
    INTS,
    KEYS,
    KINDS,
    NUMS,
    SHAPES,
    STRS,
    TENSORS,
)

O = "ftx/random/__init__.py"
K = "ftx.random.key(0)"
KEY = S(K, KEYS, KINDS, TENSORS)
SHAPE = S("(2, 3)", SHAPES, KINDS, gen=(GEN_SHAPES,))
DT = S("torch.float32", DTYPES, KINDS)
NUM = S("0.0", NUMS, KINDS, gen=(GEN_NUMS,))

APIS = [
    Api("random.key", "ftx.random.key(seed, device=device)",
        {"seed": S("0", INTS, NUMS, KINDS, TENSORS, gen=(GEN_NUMS,)),
         "device": S("None", DEVICES, KINDS)}, O),
    Api("random.key_data", "ftx.random.key_data(key)", {"key": KEY}, O),
    Api("random.split", "ftx.random.split(key, num)",
        {"key": KEY, "num": S("2", INTS, SHAPES, KINDS, gen=(GEN_SHAPES,))}, O),
    Api("random.fold_in", "ftx.random.fold_in(key, data)",
        {"key": KEY, "data": S("3", INTS, NUMS, KINDS, TENSORS, gen=(GEN_NUMS,))}, O),
    Api("random.bits", "ftx.random.bits(key, shape, dtype)",
        {"key": KEY, "shape": SHAPE, "dtype": S("None", DTYPES, KINDS)}, O),
    Api("random.uniform", "ftx.random.uniform(key, shape, dtype, minval, maxval)",
        {"key": KEY, "shape": SHAPE, "dtype": DT, "minval": NUM,
         "maxval": S("1.0", NUMS, KINDS, gen=(GEN_NUMS,))}, O),
    Api("random.normal", "ftx.random.normal(key, shape, dtype)",
        {"key": KEY, "shape": SHAPE, "dtype": DT}, O),
    Api("random.truncated_normal", "ftx.random.truncated_normal(key, lower, upper, shape, dtype)",
        {"key": KEY, "lower": S("-1.0", NUMS, KINDS, gen=(GEN_NUMS,)),
         "upper": S("1.0", NUMS, KINDS, gen=(GEN_NUMS,)), "shape": SHAPE, "dtype": DT}, O),
    Api("random.bernoulli", "ftx.random.bernoulli(key, p, shape, mode)",
        {"key": KEY, "p": S("0.5", NUMS, KINDS, TENSORS, gen=(GEN_NUMS,)), "shape": SHAPE,
         "mode": S("'low'", STRS, KINDS)}, O),
    Api("random.randint", "ftx.random.randint(key, shape, minval, maxval, dtype)",
        {"key": KEY, "shape": SHAPE, "minval": S("0", INTS, NUMS, KINDS, gen=(GEN_NUMS,)),
         "maxval": S("10", INTS, NUMS, KINDS, gen=(GEN_NUMS,)),
         "dtype": S("torch.int64", DTYPES, KINDS)}, O),
    Api("random.permutation", "ftx.random.permutation(key, x, axis, independent)",
        {"key": KEY, "x": S("5", INTS, TENSORS, KINDS), "axis": S("0", INTS, KINDS),
         "independent": S("False", FLAGS, KINDS)}, O),
]
