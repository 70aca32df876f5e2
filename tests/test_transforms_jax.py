"""JAX parity: the same functions in torch and jax.numpy give the same values and structures.

Covers grad (argnums int/tuple, dict/tuple pytrees), value_and_grad with aux,
jvp (with aux), vjp (pytree outputs, several primals), linearize and hvp
(against ``jax.jvp(jax.grad(f))``, JAX's own forward-over-reverse recipe).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch

import ftx
from tests.helpers import tree_allclose

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")

F64 = torch.float64


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def to_jax(tree: Any) -> Any:
    return ftx.tree.map(lambda t: jnp.asarray(t.detach().numpy()), tree)


def to_torch(tree: Any) -> Any:
    def conv(a: Any) -> Any:
        if isinstance(a, jax.Array):
            return torch.from_numpy(np.array(a))
        return a

    return jax.tree_util.tree_map(conv, tree)


def canon(tree: Any) -> Any:
    """Dicts with sorted keys: JAX returns dicts sorted, torch keeps insertion order; the
    containers, keys and leaves must otherwise be the same."""
    if isinstance(tree, dict):
        return {k: canon(tree[k]) for k in sorted(tree)}
    if isinstance(tree, tuple | list):
        return type(tree)(canon(c) for c in tree)
    return tree


def same(ours: Any, theirs: Any) -> None:
    tree_allclose(canon(ours), canon(to_torch(theirs)), rtol=1e-12, atol=1e-12)


def _r(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=F64) + 0.25


P = {"w": _r(3, 2, seed=1), "b": _r(2, seed=2)}
X = _r(4, 3, seed=3)
T = (_r(2, seed=4), _r(2, seed=5))


def mlp_t(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return (torch.tanh(x @ p["w"] + p["b"]) ** 2).sum()


def mlp_j(p: dict[str, Any], x: Any) -> Any:
    return (jnp.tanh(x @ p["w"] + p["b"]) ** 2).sum()


def pair_t(t: tuple[torch.Tensor, torch.Tensor], s: torch.Tensor) -> torch.Tensor:
    return (t[0] * t[1].sin()).sum() * s + (s**3)


def pair_j(t: tuple[Any, Any], s: Any) -> Any:
    return (t[0] * jnp.sin(t[1])).sum() * s + (s**3)


S = torch.tensor(0.7, dtype=F64)

GRAD_CASES: list[tuple[str, Callable[..., Any], Callable[..., Any], tuple[Any, ...], Any]] = [
    ("dict_argnum0", mlp_t, mlp_j, (P, X), 0),
    ("dict_argnums01", mlp_t, mlp_j, (P, X), (0, 1)),
    ("dict_argnum1_tuple", mlp_t, mlp_j, (P, X), (1,)),
    ("tuple_pytree", pair_t, pair_j, (T, S), 0),
    ("tuple_pytree_both", pair_t, pair_j, (T, S), (1, 0)),
    ("scalar_arg", pair_t, pair_j, (T, S), -1),
]


@pytest.mark.parametrize(
    ("name", "ft", "fj", "args", "argnums"), GRAD_CASES, ids=[c[0] for c in GRAD_CASES]
)
def test_grad_and_value_and_grad(
    name: str, ft: Callable[..., Any], fj: Callable[..., Any], args: tuple[Any, ...], argnums: Any
) -> None:
    same(ftx.grad(ft, argnums)(*args), jax.grad(fj, argnums)(*to_jax(args)))
    same(ftx.value_and_grad(ft, argnums)(*args), jax.value_and_grad(fj, argnums)(*to_jax(args)))


def test_value_and_grad_with_aux() -> None:
    def ft(p: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
        h = torch.tanh(x @ p["w"] + p["b"])
        return (h**2).sum(), {"h": h, "mean": (h.mean(), h.max())}

    def fj(p: dict[str, Any], x: Any) -> Any:
        h = jnp.tanh(x @ p["w"] + p["b"])
        return (h**2).sum(), {"h": h, "mean": (h.mean(), h.max())}

    for argnums in (0, (0, 1)):
        same(
            ftx.value_and_grad(ft, argnums, has_aux=True)(P, X),
            jax.value_and_grad(fj, argnums, has_aux=True)(*to_jax((P, X))),
        )
        same(
            ftx.grad(ft, argnums, has_aux=True)(P, X),
            jax.grad(fj, argnums, has_aux=True)(*to_jax((P, X))),
        )


def vec_t(p: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
    h = x @ p["w"] + p["b"]
    return {"out": torch.sin(h), "stats": (h.sum(), torch.exp(p["b"]))}


def vec_j(p: dict[str, Any], x: Any) -> Any:
    h = x @ p["w"] + p["b"]
    return {"out": jnp.sin(h), "stats": (h.sum(), jnp.exp(p["b"]))}


TP = {"w": _r(3, 2, seed=11) - 0.5, "b": _r(2, seed=12)}
TX = _r(4, 3, seed=13)


def test_jvp() -> None:
    ours = ftx.jvp(vec_t, (P, X), (TP, TX))
    theirs = jax.jvp(vec_j, to_jax((P, X)), to_jax((TP, TX)))
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    same(ours, theirs)


def test_jvp_with_aux() -> None:
    ours = ftx.jvp(lambda p, x: (vec_t(p, x)["out"], x.sum()), (P, X), (TP, TX), has_aux=True)
    theirs = jax.jvp(
        lambda p, x: (vec_j(p, x)["out"], x.sum()), to_jax((P, X)), to_jax((TP, TX)), has_aux=True
    )
    assert len(ours) == len(theirs) == 3
    same(ours, theirs)


def test_vjp() -> None:
    ct = {"out": _r(4, 2, seed=21), "stats": (torch.tensor(0.3, dtype=F64), _r(2, seed=22))}
    out, vjp_fn = ftx.vjp(vec_t, P, X)
    jout, jvjp_fn = jax.vjp(vec_j, *to_jax((P, X)))
    same(out, jout)
    ours, theirs = vjp_fn(ct), jvjp_fn(to_jax(ct))
    assert isinstance(ours, tuple) and len(ours) == len(theirs) == 2
    same(ours, theirs)


def test_vjp_with_aux() -> None:
    out, vjp_fn, aux = ftx.vjp(lambda x: (torch.sin(x), {"c": torch.cos(x)}), X, has_aux=True)
    jout, jvjp_fn, jaux = jax.vjp(
        lambda x: (jnp.sin(x), {"c": jnp.cos(x)}), to_jax(X), has_aux=True
    )
    same((out, aux), (jout, jaux))
    same(vjp_fn(TX), jvjp_fn(to_jax(TX)))


def test_linearize() -> None:
    out, jvp_fn = ftx.linearize(vec_t, P, X)
    jout, jjvp_fn = jax.linearize(vec_j, *to_jax((P, X)))
    same(out, jout)
    same(jvp_fn(TP, TX), jjvp_fn(*to_jax((TP, TX))))


def test_hvp_matches_jax_forward_over_reverse() -> None:
    ours = ftx.hvp(mlp_t, (P, X), (TP, TX))
    theirs = jax.jvp(jax.grad(mlp_j, argnums=(0, 1)), to_jax((P, X)), to_jax((TP, TX)))[1]
    same(ours, theirs)
    (hp,) = ftx.hvp(lambda p: mlp_t(p, X), (P,), (TP,))
    same(hp, jax.jvp(jax.grad(lambda p: mlp_j(p, to_jax(X))), (to_jax(P),), (to_jax(TP),))[1])
