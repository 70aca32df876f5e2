"""ftx.nn bad input never hurts (issue 20): hyper-parameters at build time, inputs, params,
keys, init arguments, losses, ``load_params`` all or nothing, cyclic and empty trees.

Every case is a ``pytest.raises(..., match=...)`` on the contract's message
``ftx.nn.<api>: <required>, got <came>. <fix>``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx import nn as fnn
from ftx.nn import functional as fnf

KEY = ftx.random.key(0)

# Valid keyword arguments of every layer; a new layer must be added here (see
# test_every_layer_is_covered), so that its hyper-parameters are swept below.
VALID: dict[type, dict[str, Any]] = {
    fnn.Linear: {"in_features": 3, "out_features": 2},
    fnn.Conv2d: {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
    fnn.DepthwiseConv2d: {"channels": 3, "kernel_size": 3},
    fnn.MLP: {"sizes": [3, 4, 2]},
    fnn.LayerNorm: {"normalized_shape": 4},
    fnn.MaxPool2d: {"kernel_size": 2},
    fnn.AvgPool2d: {"kernel_size": 2},
    fnn.Flatten: {},
    fnn.Dropout: {},
    fnn.GELU: {},
    fnn.Softplus: {},
    fnn.ReLU: {},
    fnn.Tanh: {},
    fnn.Sigmoid: {},
    fnn.SiLU: {},
    fnn.Identity: {},
    fnn.Embedding: {"num_embeddings": 5, "embedding_dim": 3},
    fnn.MultiheadAttention: {"embed_dim": 4, "num_heads": 2},
    fnn.TransformerEncoderLayer: {"d_model": 4, "nhead": 2},
    fnn.TransformerDecoderLayer: {"d_model": 4, "nhead": 2},
    fnn.RMSNorm: {"normalized_shape": 4},
    fnn.GroupNorm: {"num_groups": 2, "num_channels": 4},
    fnn.Conv1d: {"in_channels": 2, "out_channels": 4, "kernel_size": 3},
    fnn.Conv3d: {"in_channels": 2, "out_channels": 4, "kernel_size": 3},
    fnn.ConvTranspose2d: {"in_channels": 2, "out_channels": 4, "kernel_size": 3},
    fnn.AdaptiveAvgPool2d: {"output_size": 2},
    fnn.Upsample: {"scale_factor": 2},
    fnn.GRUCell: {"input_size": 3, "hidden_size": 4},
    fnn.LSTMCell: {"input_size": 3, "hidden_size": 4},
    fnn.GRU: {"input_size": 3, "hidden_size": 4},
    fnn.LSTM: {"input_size": 3, "hidden_size": 4},
    fnn.BatchNorm1d: {"num_features": 3},
    fnn.BatchNorm2d: {"num_features": 3},
}


def test_every_layer_is_covered() -> None:
    layers = {getattr(fnn, n) for n in fnn.__all__}
    layers = {c for c in layers if isinstance(c, type) and issubclass(c, fnn.Layer)}
    assert layers - {fnn.Layer, fnn.Sequential} == set(VALID)


FIELDS = [
    pytest.param(cls, f.name, id=f"{cls.__name__}.{f.name}")
    for cls in VALID
    for f in dataclasses.fields(cls)
]


@pytest.mark.parametrize(("cls", "field"), FIELDS)
def test_every_hyper_parameter_is_checked_when_the_layer_is_built(cls: type, field: str) -> None:
    """A value of no sensible kind in any field fails at construction, naming the field."""
    with pytest.raises(TypeError, match=rf"^ftx\.nn\.{cls.__name__}: {field}(\[\d+\])? must "):
        cls(**{**VALID[cls], field: object()})


HPARAMS: list[Any] = [
    (lambda: fnn.Linear(-1, 2), ValueError, r"ftx\.nn\.Linear: in_features must be >= 1, got -1"),
    (lambda: fnn.Linear(3, 2.0), TypeError, r"ftx\.nn\.Linear: out_features must be an int, "
     r"got float 2\.0"),
    (lambda: fnn.Linear(True, 2), TypeError, r"in_features must be an int, got bool True"),
    (lambda: fnn.Linear(3, 2, bias="yes"), TypeError,
     r"ftx\.nn\.Linear: bias must be True or False, got str 'yes'"),
    (lambda: fnn.Conv2d(3, 4, 0), ValueError, r"ftx\.nn\.Conv2d: kernel_size must be >= 1, "
     r"got \(0, 0\)"),
    (lambda: fnn.Conv2d(3, 4, (3, -1)), ValueError, r"kernel_size must be >= 1, got \(3, -1\)"),
    (lambda: fnn.Conv2d(3, 4, (3, 3, 3)), TypeError,
     r"ftx\.nn\.Conv2d: kernel_size must be an int or a pair of ints"),
    (lambda: fnn.Conv2d(3, 4, 3, stride=0), ValueError, r"stride must be >= 1, got \(0, 0\)"),
    (lambda: fnn.Conv2d(3, 4, 3, dilation=0), ValueError, r"dilation must be >= 1"),
    (lambda: fnn.Conv2d(3, 4, 3, padding=-1), ValueError, r"ftx\.nn\.Conv2d: padding must be "
     r">= 0, got \(-1, -1\)"),
    (lambda: fnn.Conv2d(3, 4, 3, padding="full"), ValueError,
     r"padding must be 'same', 'valid' or ints"),
    (lambda: fnn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError,
     r"padding='same' needs stride 1"),
    (lambda: fnn.Conv2d(3, 4, 3, groups=2), ValueError,
     r"ftx\.nn\.Conv2d: groups must divide in_channels and out_channels, got groups=2, "
     r"in_channels=3, out_channels=4"),
    (lambda: fnn.Conv2d(3, 4, 3, groups=0), ValueError, r"groups must be >= 1, got 0"),
    (lambda: fnn.DepthwiseConv2d(3, 3, depth_multiplier=0), ValueError,
     r"ftx\.nn\.DepthwiseConv2d: depth_multiplier must be >= 1, got 0"),
    (lambda: fnn.DepthwiseConv2d(3, 3, bias=1), TypeError, r"bias must be True or False"),
    (lambda: fnn.Dropout(1.5), ValueError, r"ftx\.nn\.Dropout: p must be in \[0, 1\], got 1\.5"),
    (lambda: fnn.Dropout(-0.1), ValueError, r"p must be in \[0, 1\], got -0\.1"),
    (lambda: fnn.Dropout(float("nan")), ValueError, r"p must be in \[0, 1\], got nan"),
    (lambda: fnn.Dropout(True), TypeError, r"ftx\.nn\.Dropout: p must be a real number, got "
     r"bool True"),
    (lambda: fnn.Dropout("0.5"), TypeError, r"p must be a real number, got str '0\.5'"),
    (lambda: fnn.LayerNorm(4, eps="a"), TypeError,
     r"ftx\.nn\.LayerNorm: eps must be a real number, got str 'a'"),
    (lambda: fnn.LayerNorm(4, eps=-1e-5), ValueError, r"eps must be >= 0, got -1e-05"),
    (lambda: fnn.LayerNorm(()), ValueError,
     r"normalized_shape must be a non-empty tuple of ints >= 1, got tuple \(\)"),
    (lambda: fnn.LayerNorm((3, 0)), ValueError, r"normalized_shape must be a non-empty tuple"),
    (lambda: fnn.LayerNorm(4.0), TypeError,
     r"ftx\.nn\.LayerNorm: normalized_shape must be an int or a tuple of ints, got float 4\.0"),
    (lambda: fnn.LayerNorm(4, elementwise_affine="no"), TypeError,
     r"elementwise_affine must be True or False"),
    (lambda: fnn.MaxPool2d(2, ceil_mode="yes"), TypeError,
     r"ftx\.nn\.MaxPool2d: ceil_mode must be True or False, got str 'yes'"),
    (lambda: fnn.MaxPool2d(0), ValueError, r"ftx\.nn\.MaxPool2d: kernel_size must be >= 1"),
    (lambda: fnn.MaxPool2d(2, padding=2), ValueError,
     r"padding must be at most half the kernel size"),
    (lambda: fnn.MaxPool2d(2, stride=0), ValueError, r"stride must be >= 1"),
    (lambda: fnn.AvgPool2d(2, count_include_pad="yes"), TypeError,
     r"ftx\.nn\.AvgPool2d: count_include_pad must be True or False"),
    (lambda: fnn.AvgPool2d(2, divisor_override=0), ValueError,
     r"ftx\.nn\.AvgPool2d: divisor_override must be >= 1, got 0"),
    (lambda: fnn.Flatten(2, 1), ValueError,
     r"ftx\.nn\.Flatten: start_dim must not come after end_dim, got start_dim=2 and end_dim=1"),
    (lambda: fnn.Flatten(1.0), TypeError, r"ftx\.nn\.Flatten: start_dim must be an int"),
    (lambda: fnn.GELU("fast"), ValueError,
     r"ftx\.nn\.GELU: approximate must be one of \('none', 'tanh'\), got 'fast'"),
    (lambda: fnn.GELU(None), TypeError, r"approximate must be one of .*got NoneType None"),
    (lambda: fnn.Softplus(beta=0.0), ValueError, r"ftx\.nn\.Softplus: beta must be > 0"),
    (lambda: fnn.Softplus(threshold=float("inf")), ValueError, r"threshold must be finite"),
    (lambda: fnn.MLP([3]), ValueError, r"ftx\.nn\.MLP: sizes must be a sequence of at least 2"),
    (lambda: fnn.MLP("34"), TypeError, r"ftx\.nn\.MLP: sizes must be a sequence of at least 2 "
     r"ints, got str '34'"),
    (lambda: fnn.MLP([3, -4, 2]), ValueError, r"ftx\.nn\.MLP: sizes\[1\] must be >= 1, got -4"),
    (lambda: fnn.MLP([3, 4.5, 2]), TypeError, r"ftx\.nn\.MLP: sizes\[1\] must be an int"),
    (lambda: fnn.MLP([3, 2], activation=fnn.ReLU), TypeError,
     r"ftx\.nn\.MLP: activation must be an ftx\.nn layer \(an instance\), got type .*"
     r"E\.g\. ftx\.nn\.ReLU\(\), not ftx\.nn\.ReLU"),
    (lambda: fnn.MLP([3, 2], activation="relu"), TypeError, r"activation must be an ftx\.nn "
     r"layer"),
    (lambda: fnn.MLP([3, 2], final_activation=torch.nn.ReLU()), TypeError,
     r"final_activation must be an ftx\.nn layer"),
    (lambda: fnn.Sequential(fnn.ReLU(), torch.nn.ReLU()), TypeError,
     r"ftx\.nn\.Sequential: every layer must be an ftx\.nn layer, layer 1"),
]


@pytest.mark.parametrize(("build", "exc", "match"), HPARAMS,
                         ids=[re.sub(r"\W+", "-", c[2][:48]).strip("-") for c in HPARAMS])
def test_bad_hyper_parameters(build: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        build()


# ---------------------------------------------------------------------------
# Inputs and params at call time.

LIN = fnn.Linear(3, 2)
LIN_P = LIN.init(KEY)
CONV = fnn.Conv2d(3, 4, 3)
CONV_P = CONV.init(KEY)
LN = fnn.LayerNorm(4)
LN_P = LN.init(KEY)
SEQ = fnn.Sequential(fnn.Linear(3, 4), fnn.ReLU(), fnn.Dropout(0.5), fnn.Linear(4, 2))
SEQ_P = SEQ.init(KEY)
X = torch.randn(5, 3)
IMG = torch.randn(2, 3, 6, 6)


def _cyclic() -> dict[str, Any]:
    d: dict[str, Any] = {"weight": LIN_P["weight"]}
    d["bias"] = d
    return d


CALLS: list[Any] = [
    # shapes: the expected shape is named
    (lambda: LIN(LIN_P, torch.randn(5, 4)), ValueError,
     r"ftx\.nn\.Linear: input x must have shape \(\*, in_features\) = \(\*, 3\), got input of "
     r"shape \(5, 4\)"),
    (lambda: CONV(CONV_P, torch.randn(3, 6)), ValueError,
     r"ftx\.nn\.Conv2d: input x must have shape \(N, C, H, W\) or \(C, H, W\) with C = 3, got "
     r"input of shape \(3, 6\)"),
    (lambda: CONV(CONV_P, torch.randn(2, 5, 6, 6)), ValueError, r"with C = 3, got input of "
     r"shape \(2, 5, 6, 6\)"),
    (lambda: CONV(CONV_P, torch.randn(1, 3, 2, 2)), ValueError,
     r"ftx\.nn\.Conv2d: input large enough for the kernel, stride and dilation"),
    (lambda: LN(LN_P, torch.randn(2, 5)), ValueError,
     r"ftx\.nn\.LayerNorm: input x must have shape \(\*, \*normalized_shape\) = \(\*, 4\)"),
    (lambda: fnn.AvgPool2d(2)({}, torch.randn(4, 4)), ValueError,
     r"ftx\.nn\.AvgPool2d: input x must have shape \(N, C, H, W\) or \(C, H, W\)"),
    (lambda: fnn.Flatten(-1, 0)({}, torch.randn(2, 3, 4)), ValueError,
     r"ftx\.nn\.Flatten: input whose dimension -1 does not come after dimension 0, got input of "
     r"shape \(2, 3, 4\)"),
    # kinds
    (lambda: LIN(LIN_P, X.long()), TypeError,
     r"ftx\.nn\.Linear: input x must be a floating tensor, got dtype torch\.int64"),
    (lambda: LIN(LIN_P, X.tolist()), TypeError, r"ftx\.nn\.Linear: input x must be a tensor, "
     r"got list"),
    (lambda: LIN(LIN_P, X.double()), TypeError,
     r"ftx\.nn\.Linear: input and params must share one dtype"),
    (lambda: fnn.ReLU()({}, torch.ones(3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.ReLU: input x must be a floating tensor, got dtype torch\.int64"),
    (lambda: fnn.GELU()({}, torch.ones(3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.GELU: input x must be a floating tensor"),
    (lambda: fnn.MaxPool2d(2)({}, torch.ones(1, 4, 4, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.MaxPool2d: input x must be a floating tensor"),
    (lambda: fnn.AvgPool2d(2)({}, torch.ones(1, 4, 4, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.AvgPool2d: input x must be a floating tensor"),
    (lambda: fnn.Dropout(0.5)({}, torch.ones(3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.Dropout: input x must be a floating tensor"),
    (lambda: fnn.Tanh()({}, 1.0), TypeError, r"ftx\.nn\.Tanh: input x must be a tensor, got "
     r"float"),
    # params: paths, shapes, kinds
    (lambda: LIN({"weight": LIN_P["weight"]}, X), ValueError,
     r"ftx\.nn\.Linear: params must hold exactly the paths \['bias', 'weight'\], got missing "
     r"paths \['bias'\] and extra paths \[\]"),
    (lambda: LIN({**LIN_P, "bias": torch.zeros(3)}, X), ValueError,
     r"ftx\.nn\.Linear: params\['bias'\] must have shape \(2,\), got shape \(3,\)"),
    (lambda: LIN({**LIN_P, "bias": [0.0, 0.0]}, X), TypeError,
     r"ftx\.nn\.Linear: params\['bias'\] must be a tensor, got list"),
    (lambda: LIN(None, X), TypeError, r"ftx\.nn\.Linear: params must be a dict of tensors"),
    (lambda: SEQ({**SEQ_P, "3": {**SEQ_P["3"], "weight": torch.zeros(2, 5)}}, X), ValueError,
     r"ftx\.nn\.Sequential: params\['3\.weight'\] must have shape \(2, 4\), got shape \(2, 5\)"),
    (lambda: SEQ({"0": SEQ_P["0"]}, X), ValueError,
     r"ftx\.nn\.Sequential: params must hold exactly the paths .*got missing paths "
     r"\['3\.bias', '3\.weight'\]"),
    (lambda: fnn.ReLU()({"w": torch.ones(1)}, X), ValueError,
     r"ftx\.nn\.ReLU: params must hold exactly the paths \[\], got missing paths \[\] and extra "
     r"paths \['w'\]"),
    (lambda: fnn.ReLU()([1], X), TypeError, r"ftx\.nn\.ReLU: params must be a dict of tensors"),
    # cycles
    (lambda: LIN(_cyclic(), X), ValueError,
     r"ftx\.nn\.Linear: params must be a pytree without cycles, got a container at path 'bias' "
     r"that contains itself"),
    (lambda: SEQ({"0": _cyclic(), "3": SEQ_P["3"]}, X), ValueError,  # + a note: layer 0
     r"ftx\.nn\.Linear: params must be a pytree without cycles, got a container at path 'bias'"),
    (lambda: fnn.load_params(torch.nn.Linear(3, 2), {"weight": _cyclic()}), ValueError,
     r"ftx\.nn\.load_params: params must be a pytree without cycles, got a container at path "
     r"'weight\.bias'"),
    # devices (a meta tensor stands in for another device)
    (lambda: LN({**LN_P, "weight": LN_P["weight"].to("meta")}, torch.randn(2, 4)), ValueError,
     r"ftx\.nn\.LayerNorm: input and params must be on one device, got input on cpu and "
     r"params\['weight'\] on meta"),
    # keys
    (lambda: fnn.Dropout(0.5)({}, X, key=torch.ones(2)), TypeError,
     r"ftx\.nn\.Dropout: key must be an ftx\.random key \(one int64 tensor of shape \(2,\)\), "
     r"got Tensor\(shape=\(2,\), dtype=torch\.float32\)"),
    (lambda: fnn.Dropout(0.5)({}, X, key=ftx.random.split(KEY, 5)), TypeError,
     r"ftx\.nn\.Dropout: key must be an ftx\.random key .*got Tensor\(shape=\(5, 2\).*map over "
     r"a batch of keys with ftx\.vmap"),
    (lambda: fnn.Dropout(0.0)({}, X, key=3), TypeError,
     r"ftx\.nn\.Dropout: key must be an ftx\.random key .*got int 3"),
    (lambda: SEQ(SEQ_P, X, key="seed"), TypeError,
     r"ftx\.nn\.Sequential: key must be an ftx\.random key .*got str 'seed'"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), CALLS,
                         ids=[f"call{i}-" + re.sub(r"\W+", "-", c[2][8:40]).strip("-")
                              for i, c in enumerate(CALLS)])
def test_bad_calls(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------
# init(key, *, dtype, device)

INIT_LAYERS = [pytest.param(cls(**kw), id=cls.__name__) for cls, kw in VALID.items()] + [
    pytest.param(SEQ, id="Sequential")]


@pytest.mark.parametrize("layer", INIT_LAYERS)
@pytest.mark.parametrize(("kwargs", "exc", "match"), [
    pytest.param({"key": torch.zeros(2)}, TypeError, r"key must be an ftx\.random key .*float32",
                 id="float-key"),
    pytest.param({"key": 0}, TypeError, r"key must be an ftx\.random key .*got int 0",
                 id="int-key"),
    pytest.param({"key": ftx.random.split(KEY, 3)}, TypeError,
                 r"key must be an ftx\.random key .*shape=\(3, 2\)", id="batch-of-keys"),
    pytest.param({"dtype": torch.int64}, ValueError,
                 r"dtype must be float16, bfloat16, float32 or float64, got torch\.int64",
                 id="int-dtype"),
    pytest.param({"dtype": torch.complex64}, ValueError, r"dtype must be float16, .*complex64",
                 id="complex-dtype"),
    pytest.param({"dtype": "float32"}, TypeError, r"dtype must be a torch\.dtype, got str",
                 id="str-dtype"),
    pytest.param({"device": "nope"}, ValueError,
                 r"device must be a device torch can use in this process, got 'nope'",
                 id="bad-device"),
    pytest.param({"device": True}, TypeError, r"device must be a torch\.device, a string or an "
                 r"int, got bool True", id="bool-device"),
])
def test_init_arguments(layer: fnn.Layer, kwargs: dict[str, Any], exc: type[Exception],
                        match: str) -> None:
    kwargs = dict(kwargs)  # the parametrized dict is shared between cases
    key = kwargs.pop("key", KEY)
    with pytest.raises(exc, match=rf"^ftx\.nn\.{type(layer).__name__}: " + match):
        layer.init(key, **kwargs)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_init_accepts_every_floating_dtype(dtype: torch.dtype) -> None:
    params = SEQ.init(KEY, dtype=dtype, device="cpu")
    assert {x.dtype for x in ftx.tree.leaves(params)} == {dtype}
    assert SEQ(params, X.to(dtype)).dtype == dtype


# ---------------------------------------------------------------------------
# Losses

LOSSES: list[Any] = [
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 5])), ValueError,
     r"ftx\.nn\.cross_entropy: class indices in target must be in \[0, 4\) \(input has 4 "
     r"classes\) or equal ignore_index=-100, got an index out of range \(torch: Target 5 is out "
     r"of bounds\.\)"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([-3, 0])), ValueError,
     r"class indices in target must be in \[0, 4\).*Target -3"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 3, 5), torch.full((2, 5), 3)), ValueError,
     r"class indices in target must be in \[0, 3\)"),
    (lambda: fnn.cross_entropy(torch.zeros(4), torch.tensor(4)), ValueError,
     r"class indices in target must be in \[0, 4\)"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4, dtype=torch.int64), torch.tensor([0, 1])),
     TypeError, r"ftx\.nn\.cross_entropy: input must be a floating tensor, got dtype torch\.int64"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1]), label_smoothing=1.5),
     ValueError, r"ftx\.nn\.cross_entropy: label_smoothing must be in \[0, 1\], got 1\.5"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1]), label_smoothing="a"),
     TypeError, r"label_smoothing must be a real number, got str 'a'"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1]), ignore_index=0.5),
     TypeError, r"ftx\.nn\.cross_entropy: ignore_index must be an int, got float 0\.5"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([0, 1, 2])), ValueError,
     r"class-index target of shape \(2,\) for input \(2, 4\), got target \(3,\)"),
    (lambda: fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([True, False])), TypeError,
     r"target must hold integer class indices, got dtype torch\.bool"),
    (lambda: fnn.mse_loss(torch.ones(3, dtype=torch.int64), torch.ones(3, dtype=torch.int64)),
     TypeError, r"ftx\.nn\.mse_loss: input must be a floating tensor, got dtype torch\.int64"),
    (lambda: fnn.mse_loss(torch.ones(3, dtype=torch.bool), torch.ones(3, dtype=torch.bool)),
     TypeError, r"ftx\.nn\.mse_loss: input must be a floating tensor, got dtype torch\.bool"),
    (lambda: fnn.mse_loss(torch.ones(3), torch.ones(3, 1)), ValueError,
     r"ftx\.nn\.mse_loss: input and target must have the same shape, got input \(3,\) and target "
     r"\(3, 1\)"),
    (lambda: fnn.mse_loss(torch.ones(3), [1.0, 1.0, 1.0]), TypeError,
     r"ftx\.nn\.mse_loss: target must be a tensor, got list"),
    (lambda: fnn.binary_cross_entropy_with_logits(torch.zeros(2, dtype=torch.int64),
                                                  torch.zeros(2, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.binary_cross_entropy_with_logits: input must be a floating tensor"),
    (lambda: fnn.binary_cross_entropy_with_logits(torch.zeros(2, 3), torch.zeros(2, 3),
                                                  pos_weight=torch.ones(4)), ValueError,
     r"ftx\.nn\.binary_cross_entropy_with_logits: pos_weight must broadcast to input's shape "
     r"\(2, 3\), got shape \(4,\)"),
    (lambda: fnn.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3),
                                                  pos_weight=torch.ones(2, 3)), ValueError,
     r"pos_weight must broadcast to input's shape \(3,\), got shape \(2, 3\)"),
    (lambda: fnn.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3),
                                                  pos_weight=torch.ones(3).double()), TypeError,
     r"pos_weight must have input's dtype, got pos_weight torch\.float64 and input "
     r"torch\.float32"),
    (lambda: fnn.binary_cross_entropy_with_logits(torch.zeros(3), torch.zeros(3),
                                                  pos_weight=2.0), TypeError,
     r"pos_weight must be a tensor or None, got float 2\.0"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), LOSSES,
                         ids=[f"loss{i}" for i in range(len(LOSSES))])
def test_bad_losses(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


def test_cross_entropy_ignore_index_is_not_out_of_range() -> None:
    loss = fnn.cross_entropy(torch.zeros(2, 4), torch.tensor([1, -100]))
    torch.testing.assert_close(loss, torch.tensor(4.0).log())


# ---------------------------------------------------------------------------
# ftx.nn.functional runs the same checks, in its own name where the hyper-parameters
# are call arguments.

FUNCTIONAL: list[Any] = [
    (lambda: fnf.relu([1.0]), TypeError, r"ftx\.nn\.functional\.relu: input x must be a tensor"),
    (lambda: fnf.sigmoid(torch.ones(2, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.functional\.sigmoid: input x must be a floating tensor"),
    (lambda: fnf.linear(LIN_P, [1.0, 2.0, 3.0]), TypeError, r"input x must be a tensor"),
    (lambda: fnf.conv2d(CONV_P, IMG, groups="a"), TypeError,
     r"ftx\.nn\.functional\.conv2d: groups must be an int, got str 'a'"),
    (lambda: fnf.conv2d(CONV_P, IMG, groups=0), ValueError,
     r"ftx\.nn\.functional\.conv2d: groups must be >= 1, got 0"),
    (lambda: fnf.conv2d(CONV_P, IMG, stride=0), ValueError, r"ftx\.nn\.Conv2d: stride must be "
     r">= 1"),
    (lambda: fnf.conv2d(CONV_P, IMG, padding=-1), ValueError, r"padding must be >= 0"),
    (lambda: fnf.conv2d(CONV_P, IMG, stride="a"), TypeError, r"stride must be an int or a pair"),
    (lambda: fnf.depthwise_conv2d({"weight": torch.ones(3, 1, 2, 2)}, [1.0]), TypeError,
     r"ftx\.nn\.functional\.depthwise_conv2d: input x must be a tensor"),
    (lambda: fnf.dropout(X, "a"), TypeError,
     r"ftx\.nn\.functional\.dropout: p must be a real number, got str 'a'"),
    (lambda: fnf.dropout(X, 2.0), ValueError, r"ftx\.nn\.functional\.dropout: p must be in "
     r"\[0, 1\], got 2\.0"),
    (lambda: fnf.dropout(X, 0.0, key=torch.zeros(2)), TypeError,
     r"ftx\.nn\.functional\.dropout: key must be an ftx\.random key"),
    (lambda: fnf.layer_norm({}, X, (3,), eps="a"), TypeError,
     r"ftx\.nn\.LayerNorm: eps must be a real number"),
    (lambda: fnf.max_pool2d(IMG, 2, ceil_mode=1), TypeError,
     r"ftx\.nn\.MaxPool2d: ceil_mode must be True or False"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), FUNCTIONAL,
                         ids=[f"functional{i}" for i in range(len(FUNCTIONAL))])
def test_bad_functional_calls(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------
# load_params: all or nothing.


def _module() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                               torch.nn.Linear(4, 2))


def _good(module: torch.nn.Module) -> dict[str, Any]:
    return ftx.tree.map(lambda t: torch.zeros_like(t), fnn.params_of(module))


def _with(tree: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = ftx.tree.map(lambda t: t, tree)
    *parents, last = path.split(".")
    node = out
    for p in parents:
        node = node[p]
    node[last] = value
    return out


LOADS: list[Any] = [
    pytest.param(lambda m: _with(_good(m), "2.bias", torch.zeros(2, device="meta")), ValueError,
                 r"ftx\.nn\.load_params: params\['2\.bias'\] must hold data, got a meta tensor",
                 id="meta-last-leaf"),
    pytest.param(lambda m: _with(_good(m), "2.weight", torch.zeros(2, 5)), ValueError,
                 r"params\['2\.weight'\] must have shape \(2, 4\), got shape \(2, 5\)",
                 id="shape"),
    pytest.param(lambda m: _with(_good(m), "0.weight", torch.zeros(4, 3, dtype=torch.complex64)),
                 TypeError, r"params\['0\.weight'\] must have a dtype that casts safely to "
                 r"torch\.float32, got dtype torch\.complex64", id="complex-into-real"),
    pytest.param(lambda m: _with(_good(m), "1.num_batches_tracked", torch.tensor(2.5)), TypeError,
                 r"params\['1\.num_batches_tracked'\] must have a dtype that casts safely to "
                 r"torch\.int64, got dtype torch\.float32", id="float-into-int-buffer"),
    pytest.param(lambda m: _with(_good(m), "2.bias", [0.0, 0.0]), TypeError,
                 r"params\['2\.bias'\] must be a tensor, got list", id="not-a-tensor"),
    pytest.param(lambda m: {k: v for k, v in _good(m).items() if k != "2"}, ValueError,
                 r"params must hold exactly the module's paths .*got missing paths "
                 r"\['2\.bias', '2\.weight'\]", id="missing"),
    pytest.param(lambda m: {**_good(m), "extra": torch.zeros(1)}, ValueError,
                 r"extra paths \['extra'\]", id="extra"),
    pytest.param(lambda m: _with(_good(m), "2.bias", _good(m)), ValueError,
                 r"got missing paths \['2\.bias'\] and extra paths", id="dict-for-a-leaf"),
    pytest.param(lambda m: [torch.zeros(1)], TypeError,
                 r"ftx\.nn\.load_params: params must be a nested dict of tensors", id="list"),
]


@pytest.mark.parametrize(("make", "exc", "match"), LOADS)
def test_load_params_is_all_or_nothing(make: Callable[[torch.nn.Module], Any],
                                       exc: type[Exception], match: str) -> None:
    module = _module()
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with pytest.raises(exc, match=match):
        fnn.load_params(module, make(module))
    after = module.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_load_params_of_a_cyclic_tree_raises_and_changes_nothing() -> None:
    module = torch.nn.Linear(3, 2)
    before = module.weight.detach().clone()
    params: dict[str, Any] = {"weight": torch.zeros(2, 3)}
    params["bias"] = params
    with pytest.raises(ValueError, match=r"ftx\.nn\.load_params: params must be a pytree "
                       r"without cycles, got a container at path 'bias'"):
        fnn.load_params(module, params)
    assert torch.equal(module.weight, before)


def test_load_params_still_casts_safely() -> None:
    module = torch.nn.Linear(3, 2)
    params = {"weight": torch.ones(2, 3, dtype=torch.float64), "bias": torch.ones(2)}
    fnn.load_params(module, params)
    assert module.weight.dtype == torch.float32 and bool((module.weight == 1).all())


# ---------------------------------------------------------------------------
# Empty and None


def test_empty_and_none() -> None:
    empty = fnn.Sequential()
    assert empty.init(KEY) == {}
    assert torch.equal(empty({}, X, key=KEY), X)
    assert torch.equal(fnn.ReLU()(None, X), torch.relu(X))  # None: an empty params tree
    assert fnn.ReLU().init(KEY) == {}
    module = torch.nn.ReLU()
    assert fnn.params_of(module) == {}
    assert fnn.load_params(module, {}) is module
