"""JAX parity: jacfwd, jacrev, hessian and vmap give JAX's values and output structures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import ftx

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    """float64 JAX for these tests only (a global switch would leak into other files)."""
    with jax.enable_x64(True):
        yield


RNG = np.random.default_rng(0)


def arr(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def to_torch(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: torch.from_numpy(np.asarray(a).copy()), tree)


def assert_same(ours: Any, theirs: Any) -> None:
    """Same structure (as JAX sees it) and same values in float64."""
    ours_np = jax.tree_util.tree_map(lambda t: t.detach().numpy(), ours,
                                     is_leaf=lambda x: isinstance(x, torch.Tensor))
    assert jax.tree_util.tree_structure(ours_np) == jax.tree_util.tree_structure(theirs)
    for a, b in zip(jax.tree_util.tree_leaves(ours_np), jax.tree_util.tree_leaves(theirs)):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, np.asarray(b), rtol=1e-10, atol=1e-12)


# Each case: (id, jax fn, torch fn, args as numpy pytrees, argnums). Same maths in both.
def _mlp(np_: Any, tanh: Callable[[Any], Any]) -> Callable[..., Any]:
    def f(p: dict[str, Any], x: Any) -> Any:
        h = tanh(p["w"] @ x + p["b"])
        return {"out": h, "norm": (h ** 2).sum() + (p["w"] ** 2).sum()}
    return f


CASES = [
    ("vector", lambda x: jnp.sin(x) * x.sum(), lambda x: torch.sin(x) * x.sum(), (arr(3),), 0),
    ("matrix-out", lambda x: jnp.outer(x, jnp.exp(x)), lambda x: torch.outer(x, x.exp()),
     (arr(3),), 0),
    ("two-args-tuple", lambda x, y: (x * y, (x ** 2).sum() * y),
     lambda x, y: (x * y, (x ** 2).sum() * y), (arr(3), arr(3)), (0, 1)),
    ("dict-params", _mlp(jnp, jnp.tanh), _mlp(torch, torch.tanh),
     ({"w": arr(2, 3), "b": arr(2)}, arr(3)), 0),
    ("dict-params-both", _mlp(jnp, jnp.tanh), _mlp(torch, torch.tanh),
     ({"w": arr(2, 3), "b": arr(2)}, arr(3)), (1, 0)),
    ("tuple-arg", lambda t: t[0] * t[1].sum(), lambda t: t[0] * t[1].sum(), ((arr(2), arr(2, 2)),),
     0),
]


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "jacobian"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_jacobians_match_jax(case: Any, name: str) -> None:
    _, jf, tf, args, argnums = case
    theirs = jax.jit((jax.jacrev if name == "jacrev" else jax.jacfwd)(jf, argnums=argnums))(*args)
    ours = getattr(ftx, name)(tf, argnums=argnums)(*to_torch(args))
    assert_same(ours, theirs)


SCALAR_CASES = [
    ("vector", lambda x: (jnp.sin(x) * x).sum(), lambda x: (torch.sin(x) * x).sum(), (arr(3),), 0),
    ("two-args", lambda x, y: ((x * y).sum()) ** 2, lambda x, y: ((x * y).sum()) ** 2,
     (arr(3), arr(3)), (0, 1)),
    ("dict", lambda d: (d["a"] ** 3).sum() * (d["b"] ** 2).sum(),
     lambda d: (d["a"] ** 3).sum() * (d["b"] ** 2).sum(), ({"a": arr(3), "b": arr(2, 2)},), 0),
    ("mlp-norm", lambda p, x: _mlp(jnp, jnp.tanh)(p, x)["norm"],
     lambda p, x: _mlp(torch, torch.tanh)(p, x)["norm"],
     ({"w": arr(2, 3), "b": arr(2)}, arr(3)), (0, 1)),
]


@pytest.mark.parametrize("case", SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_hessian_matches_jax(case: Any) -> None:
    _, jf, tf, args, argnums = case
    assert_same(ftx.hessian(tf, argnums=argnums)(*to_torch(args)),
                jax.jit(jax.hessian(jf, argnums=argnums))(*args))


@pytest.mark.slow
def test_jitted_hessian_matches_jax() -> None:
    """ftx.jit(ftx.hessian) of dict parameters, tuple argnums: dynamo's graph of the gradient
    route (aot_eager: no code generation)."""
    _, jf, tf, args, argnums = SCALAR_CASES[-1]
    assert_same(ftx.jit(ftx.hessian(tf, argnums=argnums), backend="aot_eager")(*to_torch(args)),
                jax.jit(jax.hessian(jf, argnums=argnums))(*args))


@pytest.mark.slow
def test_jitted_hessian_inductor_matches_jax() -> None:
    """The benchmark's 100-d Hessian (scaled to 8-d), compiled by inductor, float64."""
    w, x = arr(8, 8) / 3, arr(8)
    ours = ftx.jit(ftx.hessian(lambda x, w: torch.tanh(w @ x).sum() + (x**4).sum() / 4))(
        *to_torch((x, w)))
    assert_same(ours, jax.jit(jax.hessian(lambda x, w: jnp.tanh(w @ x).sum() + (x**4).sum() / 4))(
        x, w))


