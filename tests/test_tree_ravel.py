"""ftx.tree.ravel against jax.flatten_util.ravel_pytree (float64 / 64-bit mode)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import torch

import ftx

jax = pytest.importorskip("jax")
jnp = jax.numpy
from jax.flatten_util import ravel_pytree  # noqa: E402


@pytest.fixture(autouse=True)
def _jax_x64() -> Any:
    """64-bit JAX for this module's tests only (a global switch leaks into other modules)."""
    with jax.enable_x64(True):
        yield

DTYPES = [
    torch.bool, torch.uint8, torch.int8, torch.int32, torch.int64, torch.float16,
    torch.bfloat16, torch.float32, torch.float64, torch.complex64, torch.complex128,
]


def _leaf(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 3
    if dtype == torch.bool:
        return x > 0
    if dtype.is_complex:
        return torch.complex(x, -x).to(dtype)
    return x.to(dtype)


def _np(x: torch.Tensor) -> np.ndarray:
    if x.dtype == torch.bfloat16:
        return np.asarray(jnp.asarray(x.float().numpy(), dtype=jnp.bfloat16))
    return x.numpy()


def _to_jax(tree: object) -> object:
    return ftx.tree.map(lambda x: jnp.asarray(_np(x)), tree)


def _same(t: torch.Tensor, j: object) -> None:
    ja = np.asarray(j)
    want = str(ja.dtype)
    got = str(t.dtype).removeprefix("torch.")
    assert got == want, (got, want)
    tv = t.float() if t.dtype == torch.bfloat16 else t
    np.testing.assert_array_equal(tv.numpy(), ja.astype(tv.numpy().dtype))


# Trees with one key order in torch and JAX (JAX sorts dict keys; torch keeps insertion order).
TREES = [
    pytest.param([torch.arange(6.0).reshape(2, 3), torch.ones(())], id="list"),
    pytest.param({"a": torch.zeros(2), "b": (torch.ones(3, 1), None, [torch.full((2,), 5.0)])},
                 id="nested-with-none"),
    pytest.param(torch.arange(4.0), id="bare-leaf"),
    pytest.param((torch.zeros(0), torch.ones(2)), id="empty-leaf"),
]


@pytest.mark.parametrize("tree", TREES)
def test_ravel_matches_jax_and_roundtrips(tree: object) -> None:
    flat, unravel = ftx.tree.ravel(tree)
    jflat, junravel = ravel_pytree(_to_jax(tree))
    _same(flat, jflat)
    back = unravel(flat)
    assert ftx.tree.structure(back) == ftx.tree.structure(tree)
    for a, b in zip(ftx.tree.leaves(back), ftx.tree.leaves(tree)):
        assert a.dtype == b.dtype and torch.equal(a, b)
    # unravel of another vector: same as JAX's unravel
    v = torch.arange(flat.numel(), dtype=flat.dtype) * 0.5
    for a, b in zip(ftx.tree.leaves(unravel(v)), jax.tree_util.tree_leaves(junravel(_np(v)))):
        _same(a, b)


@pytest.mark.parametrize("tree", [{}, None, (), [None, {}]], ids=["dict", "none", "tuple", "nest"])
def test_empty_tree_gives_empty_float32_like_jax(tree: object) -> None:
    flat, unravel = ftx.tree.ravel(tree)
    jflat, _ = ravel_pytree(tree)
    assert flat.shape == (0,) and flat.dtype == torch.float32 == torch.get_default_dtype()
    assert str(np.asarray(jflat).dtype) == "float32"
    assert unravel(flat) == tree


# Every pair's promotion is compared cheaply below; these pairs also run through JAX.
PAIRS = [
    (torch.bool, torch.float32), (torch.uint8, torch.int8), (torch.int32, torch.float16),
    (torch.int64, torch.float32), (torch.float16, torch.bfloat16), (torch.float32, torch.float64),
    (torch.bfloat16, torch.float64), (torch.float64, torch.complex64),
    (torch.complex64, torch.complex128), (torch.int8, torch.complex64),
]


def test_promotion_table_is_jaxs() -> None:
    for d1, d2 in itertools.combinations_with_replacement(DTYPES, 2):
        got = ftx.tree.ravel([torch.zeros(1, dtype=d1), torch.zeros(1, dtype=d2)])[0].dtype
        want = jnp.promote_types(_np(torch.zeros(0, dtype=d1)).dtype,
                                 _np(torch.zeros(0, dtype=d2)).dtype)
        assert str(got).removeprefix("torch.") == str(want), (d1, d2)


@pytest.mark.parametrize("d1,d2", PAIRS, ids=lambda d: str(d).removeprefix("torch."))
def test_mixed_dtypes_promote_like_jax(d1: torch.dtype, d2: torch.dtype) -> None:
    tree = [_leaf((2, 2), d1, 0), _leaf((3,), d2, 1)]
    flat, unravel = ftx.tree.ravel(tree)
    jflat, junravel = ravel_pytree(_to_jax(tree))
    _same(flat, jflat)
    back = unravel(flat)
    for a, b, j in zip(back, tree, junravel(jflat)):
        assert a.dtype == b.dtype
        _same(a, j)


def test_single_dtype_unravel_keeps_the_vectors_dtype_like_jax() -> None:
    tree = {"w": torch.ones(2, 2), "b": torch.zeros(3)}
    _, unravel = ftx.tree.ravel(tree)
    out = unravel(torch.arange(7, dtype=torch.float64))
    assert out["w"].dtype == torch.float64 and out["b"].dtype == torch.float64
    _, junravel = ravel_pytree(_to_jax(tree))
    assert str(junravel(np.arange(7, dtype=np.float64))["w"].dtype) == "float64"


def test_mixed_dtype_unravel_refuses_another_dtype_like_jax() -> None:
    tree = [torch.ones(2, dtype=torch.float32), torch.ones(1, dtype=torch.float64)]
    _, unravel = ftx.tree.ravel(tree)
    with pytest.raises(TypeError, match=r"ftx.tree.ravel: unravel of a tree with mixed dtypes "
                       r"takes the promoted dtype torch.float64, got dtype torch.float32"):
        unravel(torch.zeros(3, dtype=torch.float32))
    _, junravel = ravel_pytree(_to_jax(tree))
    with pytest.raises(TypeError):
        junravel(np.zeros(3, dtype=np.float32))


def test_unravel_checks_shape_and_kind() -> None:
    _, unravel = ftx.tree.ravel({"a": torch.ones(2, 3)})
    with pytest.raises(ValueError, match=r"unravel takes a 1-D tensor of shape \(6,\), got "
                       r"shape \(5,\)"):
        unravel(torch.zeros(5))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        unravel(torch.zeros(2, 3))
    with pytest.raises(TypeError, match=r"unravel takes a tensor, got list"):
        unravel([0.0] * 6)


def test_ravel_refuses_non_tensor_leaves() -> None:
    with pytest.raises(TypeError, match=r"ftx.tree.ravel: leaves must be tensors, got float "
                       r"1.0 at 'b'"):
        ftx.tree.ravel({"a": torch.ones(1), "b": 1.0})


def test_gradient_flows_through_ravel_and_unravel() -> None:
    params = {"w": torch.randn(3, 2, dtype=torch.float64), "b": torch.randn(2, dtype=torch.float64)}
    x = torch.randn(4, 3, dtype=torch.float64)
    flat, unravel = ftx.tree.ravel(params)

    def loss_tree(p: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.tanh(x @ p["w"] + p["b"]).pow(2).sum()

    g_flat = ftx.grad(lambda v: loss_tree(unravel(v)))(flat)
    g_tree = ftx.grad(loss_tree)(params)
    torch.testing.assert_close(g_flat, ftx.tree.ravel(g_tree)[0], rtol=0, atol=0)
    # and the other way: grad of a function of the flat vector of the tree
    g2 = ftx.grad(lambda p: ftx.tree.ravel(p)[0].pow(3).sum())(params)
    torch.testing.assert_close(g2["w"], 3 * params["w"] ** 2)
    torch.testing.assert_close(g2["b"], 3 * params["b"] ** 2)
    # Hessian of the flat function equals torch.autograd's, with the slicing written by hand
    h = ftx.hessian(lambda v: loss_tree(unravel(v)))(flat)
    want = torch.autograd.functional.hessian(
        lambda v: loss_tree({"w": v[:6].reshape(3, 2), "b": v[6:]}), flat
    )
    torch.testing.assert_close(h, want, rtol=1e-12, atol=1e-12)


def test_ravel_and_unravel_under_vmap_and_jit() -> None:
    batch = {"w": torch.randn(5, 2, 2), "b": torch.randn(5, 3)}
    flats = ftx.vmap(lambda t: ftx.tree.ravel(t)[0])(batch)
    assert flats.shape == (5, 7)
    torch.testing.assert_close(flats[:, :4], batch["w"].reshape(5, 4), rtol=0, atol=0)
    _, unravel = ftx.tree.ravel({"w": torch.zeros(2, 2), "b": torch.zeros(3)})
    back = ftx.vmap(unravel)(flats)
    torch.testing.assert_close(back["w"], batch["w"], rtol=0, atol=0)
    torch.testing.assert_close(back["b"], batch["b"], rtol=0, atol=0)
    jitted = ftx.jit(lambda t: unravel(2.0 * ftx.tree.ravel(t)[0]), backend="eager")
    out = jitted({"w": batch["w"][0], "b": batch["b"][0]})
    torch.testing.assert_close(out["w"], 2 * batch["w"][0], rtol=0, atol=0)
    torch.testing.assert_close(out["b"], 2 * batch["b"][0], rtol=0, atol=0)


def test_mixed_dtype_gradient_casts_back() -> None:
    tree = [torch.ones(2, dtype=torch.float32), torch.full((1,), 2.0, dtype=torch.float64)]
    flat, unravel = ftx.tree.ravel(tree)
    assert flat.dtype == torch.float64
    g = ftx.grad(lambda v: sum((x.double() ** 2).sum() for x in unravel(v)))(flat)
    torch.testing.assert_close(g, torch.tensor([2.0, 2.0, 4.0], dtype=torch.float64))
    gt = ftx.grad(lambda t: ftx.tree.ravel(t)[0].sum())(tree)
    assert gt[0].dtype == torch.float32 and gt[1].dtype == torch.float64
