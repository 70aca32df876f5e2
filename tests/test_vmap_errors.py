"""ftx.vmap errors: the contract's TypeError/ValueError with `ftx.vmap: <required>, got ...`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx

X = torch.randn(3, 4)


def _branchy(x: torch.Tensor) -> torch.Tensor:
    return x if x.sum() > 0 else -x


BUILD_ERRORS = [
    ("fun-not-callable", lambda: ftx.vmap(3), TypeError,
     r"ftx\.vmap: fun must be callable, got int 3"),
    ("in_axes-float-leaf", lambda: ftx.vmap(torch.sin, in_axes=(0.5,)), TypeError,
     r"in_axes leaves must be ints or None, got float 0\.5 at '0'"),
    ("in_axes-bool", lambda: ftx.vmap(torch.sin, in_axes=True), TypeError,
     r"in_axes leaves must be ints or None, got bool True"),
    ("in_axes-str-in-dict", lambda: ftx.vmap(torch.sin, in_axes=({"w": "0"},)), TypeError,
     r"in_axes leaves must be ints or None, got str '0' at '0\.w'"),
    ("in_axes-top-dict", lambda: ftx.vmap(torch.sin, in_axes={"w": 0}), TypeError,
     r"in_axes must be an int, None, or a tuple with one entry per positional argument"),
    ("out_axes-float", lambda: ftx.vmap(torch.sin, out_axes=1.0), TypeError,
     r"out_axes leaves must be ints or None, got float 1\.0"),
    ("axis_size-zero", lambda: ftx.vmap(torch.sin, axis_size=0), ValueError,
     r"axis_size must be a positive int or None, got 0"),
    ("axis_size-float", lambda: ftx.vmap(torch.sin, axis_size=2.0), TypeError,
     r"axis_size must be a positive int or None, got float 2\.0"),
    ("chunk_size-negative", lambda: ftx.vmap(torch.sin, chunk_size=-1), ValueError,
     r"chunk_size must be a positive int or None, got -1"),
    ("randomness", lambda: ftx.vmap(torch.sin, randomness="sometimes"), ValueError,
     r"randomness must be 'error', 'different' or 'same', got 'sometimes'"),
]

CALL_ERRORS = [
    ("in_axes-too-many", lambda: ftx.vmap(torch.sin, in_axes=(0, 0))(X), ValueError,
     r"in_axes must have one entry per positional argument, got in_axes=\(0, 0\) \(2 entries\) "
     r"for 1 argument"),
    ("in_axes-dict-keys", lambda: ftx.vmap(lambda d: d["a"], in_axes=({"a": 0, "c": 0},))(
        {"a": X, "b": X}), ValueError,
     r"in_axes for argument 0 must be an int, None, or a prefix of the argument's pytree "
     r"structure, got \{'a': 0, 'c': 0\} for an argument shaped \{'a': \(3, 4\), 'b': \(3, 4\)\}"),
    ("in_axes-out-of-range", lambda: ftx.vmap(torch.sin, in_axes=2)(X), ValueError,
     r"in_axes must be within the rank of each mapped input \(-2 <= axis < 2 here\), got axis 2 "
     r"for argument 0 of shape \(3, 4\)"),
    ("in_axes-negative-out-of-range", lambda: ftx.vmap(torch.sin, in_axes=-3)(X), ValueError,
     r"got axis -3 for argument 0 of shape \(3, 4\)"),
    ("in_axes-scalar-tensor", lambda: ftx.vmap(torch.sin)(torch.tensor(1.0)), ValueError,
     r"-0 <= axis < 0 here\), got axis 0 for argument 0 of shape \(\)"),
    ("mapped-non-tensor", lambda: ftx.vmap(lambda x, k: x * k)(X, 2.0), TypeError,
     r"mapped inputs must be tensors, got float 2\.0 for argument 1 mapped along axis 0\. "
     r"Give it in_axes=None"),
    ("mapped-non-tensor-kwarg", lambda: ftx.vmap(lambda x, k: x * k)(X, k=2.0), TypeError,
     r"got float 2\.0 for keyword argument 'k' mapped along axis 0.*Keyword arguments are "
     r"always mapped along axis 0"),
    ("sizes-differ-paths", lambda: ftx.vmap(lambda p, x: p["w"] * x)({"w": torch.ones(3)},
                                                                      torch.ones(4)), ValueError,
     r"all mapped axes must have the same size, got argument 0 at 'w' has size 3 along axis 0, "
     r"argument 1 has size 4 along axis 0"),
    ("sizes-differ-dict-in_axes", lambda: ftx.vmap(lambda p, x: p["w"] * x, in_axes=(
        {"w": 0}, 0))({"w": torch.ones(3)}, torch.ones(4)), ValueError,
     r"argument 0 at 'w' has size 3 along axis 0, argument 1 has size 4 along axis 0"),
    ("dict-in_axes-control-flow", lambda: ftx.vmap(lambda p: _branchy(p["w"]), in_axes=(
        {"w": 0},))({"w": X}), TypeError, r"fun must not read a batched tensor's value in Python"),
    ("sizes-differ-axes", lambda: ftx.vmap(torch.add, in_axes=(1, 0))(X, X), ValueError,
     r"argument 0 has size 4 along axis 1, argument 1 has size 3 along axis 0"),
    ("axis_size-mismatch", lambda: ftx.vmap(torch.sin, axis_size=5)(X), ValueError,
     r"axis_size must equal the size of the mapped axes, got axis_size=5 for mapped axes of "
     r"size 3"),
    ("nothing-mapped", lambda: ftx.vmap(torch.sin, in_axes=None)(X), ValueError,
     r"axis_size is required when no input is mapped, got in_axes=None mapping no tensor\. "
     r"Pass axis_size=N"),
    ("nothing-mapped-no-args", lambda: ftx.vmap(lambda: torch.ones(2))(), ValueError,
     r"axis_size is required when no input is mapped"),
    ("nothing-mapped-none-arg", lambda: ftx.vmap(lambda x: torch.ones(2))(None), ValueError,
     r"axis_size is required when no input is mapped"),
    ("control-flow", lambda: ftx.vmap(_branchy)(X), TypeError,
     r"fun must not read a batched tensor's value in Python, got a value read under vmap.*"
     r"data-dependent control flow.*torch\.where\(cond, a, b\)"),
    ("item", lambda: ftx.vmap(lambda x: x * x.sum().item())(X), TypeError,
     r"fun must not read a batched tensor's value in Python, got .*\.item\(\).*torch\.where"),
    ("item-general-route", lambda: ftx.vmap(lambda x, k: x * x.sum().item(), in_axes=(0, None))(
        X, 1.0), TypeError, r"fun must not read a batched tensor's value in Python"),
    ("one_hot-under-vmap-grad", lambda: ftx.vmap(ftx.grad(
        lambda w, y: (w * torch.nn.functional.one_hot(y, 3)).sum()), in_axes=(None, 0))(
        torch.ones(3), torch.tensor([0, 1])), TypeError,
     r"operator whose output size depends on values, such as F\.one_hot without num_classes.*"
     r"F\.one_hot\(y, num_classes=K\)"),
    ("randomness-error", lambda: ftx.vmap(lambda x: x * torch.rand(()))(X), ValueError,
     r"random operations need randomness='different' or 'same', got a random call under "
     r"randomness='error'"),
    ("out_axes-structure", lambda: ftx.vmap(lambda x: (x, x), out_axes=(0, 0, 0))(X), ValueError,
     r"out_axes must be an int, None, or a prefix of the output's pytree structure, got "
     r"out_axes=\(0, 0, 0\) for an output shaped \(\(4,\), \(4,\)\)"),
    ("out_axes-out-of-range", lambda: ftx.vmap(torch.sin, out_axes=3)(X), ValueError,
     r"out_axes must be within the batched output's rank, got axis 3 for output '<root>' of "
     r"per-example shape \(4,\)\. Use an axis in \[-2, 1\]"),
    ("out_axes-None-batched", lambda: ftx.vmap(torch.sin, out_axes=None)(X), ValueError,
     r"outputs with out_axes=None must not depend on mapped inputs"),
    ("returns-float", lambda: ftx.vmap(lambda x: (x, 1.0))(X), TypeError,
     r"fun must return tensors \(or None\), got float 1\.0 at output '1'"),
]


@pytest.mark.parametrize(
    "make, exc, match", [c[1:] for c in BUILD_ERRORS + CALL_ERRORS],
    ids=[c[0] for c in BUILD_ERRORS + CALL_ERRORS],
)
def test_vmap_errors(make: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match) as info:
        make()
    assert str(info.value).startswith("ftx.vmap: ")


def test_errors_from_fun_itself_pass_through() -> None:
    with pytest.raises(RuntimeError, match=r"shape '\[3, 7\]' is invalid"):
        ftx.vmap(lambda x: x.reshape(7))(X)
    with pytest.raises(KeyError, match="missing"):
        ftx.vmap(lambda d: d["missing"], in_axes=({"a": 0},))({"a": X})


def test_inner_vmap_error_is_not_blamed_on_outer_inputs() -> None:
    inner = ftx.vmap(lambda a, b: a + b)
    with pytest.raises(ValueError, match=r"argument 0 has size 4 along axis 0, argument 1 has "
                                         r"size 2 along axis 0"):
        ftx.vmap(lambda x: inner(x, torch.ones(2)))(X)


def test_control_flow_error_under_torch_func_vmap_too() -> None:
    with pytest.raises(TypeError, match=r"ftx\.vmap: fun must not read a batched tensor"):
        torch.func.vmap(ftx.vmap(_branchy))(torch.randn(2, 3, 4))
