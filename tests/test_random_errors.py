"""ftx.random on bad input: TypeError for the wrong kind, ValueError for the wrong value,
each message in the contract's form ``ftx.random.<api>: <required>, got <came>. <fix>``,
and nothing allocated for sizes torch cannot index."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pytest
import torch

import ftx.random as fr

K = fr.key(0)
# the message form: api, what is required, what came, how to fix (a sentence after it)
FORM = re.compile(r"^ftx\.random\.\w+: .+, got .+\. \S.*$", re.S)

Case = tuple[str, Callable[[], object], type[Exception], str]

CASES: list[Case] = [
    # ---- keys
    (
        "split of a list",
        lambda: fr.split([0, 1]),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.split: key must be an int64 tensor of shape \(2,\), got list",
    ),
    (
        "int32 key",
        lambda: fr.normal(torch.tensor([0, 1], dtype=torch.int32)),
        TypeError,
        r"ftx\.random\.normal: key must be an int64 tensor.*dtype=torch\.int32",
    ),
    (
        "float key",
        lambda: fr.bits(torch.zeros(2)),
        TypeError,
        r"ftx\.random\.bits: key must be an int64 tensor.*dtype=torch\.float32.*ftx\.random\.key",
    ),
    (
        "batch of keys to a sampler",
        lambda: fr.uniform(fr.split(K, 3)),
        TypeError,
        r"ftx\.random\.uniform: key must be a single key of shape \(2,\).*vmap",
    ),
    (
        "key_data of shape (3,)",
        lambda: fr.key_data(torch.zeros(3, dtype=torch.int64)),
        TypeError,
        r"ftx\.random\.key_data: key must have shape \(\.\.\., 2\)",
    ),
    (
        "key words out of uint32",
        lambda: fr.normal(torch.tensor([-1, 2**40])),
        ValueError,
        r"ftx\.random\.normal: key must hold two unsigned 32-bit words, each in \[0, 2\*\*32\), "
        r"got .*\[-1, 1099511627776\]",
    ),
    (
        "key_data with a bad word in a batch",
        lambda: fr.key_data(torch.tensor([[0, 1], [2**32, 0]])),
        ValueError,
        r"ftx\.random\.key_data: key must hold two unsigned 32-bit words",
    ),
    # ---- seeds and devices
    (
        "float seed",
        lambda: fr.key(1.5),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.key: seed must be an int, got float 1\.5\. E\.g\. key\(0\)\.",
    ),
    (
        "float tensor seed",
        lambda: fr.key(torch.tensor(1.0)),
        TypeError,
        r"ftx\.random\.key: seed must be an integer scalar",
    ),
    (
        "seed too big",
        lambda: fr.key(2**64),
        ValueError,
        r"ftx\.random\.key: seed must fit in 64 bits, in \[-2\*\*63, 2\*\*63\), "
        r"got 18446744073709551616",
    ),
    (
        "nonsense device",
        lambda: fr.key(0, device="nonsense"),
        ValueError,
        r"ftx\.random\.key: device must name a torch device type such as 'cpu' or 'cuda:0', "
        r"got 'nonsense'",
    ),
    (
        "device of the wrong kind",
        lambda: fr.key(0, device=5.5),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.key: device must be a torch\.device, a string or an int, got float 5\.5",
    ),
    (
        "unavailable device",
        lambda: fr.key(0, device="cuda:99"),
        ValueError,
        r"ftx\.random\.key: device must be available in this process, got 'cuda:99'",
    ),
    # ---- shapes and sizes
    (
        "negative split count",
        lambda: fr.split(K, -1),
        ValueError,
        r"ftx\.random\.split: num must have non-negative sizes, got -1",
    ),
    (
        "float split count",
        lambda: fr.split(K, 2.0),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.split: num must be a tuple of ints, got float 2\.0",
    ),
    (
        "negative dimension",
        lambda: fr.normal(K, (2, -1)),
        ValueError,
        r"ftx\.random\.normal: shape must have non-negative sizes, got \(2, -1\)",
    ),
    (
        "float dimension",
        lambda: fr.uniform(K, (2.5,)),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.uniform: shape must be a tuple of ints, got tuple",
    ),
    (
        "string shape",
        lambda: fr.bits(K, "ab"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.bits: shape must be a tuple of ints, got str",
    ),
    (
        "bool dimension",
        lambda: fr.bits(K, (True, 2)),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.bits: shape must be a tuple of ints",
    ),
    (
        "2**62 normals",
        lambda: fr.normal(K, (2**62,)),
        ValueError,
        r"ftx\.random\.normal: shape must have fewer than 2\*\*59 elements .*"
        r"got \(4611686018427387904,\), about 2\*\*62\.0 elements\. Draw in pieces",
    ),
    (
        "2**31 x 2**31 uniforms",
        lambda: fr.uniform(K, (2**31, 2**31)),
        ValueError,
        r"ftx\.random\.uniform: shape must have fewer than 2\*\*59 elements",
    ),
    (
        "a dimension beyond int64",
        lambda: fr.bits(K, (2**64,)),
        ValueError,
        r"ftx\.random\.bits: shape must have fewer than 2\*\*59 elements",
    ),
    (
        "zero-size shape with huge dims",
        lambda: fr.normal(K, (0, 2**40, 2**40)),
        ValueError,
        r"ftx\.random\.normal: shape must have fewer than 2\*\*59 elements \(zero sizes counted",
    ),
    (
        "2**63 keys",
        lambda: fr.split(K, 2**63),
        ValueError,
        r"ftx\.random\.split: num must have fewer than 2\*\*59 elements",
    ),
    (
        "2**62 truncated normals",
        lambda: fr.truncated_normal(K, -1.0, 1.0, (2**62,)),
        ValueError,
        r"ftx\.random\.truncated_normal: shape must have fewer than 2\*\*59 elements",
    ),
    (
        "2**62 randints",
        lambda: fr.randint(K, (2**62,), 0, 3),
        ValueError,
        r"ftx\.random\.randint: shape must have fewer than 2\*\*59 elements",
    ),
    (
        "2**62 bernoullis",
        lambda: fr.bernoulli(K, 0.5, (2**62,)),
        ValueError,
        r"ftx\.random\.bernoulli: shape must have fewer than 2\*\*59 elements",
    ),
    (
        "parameters that do not broadcast",
        lambda: fr.uniform(K, (3,), minval=torch.zeros(4)),
        ValueError,
        r"ftx\.random\.uniform: parameter shapes must broadcast to shape \(3,\)",
    ),
    # ---- dtypes
    (
        "integer dtype for normal",
        lambda: fr.normal(K, (), torch.int32),
        ValueError,
        r"ftx\.random\.normal: dtype must be float16, bfloat16, float32 or float64, "
        r"got torch\.int32",
    ),
    (
        "string dtype for uniform",
        lambda: fr.uniform(K, (), "float32"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.uniform: dtype must be a torch\.dtype, got str 'float32'",
    ),
    (
        "float dtype for bits",
        lambda: fr.bits(K, (), torch.float32),
        ValueError,
        r"ftx\.random\.bits: dtype must be torch\.uint8, uint16, uint32 or uint64",
    ),
    (
        "string dtype for bits",
        lambda: fr.bits(K, (), "uint32"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.bits: dtype must be a torch\.dtype \(or None\), got str",
    ),
    (
        "float dtype for randint",
        lambda: fr.randint(K, (), 0, 3, torch.float32),
        ValueError,
        r"ftx\.random\.randint: dtype must be int8, int16, int32, int64 or uint8",
    ),
    (
        "string dtype for randint",
        lambda: fr.randint(K, (), 0, 3, "int32"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.randint: dtype must be a torch\.dtype",
    ),
    # ---- uniform and truncated_normal bounds
    (
        "minval > maxval",
        lambda: fr.uniform(K, (), minval=2.0, maxval=1.0),
        ValueError,
        r"ftx\.random\.uniform: minval <= maxval is required, got minval=2\.0, maxval=1\.0",
    ),
    (
        "minval > maxval in a tensor",
        lambda: fr.uniform(K, (2,), minval=torch.tensor([0.0, 3.0]), maxval=torch.tensor(2.0)),
        ValueError,
        r"ftx\.random\.uniform: minval <= maxval is required",
    ),
    (
        "NaN minval",
        lambda: fr.uniform(K, (3,), minval=math.nan),
        ValueError,
        r"ftx\.random\.uniform: minval <= maxval is required, got minval=nan",
    ),
    (
        "infinite minval",
        lambda: fr.uniform(K, (3,), minval=-math.inf),
        ValueError,
        r"ftx\.random\.uniform: minval, maxval and maxval - minval must be finite in "
        r"torch\.float32",
    ),
    (
        "span overflowing float16",
        lambda: fr.uniform(K, (3,), torch.float16, -60000.0, 60000.0),
        ValueError,
        r"ftx\.random\.uniform: minval, maxval and maxval - minval must be finite in "
        r"torch\.float16 \(magnitudes up to 65504\)",
    ),
    (
        "string bound",
        lambda: fr.uniform(K, (3,), minval="a"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.uniform: minval must be a number or tensor, got str 'a'",
    ),
    (
        "complex bound",
        lambda: fr.uniform(K, (3,), maxval=torch.tensor(1j)),
        TypeError,
        r"ftx\.random\.uniform: maxval must be a real \(not complex\) tensor",
    ),
    (
        "bound on the meta device",
        lambda: fr.uniform(K, (3,), minval=torch.tensor(0.0, device="meta")),
        ValueError,
        r"ftx\.random\.uniform: minval must be movable to the key's device cpu, got .* on meta",
    ),
    (
        "lower == upper",
        lambda: fr.truncated_normal(K, 1.0, 1.0),
        ValueError,
        r"ftx\.random\.truncated_normal: lower < upper is required",
    ),
    (
        "NaN upper",
        lambda: fr.truncated_normal(K, 0.0, math.nan),
        ValueError,
        r"ftx\.random\.truncated_normal: lower < upper is required, got lower=0\.0, upper=nan",
    ),
    # ---- bernoulli
    (
        "p above 1",
        lambda: fr.bernoulli(K, 1.5),
        ValueError,
        r"ftx\.random\.bernoulli: p must be in \[0, 1\], got 1\.5\. Clip it",
    ),
    (
        "p below 0 in a tensor",
        lambda: fr.bernoulli(K, torch.tensor([0.5, -0.1])),
        ValueError,
        r"ftx\.random\.bernoulli: p must be in \[0, 1\]",
    ),
    (
        "NaN p",
        lambda: fr.bernoulli(K, math.nan),
        ValueError,
        r"ftx\.random\.bernoulli: p must be in \[0, 1\], got nan",
    ),
    (
        "integer tensor p",
        lambda: fr.bernoulli(K, torch.tensor([1, 0])),
        TypeError,
        r"ftx\.random\.bernoulli: p must be a float or a float16, bfloat16, float32 or float64 "
        r"tensor",
    ),
    (
        "string p",
        lambda: fr.bernoulli(K, "a"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.bernoulli: p must be a number or tensor, got str",
    ),
    (
        "bad mode",
        lambda: fr.bernoulli(K, 0.5, mode="mid"),
        ValueError,
        r"ftx\.random\.bernoulli: mode must be 'low' or 'high'",
    ),
    # ---- randint
    (
        "low == high",
        lambda: fr.randint(K, (3,), 5, 5),
        ValueError,
        r"ftx\.random\.randint: minval < maxval is required, got minval=5, maxval=5",
    ),
    (
        "low > high",
        lambda: fr.randint(K, (3,), low=5, high=2),
        ValueError,
        r"ftx\.random\.randint: minval < maxval is required, got minval=5, maxval=2",
    ),
    (
        "low >= high in a tensor",
        lambda: fr.randint(K, (2,), torch.tensor([0, 4]), torch.tensor([1, 4])),
        ValueError,
        r"ftx\.random\.randint: minval < maxval is required",
    ),
    (
        "no maxval",
        lambda: fr.randint(K, (), 0),
        TypeError,
        r"ftx\.random\.randint: exactly one of maxval and high is required",
    ),
    (
        "maxval and high",
        lambda: fr.randint(K, (), 0, 3, high=4),
        TypeError,
        r"ftx\.random\.randint: exactly one of maxval and high is required",
    ),
    (
        "float bound",
        lambda: fr.randint(K, (), 0.5, 3),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.randint: minval must be an int or integer tensor, got float",
    ),
    (
        "float tensor bound",
        lambda: fr.randint(K, (), 0, torch.tensor(3.0)),
        TypeError,
        r"ftx\.random\.randint: maxval must be an integer tensor",
    ),
    (
        "bound beyond int64",
        lambda: fr.randint(K, (), 0, 2**70),
        ValueError,
        r"ftx\.random\.randint: maxval must fit in int64",
    ),
    # ---- permutation
    (
        "n < 0",
        lambda: fr.permutation(K, -1),
        ValueError,
        r"ftx\.random\.permutation: x must be non-negative, got -1",
    ),
    (
        "n = 2**62",
        lambda: fr.permutation(K, 2**62),
        ValueError,
        r"ftx\.random\.permutation: x must have fewer than 2\*\*59 elements",
    ),
    (
        "float n",
        lambda: fr.permutation(K, 2.5),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.permutation: x must be an int or a tensor with ndim >= 1",
    ),
    (
        "float 0-dim tensor",
        lambda: fr.permutation(K, torch.tensor(5.0)),
        TypeError,
        r"ftx\.random\.permutation: x must be an int or a tensor with ndim >= 1",
    ),
    (
        "axis out of range",
        lambda: fr.permutation(K, torch.zeros(3), axis=5),
        ValueError,
        r"ftx\.random\.permutation: axis must be in \[-1, 1\) for x of shape \(3,\), got 5",
    ),
    (
        "float axis",
        lambda: fr.permutation(K, torch.zeros(3), axis=0.5),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.permutation: axis must be an int, got float 0\.5",
    ),
    (
        "string independent",
        lambda: fr.permutation(K, torch.zeros(3), independent="yes"),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.permutation: independent must be a bool",
    ),
    # ---- fold_in
    (
        "data >= 2**32",
        lambda: fr.fold_in(K, 2**32),
        ValueError,
        r"ftx\.random\.fold_in: data must be in \[0, 2\*\*32\), got 4294967296",
    ),
    (
        "data < 0",
        lambda: fr.fold_in(K, -1),
        ValueError,
        r"ftx\.random\.fold_in: data must be in \[0, 2\*\*32\), got -1",
    ),
    (
        "float data",
        lambda: fr.fold_in(K, 1.5),  # type: ignore[arg-type]
        TypeError,
        r"ftx\.random\.fold_in: data must be an int, got float",
    ),
    (
        "float tensor data",
        lambda: fr.fold_in(K, torch.tensor(1.0)),
        TypeError,
        r"ftx\.random\.fold_in: data must be an integer scalar",
    ),
]


@pytest.mark.parametrize("name,call,exc,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_helpful_error(
    name: str, call: Callable[[], object], exc: type[Exception], pattern: str
) -> None:
    with pytest.raises(exc, match=pattern) as info:
        call()
    assert type(info.value) is exc
    assert FORM.match(str(info.value)), str(info.value)


def test_huge_shapes_are_refused_before_allocating(monkeypatch: pytest.MonkeyPatch) -> None:
    """The size check runs before any tensor is made: no allocation is even attempted."""

    def no_alloc(*args: object, **kwargs: object) -> None:
        raise AssertionError("allocated")

    monkeypatch.setattr(torch, "arange", no_alloc)
    for call in (
        lambda: fr.normal(K, (2**62,)),
        lambda: fr.bits(K, (2**30, 2**30, 2**30)),
        lambda: fr.split(K, (2**40, 2**40)),
        lambda: fr.permutation(K, 2**62),
    ):
        with pytest.raises(ValueError, match="fewer than 2\\*\\*59 elements"):
            call()


def test_sizes_just_inside_the_limit_are_accepted_on_meta() -> None:
    """The limit is torch's indexing limit, not a memory guess: on the meta device (no
    data) the largest accepted shapes go through."""
    k = fr.key(0, device="meta")
    assert fr.normal(k, (2**59 - 1,)).shape == (2**59 - 1,)
    assert fr.split(k, 2**58).shape == (2**58, 2)
    assert fr.uniform(k, (0, 2**30, 2**28)).shape == (0, 2**30, 2**28)


def test_integer_like_arguments_are_accepted() -> None:
    """numpy integers, torch.Size and 0-dim integer tensors work where ints do."""
    k = fr.key(np.int64(7))
    assert torch.equal(k, fr.key(7))
    assert fr.uniform(k, (np.int64(3), 2)).shape == (3, 2)
    assert fr.normal(k, torch.Size([4])).shape == (4,)
    assert torch.equal(fr.fold_in(k, np.uint32(5)), fr.fold_in(k, 5))
    assert torch.equal(fr.permutation(k, torch.tensor(6)), fr.permutation(k, 6))
    assert torch.equal(fr.key(0, device=torch.device("cpu")), fr.key(0))
