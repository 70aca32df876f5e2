"""ftx.nn layers against their torch.nn twins: every layer x float32/float64 x cpu/cuda.

For each case: forward equals the twin holding the same params; ``ftx.grad``
w.r.t. params and input equals ``loss.backward()`` on the twin; ``ftx.vmap``
over single examples equals the batched call; ``ftx.vmap`` over an ensemble of
4 stacked params equals a loop over 4 twins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn


@dataclass(frozen=True)
class Case:
    id: str
    layer: Callable[[], fnn.Layer]
    twin: Callable[[], nn.Module]
    shape: tuple[int, ...]  # batched input shape; dim 0 is the batch


CASES = [
    Case("linear", lambda: fnn.Linear(5, 4), lambda: nn.Linear(5, 4), (6, 5)),
    Case(
        "linear_nobias",
        lambda: fnn.Linear(5, 4, bias=False),
        lambda: nn.Linear(5, 4, bias=False),
        (6, 5),
    ),
    Case(
        "conv2d_stride_pad",
        lambda: fnn.Conv2d(3, 4, 3, stride=2, padding=1),
        lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1),
        (2, 3, 7, 7),
    ),
    Case(
        "conv2d_same_dilation_groups",
        lambda: fnn.Conv2d(4, 6, (3, 2), padding="same", dilation=2, groups=2),
        lambda: nn.Conv2d(4, 6, (3, 2), padding="same", dilation=2, groups=2),
        (2, 4, 6, 7),
    ),
    Case(
        "conv2d_valid_nobias",
        lambda: fnn.Conv2d(2, 3, 2, padding="valid", bias=False),
        lambda: nn.Conv2d(2, 3, 2, padding="valid", bias=False),
        (3, 2, 5, 4),
    ),
    Case(
        "depthwise_m2",
        lambda: fnn.DepthwiseConv2d(3, 3, depth_multiplier=2, padding=1),
        lambda: nn.Conv2d(3, 6, 3, padding=1, groups=3),
        (2, 3, 6, 6),
    ),
    Case(
        "depthwise_stride_dilation_nobias",
        lambda: fnn.DepthwiseConv2d(4, (3, 2), stride=2, dilation=(1, 2), bias=False),
        lambda: nn.Conv2d(4, 4, (3, 2), stride=2, dilation=(1, 2), groups=4, bias=False),
        (2, 4, 9, 8),
    ),
    Case(
        "mlp_tanh",
        lambda: fnn.MLP([5, 8, 8, 3], activation=fnn.Tanh()),
        lambda: nn.Sequential(
            nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)
        ),
        (4, 5),
    ),
    Case(
        "mlp_seed_sigmoid",
        lambda: fnn.MLP([3, 3, 2], activation=fnn.Sigmoid(), final_activation=fnn.Sigmoid()),
        lambda: nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid()),
        (4, 3),
    ),
    Case(
        "sequential_cnn",
        lambda: fnn.Sequential(
            fnn.Conv2d(2, 4, 3, padding=1),
            fnn.ReLU(),
            fnn.DepthwiseConv2d(4, 3, padding=1),
            fnn.Conv2d(4, 6, 1),
            fnn.MaxPool2d(2),
            fnn.Flatten(-3),
            fnn.Dropout(0.3),
            fnn.Linear(6 * 3 * 3, 5),
        ),
        lambda: nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 4, 3, padding=1, groups=4),
            nn.Conv2d(4, 6, 1),
            nn.MaxPool2d(2),
            nn.Flatten(-3),
            nn.Dropout(0.3),
            nn.Linear(6 * 3 * 3, 5),
        ),
        (3, 2, 6, 6),
    ),
    Case("layernorm", lambda: fnn.LayerNorm(5), lambda: nn.LayerNorm(5), (4, 3, 5)),
    Case(
        "layernorm_2d_nobias",
        lambda: fnn.LayerNorm((3, 5), eps=1e-3, bias=False),
        lambda: nn.LayerNorm((3, 5), eps=1e-3, bias=False),
        (4, 3, 5),
    ),
    Case(
        "layernorm_noaffine",
        lambda: fnn.LayerNorm(5, elementwise_affine=False),
        lambda: nn.LayerNorm(5, elementwise_affine=False),
        (4, 5),
    ),
    Case(
        "maxpool",
        lambda: fnn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True),
        lambda: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        (2, 3, 7, 6),
    ),
    Case(
        "avgpool",
        lambda: fnn.AvgPool2d(2, padding=1, count_include_pad=False),
        lambda: nn.AvgPool2d(2, padding=1, count_include_pad=False),
        (2, 3, 5, 5),
    ),
    Case("flatten", lambda: fnn.Flatten(-3), lambda: nn.Flatten(-3), (2, 3, 4, 5)),
    Case("dropout_eval", lambda: fnn.Dropout(0.5), lambda: nn.Dropout(0.5), (4, 6)),
    Case("relu", fnn.ReLU, nn.ReLU, (4, 6)),
    Case("gelu", fnn.GELU, nn.GELU, (4, 6)),
    Case("gelu_tanh", lambda: fnn.GELU("tanh"), lambda: nn.GELU("tanh"), (4, 6)),
    Case("tanh", fnn.Tanh, nn.Tanh, (4, 6)),
    Case("sigmoid", fnn.Sigmoid, nn.Sigmoid, (4, 6)),
    Case("silu", fnn.SiLU, nn.SiLU, (4, 6)),
    Case("softplus", lambda: fnn.Softplus(2.0, 1.0), lambda: nn.Softplus(2.0, 1.0), (4, 6)),
    Case("identity", fnn.Identity, nn.Identity, (4, 6)),
]
IDS = [c.id for c in CASES]


def tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def flat(params: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(params))


def setup(case: Case, dtype: torch.dtype, device: str, seed: int = 0) -> tuple[Any, Any, nn.Module]:
    layer = case.layer()
    params = layer.init(ftx.random.key(seed), dtype=dtype, device=device)
    twin = case.twin().to(dtype=dtype, device=device).eval()
    twin.load_state_dict(flat(params), strict=True)  # torch's own loader: paths must match
    return layer, params, twin


def data(case: Case, dtype: torch.dtype, device: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randn(case.shape, generator=g, dtype=dtype).to(device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_equals_twin(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    x = data(case, dtype, device)
    out = layer(params, x)
    assert out.dtype == dtype and out.device.type == device
    torch.testing.assert_close(out, twin(x), **tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grads_equal_twin_backward(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    x = data(case, dtype, device)
    ct = torch.randn(twin(x).shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
    ct = ct.to(device)

    def loss(p: Any, xx: torch.Tensor) -> torch.Tensor:
        return (layer(p, xx) * ct).sum()

    g_params, g_x = ftx.grad(loss, argnums=(0, 1))(params, x)
    xr = x.clone().requires_grad_(True)
    (twin(xr) * ct).sum().backward()
    torch.testing.assert_close(g_x, xr.grad, **tol(dtype))
    want = {name: p.grad for name, p in twin.named_parameters()}
    got = flat(g_params)
    assert sorted(got) == sorted(want)
    for name in want:
        torch.testing.assert_close(got[name], want[name], **tol(dtype), msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vmap_over_examples_equals_batch(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, _ = setup(case, dtype, device)
    x = data(case, dtype, device)
    per_example = ftx.vmap(lambda xi: layer(params, xi))(x)
    torch.testing.assert_close(per_example, layer(params, x), **tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vmap_over_ensemble_equals_loop(case: Case, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    keys = ftx.random.split(ftx.random.key(3), 4)
    members = [layer.init(k, dtype=dtype, device=device) for k in keys]
    stacked = ftx.tree.map(lambda *ls: torch.stack(ls), *members) if members[0] else {}
    x = data(case, dtype, device)
    if members[0]:
        out = ftx.vmap(lambda p: layer(p, x))(stacked)
    else:  # paramless: an ensemble over nothing is the same call 4 times
        out = ftx.vmap(lambda _: layer({}, x))(torch.arange(4))
    for i, p in enumerate(members):
        twin = case.twin().to(dtype=dtype, device=device).eval()
        twin.load_state_dict(flat(p))
        torch.testing.assert_close(out[i], twin(x), **tol(dtype), msg=f"member {i}")


# --- Dropout with a key (the twin's RNG is torch's, so check the law, not values)


def test_dropout_with_key_is_inverted_bernoulli_and_deterministic(
    dtype: torch.dtype, device: str
) -> None:
    drop = fnn.Dropout(0.25)
    x = torch.rand(200, 100, dtype=dtype, device=device) + 0.5
    key = ftx.random.key(7)
    y = drop({}, x, key=key)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    frac = 1 - kept.double().mean().item()
    assert abs(frac - 0.25) < 4 * (0.25 * 0.75 / x.numel()) ** 0.5
    assert torch.equal(drop({}, x, key=key), y)  # same key, same mask
    assert not torch.equal(drop({}, x, key=ftx.random.key(8)), y)
    g = ftx.grad(lambda xx: drop({}, xx, key=key).sum())(x)
    torch.testing.assert_close(g, kept.to(dtype) / 0.75)


def test_dropout_edge_probabilities(device: str) -> None:
    x = torch.randn(50, device=device)
    key = ftx.random.key(0)
    assert torch.equal(fnn.Dropout(0.0)({}, x, key=key), x)
    assert torch.equal(fnn.Dropout(1.0)({}, x, key=key), torch.zeros_like(x))
    assert torch.equal(fnn.Dropout(0.9)({}, x), x)  # no key: identity


def test_dropout_vmap_with_per_example_keys_matches_loop() -> None:
    drop = fnn.Dropout(0.5)
    x = torch.randn(4, 10)
    keys = ftx.random.split(ftx.random.key(1), 4)
    out = ftx.vmap(lambda xi, k: drop({}, xi, key=k))(x, keys)
    for i in range(4):
        torch.testing.assert_close(out[i], drop({}, x[i], key=keys[i]))


def test_sequential_passes_split_keys_to_dropout() -> None:
    seq = fnn.Sequential(fnn.Identity(), fnn.Dropout(0.5))
    x = torch.ones(100)
    key = ftx.random.key(5)
    want = fnn.Dropout(0.5)({}, x, key=ftx.random.split(key, 2)[1])
    assert torch.equal(seq({}, x, key=key), want)
    assert torch.equal(seq({}, x), x)


# --- losses against torch.nn.functional

F = torch.nn.functional


def _ce_index_target(dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (
        torch.randn(6, 4, generator=g, dtype=dtype).to(device),
        torch.randint(0, 4, (6,), generator=g).to(device),
    )


def _same_shape(kind: str) -> Callable[[torch.dtype, str], tuple[torch.Tensor, torch.Tensor]]:
    def make(dtype: torch.dtype, device: str) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(6, 4, generator=g, dtype=dtype)
        b = torch.rand(6, 4, generator=g, dtype=dtype)
        if kind == "probs":
            b = b.softmax(-1)
        return a.to(device), b.to(device)

    return make


LOSSES = [
    pytest.param(fnn.mse_loss, F.mse_loss, _same_shape("any"), {}, id="mse_mean"),
    pytest.param(
        fnn.mse_loss, F.mse_loss, _same_shape("any"), {"reduction": "sum"}, id="mse_sum"
    ),
    pytest.param(fnn.cross_entropy, F.cross_entropy, _ce_index_target, {}, id="ce_index"),
    pytest.param(
        fnn.cross_entropy,
        F.cross_entropy,
        _ce_index_target,
        {"label_smoothing": 0.1, "reduction": "none"},
        id="ce_index_smooth_none",
    ),
    pytest.param(fnn.cross_entropy, F.cross_entropy, _same_shape("probs"), {}, id="ce_probs"),
    pytest.param(
        fnn.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        _same_shape("any"),
        {},
        id="bce_logits",
    ),
    pytest.param(
        fnn.binary_cross_entropy_with_logits,
        F.binary_cross_entropy_with_logits,
        _same_shape("any"),
        {"reduction": "sum"},
        id="bce_logits_sum",
    ),
]


@pytest.mark.parametrize(("ours", "theirs", "make", "kwargs"), LOSSES)
def test_loss_value_and_grad_equal_torch(
    ours: Callable[..., torch.Tensor],
    theirs: Callable[..., torch.Tensor],
    make: Callable[[torch.dtype, str], tuple[torch.Tensor, torch.Tensor]],
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    device: str,
) -> None:
    inp, target = make(dtype, device)
    torch.testing.assert_close(ours(inp, target, **kwargs), theirs(inp, target, **kwargs))
    g = ftx.grad(lambda i: ours(i, target, **kwargs).sum())(inp)
    ir = inp.clone().requires_grad_(True)
    theirs(ir, target, **kwargs).sum().backward()
    torch.testing.assert_close(g, ir.grad, **tol(dtype))
    # per example under vmap, then summed, equals the "sum" reduction
    if "reduction" not in kwargs and theirs is not F.cross_entropy:
        per = ftx.vmap(lambda i, t: ours(i, t, reduction="sum"))(inp, target)
        torch.testing.assert_close(per.sum(), ours(inp, target, reduction="sum"), **tol(dtype))
