"""ftx.vmap: values against loops of the unbatched function, in_axes/out_axes/axis_size/chunks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import ftx
from tests.helpers import tree_allclose


def loop(f: Callable[..., Any], in_axes: Any, n: int, *args: Any) -> Any:
    """Reference: call f per example and stack along axis 0 (in_axes a tuple of int/None)."""
    outs = []
    for i in range(n):
        sliced = [a if ax is None else a.select(ax, i) for a, ax in zip(args, in_axes)]
        outs.append(f(*sliced))
    return ftx.tree.map(lambda *xs: torch.stack(xs), *outs)


def mlp(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x @ params["w"].T + params["b"]).sum()


CASES = [
    # id, fun, in_axes, args maker
    ("sin-int0", torch.sin, 0, lambda d: (torch.randn(5, 3, device=d),)),
    ("matvec-None-0", lambda w, x: w @ x, (None, 0),
     lambda d: (torch.randn(2, 3, device=d), torch.randn(5, 3, device=d))),
    ("add-1-0", lambda a, b: a + b, (1, 0),
     lambda d: (torch.randn(3, 5, device=d), torch.randn(5, 3, device=d))),
    ("neg-axis", lambda a: a.sum(), -1, lambda d: (torch.randn(3, 5, device=d),)),
    ("list-in-axes", lambda a, b: a * b, [0, None],
     lambda d: (torch.randn(5, 3, device=d), torch.randn(3, device=d))),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_vmap_matches_loop(case: Any, device: str) -> None:
    _, f, in_axes, make = case
    torch.manual_seed(0)
    args = make(device)
    axes = tuple(in_axes) if isinstance(in_axes, list | tuple) else (in_axes,) * len(args)
    n = next(a.shape[ax] for a, ax in zip(args, axes) if ax is not None)
    tree_allclose(ftx.vmap(f, in_axes)(*args), loop(f, axes, n, *args), rtol=1e-5, atol=1e-6)


def test_dict_prefix_in_axes(dtype: torch.dtype, device: str) -> None:
    params = {"w": torch.randn(4, 3, dtype=dtype, device=device),
              "b": torch.randn(7, 4, dtype=dtype, device=device)}
    x = torch.randn(7, 3, dtype=dtype, device=device)
    out = ftx.vmap(mlp, in_axes=({"w": None, "b": 0}, 0))(params, x)
    ref = torch.stack([mlp({"w": params["w"], "b": params["b"][i]}, x[i]) for i in range(7)])
    torch.testing.assert_close(out, ref)


def test_none_prefix_and_none_argument() -> None:
    params = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    xs = torch.randn(6, 3)
    out = ftx.vmap(lambda p, x, unused: mlp(p, x), in_axes=(None, 0, 0))(params, xs, None)
    torch.testing.assert_close(out, torch.stack([mlp(params, x) for x in xs]))


@pytest.mark.parametrize("out_axes", [0, 1, -1, (1, 0)], ids=["0", "1", "-1", "tuple"])
def test_out_axes(out_axes: Any) -> None:
    xs = torch.randn(5, 3)
    out = ftx.vmap(lambda x: (x * 2, x.outer(x)), out_axes=out_axes)(xs)
    ref = (xs * 2, torch.einsum("bi,bj->bij", xs, xs))
    axes = out_axes if isinstance(out_axes, tuple) else (out_axes, out_axes)
    for o, r, ax in zip(out, ref, axes):
        torch.testing.assert_close(o, r.movedim(0, ax))


def test_out_axes_none_for_unbatched_output() -> None:
    w = torch.randn(3)
    xs = torch.randn(5, 3)
    y, w_out = ftx.vmap(lambda x: (x @ w, w * 2), out_axes=(0, None))(xs)
    torch.testing.assert_close(y, xs @ w)
    torch.testing.assert_close(w_out, w * 2)


def test_none_output_leaves_are_empty_subtrees() -> None:
    xs = torch.randn(4, 3)
    y, nothing = ftx.vmap(lambda x: (x.sum(), None))(xs)
    assert nothing is None
    torch.testing.assert_close(y, xs.sum(1))
    out = ftx.vmap(lambda x: {"a": x, "b": None}, out_axes=1)(xs)
    assert out["b"] is None and out["a"].shape == (3, 4)


def test_axis_size_broadcasts_when_nothing_mapped() -> None:
    w = torch.randn(3)
    out = ftx.vmap(lambda w: w * 2, in_axes=None, axis_size=4)(w)
    torch.testing.assert_close(out, (w * 2).expand(4, 3))
    out = ftx.vmap(lambda: torch.ones(2), axis_size=3, out_axes=1)()
    assert out.shape == (2, 3)


def test_axis_size_with_different_randomness() -> None:
    out = ftx.vmap(lambda: torch.rand(2), axis_size=5, randomness="different")()
    assert out.shape == (5, 2) and not torch.allclose(out[0], out[1])
    same = ftx.vmap(lambda: torch.rand(2), axis_size=5, randomness="same")()
    torch.testing.assert_close(same[0], same[4])


def test_axis_size_equal_to_mapped_size_is_accepted() -> None:
    xs = torch.randn(4, 3)
    torch.testing.assert_close(ftx.vmap(torch.sin, axis_size=4)(xs), xs.sin())


def test_keyword_arguments_are_mapped_along_axis_0() -> None:
    xs, scale = torch.randn(4, 3), torch.randn(4)
    out = ftx.vmap(lambda x, scale: x * scale)(xs, scale=scale)
    torch.testing.assert_close(out, xs * scale[:, None])


def test_non_tensor_argument_with_none_axis() -> None:
    xs = torch.randn(4, 3)
    out = ftx.vmap(lambda x, k: x * k, in_axes=(0, None))(xs, 2.5)
    torch.testing.assert_close(out, xs * 2.5)


@pytest.mark.parametrize("chunk_size", [1, 3, 10], ids=lambda c: f"chunk{c}")
def test_chunk_size(chunk_size: int) -> None:
    params = {"w": torch.randn(4, 3, dtype=torch.float64), "b": torch.randn(4, dtype=torch.float64)}
    xs = torch.randn(7, 3, dtype=torch.float64)
    f = ftx.vmap(mlp, in_axes=(None, 0), chunk_size=chunk_size)
    torch.testing.assert_close(f(params, xs), ftx.vmap(mlp, in_axes=(None, 0))(params, xs))


def test_nested_vmap_outer_product() -> None:
    a, b = torch.randn(3), torch.randn(4)
    out = ftx.vmap(ftx.vmap(torch.mul, in_axes=(None, 0)), in_axes=(0, None))(a, b)
    torch.testing.assert_close(out, torch.outer(a, b))


def test_torch_func_inside_ftx_vmap_and_back() -> None:
    params = {"w": torch.randn(4, 3, dtype=torch.float64), "b": torch.randn(4, dtype=torch.float64)}
    xs = torch.randn(5, 3, dtype=torch.float64)
    per_ex = ftx.vmap(torch.func.grad(mlp), in_axes=(None, 0))(params, xs)
    ref = torch.func.vmap(torch.func.grad(mlp), in_dims=(None, 0))(params, xs)
    tree_allclose(per_ex, ref)
    inside = torch.func.vmap(ftx.vmap(torch.mul, in_axes=(None, 0)), in_dims=(0, None))(xs, xs)
    torch.testing.assert_close(inside, torch.einsum("ai,bi->abi", xs, xs))
    grad_through = torch.func.grad(lambda w: ftx.vmap(lambda x: (w * x).sum())(xs).sum())(xs[0])
    torch.testing.assert_close(grad_through, xs.sum(0))


def test_repeated_calls_agree() -> None:
    f = ftx.vmap(lambda p, x: torch.func.grad(mlp)(p, x), in_axes=(None, 0))
    params = {"w": torch.randn(4, 3), "b": torch.randn(4)}
    xs = torch.randn(5, 3)
    first = f(params, xs)
    for _ in range(3):
        tree_allclose(f(params, xs), first, rtol=0, atol=0)


def test_keeps_function_metadata() -> None:
    def affine(x: torch.Tensor) -> torch.Tensor:
        """Doc."""
        return x

    batched = ftx.vmap(affine)
    assert batched.__name__ == "affine" and batched.__doc__ == "Doc."


# -- property tests -------------------------------------------------------------------------

UNARY = [torch.sin, torch.tanh, lambda x: x * x.sum(), lambda x: x.cumsum(-1), torch.exp]


@settings(max_examples=25, deadline=None)
@given(
    fn=st.sampled_from(range(len(UNARY))),
    n=st.integers(1, 5),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    axis=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_property_vmap_equals_stack(
    fn: int, n: int, shape: list[int], axis: int, seed: int
) -> None:
    torch.manual_seed(seed)
    axis = axis % (len(shape) + 1)
    xs = torch.randn(*shape[:axis], n, *shape[axis:], dtype=torch.float64)
    f = UNARY[fn]
    ref = torch.stack([f(xs.select(axis, i)) for i in range(n)])
    torch.testing.assert_close(ftx.vmap(f, in_axes=axis)(xs), ref)


def test_dict_axes_match_by_key_not_order() -> None:
    params = {"b": torch.randn(7, 4), "w": torch.randn(4, 3)}  # key order differs from in_axes
    xs = torch.randn(7, 3)
    out = ftx.vmap(mlp, in_axes=({"w": None, "b": 0}, 0))(params, xs)
    ref = torch.stack([mlp({"w": params["w"], "b": params["b"][i]}, xs[i]) for i in range(7)])
    torch.testing.assert_close(out, ref)
    res = ftx.vmap(lambda x: {"a": x, "b": x.sum()}, out_axes={"b": 0, "a": 1})(xs)
    torch.testing.assert_close(res["a"], xs.T)


@pytest.mark.slow
def test_under_torch_compile() -> None:
    xs = torch.randn(4, 3)
    f = torch.compile(ftx.vmap(lambda p, x: (p["w"] * x).sum(), in_axes=({"w": None}, 0)))
    torch.testing.assert_close(f({"w": torch.ones(3)}, xs), xs.sum(1))


@pytest.mark.parametrize("in_axes", [0, (0, None), ({"a": 0, "b": 0}, None)])
def test_mapped_dict_argument_routes_agree_with_torch_func(in_axes: Any) -> None:
    """A mapped dict argument goes straight to torch.func.vmap (one int per argument) or by
    the direct route (a dict prefix); the answer is torch.func's, leaf by leaf."""
    g = torch.Generator().manual_seed(0)
    p = {"a": torch.randn(5, 3, generator=g), "b": torch.randn(5, 2, generator=g)}
    x = torch.randn(3, generator=g)

    def f(p: dict[str, torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"s": p["a"] @ x, "b": p["b"].sin()}

    args = (p, x) if in_axes != 0 else (p, x.expand(5, 3))
    want = torch.func.vmap(f, in_dims=in_axes)(*args)
    for _ in range(2):  # the second call takes the cached route
        tree_allclose(ftx.vmap(f, in_axes=in_axes)(*args), want)


def test_mapped_dict_with_none_leaf_and_bad_leaves() -> None:
    """None inside a mapped argument is an empty subtree (JAX), which torch refuses: the
    fast route hands it on; a Python number there is the ftx error."""
    p = {"a": torch.ones(4, 3), "skip": None}
    out = ftx.vmap(lambda p: p["a"].sum() if p["skip"] is None else p["a"])(p)
    torch.testing.assert_close(out, torch.full((4,), 3.0))
    with pytest.raises(TypeError, match=r"ftx\.vmap: mapped inputs must be tensors, got float "
                       r"2\.0 for argument 0 at 'k'"):
        ftx.vmap(lambda p: p["a"] * p["k"])({"a": torch.ones(4, 3), "k": 2.0})
    with pytest.raises(ValueError, match=r"ftx\.vmap: all mapped axes must have the same size"):
        ftx.vmap(lambda p: p["a"].sum() + p["b"].sum())(
            {"a": torch.ones(4, 3), "b": torch.ones(5)}
        )
