"""Regressions from the bad-input fuzz suite (tests/fuzz): ftx.nn.

Each bad input raises ``TypeError``/``ValueError`` in the contract's form, never a raw
``OverflowError`` or a torch ``RuntimeError``/``NotImplementedError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx import nn

FORM = re.compile(r"^ftx\.[\w.]+: .+, got .+\.", re.S)

ELEMENTWISE: list[tuple[str, Callable[[Any], Any]]] = [
    ("GELU", lambda x: nn.GELU()({}, x)),
    ("SiLU", lambda x: nn.SiLU()({}, x)),
    ("Sigmoid", lambda x: nn.Sigmoid()({}, x)),
    ("Softplus", lambda x: nn.Softplus()({}, x)),
    ("ReLU", lambda x: nn.ReLU()({}, x)),
    ("Tanh", lambda x: nn.Tanh()({}, x)),
    ("gelu", nn.functional.gelu),
    ("softplus", nn.functional.softplus),
    ("sigmoid", nn.functional.sigmoid),
    ("silu", nn.functional.silu),
    ("relu", nn.functional.relu),
    ("tanh", nn.functional.tanh),
    ("dropout", lambda x: nn.functional.dropout(x, 0.5, ftx.random.key(0))),
]


@pytest.mark.parametrize(("name", "f"), ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_elementwise_float8_is_type_error(name: str, f: Callable[[Any], Any]) -> None:
    with pytest.raises(TypeError, match=FORM):
        f(torch.ones(3, dtype=torch.float8_e4m3fn))


@pytest.mark.parametrize(("name", "f"), ELEMENTWISE, ids=[n for n, _ in ELEMENTWISE])
def test_elementwise_sparse_refused_or_computed(name: str, f: Callable[[Any], Any]) -> None:
    x = torch.tensor([0.0, 1.0, -2.0]).to_sparse()
    try:
        y = f(x)
    except TypeError as err:
        assert FORM.match(str(err)), err
        assert "dense (strided)" in str(err)
    else:  # torch has a sparse kernel (relu, tanh): the values are right
        assert torch.equal(y.to_dense(), f(x.to_dense()))


def test_linear_meta_input_is_value_error() -> None:
    params = nn.Linear(3, 2).init(ftx.random.key(0))
    with pytest.raises(ValueError, match=r"^ftx\.nn\.Linear: input and params must be on "):
        nn.functional.linear(params, torch.ones(3, device="meta"))


def test_bce_pos_weight_parameter_has_grad_and_same_value() -> None:
    x, t, pw = torch.randn(4, 3), torch.rand(4, 3), torch.rand(3) + 0.5
    for reduction in ("mean", "sum", "none"):
        want = nn.binary_cross_entropy_with_logits(x, t, reduction, pw)
        p = torch.nn.Parameter(pw.clone())
        got = nn.binary_cross_entropy_with_logits(x, t, reduction, p)
        torch.testing.assert_close(got, want)
    (g,) = torch.autograd.grad(got.sum(), p)
    assert g.shape == (3,)


def test_bce_sparse_pos_weight_is_type_error() -> None:
    with pytest.raises(TypeError, match=r"pos_weight must be a dense"):
        nn.binary_cross_entropy_with_logits(torch.zeros(4, 3), torch.ones(4, 3), "mean",
                                            torch.ones(3).to_sparse())


@pytest.mark.parametrize("shape", [10**400, (10**400,), (2**62, 2**62)])
def test_layer_norm_huge_shape_is_value_error(shape: Any) -> None:
    with pytest.raises(ValueError, match=r"^ftx\.nn\.LayerNorm: normalized_shape "):
        nn.LayerNorm(shape).init(ftx.random.key(0))


def test_layer_norm_unallocatable_shape_is_value_error() -> None:
    with pytest.raises(ValueError, match=r"^ftx\.nn\.LayerNorm: normalized_shape must fit"):
        nn.LayerNorm(2**62).init(ftx.random.key(0))


@pytest.mark.parametrize("make", [lambda n: nn.Linear(n, 2), lambda n: nn.Conv2d(n, 4, 3),
                                  lambda n: nn.Conv2d(2, 4, n)])
def test_huge_sizes_are_value_errors(make: Callable[[int], Any]) -> None:
    with pytest.raises(ValueError, match=r"2\*\*63"):
        make(10**400)


@pytest.mark.parametrize("names", [None, 0, True, 1j, slice(None), type])
def test_named_tensor_non_iterable_names_is_type_error(names: Any) -> None:
    with pytest.raises(TypeError, match=r"^ftx\.nn\.NamedTensor: names must be a tuple"):
        nn.NamedTensor(torch.ones(2, 3), names)


def test_from_module_meta_module_on_cpu_input_is_value_error() -> None:
    apply_fn, params = nn.from_module(torch.nn.Linear(3, 2, device="meta"))
    with pytest.raises(ValueError, match=r"^ftx\.nn\.from_module\.apply: params and tensor "):
        apply_fn(params, torch.ones(4, 3))
    assert apply_fn(params, torch.ones(4, 3, device="meta")).shape == (4, 2)  # meta stays ok


def test_from_module_apply_message_form() -> None:
    apply_fn, _ = nn.from_module(torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match=FORM):
        apply_fn({}, torch.ones(4, 3))