def test_has_aux_matches_jax() -> None:
    x = arr(3)
    theirs = jax.jit(jax.jacrev(lambda x: (jnp.sin(x), {"c": jnp.cos(x)}), has_aux=True))(x)
    ours = ftx.jacrev(lambda x: (torch.sin(x), {"c": torch.cos(x)}), has_aux=True)(
        torch.from_numpy(x))
    assert_same(ours, theirs)
    theirs = jax.jit(jax.hessian(lambda x: ((x ** 3).sum(), x * 2), has_aux=True))(x)
    ours = ftx.hessian(lambda x: ((x ** 3).sum(), x * 2), has_aux=True)(torch.from_numpy(x))
    assert_same(ours, theirs)


VMAP_CASES = [
    ("int", lambda x: jnp.sin(x).sum(), lambda x: torch.sin(x).sum(), (arr(4, 3),), 0, 0),
    ("none-0", lambda w, x: w @ x, lambda w, x: w @ x, (arr(2, 3), arr(5, 3)), (None, 0), 0),
    ("1-0-out1", lambda a, b: jnp.outer(a, b), lambda a, b: torch.outer(a, b),
     (arr(3, 5), arr(5, 2)), (1, 0), 1),
    ("negative", lambda a: a * 2, lambda a: a * 2, (arr(3, 5),), -1, -1),
    ("dict-prefix", lambda p, x: {"y": p["w"] @ x + p["b"], "s": (x ** 2).sum()},
     lambda p, x: {"y": p["w"] @ x + p["b"], "s": (x ** 2).sum()},
     ({"w": arr(2, 3), "b": arr(4, 2)}, arr(4, 3)), ({"w": None, "b": 0}, 0),
     {"y": 1, "s": 0}),
    ("tuple-out-none", lambda x, w: (x * w, w + 1), lambda x, w: (x * w, w + 1),
     (arr(4, 3), arr(3)), (0, None), (0, None)),
    ("list-in-axes", lambda a, b: a - b, lambda a, b: a - b, (arr(3, 2), arr(2)), [0, None], 0),
    ("tuple-arg", lambda t: t[0] + t[1], lambda t: t[0] + t[1], ((arr(4, 2), arr(2, 4)),),
     ((0, 1),), 0),
]


@pytest.mark.parametrize("case", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
def test_vmap_matches_jax(case: Any) -> None:
    _, jf, tf, args, in_axes, out_axes = case
    theirs = jax.jit(jax.vmap(jf, in_axes=in_axes, out_axes=out_axes))(*args)
    ours = ftx.vmap(tf, in_axes=in_axes, out_axes=out_axes)(*to_torch(args))
    assert_same(ours, theirs)


def test_vmap_axis_size_matches_jax() -> None:
    w = arr(3)
    theirs = jax.jit(jax.vmap(lambda w: w * 2, in_axes=None, axis_size=4, out_axes=1))(w)
    ours = ftx.vmap(lambda w: w * 2, in_axes=None, axis_size=4, out_axes=1)(torch.from_numpy(w))
    assert_same(ours, theirs)


def test_vmap_of_hessian_matches_jax() -> None:
    xs = arr(4, 3)
    theirs = jax.jit(jax.vmap(jax.hessian(lambda x: (jnp.sin(x) * x).sum())))(xs)
    ours = ftx.vmap(ftx.hessian(lambda x: (torch.sin(x) * x).sum()))(torch.from_numpy(xs))
    assert_same(ours, theirs)
