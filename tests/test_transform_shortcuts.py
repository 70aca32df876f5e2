"""The per-call shortcuts of ``ftx.jvp`` and of ``grad`` under a transform (tensor-only
primals handed on unflattened, a plain tensor output unpacked, grad's torch.func transform
built once) give exactly what ``torch.func`` gives; the suite also runs with
``FTX_SLOW_ROUTES=1``, where the shortcuts are off and the general code runs."""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.func as tf

import ftx

F64 = torch.float64


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def _same(a: Any, b: Any) -> None:
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("out", ["tensor", "tuple", "dict", "scalar"])
def test_jvp_tensor_primals_matches_torch_func(out: str) -> None:
    def f(x: torch.Tensor, y: torch.Tensor) -> Any:
        z = torch.sin(x) * y
        if out == "tensor":
            return z
        if out == "tuple":
            return z, (x * x).sum()
        if out == "dict":
            return {"z": z, "c": torch.cos(y)}
        return z.sum()

    p, t = (_x(3), _x(3, seed=1)), (_x(3, seed=2), _x(3, seed=3))
    got = ftx.jvp(f, p, t)
    want = tf.jvp(f, p, t)
    _same(got[0], want[0])
    _same(got[1], want[1])
    assert type(got[0]) is type(want[0])


def test_jvp_has_aux_and_pytree_primals() -> None:
    def f(d: dict[str, torch.Tensor], y: torch.Tensor) -> Any:
        return torch.tanh(d["a"]) * y + d["b"], {"n": 3, "v": y * 2}

    p = ({"a": _x(4), "b": _x(4, seed=1)}, _x(4, seed=2))
    t = ({"a": _x(4, seed=3), "b": _x(4, seed=4)}, _x(4, seed=5))
    out, tan, aux = ftx.jvp(f, p, t, has_aux=True)

    def g(a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> Any:
        return torch.tanh(a) * y + b

    want = tf.jvp(g, (p[0]["a"], p[0]["b"], p[1]), (t[0]["a"], t[0]["b"], t[1]))
    _same(out, want[0])
    _same(tan, want[1])
    assert aux["n"] == 3
    _same(aux["v"], p[1] * 2)


def test_jvp_expanded_primal() -> None:
    x = _x(1).expand(3)  # stride 0: copied before forward mode writes its tangent
    got = ftx.jvp(lambda a: a * a, (x,), (_x(3, seed=1),))
    want = tf.jvp(lambda a: a * a, (x.contiguous(),), (_x(3, seed=1),))
    _same(got[0], want[0])
    _same(got[1], want[1])


@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jvp_of_grad_matches_torch_func(argnums: Any) -> None:
    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (torch.sin(x) * y * y).sum()

    p, t = (_x(3), _x(3, seed=1)), (_x(3, seed=2), _x(3, seed=3))
    got = ftx.jvp(ftx.grad(f, argnums), p, t)
    want = tf.jvp(tf.grad(f, argnums), p, t)
    _same(got[0], want[0])
    _same(got[1], want[1])


def test_grad_under_vmap_with_aux_and_int_leaf() -> None:
    def loss(p: dict[str, torch.Tensor], x: torch.Tensor) -> Any:
        return (p["w"] * x).sum() ** 2, {"x2": x * 2}

    params = {"w": _x(3), "k": torch.tensor(2)}
    xs = _x(5, 3, seed=1)
    got = ftx.vmap(ftx.value_and_grad(loss, has_aux=True, allow_int=True), (None, 0))(params, xs)
    (val, aux), grads = got
    want_g, (want_v, want_aux) = tf.vmap(
        tf.grad_and_value(lambda w, x: ((w * x).sum() ** 2, x * 2), has_aux=True), (None, 0)
    )(params["w"], xs)
    _same(val, want_v)
    _same(aux["x2"], want_aux)
    _same(grads["w"], want_g)
    _same(grads["k"], torch.zeros(5))


def test_grad_reentrant_under_transform() -> None:
    """The transform built once is shared: a grad that calls another grad inside it."""
    inner = ftx.grad(lambda y: (y ** 3).sum())

    def f(x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = (inner(x) * x).sum()  # 3 x^3 summed: gradient 9 x^2
        return out

    x = _x(3)
    torch.testing.assert_close(ftx.vmap(ftx.grad(f))(x[None]), (9 * x * x)[None])
    got = ftx.jvp(ftx.grad(f), (x,), (torch.ones(3, dtype=F64),))
    torch.testing.assert_close(got[1], 18 * x)
