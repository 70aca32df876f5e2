"""ftx.nn interop with torch.nn: params_of, load_params, to_module, from_module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn
from tests.test_nn_layers import CASES, IDS, Case


class Tied(nn.Module):
    """An embedding whose weight is reused (tied) by the output projection."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 4)
        self.norm = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 7, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.embed(idx)))


def test_params_of_keys_are_state_dict_keys_buffers_included() -> None:
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Linear(2, 2))
    params = fnn.params_of(module)
    paths = [p for p, _ in ftx.tree.leaves_with_path(params)]
    assert sorted(paths) == sorted(module.state_dict())
    assert "1.running_mean" in paths and "1.num_batches_tracked" in paths
    assert all(not leaf.requires_grad for leaf in ftx.tree.leaves(params))


def test_params_of_lists_tied_weights_once() -> None:
    module = Tied()
    paths = [p for p, _ in ftx.tree.leaves_with_path(fnn.params_of(module))]
    assert "embed.weight" in paths and "out.weight" not in paths
    assert set(module.state_dict()) - set(paths) == {"out.weight"}


def test_load_params_round_trip_and_errors() -> None:
    src, dst = nn.Linear(3, 2), nn.Linear(3, 2)
    assert fnn.load_params(dst, fnn.params_of(src)) is dst
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    with pytest.raises(ValueError, match=r"ftx\.nn\.load_params: params must hold exactly "
                       r"the module's paths \['bias', 'weight'\], got missing paths \['bias'\]"):
        fnn.load_params(dst, {"weight": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match=r"params\['weight'\] must have shape \(2, 3\), got "
                       r"shape \(3, 2\)"):
        fnn.load_params(dst, {"weight": torch.zeros(3, 2), "bias": torch.zeros(2)})
    with pytest.raises(TypeError, match=r"ftx\.nn\.load_params: module must be a torch\.nn"):
        fnn.load_params("linear", {})  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_module_twin_computes_the_same(case: Case, dtype: torch.dtype, device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(0), dtype=dtype, device=device)
    module = fnn.to_module(layer, params).eval()
    x = torch.randn(case.shape, dtype=dtype, device=device)
    torch.testing.assert_close(module(x), layer(params, x))
    # and back: params_of the twin are the params
    assert ftx.tree.allclose(fnn.params_of(module), params, 0, 0)


def test_from_module_equals_module_grads_and_keeps_ties() -> None:
    torch.manual_seed(0)
    module = Tied().double().eval()
    apply_fn, params = fnn.from_module(module)
    idx = torch.tensor([[0, 3, 6], [1, 1, 2]]).flatten()
    torch.testing.assert_close(apply_fn(params, idx), module(idx))

    def loss(p: dict[str, object]) -> torch.Tensor:
        return apply_fn(p, idx).square().sum()

    trainable = {k: v for k, v in params.items() if k != "norm"}
    grads = ftx.grad(lambda t: loss({**params, **t}))(trainable)
    module(idx).square().sum().backward()
    # the tied weight's gradient sums its use as embedding and as projection
    torch.testing.assert_close(grads["embed"]["weight"], module.embed.weight.grad)
    # a new value of the tied weight feeds both uses
    bumped = ftx.tree.map(lambda t: t, params)
    bumped["embed"] = {"weight": params["embed"]["weight"] + 1.0}
    with torch.no_grad():
        module.embed.weight += 1.0
    torch.testing.assert_close(apply_fn(bumped, idx), module(idx))


def test_from_module_vmaps_over_an_ensemble() -> None:
    torch.manual_seed(0)
    modules = [nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1)) for _ in range(4)]
    apply_fn, _ = fnn.from_module(modules[0])
    stacked = ftx.tree.map(lambda *ls: torch.stack(ls), *[fnn.params_of(m) for m in modules])
    x = torch.randn(5, 3)
    out = ftx.vmap(lambda p: apply_fn(p, x))(stacked)
    for i, m in enumerate(modules):
        torch.testing.assert_close(out[i], m(x))


def test_from_module_apply_checks_paths() -> None:
    apply_fn, params = fnn.from_module(nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"ftx\.nn\.from_module\.apply: params must hold "
                       r"exactly the module's paths \['bias', 'weight'\], got missing paths "
                       r"\['bias'\] and extra paths \['b'\]"):
        apply_fn({"weight": params["weight"], "b": params["bias"]}, torch.ones(2))
    with pytest.raises(TypeError, match=r"ftx\.nn\.from_module: module must be a torch\.nn"):
        fnn.from_module(lambda x: x)  # type: ignore[arg-type]


def test_to_module_rejects_non_layers() -> None:
    with pytest.raises(TypeError, match=r"ftx\.nn\.to_module: layer must be an ftx\.nn layer"):
        fnn.to_module(nn.ReLU(), {})  # type: ignore[arg-type]
