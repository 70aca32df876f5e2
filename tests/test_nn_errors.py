"""ftx.nn bad input: every message in the contract's form, tested with pytest.raises(match=)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx import nn as fnn
from ftx.nn import functional as fnf

KEY = ftx.random.key(0)
LIN = fnn.Linear(3, 2)
LIN_P = LIN.init(KEY)
CONV = fnn.Conv2d(3, 4, 3)
CONV_P = CONV.init(KEY)
DW = fnn.DepthwiseConv2d(3, 3)
DW_P = DW.init(KEY)
MLP = fnn.MLP([3, 4, 2])
MLP_P = MLP.init(KEY)
LN = fnn.LayerNorm(4)
LN_P = LN.init(KEY)
X3 = torch.randn(5, 3)
IMG = torch.randn(2, 3, 6, 6)


def drop(tree: dict[str, Any], *path: str) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    node = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


def add(tree: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in tree.items()}
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


CASES: list[Any] = [
    # wrong feature / channel count or rank: the layer and both shapes are named
    ("linear_features", lambda: LIN(LIN_P, torch.randn(5, 4)), ValueError,
     r"ftx\.nn\.Linear: input x must have shape \(\*, in_features\) = \(\*, 3\), got input of "
     r"shape \(5, 4\)"),
    ("linear_scalar", lambda: LIN(LIN_P, torch.tensor(1.0)), ValueError,
     r"ftx\.nn\.Linear: input x must have shape \(\*, in_features\) = \(\*, 3\).*got input of "
     r"shape \(\)"),
    ("conv_channels", lambda: CONV(CONV_P, torch.randn(2, 5, 6, 6)), ValueError,
     r"ftx\.nn\.Conv2d: input x must have shape \(N, C, H, W\) or \(C, H, W\) with C = 3, got "
     r"input of shape \(2, 5, 6, 6\)"),
    ("conv_rank", lambda: CONV(CONV_P, torch.randn(3, 6)), ValueError,
     r"ftx\.nn\.Conv2d: input x must have shape \(N, C, H, W\).*got input of shape \(3, 6\)"),
    ("conv_too_small", lambda: CONV(CONV_P, torch.randn(1, 3, 2, 2)), ValueError,
     r"ftx\.nn\.Conv2d: input large enough for the kernel.*\(1, 3, 2, 2\)"),
    ("depthwise_channels", lambda: DW(DW_P, torch.randn(2, 4, 6, 6)), ValueError,
     r"ftx\.nn\.DepthwiseConv2d: input x must have shape \(N, C, H, W\) or \(C, H, W\) with "
     r"C = 3.*\(2, 4, 6, 6\)"),
    ("layernorm_shape", lambda: LN(LN_P, torch.randn(2, 5)), ValueError,
     r"ftx\.nn\.LayerNorm: input x must have shape \(\*, \*normalized_shape\) = \(\*, 4\), got "
     r"input of shape \(2, 5\)"),
    ("maxpool_rank", lambda: fnn.MaxPool2d(2)({}, torch.randn(4, 4)), ValueError,
     r"ftx\.nn\.MaxPool2d: input x must have shape \(N, C, H, W\) or \(C, H, W\), got input of "
     r"shape \(4, 4\)"),
    ("avgpool_rank", lambda: fnn.AvgPool2d(2)({}, torch.randn(1, 1, 1, 4, 4)), ValueError,
     r"ftx\.nn\.AvgPool2d: input x must have shape.*\(1, 1, 1, 4, 4\)"),
    ("flatten_rank", lambda: fnn.Flatten(2)({}, torch.randn(4, 4)), ValueError,
     r"ftx\.nn\.Flatten: input with dimensions 2\.\.-1.*got input of shape \(4, 4\)"),
    ("mlp_inner_layer", lambda: MLP(MLP_P, torch.randn(5, 7)), ValueError,
     r"ftx\.nn\.Linear: input x must have shape \(\*, in_features\) = \(\*, 3\)"),
    # params with missing or extra keys: the paths are listed
    ("linear_missing_bias", lambda: LIN(drop(LIN_P, "bias"), X3), ValueError,
     r"ftx\.nn\.Linear: params must hold exactly the paths \['bias', 'weight'\], got missing "
     r"paths \['bias'\] and extra paths \[\]"),
    ("linear_extra", lambda: LIN(add(LIN_P, torch.ones(1), "scale"), X3), ValueError,
     r"missing paths \[\] and extra paths \['scale'\]"),
    ("mlp_missing_nested", lambda: MLP(drop(MLP_P, "2", "bias"), X3), ValueError,
     r"ftx\.nn\.MLP: params must hold exactly the paths .*got missing paths "
     r"\['2\.bias'\] and extra paths \[\]"),
    ("mlp_wrong_index", lambda: MLP(add(drop(MLP_P, "2"), MLP_P["2"], "1"), X3), ValueError,
     r"missing paths \['2\.bias', '2\.weight'\] and extra paths \['1\.bias', '1\.weight'\]"),
    ("mlp_wrong_shape", lambda: MLP(add(MLP_P, torch.ones(9), "0", "bias"), X3), ValueError,
     r"ftx\.nn\.MLP: params\['0\.bias'\] must have shape \(4,\), got shape \(9,\)"),
    ("sequential_missing", lambda: fnn.Sequential(LIN)({}, X3), ValueError,
     r"ftx\.nn\.Sequential: params must hold exactly the paths \['0\.bias', '0\.weight'\], "
     r"got missing paths \['0\.bias', '0\.weight'\] and extra paths \[\]"),
    ("relu_with_params", lambda: fnn.ReLU()({"w": torch.ones(1)}, X3), ValueError,
     r"ftx\.nn\.ReLU: params must hold exactly the paths \[\], got missing paths \[\] and "
     r"extra paths \['w'\]"),
    ("params_not_dict", lambda: LIN([1, 2], X3), TypeError,
     r"ftx\.nn\.Linear: params must be a dict of tensors"),
    ("functional_linear_extra", lambda: fnf.linear(add(LIN_P, torch.ones(1), "x"), X3),
     ValueError, r"ftx\.nn\.functional\.linear: params must hold 'weight' and optionally "
     r"'bias', got missing paths \[\] and extra paths \['x'\]"),
    # mixed dtypes
    ("linear_dtype", lambda: LIN(LIN_P, X3.double()), TypeError,
     r"ftx\.nn\.Linear: input and params must share one dtype, got input torch\.float64 and "
     r"params\['weight'\] torch\.float32"),
    ("linear_param_dtypes", lambda: LIN(add(LIN_P, LIN_P["bias"].double(), "bias"), X3),
     TypeError, r"input torch\.float32 and params\['bias'\] torch\.float64"),
    ("conv_dtype", lambda: CONV(CONV_P, IMG.double()), TypeError,
     r"ftx\.nn\.Conv2d: input and params must share one dtype"),
    ("layernorm_dtype", lambda: LN(LN_P, torch.randn(2, 4).double()), TypeError,
     r"ftx\.nn\.LayerNorm: input and params must share one dtype"),
    ("integer_input", lambda: LIN(LIN_P, torch.ones(2, 3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.Linear: input x must be a floating tensor, got dtype torch\.int64"),
    ("input_not_tensor", lambda: LIN(LIN_P, [1.0, 2.0, 3.0]), TypeError,
     r"ftx\.nn\.Linear: input x must be a tensor, got list"),
    ("relu_not_tensor", lambda: fnn.ReLU()({}, 3.0), TypeError,
     r"ftx\.nn\.ReLU: input x must be a tensor, got float"),
    ("mse_dtype", lambda: fnn.mse_loss(X3, X3.double()), TypeError,
     r"ftx\.nn\.mse_loss: input and target must share one dtype"),
    ("mse_shape", lambda: fnn.mse_loss(X3, X3[:, :1]), ValueError,
     r"ftx\.nn\.mse_loss: input and target must have the same shape, got input \(5, 3\) and "
     r"target \(5, 1\)"),
    ("mse_reduction", lambda: fnn.mse_loss(X3, X3, reduction="avg"), ValueError,
     r"ftx\.nn\.mse_loss: reduction must be one of"),
    ("bce_dtype", lambda: fnn.binary_cross_entropy_with_logits(X3, X3.double()), TypeError,
     r"ftx\.nn\.binary_cross_entropy_with_logits: input and target must share one dtype"),
    ("ce_target_shape", lambda: fnn.cross_entropy(X3, torch.zeros(4, dtype=torch.long)),
     ValueError, r"ftx\.nn\.cross_entropy: class-index target of shape \(5,\) for input "
     r"\(5, 3\), got target \(4,\)"),
    ("ce_prob_dtype", lambda: fnn.cross_entropy(X3, X3.double()), TypeError,
     r"ftx\.nn\.cross_entropy: input and target must share one dtype"),
    # hyper-parameters, checked when the layer is built
    ("linear_zero", lambda: fnn.Linear(0, 2), ValueError, r"ftx\.nn\.Linear: in_features must "
     r"be >= 1, got 0"),
    ("conv_groups", lambda: fnn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"ftx\.nn\.Conv2d: groups must divide in_channels and out_channels"),
    ("conv_same_stride", lambda: fnn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError,
     r"ftx\.nn\.Conv2d: padding='same' needs stride 1"),
    ("conv_padding_word", lambda: fnn.Conv2d(3, 4, 3, padding="full"), ValueError,
     r"padding must be 'same', 'valid' or ints"),
    ("conv_kernel_type", lambda: fnn.Conv2d(3, 4, 2.5), TypeError,  # type: ignore[arg-type]
     r"ftx\.nn\.Conv2d: kernel_size must be an int or a pair of ints"),
    ("dropout_p", lambda: fnn.Dropout(1.5), ValueError, r"ftx\.nn\.Dropout: p must be in "
     r"\[0, 1\], got 1\.5"),
    ("gelu_mode", lambda: fnn.GELU("fast"), ValueError,
     r"ftx\.nn\.GELU: approximate must be one of \('none', 'tanh'\), got 'fast'"),
    ("mlp_sizes", lambda: fnn.MLP([3]), ValueError, r"ftx\.nn\.MLP: sizes must be a sequence "
     r"of at least 2 ints"),
    ("sequential_non_layer", lambda: fnn.Sequential(torch.nn.ReLU()), TypeError,  # type: ignore[arg-type]
     r"ftx\.nn\.Sequential: every layer must be an ftx\.nn layer, layer 0"),
    ("pool_padding", lambda: fnn.MaxPool2d(2, padding=2), ValueError,
     r"padding must be at most half the kernel size"),
    ("dropout_bad_key", lambda: fnn.Dropout(0.5)({}, X3, key=torch.ones(2)), TypeError,
     r"ftx\.nn\.Dropout: key must be an ftx\.random key \(one int64 tensor of shape \(2,\)\)"),
]


@pytest.mark.parametrize(
    ("fn", "exc", "match"), [pytest.param(*c[1:], id=c[0]) for c in CASES]
)
def test_bad_input_raises_contract_message(
    fn: Callable[[], Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        fn()


def test_sequential_error_notes_the_failing_layer() -> None:
    with pytest.raises(ValueError, match=r"ftx\.nn\.Linear") as info:
        MLP(MLP_P, torch.randn(5, 7))
    assert any("ftx.nn.MLP by layer 0: Linear(in_features=3" in n for n in info.value.__notes__)


def test_params_error_is_a_value_error() -> None:
    assert issubclass(fnn.ParamsError, ValueError)
    with pytest.raises(fnn.ParamsError):
        LIN({}, X3)


def test_kernel_level_mismatches_are_diagnosed_not_runtime_errors() -> None:
    with pytest.raises(ValueError, match=r"ftx\.nn\.Linear: params\['bias'\] must have shape "
                       r"\(2,\), got shape \(3,\)"):
        LIN({"weight": LIN_P["weight"], "bias": torch.ones(3)}, X3)
    with pytest.raises(ValueError, match=r"ftx\.nn\.Conv2d: params\['bias'\] must have shape"):
        CONV({"weight": CONV_P["weight"], "bias": torch.ones(5)}, IMG)
    with pytest.raises(ValueError, match=r"ftx\.nn\.Conv2d: input x must have shape \(N, C, H, W\)"
                       r" or \(C, H, W\) with C = 3, got input of shape \(1, 2, 3, 6, 6\)"):
        CONV(CONV_P, torch.randn(1, 2, 3, 6, 6))
    with pytest.raises(TypeError, match=r"ftx\.nn\.DepthwiseConv2d: input and params must share"):
        DW({"weight": DW_P["weight"], "bias": DW_P["bias"].double()}, IMG)
