"""Conv1d, Conv3d, ConvTranspose2d, AdaptiveAvgPool2d and Upsample against their torch.nn twins.

The matrix of tests/nn_matrix.py (forward, gradients w.r.t. params and input, vmap over
an ensemble and over examples, state-dict paths, to_module/from_module, init laws) for
float32 and float64 on CPU (and CUDA where present), then bad inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn
from tests import nn_matrix as M
from tests.nn_matrix import Case

CASES = [
    Case("conv1d", lambda: fnn.Conv1d(3, 4, 3), lambda: nn.Conv1d(3, 4, 3), (2, 3, 9)),
    Case("conv1d_stride_pad_dil_groups",
         lambda: fnn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2),
         lambda: nn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), (3, 4, 11)),
    Case("conv1d_same_nobias", lambda: fnn.Conv1d(2, 3, 3, padding="same", dilation=2, bias=False),
         lambda: nn.Conv1d(2, 3, 3, padding="same", dilation=2, bias=False), (2, 2, 7)),
    Case("conv3d", lambda: fnn.Conv3d(2, 3, 3, padding=1), lambda: nn.Conv3d(2, 3, 3, padding=1),
         (2, 2, 4, 5, 4)),
    Case("conv3d_stride_groups_valid",
         lambda: fnn.Conv3d(4, 4, (2, 3, 1), stride=(1, 2, 1), groups=4, padding="valid"),
         lambda: nn.Conv3d(4, 4, (2, 3, 1), stride=(1, 2, 1), groups=4, padding="valid"),
         (2, 4, 3, 6, 3)),
    Case("convT2d", lambda: fnn.ConvTranspose2d(3, 4, 3), lambda: nn.ConvTranspose2d(3, 4, 3),
         (2, 3, 4, 5)),
    Case("convT2d_stride_pad_outpad",
         lambda: fnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
         lambda: nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
         (2, 4, 5, 4)),
    Case("convT2d_groups_dilation_nobias",
         lambda: fnn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), padding=(0, 1),
                                     output_padding=(1, 0), groups=2, bias=False, dilation=2),
         lambda: nn.ConvTranspose2d(4, 6, (2, 3), stride=(2, 1), padding=(0, 1),
                                    output_padding=(1, 0), groups=2, bias=False, dilation=2),
         (2, 4, 3, 4)),
    Case("adaptive_avg_1", lambda: fnn.AdaptiveAvgPool2d(1), lambda: nn.AdaptiveAvgPool2d(1),
         (2, 3, 5, 6)),
    Case("adaptive_avg_uneven", lambda: fnn.AdaptiveAvgPool2d((3, None)),
         lambda: nn.AdaptiveAvgPool2d((3, None)), (2, 3, 7, 5)),
    Case("adaptive_avg_up", lambda: fnn.AdaptiveAvgPool2d((4, 3)),
         lambda: nn.AdaptiveAvgPool2d((4, 3)), (2, 3, 3, 7)),
    Case("upsample_nearest", lambda: fnn.Upsample(scale_factor=2),
         lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5), unbatched=False),
    Case("upsample_nearest_size", lambda: fnn.Upsample(size=(7, 3)),
         lambda: nn.Upsample(size=(7, 3)), (2, 3, 4, 5), unbatched=False),
    Case("upsample_bilinear", lambda: fnn.Upsample(scale_factor=(1.5, 2), mode="bilinear"),
         lambda: nn.Upsample(scale_factor=(1.5, 2), mode="bilinear"), (2, 3, 4, 5),
         unbatched=False),
    Case("upsample_bilinear_align",
         lambda: fnn.Upsample(size=(7, 9), mode="bilinear", align_corners=True),
         lambda: nn.Upsample(size=(7, 9), mode="bilinear", align_corners=True), (2, 3, 4, 5),
         unbatched=False),
    Case("upsample_linear_1d", lambda: fnn.Upsample(scale_factor=3, mode="linear"),
         lambda: nn.Upsample(scale_factor=3, mode="linear"), (2, 3, 4), unbatched=False),
    Case("upsample_nearest_3d", lambda: fnn.Upsample(scale_factor=2),
         lambda: nn.Upsample(scale_factor=2), (1, 2, 2, 3, 2), unbatched=False),
]
IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_equals_twin(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_forward(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grads_equal_twin_backward(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_grads(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vmap_over_ensemble_equals_loop(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_ensemble(case, dtype, device)


@pytest.mark.parametrize("case", [c for c in CASES if c.unbatched],
                         ids=[c.id for c in CASES if c.unbatched])
def test_vmap_over_examples_equals_batch(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_examples(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_paths_and_shapes_equal_state_dict(case: Case) -> None:
    M.check_paths(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_module_from_module_round_trip(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_round_trip(case, dtype, device)


DISTS = [
    pytest.param(fnn.Conv1d(16, 64, 5), lambda: nn.Conv1d(16, 64, 5), 16 * 5, id="conv1d"),
    pytest.param(fnn.Conv3d(8, 16, 3, groups=2), lambda: nn.Conv3d(8, 16, 3, groups=2),
                 4 * 27, id="conv3d_groups"),
    # torch's fan_in for a transposed conv is the weight's dim 1: out_channels // groups * k
    pytest.param(fnn.ConvTranspose2d(32, 24, 3, groups=2),
                 lambda: nn.ConvTranspose2d(32, 24, 3, groups=2), 12 * 9, id="convT2d"),
]


@pytest.mark.parametrize(("layer", "twin", "fan_in"), DISTS)
def test_init_laws_match_torch(layer: fnn.Layer, twin: Callable[[], nn.Module], fan_in: int,
                               dtype: torch.dtype, device: str) -> None:
    w = twin().weight
    assert nn.init._calculate_fan_in_and_fan_out(w)[0] == fan_in  # torch's own fan_in
    M.check_init_law(layer, twin, 1 / math.sqrt(fan_in), dtype, device, fills=False)


def test_paramless_init_is_empty() -> None:
    for layer in (fnn.AdaptiveAvgPool2d(2), fnn.Upsample(scale_factor=2)):
        assert layer.init(ftx.random.key(0)) == {}
        assert layer.init_state() == {}


def test_conv_transpose_is_the_adjoint_of_conv() -> None:
    """<conv(x), y> == <x, convT(y)> with the same weight: the defining property."""
    conv = fnn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    convt = fnn.ConvTranspose2d(4, 3, 3, stride=2, padding=1, output_padding=1, bias=False)
    w = conv.init(ftx.random.key(0), dtype=torch.float64)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    y = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    lhs = (conv(w, x) * y).sum()
    rhs = (x * convt(w, y)).sum()
    torch.testing.assert_close(lhs, rhs)


# ---------------------------------------------------------------------------
# Bad inputs: each names the layer, what is required and the fix.

KEY = ftx.random.key(0)
C1 = fnn.Conv1d(3, 4, 3)
C1P = C1.init(KEY)
C3 = fnn.Conv3d(2, 3, 3)
C3P = C3.init(KEY)
CT = fnn.ConvTranspose2d(3, 2, 3)
CTP = CT.init(KEY)

BAD: list[Any] = [
    (lambda: C1(C1P, torch.randn(2, 5, 9)), ValueError,
     r"ftx\.nn\.Conv1d: input x must have shape \(N, C, L\) or \(C, L\) with C = 3, got input "
     r"of shape \(2, 5, 9\)\. Pass channels-first input"),
    (lambda: C1(C1P, torch.randn(9)), ValueError, r"ftx\.nn\.Conv1d: input x must have shape"),
    (lambda: C1(C1P, torch.randn(1, 3, 2)), ValueError,
     r"ftx\.nn\.Conv1d: input large enough for the kernel, stride and dilation"),
    (lambda: C1(C1P, torch.randn(2, 3, 9, dtype=torch.float64)), TypeError,
     r"ftx\.nn\.Conv1d: input and params must share one dtype, got input torch\.float64 and "
     r"params\['weight'\] torch\.float32\. Cast one side"),
    (lambda: C1({"weight": C1P["weight"]}, torch.randn(2, 3, 9)), ValueError,
     r"ftx\.nn\.Conv1d: params must hold exactly the paths \['bias', 'weight'\], got missing "
     r"paths \['bias'\] and extra paths \[\]\. Build params with layer\.init"),
    (lambda: C1({**C1P, "bias": torch.zeros(5)}, torch.randn(2, 3, 9)), ValueError,
     r"ftx\.nn\.Conv1d: params\['bias'\] must have shape \(4,\), got shape \(5,\)"),
    (lambda: C1(C1P, torch.ones(2, 3, 9, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.Conv1d: input x must be a floating tensor"),
    (lambda: C3(C3P, torch.randn(2, 5, 5)), ValueError,
     r"ftx\.nn\.Conv3d: input x must have shape \(N, C, D, H, W\) or \(C, D, H, W\) with C = 2"),
    (lambda: C3({**C3P, "weight": C3P["weight"].double()}, torch.randn(1, 2, 4, 4, 4)), TypeError,
     r"ftx\.nn\.Conv3d: input and params must share one dtype"),
    (lambda: CT(CTP, torch.randn(2, 2, 4, 4)), ValueError,
     r"ftx\.nn\.ConvTranspose2d: input x must have shape \(N, C, H, W\) or \(C, H, W\) with "
     r"C = 3, got input of shape \(2, 2, 4, 4\)"),
    (lambda: CT({"bias": CTP["bias"]}, torch.randn(2, 3, 4, 4)), ValueError,
     r"ftx\.nn\.ConvTranspose2d: params must hold exactly the paths \['bias', 'weight'\]"),
    (lambda: CT(CTP, torch.randn(2, 3, 4, 4, dtype=torch.float64)), TypeError,
     r"ftx\.nn\.ConvTranspose2d: input and params must share one dtype"),
    (lambda: fnn.AdaptiveAvgPool2d(2)({}, torch.randn(4, 4)), ValueError,
     r"ftx\.nn\.AdaptiveAvgPool2d: input x must have shape \(N, C, H, W\) or \(C, H, W\), got "
     r"input of shape \(4, 4\)"),
    (lambda: fnn.AdaptiveAvgPool2d(2)({"w": torch.ones(1)}, torch.randn(1, 4, 4)), ValueError,
     r"ftx\.nn\.AdaptiveAvgPool2d: params must hold exactly the paths \[\]"),
    (lambda: fnn.AdaptiveAvgPool2d(2)({}, torch.ones(1, 4, 4, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.AdaptiveAvgPool2d: input x must be a floating tensor"),
    (lambda: fnn.Upsample(scale_factor=2, mode="bilinear")({}, torch.randn(3, 4, 4)),
     ValueError, r"ftx\.nn\.Upsample: mode='bilinear' needs input x of shape \(N, C, H, W\), "
     r"got input of shape \(3, 4, 4\)\. Upsample takes batched input: add a batch dimension"),
    (lambda: fnn.Upsample(size=(4, 4))({}, torch.randn(1, 2, 3)), ValueError,
     r"ftx\.nn\.Upsample: size=\(4, 4\) must have one entry per spatial dimension of x \(1\)"),
    (lambda: fnn.Upsample(scale_factor=2)({}, torch.ones(1, 2, 3, dtype=torch.int64)),
     TypeError, r"ftx\.nn\.Upsample: input x must be a floating tensor"),
]

BUILD: list[Any] = [
    (lambda: fnn.Conv1d(3, 4, (3, 3)), TypeError, r"ftx\.nn\.Conv1d: kernel_size must be an int"),
    (lambda: fnn.Conv1d(3, 4, 3, stride=2, padding="same"), ValueError,
     r"ftx\.nn\.Conv1d: padding='same' needs stride 1 \(as in torch\.nn\.Conv1d\)"),
    (lambda: fnn.Conv3d(3, 4, (3, 3)), TypeError,
     r"ftx\.nn\.Conv3d: kernel_size must be an int or a tuple of 3 ints"),
    (lambda: fnn.Conv3d(3, 4, 3, groups=2), ValueError,
     r"ftx\.nn\.Conv3d: groups must divide in_channels and out_channels"),
    (lambda: fnn.Conv3d(3, 4, 3, padding=-1), ValueError,
     r"ftx\.nn\.Conv3d: padding must be >= 0, got \(-1, -1, -1\)"),
    (lambda: fnn.ConvTranspose2d(3, 4, 3, output_padding=1), ValueError,
     r"ftx\.nn\.ConvTranspose2d: output_padding must be smaller than stride or dilation"),
    (lambda: fnn.ConvTranspose2d(3, 4, 3, groups=2), ValueError,
     r"ftx\.nn\.ConvTranspose2d: groups must divide in_channels and out_channels"),
    (lambda: fnn.AdaptiveAvgPool2d((2, 0)), ValueError,
     r"ftx\.nn\.AdaptiveAvgPool2d: output_size\[1\] must be >= 1, got 0"),
    (lambda: fnn.AdaptiveAvgPool2d((1, 2, 3)), TypeError,
     r"ftx\.nn\.AdaptiveAvgPool2d: output_size must be an int or a pair"),
    (lambda: fnn.Upsample(), ValueError,
     r"ftx\.nn\.Upsample: exactly one of size and scale_factor must be given"),
    (lambda: fnn.Upsample(size=2, scale_factor=2), ValueError, r"exactly one of size and "),
    (lambda: fnn.Upsample(scale_factor=0), ValueError,
     r"ftx\.nn\.Upsample: scale_factor must be a positive real number, got 0"),
    (lambda: fnn.Upsample(scale_factor=2, mode="area"), ValueError,
     r"ftx\.nn\.Upsample: mode must be one of"),
    (lambda: fnn.Upsample(scale_factor=2, align_corners=True), ValueError,
     r"ftx\.nn\.Upsample: align_corners can only be set with the interpolating modes"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), BAD + BUILD,
                         ids=[f"bad{i}" for i in range(len(BAD + BUILD))])
def test_bad_input(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------
# ftx.nn.functional forms: the same maths as torch.nn.functional, sizes read off params.

fnf = fnn.functional
TF = torch.nn.functional


def test_functional_forms_equal_torch_functional() -> None:
    g = torch.Generator().manual_seed(0)

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g, dtype=torch.float64)

    w1, b1, x1 = r(4, 2, 3), r(4), r(2, 4, 9)
    torch.testing.assert_close(fnf.conv1d({"weight": w1, "bias": b1}, x1, 2, 1, 2, 2),
                               TF.conv1d(x1, w1, b1, 2, 1, 2, 2))
    w3, x3 = r(3, 2, 3, 3, 1), r(1, 2, 4, 5, 3)
    torch.testing.assert_close(fnf.conv3d({"weight": w3}, x3, padding="same"),
                               TF.conv3d(x3, w3, None, padding="same"))
    wt, bt, xt = r(4, 3, 3, 2), r(6), r(2, 4, 3, 3)
    torch.testing.assert_close(
        fnf.conv_transpose2d({"weight": wt, "bias": bt}, xt, 2, 1, 1, 2, 1),
        TF.conv_transpose2d(xt, wt, bt, 2, 1, 1, 2, 1))
    x = r(2, 3, 5, 7)
    torch.testing.assert_close(fnf.adaptive_avg_pool2d(x, (2, None)),
                               TF.adaptive_avg_pool2d(x, (2, None)))
    torch.testing.assert_close(fnf.interpolate(x, scale_factor=1.5, mode="bicubic"),
                               TF.interpolate(x, scale_factor=1.5, mode="bicubic"))
    with pytest.raises(ValueError, match=r"ftx\.nn\.functional\.conv1d: params\['weight'\] must "
                       r"be 3-d"):
        fnf.conv1d({"weight": r(1, 1, 1, 1)}, x1)
    with pytest.raises(ValueError, match=r"ftx\.nn\.Conv1d: input x must have shape \(N, C, L\)"):
        fnf.conv1d({"weight": w1}, r(2, 3, 9), groups=2)
