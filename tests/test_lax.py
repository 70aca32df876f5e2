"""ftx.lax against jax.lax (float64): the same programs under every transform.

Each case is one function written twice, with ``ftx.lax`` on torch and with ``jax.lax``
on jax.numpy, mapping ``x: (3,)`` to a tensor. Every case runs under value, ``grad``,
``vjp``, ``jvp``, ``vmap`` (batched predicates: the lanes of ``X`` take different
branches and different trip counts), ``jacfwd``, ``jacrev``, ``hessian`` and nested
compositions; both libraries must give the same numbers, or (``while_loop`` in reverse
mode) both must refuse.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import ftx
import ftx.lax as L
from tests.helpers import tree_allclose

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
jlax = pytest.importorskip("jax.lax")

F64 = torch.float64


@pytest.fixture(autouse=True)
def x64() -> Iterator[None]:
    with jax.enable_x64(True):
        yield


def to_jax(tree: Any) -> Any:
    return ftx.tree.map(lambda t: jnp.asarray(t.detach().numpy()), tree)


def to_torch(tree: Any) -> Any:
    return jax.tree_util.tree_map(
        lambda a: torch.from_numpy(np.array(a)) if isinstance(a, jax.Array) else a, tree)


W_NP = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.6], [-0.2, 0.3, 0.7]])
C_NP = np.array([1.0, -0.5, 0.3, 2.0])
x0 = torch.tensor([0.6, 0.9, 0.4], dtype=F64)
# Lanes on both sides of every predicate below (sums 1.0, 3.2, 0.6, 3.0; first entries
# 0.3, 1.2, 0.1, 0.8), so vmap runs batched branches and per-lane trip counts.
X0 = torch.tensor([[0.3, 0.5, 0.2], [1.2, 0.9, 1.1], [0.1, 0.2, 0.3], [0.8, 0.7, 1.5]],
                  dtype=F64)
t0 = torch.tensor([0.3, -0.7, 1.1], dtype=F64)


def _w(np_: Any) -> Any:
    return torch.tensor(W_NP) if np_ is torch else jnp.asarray(W_NP)


def _c(np_: Any) -> Any:
    return torch.tensor(C_NP) if np_ is torch else jnp.asarray(C_NP)


class Torch:
    np = torch
    lax = L
    grad, vjp, jvp, vmap = ftx.grad, ftx.vjp, ftx.jvp, ftx.vmap
    jacfwd, jacrev, hessian, checkpoint = ftx.jacfwd, ftx.jacrev, ftx.hessian, ftx.checkpoint

    @staticmethod
    def cat(xs: list[Any]) -> Any:
        return torch.cat(xs)

    @staticmethod
    def flip(x: Any) -> Any:
        return x.flip(0)

    @staticmethod
    def floor_int(x: Any) -> Any:
        return torch.floor(x).long()

    @staticmethod
    def f64(i: Any) -> Any:
        return i.to(F64)  # torch promotes int * float to float32, JAX (x64) to float64


class Jax:
    np = jnp
    lax = jlax
    grad, vjp, jvp, vmap = jax.grad, jax.vjp, jax.jvp, jax.vmap
    jacfwd, jacrev, hessian, checkpoint = jax.jacfwd, jax.jacrev, jax.hessian, jax.checkpoint

    @staticmethod
    def cat(xs: list[Any]) -> Any:
        return jnp.concatenate(xs)

    @staticmethod
    def flip(x: Any) -> Any:
        return x[::-1]

    @staticmethod
    def floor_int(x: Any) -> Any:
        return jnp.floor(x).astype(jnp.int64)

    @staticmethod
    def f64(i: Any) -> Any:
        return i.astype(jnp.float64)


# ------------------------------------------------------------------------------ cases
def scan_rnn(B: Any) -> Callable[[Any], Any]:
    np_, W, C = B.np, _w(B.np), _c(B.np)

    def f(x: Any) -> Any:
        def step(h: Any, u: Any) -> Any:
            h2 = np_.tanh(W @ h + u)
            return h2, (h2 * u).sum()

        h, ys = B.lax.scan(step, x, x[None, :] * C[:, None])
        return B.cat([h, ys])

    return f


def scan_pytree_reverse(B: Any) -> Callable[[Any], Any]:
    np_, C = B.np, _c(B.np)

    def f(x: Any) -> Any:
        def step(c: Any, u: Any) -> Any:
            a = c["a"] * np_.cos(u[0]) + u[1]["k"] * c["b"]
            b = c["b"] + (a * u[0]).sum() * 0.1
            return {"a": a, "b": b}, (a[:2] * b, (b, None))

        xs = (x[None, :] * C[:, None], {"k": np_.sin(x)[None, :] + C[:, None]})
        c, (y1, (y2, _)) = B.lax.scan(step, {"a": x, "b": x.sum()}, xs, reverse=True)
        return B.cat([c["a"], c["b"][None], y1.reshape(-1), y2])

    return f


def scan_no_xs(B: Any) -> Callable[[Any], Any]:
    np_ = B.np

    def f(x: Any) -> Any:
        c, ys = B.lax.scan(lambda c, _: (c * np_.cos(c) + 0.1, c.sum()), x, None, length=5)
        return B.cat([c, ys])

    return f


def scan_checkpoint(B: Any) -> Callable[[Any], Any]:
    np_, W, C = B.np, _w(B.np), _c(B.np)

    def f(x: Any) -> Any:
        def step(h: Any, u: Any) -> Any:
            h2 = np_.tanh(W @ np_.sin(h) + u)
            return h2, h2.sum()

        h, ys = B.lax.scan(B.checkpoint(step), x, x[None, :] * C[:, None])
        return B.cat([h, ys])

    return f


def fori_static(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    return lambda x: B.lax.fori_loop(0, 4, lambda i, v: np_.sin(v) * (i + 1.0) + v * 0.5, x)


def fori_tensor_bounds(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    lo, hi = (torch.tensor(1), torch.tensor(4)) if np_ is torch else (jnp.asarray(1),
                                                                       jnp.asarray(4))
    return lambda x: B.lax.fori_loop(lo, hi, lambda i, v: np_.sin(v) * i + v * 0.5, x)


def fori_batched_bounds(B: Any) -> Callable[[Any], Any]:
    np_ = B.np

    def f(x: Any) -> Any:
        upper = B.floor_int(B.lax.stop_gradient(x.sum()) * 2.0)
        return B.lax.fori_loop(0, upper, lambda i, v: v * np_.cos(v) + 0.1 * B.f64(i), x)

    return f


def cond_pred(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    return lambda x: B.lax.cond(x.sum() > 1.5, lambda a, b: np_.sin(a) * b,
                                lambda a, b: a ** 2 - b, x, B.flip(x))


def cond_pytree(B: Any) -> Callable[[Any], Any]:
    np_ = B.np

    def f(x: Any) -> Any:
        def yes(d: Any) -> Any:
            return {"p": d["u"] * d["v"], "q": (np_.exp(d["u"]).sum(),)}

        def no(d: Any) -> Any:
            return {"p": d["u"] - d["v"], "q": ((d["u"] * d["v"]).sum(),)}

        out = B.lax.cond(x[0] > 0.5, yes, no, {"u": x, "v": np_.cos(x)})
        return B.cat([out["p"], out["q"][0][None]])

    return f


def switch_clamped(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    branches = [np_.sin, lambda a: a ** 3, lambda a: np_.exp(-a)]
    # index from -1 (lane 2) to 3 (lanes 1, 3): clamped to [0, 2] as JAX does
    return lambda x: B.lax.switch(B.floor_int(x.sum() * 1.5) - 1, branches, x)


def while_lanes(B: Any) -> Callable[[Any], Any]:
    np_ = B.np

    def f(x: Any) -> Any:
        def cond_fun(c: Any) -> Any:
            return (c[0] < 6) & (c[1].sum() < 4.0)

        def body(c: Any) -> Any:
            return c[0] + 1, c[1] * 1.3 + 0.1 * np_.sin(c[1])

        i, v = B.lax.while_loop(cond_fun, body, (0, x))
        return v * i

    return f


def stop_grad(B: Any) -> Callable[[Any], Any]:
    np_, sg = B.np, B.lax.stop_gradient
    return lambda x: sg(x) ** 2 * x + sg({"a": x * 2, "n": 3})["a"] * np_.sin(x)


def map_rows(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    return lambda x: B.lax.map(lambda r: np_.sin(r) * r.sum(), x[:, None] * x[None, :])


def map_batched(B: Any) -> Callable[[Any], Any]:
    np_ = B.np
    xs = lambda x: x[:, None] * B.cat([x, x])[None, :]  # noqa: E731
    return lambda x: B.lax.map(lambda r: np_.sin(r) * r.sum(), xs(x), batch_size=2)


def nested(B: Any) -> Callable[[Any], Any]:
    np_, C = B.np, _c(B.np)

    def f(x: Any) -> Any:
        def step(h: Any, u: Any) -> Any:
            h2 = B.lax.cond(u.sum() > 0, lambda h: np_.tanh(h + u), lambda h: h * 0.5, h)
            h3 = B.lax.fori_loop(0, 2, lambda i, v: v + 0.1 * np_.sin(v), h2)
            return h3, B.lax.switch(B.floor_int(h3[0] * 3.0), [np_.sum, np_.prod], h3)

        h, ys = B.lax.scan(step, x, (x - 0.7)[None, :] * C[:, None])
        return B.cat([h, ys])

    return f


def while_in_cond(B: Any) -> Callable[[Any], Any]:
    np_ = B.np

    def f(x: Any) -> Any:
        def grow(v: Any) -> Any:
            return B.lax.while_loop(lambda v: v.sum() < 5.0, lambda v: v * 1.5, v)

        return B.lax.cond(x[0] > 0.5, grow, np_.sin, x)

    return f


def assoc_scan(B: Any) -> Callable[[Any], Any]:
    np_, C = B.np, _c(B.np)

    def f(x: Any) -> Any:
        a = np_.tanh(x[None, :] * C[:, None])            # (4, 3): a linear recurrence
        b = np_.sin(x[None, :] + C[:, None])             # h_k = a_k h_{k-1} + b_k

        def fn(p: Any, q: Any) -> Any:
            return q[0] * p[0], q[0] * p[1] + q[1]

        _, h = B.lax.associative_scan(fn, (a, b))
        s = B.lax.associative_scan(lambda u, v: u * v, b + 1.5, reverse=True, axis=1)
        return B.cat([h.reshape(-1), s.reshape(-1)])

    return f


@dataclass(frozen=True)
class Case:
    build: Callable[[Any], Callable[[Any], Any]]
    rev: bool | None  # True: reverse mode works; False: both libraries refuse; None: skip


CASES = {
    "scan_rnn": Case(scan_rnn, True),
    "scan_pytree_reverse": Case(scan_pytree_reverse, True),
    "scan_no_xs": Case(scan_no_xs, True),
    "scan_checkpoint": Case(scan_checkpoint, True),
    "fori_static": Case(fori_static, True),
    "fori_tensor_bounds": Case(fori_tensor_bounds, True),
    # JAX traces the bound under grad (reverse mode refused); ftx sees a concrete,
    # unbatched bound and differentiates: forward transforms only are compared.
    "fori_batched_bounds": Case(fori_batched_bounds, None),
    "cond_pred": Case(cond_pred, True),
    "cond_pytree": Case(cond_pytree, True),
    "switch_clamped": Case(switch_clamped, True),
    "while_lanes": Case(while_lanes, False),
    "stop_gradient": Case(stop_grad, True),
    "map_rows": Case(map_rows, True),
    "map_batched": Case(map_batched, True),
    "nested": Case(nested, True),
    "while_in_cond": Case(while_in_cond, False),
    "associative_scan": Case(assoc_scan, True),
}


# ------------------------------------------------------------------------- transforms
def _s(B: Any, f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda x: B.np.sin(f(x)).sum()


TRANSFORMS: dict[str, tuple[bool, Callable[..., Any]]] = {
    # name: (needs reverse mode, run(B, f, x, X, t))
    "value": (False, lambda B, f, x, X, t: f(x)),
    "vmap": (False, lambda B, f, x, X, t: B.vmap(f)(X)),
    "jvp": (False, lambda B, f, x, X, t: B.jvp(f, (x,), (t,))),
    "jacfwd": (False, lambda B, f, x, X, t: B.jacfwd(f)(x)),
    "vmap_jacfwd": (False, lambda B, f, x, X, t: B.vmap(B.jacfwd(f))(X)),
    "jacfwd_jacfwd": (False, lambda B, f, x, X, t: B.jacfwd(B.jacfwd(_s(B, f)))(x)),
    "jvp_vmap": (False, lambda B, f, x, X, t: B.jvp(B.vmap(f), (X,), (X * t,))),
    "grad": (True, lambda B, f, x, X, t: B.grad(_s(B, f))(x)),
    "vjp": (True, lambda B, f, x, X, t: B.vjp(f, x)[1](B.np.cos(f(x)))),
    "jacrev": (True, lambda B, f, x, X, t: B.jacrev(f)(x)),
    "hessian": (True, lambda B, f, x, X, t: B.hessian(_s(B, f))(x)),
    "vmap_grad": (True, lambda B, f, x, X, t: B.vmap(B.grad(_s(B, f)))(X)),
    "jvp_grad": (True, lambda B, f, x, X, t: B.jvp(B.grad(_s(B, f)), (x,), (t,))),
    "jacrev_jacrev": (True, lambda B, f, x, X, t: B.jacrev(B.jacrev(_s(B, f)))(x)),
    "grad_vmap": (True, lambda B, f, x, X, t: B.grad(lambda X: _s(B, B.vmap(f))(X))(X)),
}


LONG = os.environ.get("FTX_LONG_TESTS", "") not in ("", "0")


def _params() -> list[Any]:
    """Every case under every transform with FTX_LONG_TESTS=1 (JAX's side takes seconds per
    nested transform on 2 CPUs); by default every case under vmap and one more transform in
    rotation, so that each transform meets at least one case."""
    out = []
    names = [n for n in TRANSFORMS if n != "vmap"]
    k = 0
    for cname, case in CASES.items():
        while TRANSFORMS[names[k % len(names)]][0] and case.rev is None:
            k += 1  # a reverse-mode transform for a case compared in forward mode only
        chosen = {"vmap", names[k % len(names)]}
        k += 1
        for tname, (rev, _) in TRANSFORMS.items():
            if (rev and case.rev is None) or not (LONG or tname in chosen):
                continue
            out.append(pytest.param(cname, tname, id=f"{cname}-{tname}"))
    return out


@pytest.mark.parametrize(("case", "transform"), _params())
def test_matches_jax(case: str, transform: str) -> None:
    c = CASES[case]
    rev, run = TRANSFORMS[transform]
    ours = lambda: run(Torch, c.build(Torch), x0, X0, t0)  # noqa: E731
    theirs = lambda: run(Jax, c.build(Jax), to_jax(x0), to_jax(X0), to_jax(t0))  # noqa: E731
    if rev and c.rev is False:
        with pytest.raises(ValueError, match="Reverse-mode differentiation does not work"):
            theirs()
        with pytest.raises(ValueError, match=r"ftx\.lax\.(while|fori)_loop: reverse-mode .*"
                                             "Try using lax.scan"):
            ours()
        return
    tree_allclose(ours(), to_torch(theirs()), rtol=1e-10, atol=1e-12)


def test_torch_func_transforms_compose() -> None:
    """The same functions under torch.func's own transforms (ftx.lax is not tied to ftx's)."""
    for name in ("scan_rnn", "cond_pred", "while_lanes", "nested", "stop_gradient"):
        f = CASES[name].build(Torch)
        ref = CASES[name].build(Jax)
        tree_allclose(torch.func.vmap(torch.func.jacfwd(f))(X0),
                      to_torch(jax.vmap(jax.jacfwd(ref))(to_jax(X0))), rtol=1e-10, atol=1e-12)
        if CASES[name].rev:
            tree_allclose(torch.func.hessian(_s(Torch, f))(x0),
                          to_torch(jax.hessian(_s(Jax, ref))(to_jax(x0))), rtol=1e-10,
                          atol=1e-12)


def test_autograd_engine_route() -> None:
    """Outside any transform the loops record an ordinary autograd graph (loss.backward())."""
    for name in ("scan_rnn", "scan_checkpoint", "fori_static", "cond_pred", "map_batched"):
        x = x0.clone().requires_grad_()
        _s(Torch, CASES[name].build(Torch))(x).backward()
        expect = jax.grad(_s(Jax, CASES[name].build(Jax)))(to_jax(x0))
        tree_allclose(x.grad, to_torch(expect), rtol=1e-10, atol=1e-12)
    x = x0.clone().requires_grad_()
    with pytest.raises(ValueError, match="reverse-mode differentiation needs a static"):
        _s(Torch, CASES["while_lanes"].build(Torch))(x).backward()
