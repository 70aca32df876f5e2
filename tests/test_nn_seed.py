"""The seed notebook's models, by name: linear regression, Exercise 1 (an MLP from
``vmap(vmap(torch.dot))``) and Exercise 4 (depthwise convolution with named tensors)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn


def test_seed_linear_regression_matches_torch_and_fits_lstsq() -> None:
    torch.manual_seed(0)
    torchlr = nn.Linear(3, 3)
    inputs = [1.0, 1.0, 1.0]
    layer = fnn.Linear(3, 3)
    params = fnn.params_of(torchlr)
    assert torch.allclose(layer(params, torch.tensor([inputs])), torchlr(torch.tensor([inputs])))

    # Fit y = x A^T + b by ftx.grad + plain gradient descent; compare with lstsq.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(40, 3, generator=g, dtype=torch.float64)
    y = x @ torch.randn(3, 3, generator=g, dtype=torch.float64).T + 0.1 * torch.randn(
        40, 3, generator=g, dtype=torch.float64
    )
    params = ftx.tree.map(lambda p: p.double(), params)

    def loss(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return fnn.mse_loss(layer(p, x), y)

    grad_fn = ftx.grad(loss)
    for _ in range(500):
        grads = grad_fn(params)
        params = ftx.tree.map(lambda p, gr: p - 0.5 * gr, params, grads)

    design = torch.cat([x, torch.ones(40, 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(design, y).solution  # (4, 3): rows = A^T, last row = b
    torch.testing.assert_close(params["weight"], sol[:3].T, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(params["bias"], sol[3], rtol=1e-8, atol=1e-8)


def vmap_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b`` built only from ``vmap(vmap(torch.dot))``: out[i, j] = dot(a[i], b[:, j])."""
    return ftx.vmap(ftx.vmap(torch.dot, in_axes=(None, 1)), in_axes=(0, None))(a, b)


def test_seed_exercise1_mlp_forward_from_vmap_vmap_dot() -> None:
    torch.manual_seed(0)
    seq_mlp = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 2), nn.Sigmoid())
    inputs = torch.ones(3)
    params = fnn.params_of(seq_mlp)

    def vmap_mlp(x: torch.Tensor) -> torch.Tensor:
        h = x[None, :]  # a row, so that every product is a matrix product
        for name in ("0", "2"):
            h = torch.sigmoid(vmap_matmul(h, params[name]["weight"].T) + params[name]["bias"])
        return h[0]

    a, b = torch.randn(4, 5), torch.randn(5, 6)
    torch.testing.assert_close(vmap_matmul(a, b), a @ b)
    assert torch.allclose(seq_mlp(inputs), vmap_mlp(inputs))
    mlp = fnn.MLP([3, 3, 2], activation=fnn.Sigmoid(), final_activation=fnn.Sigmoid())
    assert torch.allclose(seq_mlp(inputs), mlp(params, inputs))
    assert [p for p, _ in ftx.tree.leaves_with_path(params)] == list(seq_mlp.state_dict())


NCHW = ("N", "C", "H", "W")


@pytest.mark.parametrize("m", [1, 3], ids=["m1", "m3"])
def test_seed_exercise4_depthwise_conv2d_named_tensors(
    m: int, dtype: torch.dtype, device: str
) -> None:
    torch.manual_seed(0)
    c, k = 4, 3
    conv = nn.Conv2d(c, c * m, k, padding=1, groups=c).to(dtype=dtype, device=device)
    layer = fnn.DepthwiseConv2d(c, k, depth_multiplier=m, padding=1)
    params = fnn.params_of(conv)
    x = torch.randn(2, c, 5, 6, dtype=dtype, device=device)  # N C H W
    want = conv(x)
    for order in itertools.permutations(NCHW):  # all 24 orders of the names
        named = fnn.NamedTensor(x.permute([NCHW.index(n) for n in order]), order)
        for out in (
            layer(params, named),
            fnn.functional.depthwise_conv2d(params, named, padding=1),
        ):
            assert isinstance(out, fnn.NamedTensor)
            assert out.names == NCHW
            torch.testing.assert_close(out.tensor, want, msg=lambda s, o=order: f"{o}: {s}")
    torch.testing.assert_close(layer(params, x), want)  # unnamed input works too


def test_exercise4_unbatched_named_and_grad_through_names() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, groups=3)
    layer = fnn.DepthwiseConv2d(3, 3, depth_multiplier=2)
    params = fnn.params_of(conv)
    x = torch.randn(3, 5, 5)
    out = layer(params, fnn.NamedTensor(x.permute(1, 2, 0), ("H", "W", "C")))
    assert out.names == ("C", "H", "W")
    torch.testing.assert_close(out.tensor, conv(x))
    g = ftx.grad(lambda p: layer(p, fnn.NamedTensor(x, ("C", "H", "W"))).tensor.sum())(params)
    conv(x).sum().backward()
    torch.testing.assert_close(g["weight"], conv.weight.grad)


@pytest.mark.parametrize(
    ("names", "match"),
    [
        (("N", "C", "H", "X"), r"missing \['W'\], foreign \['X'\]"),
        (("N", "C", "H", None), r"missing \['W'\], foreign \['<unnamed dim 3>'\]"),
        (("B", "C", "H", "W"), r"missing \['N'\], foreign \['B'\]"),
    ],
    ids=["foreign_X", "unnamed_dim", "batch_named_B"],
)
def test_exercise4_missing_or_foreign_names_raise(
    names: tuple[str | None, ...], match: str
) -> None:
    layer = fnn.DepthwiseConv2d(3, 3)
    params = layer.init(ftx.random.key(0))
    x = fnn.NamedTensor(torch.randn(2, 3, 5, 5), names)
    with pytest.raises(ValueError, match=r"ftx\.nn\.DepthwiseConv2d: .*" + match):
        layer(params, x)
    with pytest.raises(ValueError, match=match):
        fnn.functional.depthwise_conv2d(params, x)


def test_named_tensor_construction_errors() -> None:
    with pytest.raises(ValueError, match=r"one name per dimension \(2 names\)"):
        fnn.NamedTensor(torch.zeros(2, 3), ("A",))
    with pytest.raises(ValueError, match="names must be unique strings or None"):
        fnn.NamedTensor(torch.zeros(2, 3), ("A", "A"))
    with pytest.raises(TypeError, match="tensor must be a torch.Tensor"):
        fnn.NamedTensor([1, 2], ("A",))  # type: ignore[arg-type]
