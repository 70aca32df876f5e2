"""ftx.nn init: torch's default distributions, state-dict paths and shapes, keys, dtype, device."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from scipy import stats
from torch import nn

import ftx
from ftx import nn as fnn
from tests.test_nn_layers import CASES, IDS, Case

# (id, ftx layer, torch twin, fan_in)
DISTS = [
    pytest.param(fnn.Linear(300, 200), lambda: nn.Linear(300, 200), 300, id="linear"),
    pytest.param(fnn.Conv2d(16, 64, 3), lambda: nn.Conv2d(16, 64, 3), 16 * 9, id="conv2d"),
    pytest.param(
        fnn.Conv2d(16, 64, (3, 5), groups=4),
        lambda: nn.Conv2d(16, 64, (3, 5), groups=4),
        4 * 15,
        id="conv2d_groups",
    ),
    pytest.param(
        fnn.DepthwiseConv2d(64, 5, depth_multiplier=4),
        lambda: nn.Conv2d(64, 256, 5, groups=64),
        25,
        id="depthwise",
    ),
]


@pytest.mark.parametrize(("layer", "twin", "fan_in"), DISTS)
def test_init_bounds_and_moments_match_torch(
    layer: fnn.Layer, twin: Any, fan_in: int, dtype: torch.dtype, device: str
) -> None:
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    torch.manual_seed(0)
    ref = twin()
    bound = 1 / math.sqrt(fan_in)
    # torch's own initialisers: kaiming_uniform(a=sqrt(5)) for weights, fan-in bias bound
    gain = nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    fan_in_torch, _ = nn.init._calculate_fan_in_and_fan_out(ref.weight)
    assert fan_in_torch == fan_in
    assert math.isclose(gain * math.sqrt(3 / fan_in), bound)
    for name in ("weight", "bias"):
        ours = params[name]
        theirs = getattr(ref, name).detach().double()
        assert ours.dtype == dtype and ours.device.type == device
        assert ours.shape == theirs.shape
        o = ours.double().cpu().flatten()
        assert o.abs().max() <= bound and theirs.abs().max() <= bound
        assert o.abs().max() > 0.95 * bound  # fills the interval
        n = o.numel()
        var = bound**2 / 3  # variance of U(-b, b)
        assert abs(o.mean().item()) < 5 * math.sqrt(var / n)
        assert abs(o.var().item() / var - 1) < 5 * math.sqrt(0.8 / n) + 0.01
        # the same law as torch's draw (two-sample Kolmogorov-Smirnov)
        assert stats.ks_2samp(o.numpy(), theirs.flatten().numpy()).pvalue > 1e-4


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_paths_and_shapes_equal_state_dict(case: Case) -> None:
    params = case.layer().init(ftx.random.key(0))
    ours = {p: tuple(v.shape) for p, v in ftx.tree.leaves_with_path(params)}
    theirs = {k: tuple(v.shape) for k, v in case.twin().state_dict().items()}
    assert ours == theirs
    assert case.layer().param_shapes() == theirs


def test_paramless_layers_init_to_empty_dict() -> None:
    for layer in (fnn.ReLU(), fnn.Flatten(), fnn.Dropout(0.1), fnn.MaxPool2d(2), fnn.GELU()):
        assert layer.init(ftx.random.key(0)) == {}


def test_layer_norm_init_is_ones_and_zeros(dtype: torch.dtype, device: str) -> None:
    params = fnn.LayerNorm((2, 3)).init(ftx.random.key(0), dtype=dtype, device=device)
    assert torch.equal(params["weight"], torch.ones(2, 3, dtype=dtype, device=device))
    assert torch.equal(params["bias"], torch.zeros(2, 3, dtype=dtype, device=device))


def test_sequential_and_mlp_split_the_key_per_layer() -> None:
    key = ftx.random.key(42)
    mlp = fnn.MLP([4, 5, 3], activation=fnn.Tanh())
    params = mlp.init(key)
    keys = ftx.random.split(key, 3)  # Linear, Tanh, Linear
    assert ftx.tree.allclose(params["0"], fnn.Linear(4, 5).init(keys[0]), 0, 0)
    assert ftx.tree.allclose(params["2"], fnn.Linear(5, 3).init(keys[2]), 0, 0)
    assert not torch.equal(params["0"]["weight"][:3, :4], params["2"]["weight"][:3, :4])
    assert ftx.tree.allclose(mlp.init(key), params, 0, 0)  # deterministic
    assert not ftx.tree.allclose(mlp.init(ftx.random.key(43)), params)


def test_same_key_same_numbers_on_every_device(device: str) -> None:
    layer = fnn.Conv2d(3, 4, 3)
    cpu = layer.init(ftx.random.key(1), dtype=torch.float64)
    there = layer.init(ftx.random.key(1), dtype=torch.float64, device=device)
    assert ftx.tree.allclose(ftx.tree.map(lambda t: t.cpu(), there), cpu, 1e-12, 0)


def test_weight_and_bias_use_independent_keys() -> None:
    params = fnn.Linear(1, 1).init(ftx.random.key(0))
    assert params["weight"].item() != params["bias"].item()


def test_init_rejects_a_non_key() -> None:
    with pytest.raises(TypeError, match=r"ftx\.nn\.Linear: key must be an ftx\.random key"):
        fnn.Linear(2, 2).init(0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ftx\.nn\.Sequential: key must be an ftx\.random key"):
        fnn.Sequential(fnn.Linear(2, 2)).init(torch.zeros(3))


def test_init_under_vmap_equals_a_loop_over_keys() -> None:
    mlp = fnn.MLP([3, 5, 2])
    keys = ftx.random.split(ftx.random.key(9), 4)
    stacked = ftx.vmap(lambda k: mlp.init(k))(keys)
    for i in range(4):
        member = ftx.tree.map(lambda t, i=i: t[i], stacked)
        assert ftx.tree.allclose(member, mlp.init(keys[i]), 0, 0)
