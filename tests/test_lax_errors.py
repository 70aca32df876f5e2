"""ftx.lax: bad input raises TypeError/ValueError in the contract's form, and the corners
(empty scans, Python-number carries, clamped switch indices) follow JAX."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ftx
import ftx.lax as L

F64 = torch.float64
x3 = torch.tensor([0.5, 1.0, 1.5], dtype=F64)


def ident(*a: Any) -> Any:
    return a[0] if len(a) == 1 else a


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: L.cond(x3 > 0, ident, ident, x3), ValueError,
         r"ftx\.lax\.cond: pred must be a scalar \(shape \(\)\), got shape \(3,\)"),
        (lambda: L.cond("yes", ident, ident, x3), TypeError,
         r"ftx\.lax\.cond: pred must be a scalar boolean or number"),
        (lambda: L.cond(True, 1, ident, x3), TypeError, r"ftx\.lax\.cond: true_fun must be "
         "callable"),
        (lambda: L.switch(1.5, [ident], x3), TypeError,
         r"ftx\.lax\.switch: index must be an integer scalar"),
        (lambda: L.switch(torch.tensor(1.0), [ident], x3), TypeError,
         r"ftx\.lax\.switch: index must be an integer scalar .* got dtype torch\.float32"),
        (lambda: L.switch(0, [], x3), TypeError, r"ftx\.lax\.switch: branches must be a "
         "non-empty list"),
        (lambda: L.switch(0, [ident, 3], x3), TypeError, r"branches\[1\] must be callable"),
        (lambda: L.while_loop(lambda v: v, lambda v: v, x3), ValueError,
         r"ftx\.lax\.while_loop: cond_fun's output must be a scalar"),
        (lambda: L.while_loop(lambda v: v.sum(), lambda v: v, x3), TypeError,
         r"cond_fun's output must be a boolean scalar .* got dtype torch\.float64"),
        (lambda: L.while_loop(lambda v: v.sum() < 9, lambda v: v[:2], x3), TypeError,
         r"while_loop: body_fun's output must keep each leaf's shape and dtype, got leaf 0 "
         r"with shape \(2,\)"),
        (lambda: L.while_loop(lambda c: c[0].sum() < 9, lambda c: c[0], (x3, x3)), TypeError,
         r"body_fun's output must have the same pytree structure"),
        (lambda: L.while_loop(lambda v: v.sum() < 9, lambda v: v, object()), TypeError,
         r"every leaf of init_val must be a tensor or a number"),
        (lambda: L.fori_loop(0.0, 3, lambda i, v: v, x3), TypeError,
         r"ftx\.lax\.fori_loop: lower must be an int or a 0-d integer tensor"),
        (lambda: L.fori_loop(0, torch.tensor([3]), lambda i, v: v, x3), TypeError,
         r"upper must be an int or a 0-d integer tensor"),
        (lambda: L.scan(lambda c, x: (c, x), x3, None), ValueError,
         r"ftx\.lax\.scan: length is required when xs has no leaves"),
        (lambda: L.scan(lambda c, x: (c, x), x3, (torch.ones(2), torch.ones(3))), ValueError,
         r"every leaf of xs must have the same leading length, got lengths \[2, 3\]"),
        (lambda: L.scan(lambda c, x: (c, x), x3, torch.ones(2), length=3), ValueError,
         r"length must equal xs' leading length 2"),
        (lambda: L.scan(lambda c, x: (c, x), x3, torch.tensor(1.0)), TypeError,
         r"every leaf of xs must be a tensor with a leading axis"),
        (lambda: L.scan(lambda c, x: (c.float(), x), x3, torch.ones(2)), TypeError,
         r"f's carry output must keep each leaf's shape and dtype, got leaf 0 with shape "
         r"\(3,\) and dtype torch\.float32"),
        (lambda: L.scan(lambda c, x: c, x3, torch.ones(2)), TypeError,
         r"ftx\.lax\.scan: f must return a pair \(carry, y\)"),
        (lambda: L.scan(lambda c, x: (c, x), x3, torch.ones(2), reverse=1), TypeError,
         r"reverse must be a bool"),
        (lambda: L.scan(lambda c, x: (c, x), x3, torch.ones(2), unroll=0), ValueError,
         r"unroll must lie in \[1, inf\]"),
        (lambda: L.scan(lambda c, x: (c, x), x3, None, length=-1), ValueError,
         r"length must lie in \[0, inf\]"),
        (lambda: L.scan(lambda c, x: (c, x * torch.ones(int(x.item()) + 1)), x3,
                        torch.arange(2.0)), TypeError,
         r"f's y output must keep each leaf's shape"),
        (lambda: L.map(lambda r: r, x3, batch_size=0), ValueError,
         r"ftx\.lax\.map: batch_size must lie in \[1, inf\]"),
        (lambda: L.associative_scan(torch.add, x3, axis=1), ValueError,
         r"ftx\.lax\.associative_scan: axis must lie in \[-1, 0\], got 1"),
        (lambda: L.associative_scan(torch.add, (x3, torch.ones(2))), ValueError,
         r"every leaf of elems must have the same length along axis 0"),
        (lambda: L.associative_scan(lambda a, b: a[0], (x3, x3)), TypeError,
         r"fn must return a pytree of elems' structure"),
        (lambda: ftx.vmap(lambda p, v: L.cond(p, lambda a: a, lambda a: a[:2], v))(
            torch.tensor([True, False]), torch.ones(2, 3)), TypeError,
         r"ftx\.lax\.cond: every branch's output must keep each leaf's shape"),
    ],
)
def test_errors(call: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        call()


def test_reverse_mode_error_message() -> None:
    f = lambda x: L.fori_loop(torch.tensor(0), x.sum().long(), lambda i, v: v * 2, x)  # noqa: E731
    # batched bounds: a while_loop; forward mode works, reverse mode is refused
    xs = torch.tensor([[1.0, 0.5], [2.0, 1.0]], dtype=F64)
    assert torch.equal(ftx.vmap(f)(xs), torch.tensor([[2.0, 1.0], [16.0, 8.0]], dtype=F64))
    with pytest.raises(ValueError, match=(
            r"^ftx\.lax\.fori_loop: reverse-mode differentiation needs a static trip count, "
            r"got a reverse-mode transform .* Reverse-mode differentiation does not work for "
            r"lax\.while_loop or lax\.fori_loop with dynamic start/stop values\. Try using "
            r"lax\.scan, or using fori_loop with static \(Python int\) start/stop; forward "
            r"mode \(jvp, jacfwd\) works\.$")):
        ftx.vmap(ftx.grad(lambda x: f(x).sum()))(xs)


def test_corners_follow_jax() -> None:
    # Python numbers in the carry become 0-d tensors (JAX makes them arrays)
    c, ys = L.scan(lambda c, x: (c + x, c * 2), 0.0, torch.arange(3.0))
    assert c.item() == 3.0 and ys.tolist() == [0.0, 0.0, 2.0]
    # an empty scan returns the carry and empty stacks of y's shape
    c, ys = L.scan(lambda c, x: (c + x, (c[:1], None)), x3, torch.ones(0, 3, dtype=F64))
    assert torch.equal(c, x3) and ys[0].shape == (0, 1) and ys[1] is None
    # a fori_loop with no iterations returns init_val
    assert torch.equal(L.fori_loop(5, 2, lambda i, v: v * 0, x3), x3)
    # switch clamps a Python int index too
    assert L.switch(-3, [lambda: 1, lambda: 2]) == 1 and L.switch(9, [lambda: 1, lambda: 2]) == 2
    # cond with a Python predicate and no operands
    assert L.cond(0, lambda: "t", lambda: "f") == "f"
    # stop_gradient leaves non-tensor leaves alone, keeps the structure
    out = L.stop_gradient({"a": x3, "b": (1, None), "c": "name"})
    assert out["b"] == (1, None) and out["c"] == "name" and torch.equal(out["a"], x3)
    # scan keeps y=None per step and a None carry subtree
    c, ys = L.scan(lambda c, x: ({"a": c["a"] + x, "b": None}, None), {"a": x3, "b": None},
                   torch.ones(2, 3, dtype=F64))
    assert c["b"] is None and ys is None and torch.equal(c["a"], x3 + 2)
    # reverse scans keep ys aligned with xs
    _, ys = L.scan(lambda c, x: (c + x, c), torch.zeros(()), torch.arange(1.0, 4.0), reverse=True)
    assert ys.tolist() == [5.0, 3.0, 0.0]


def test_inputs_not_mutated() -> None:
    init = {"h": x3.clone()}
    xs = torch.ones(4, 3, dtype=F64)
    L.scan(lambda c, x: ({"h": c["h"] + x}, c["h"]), init, xs)
    L.while_loop(lambda v: v.sum() < 10, lambda v: v * 2, init["h"])
    assert torch.equal(init["h"], x3) and torch.equal(xs, torch.ones(4, 3, dtype=F64))
