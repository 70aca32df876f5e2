"""Issue 17 layers against their torch.nn twins: Embedding, MultiheadAttention,
TransformerEncoderLayer, TransformerDecoderLayer, RMSNorm, GroupNorm.

Every case x float32/float64 x cpu/cuda: forward equals the twin holding the same
params (loaded with torch's own ``load_state_dict(strict=True)``, so the paths are the
state dict's); ``ftx.grad`` w.r.t. params and the floating inputs equals
``backward()`` on the twin; ``to_module`` gives a twin computing the same and
``params_of`` gives the params back; ``from_module`` of the twin equals the layer.
Init distributions are compared with torch's own draws (Kolmogorov-Smirnov).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from scipy import stats
from torch import nn

import ftx
from ftx import nn as fnn

Inputs = tuple[tuple[Any, ...], dict[str, Any]]

pytestmark = [
    pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask:UserWarning"),
    pytest.mark.filterwarnings("ignore:There is a performance drop because we have not yet "
                               "implemented the batching rule:UserWarning"),
]


def _g(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape: int, seed: int = 1) -> Callable[[torch.dtype, str], torch.Tensor]:
    return lambda dtype, device: torch.randn(shape, generator=_g(seed), dtype=dtype).to(device)


def causal(n: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(n, dtype=dtype, device=device)


def padding(n: int, s: int, device: str, seed: int = 5) -> torch.Tensor:
    m = torch.rand(n, s, generator=_g(seed)) < 0.4
    m[:, 0] = False  # every row keeps a key (an all-masked row is NaN in torch too)
    return m.to(device)


@dataclass(frozen=True)
class Case:
    """``inputs(dtype, device) -> (args, kwargs)``; ``ftx_kw``/``twin_kw`` add the
    keyword arguments each side needs (torch wants ``need_weights=False`` and a mask with
    ``is_causal``); ``out`` picks the tensor(s) to compare from a call's result."""

    id: str
    layer: Callable[[], fnn.Layer]
    inputs: Callable[[torch.dtype, str], Inputs]
    twin_kw: Callable[[torch.dtype, str], dict[str, Any]] = lambda dt, dv: {}
    ftx_kw: dict[str, Any] = field(default_factory=dict)
    out: Callable[[Any], Any] = lambda r: r


def first(r: Any) -> Any:
    return r[0]


def both(r: Any) -> Any:
    return r  # (output, weights)


def mha_case(id: str, layer: Callable[[], fnn.Layer], shapes: list[tuple[int, ...]],
             kw: Callable[[torch.dtype, str], dict[str, Any]] = lambda dt, dv: {},
             ftx_kw: dict[str, Any] | None = None, weights: bool = False,
             twin_extra: Callable[[torch.dtype, str], dict[str, Any]] = lambda dt, dv: {},
             self_attention: bool = False) -> Case:
    def inputs(dt: torch.dtype, dv: str) -> Inputs:
        xs = tuple(randn(*s, seed=i + 1)(dt, dv) for i, s in enumerate(shapes))
        return xs, kw(dt, dv)

    def twin_kw(dt: torch.dtype, dv: str) -> dict[str, Any]:
        return {"need_weights": weights, **twin_extra(dt, dv)}

    extra = dict(ftx_kw or {})
    if weights:
        extra["need_weights"] = True
    return Case(id, layer, inputs, twin_kw, extra, both if weights else first)


CASES = [
    Case("embedding", lambda: fnn.Embedding(10, 4),
         lambda dt, dv: ((torch.tensor([[1, 3, 9, 0, 3], [2, 2, 7, 5, 1]], device=dv),), {})),
    Case("embedding_padding_scale_grad",
         lambda: fnn.Embedding(10, 4, padding_idx=-8, scale_grad_by_freq=True),
         lambda dt, dv: ((torch.tensor([[1, 2, 2, 0], [2, 9, 2, 1]], device=dv),), {})),
    Case("rmsnorm", lambda: fnn.RMSNorm(5), lambda dt, dv: ((randn(4, 3, 5)(dt, dv),), {})),
    Case("rmsnorm_2d_eps_noaffine",
         lambda: fnn.RMSNorm((3, 5), eps=1e-3, elementwise_affine=False),
         lambda dt, dv: ((randn(4, 3, 5)(dt, dv),), {})),
    Case("groupnorm", lambda: fnn.GroupNorm(2, 4),
         lambda dt, dv: ((randn(3, 4, 5, 2)(dt, dv),), {})),
    Case("groupnorm_eps_noaffine", lambda: fnn.GroupNorm(3, 6, eps=1e-3, affine=False),
         lambda dt, dv: ((randn(2, 6, 7)(dt, dv),), {})),
    mha_case("mha_self_seq_first", lambda: fnn.MultiheadAttention(8, 2), [(5, 3, 8)] * 1,
             self_attention=True),
    mha_case("mha_cross_batch_first_masks", lambda: fnn.MultiheadAttention(8, 4,
                                                                           batch_first=True),
             [(3, 5, 8), (3, 6, 8)],
             kw=lambda dt, dv: {"key_padding_mask": padding(3, 6, dv),
                                "attn_mask": randn(5, 6, seed=9)(dt, dv)}),
    mha_case("mha_qkv_nobias_3d_bool_mask", lambda: fnn.MultiheadAttention(8, 2, bias=False),
             [(5, 3, 8), (6, 3, 8), (6, 3, 8)],
             kw=lambda dt, dv: {"attn_mask": padding(6 * 5, 6, dv, seed=11).view(6, 5, 6)}),
    mha_case("mha_causal", lambda: fnn.MultiheadAttention(8, 2, batch_first=True),
             [(3, 5, 8)], ftx_kw={"is_causal": True},
             twin_extra=lambda dt, dv: {"attn_mask": causal(5, dt, dv), "is_causal": True}),
    mha_case("mha_causal_padding", lambda: fnn.MultiheadAttention(8, 2, batch_first=True),
             [(3, 5, 8)], kw=lambda dt, dv: {"key_padding_mask": padding(3, 5, dv)},
             ftx_kw={"is_causal": True},
             twin_extra=lambda dt, dv: {"attn_mask": causal(5, dt, dv), "is_causal": True}),
    mha_case("mha_need_weights", lambda: fnn.MultiheadAttention(8, 2),
             [(5, 3, 8), (4, 3, 8)], weights=True,
             kw=lambda dt, dv: {"key_padding_mask": padding(3, 4, dv)}),
    mha_case("mha_weights_per_head_causal", lambda: fnn.MultiheadAttention(8, 4),
             [(5, 3, 8)], weights=True, kw=lambda dt, dv: {"average_attn_weights": False},
             ftx_kw={"is_causal": True},
             twin_extra=lambda dt, dv: {"attn_mask": causal(5, dt, dv), "is_causal": True}),
    mha_case("mha_unbatched", lambda: fnn.MultiheadAttention(8, 2), [(5, 8), (4, 8)],
             kw=lambda dt, dv: {"key_padding_mask": padding(1, 4, dv)[0]}),
    Case("encoder_post_relu_padding", lambda: fnn.TransformerEncoderLayer(8, 2, 16),
         lambda dt, dv: ((randn(5, 3, 8)(dt, dv),),
                         {"src_key_padding_mask": padding(3, 5, dv)})),
    Case("encoder_pre_gelu_causal", lambda: fnn.TransformerEncoderLayer(
        8, 2, 16, activation="gelu", batch_first=True, norm_first=True),
        lambda dt, dv: ((randn(3, 5, 8)(dt, dv),), {"is_causal": True}),
        twin_kw=lambda dt, dv: {"src_mask": causal(5, dt, dv)}),
    Case("encoder_callable_nobias_mask", lambda: fnn.TransformerEncoderLayer(
        8, 4, 12, activation=fnn.GELU("tanh"), bias=False, layer_norm_eps=1e-3),
        lambda dt, dv: ((randn(5, 2, 8)(dt, dv), randn(5, 5, seed=3)(dt, dv)), {})),
    Case("encoder_function_unbatched", lambda: fnn.TransformerEncoderLayer(
        8, 2, 16, activation=torch.nn.functional.silu, norm_first=True),
        lambda dt, dv: ((randn(5, 8)(dt, dv),), {})),
    Case("decoder_post_causal_padding", lambda: fnn.TransformerDecoderLayer(8, 2, 16),
         lambda dt, dv: ((randn(4, 3, 8)(dt, dv), randn(6, 3, 8, seed=2)(dt, dv)),
                         {"memory_key_padding_mask": padding(3, 6, dv),
                          "tgt_is_causal": True}),
         twin_kw=lambda dt, dv: {"tgt_mask": causal(4, dt, dv)}),
    Case("decoder_pre_gelu_batch_first_masks", lambda: fnn.TransformerDecoderLayer(
        8, 2, 16, activation="gelu", batch_first=True, norm_first=True),
        lambda dt, dv: ((randn(3, 4, 8)(dt, dv), randn(3, 6, 8, seed=2)(dt, dv)),
                        {"memory_mask": randn(4, 6, seed=4)(dt, dv),
                         "tgt_key_padding_mask": padding(3, 4, dv)})),
]
IDS = [c.id for c in CASES]


def tol(dtype: torch.dtype) -> dict[str, float]:
    if dtype == torch.float32:
        return {"rtol": 1e-5, "atol": 2e-5}
    return {"rtol": 1e-10, "atol": 1e-12}


def flat(params: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(params))


def setup(case: Case, dtype: torch.dtype, device: str, seed: int = 0) -> tuple[Any, Any, Any]:
    layer = case.layer()
    params = layer.init(ftx.random.key(seed), dtype=dtype, device=device)
    twin = layer.twin().to(dtype=dtype, device=device).eval()
    twin.load_state_dict(flat(params), strict=True)  # torch's own loader: paths must match
    return layer, params, twin


def call_ftx(case: Case, layer: Any, params: Any, args: tuple[Any, ...], kw: dict[str, Any]
             ) -> Any:
    return case.out(layer(params, *args, **kw, **case.ftx_kw))


def call_twin(case: Case, twin: Any, args: tuple[Any, ...], kw: dict[str, Any],
              dtype: torch.dtype, device: str) -> Any:
    if isinstance(twin, nn.MultiheadAttention) and len(args) < 3:
        args = (args + (args[-1],) * 2)[:3] if len(args) == 2 else args * 3
    return case.out(twin(*args, **kw, **case.twin_kw(dtype, device)))


def as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_equals_twin(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    args, kw = case.inputs(dtype, device)
    ours, theirs = as_tuple(call_ftx(case, layer, params, args, kw)), as_tuple(
        call_twin(case, twin, args, kw, dtype, device))
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == dtype and a.device.type == device
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grads_equal_twin_backward(case: Case, dtype: torch.dtype, device: str) -> None:
    layer, params, twin = setup(case, dtype, device)
    args, kw = case.inputs(dtype, device)
    cts = [torch.randn(o.shape, generator=_g(7 + i), dtype=dtype).to(device)
           for i, o in enumerate(as_tuple(call_twin(case, twin, args, kw, dtype, device)))]
    fl = [i for i, a in enumerate(args) if a.is_floating_point()]

    def loss(p: Any, *xs: torch.Tensor) -> torch.Tensor:
        full = list(args)
        for i, x in zip(fl, xs):
            full[i] = x
        outs = as_tuple(call_ftx(case, layer, p, tuple(full), kw))
        return sum((o * c).sum() for o, c in zip(outs, cts))  # type: ignore[return-value]

    grads = ftx.grad(loss, argnums=tuple(range(1 + len(fl))))(params, *[args[i] for i in fl])
    leaves = [a.clone().requires_grad_(True) if i in fl else a for i, a in enumerate(args)]
    outs = as_tuple(call_twin(case, twin, tuple(leaves), kw, dtype, device))
    sum((o * c).sum() for o, c in zip(outs, cts)).backward()  # type: ignore[union-attr]
    for j, i in enumerate(fl):
        torch.testing.assert_close(grads[1 + j], leaves[i].grad, **tol(dtype), msg=f"input {i}")
    want = {name: p.grad for name, p in twin.named_parameters()}
    got = flat(grads[0])
    assert sorted(got) == sorted(want)
    for name in want:
        assert want[name] is not None, name
        torch.testing.assert_close(got[name], want[name], **tol(dtype), msg=name)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_paths_and_shapes_equal_state_dict(case: Case) -> None:
    layer = case.layer()
    ours = {p: tuple(v.shape) for p, v in ftx.tree.leaves_with_path(layer.init(
        ftx.random.key(0)))}
    theirs = {k: tuple(v.shape) for k, v in layer.twin().state_dict().items()}
    assert ours == theirs
    assert layer.param_shapes() == theirs


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_module_and_from_module_round_trip(case: Case, dtype: torch.dtype,
                                              device: str) -> None:
    layer = case.layer()
    params = layer.init(ftx.random.key(1), dtype=dtype, device=device)
    module = fnn.to_module(layer, params).eval()
    assert type(module) is type(layer.twin())
    assert ftx.tree.allclose(fnn.params_of(module), params, 0, 0)  # and back
    args, kw = case.inputs(dtype, device)
    ours = as_tuple(call_ftx(case, layer, params, args, kw))
    for a, b in zip(ours, as_tuple(call_twin(case, module, args, kw, dtype, device))):
        torch.testing.assert_close(a, b, **tol(dtype))
    apply_fn, p2 = fnn.from_module(module)
    assert ftx.tree.allclose(p2, params, 0, 0)
    full = args
    if isinstance(module, nn.MultiheadAttention) and len(args) < 3:
        full = (args + (args[-1],) * 2)[:3] if len(args) == 2 else args * 3
    theirs = as_tuple(case.out(apply_fn(p2, *full, **kw, **case.twin_kw(dtype, device))))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("case", [c for c in CASES if c.id in (
    "mha_causal", "encoder_pre_gelu_causal", "rmsnorm", "embedding")], ids=lambda c: c.id)
def test_vmap_over_an_ensemble_equals_a_loop(case: Case, dtype: torch.dtype,
                                             device: str) -> None:
    layer = case.layer()
    members = [layer.init(k, dtype=dtype, device=device)
               for k in ftx.random.split(ftx.random.key(3), 3)]
    stacked = ftx.tree.map(lambda *ls: torch.stack(ls), *members)
    args, kw = case.inputs(dtype, device)
    out = ftx.vmap(lambda p: call_ftx(case, layer, p, args, kw))(stacked)
    for i, p in enumerate(members):
        torch.testing.assert_close(out[i], call_ftx(case, layer, p, args, kw), **tol(dtype))


# --- init: torch's default distributions ----------------------------------------------


def ks_same_law(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    assert ours.shape == theirs.shape
    p = stats.ks_2samp(ours.double().cpu().flatten().numpy(),
                       theirs.detach().double().flatten().numpy()).pvalue
    assert p > 1e-4, p


def check_uniform(ours: torch.Tensor, bound: float) -> None:
    o = ours.double().cpu().flatten()
    assert o.abs().max() <= bound and o.abs().max() > 0.95 * bound
    var, n = bound**2 / 3, o.numel()
    assert abs(o.mean().item()) < 5 * math.sqrt(var / n)
    assert abs(o.var().item() / var - 1) < 5 * math.sqrt(0.8 / n) + 0.01


def test_embedding_init_is_standard_normal_like_torch(dtype: torch.dtype, device: str) -> None:
    layer = fnn.Embedding(300, 64, padding_idx=7)
    w = layer.init(ftx.random.key(0), dtype=dtype, device=device)["weight"]
    assert w.dtype == dtype and w.device.type == device
    assert torch.equal(w[7], torch.zeros(64, dtype=dtype, device=device))
    torch.manual_seed(0)
    ref = nn.Embedding(300, 64, padding_idx=7).weight
    rows = torch.arange(300) != 7
    ks_same_law(w.cpu()[rows], ref[rows])
    o = w.double().cpu()[rows].flatten()
    assert abs(o.mean().item()) < 5 / math.sqrt(o.numel())
    assert abs(o.std().item() - 1) < 5 / math.sqrt(2 * o.numel())


def test_attention_init_is_xavier_and_kaiming_like_torch(dtype: torch.dtype, device: str) -> None:
    e = 64
    params = fnn.MultiheadAttention(e, 4).init(ftx.random.key(0), dtype=dtype, device=device)
    torch.manual_seed(0)
    ref = nn.MultiheadAttention(e, 4)
    check_uniform(params["in_proj_weight"], math.sqrt(6 / (e + 3 * e)))  # xavier_uniform_
    ks_same_law(params["in_proj_weight"], ref.in_proj_weight)
    check_uniform(params["out_proj"]["weight"], 1 / math.sqrt(e))  # kaiming(a=sqrt(5))
    ks_same_law(params["out_proj"]["weight"], ref.out_proj.weight)
    for got, want in ((params["in_proj_bias"], ref.in_proj_bias),
                      (params["out_proj"]["bias"], ref.out_proj.bias)):
        assert got.dtype == dtype and got.device.type == device
        assert torch.equal(got.cpu(), want.detach().to(dtype))  # zeros


def test_transformer_init_matches_torch_per_sub_layer() -> None:
    layer = fnn.TransformerDecoderLayer(64, 4, 96)
    params = layer.init(ftx.random.key(0))
    torch.manual_seed(0)
    ref = nn.TransformerDecoderLayer(64, 4, 96)
    check_uniform(params["linear1"]["weight"], 1 / math.sqrt(64))
    check_uniform(params["linear2"]["weight"], 1 / math.sqrt(96))
    for path, want in ref.state_dict().items():
        got = flat(params)[path]
        if path.startswith("norm") or path.endswith("in_proj_bias") or \
                path.endswith("out_proj.bias"):
            assert torch.equal(got, want), path  # ones and zeros
        else:
            ks_same_law(got, want)
    # every sub-layer draws from its own key
    assert not torch.equal(params["self_attn"]["in_proj_weight"],
                           params["multihead_attn"]["in_proj_weight"])


def test_norm_inits_are_ones_and_zeros(dtype: torch.dtype, device: str) -> None:
    p = fnn.RMSNorm((2, 3)).init(ftx.random.key(0), dtype=dtype, device=device)
    assert torch.equal(p["weight"], torch.ones(2, 3, dtype=dtype, device=device))
    p = fnn.GroupNorm(2, 4).init(ftx.random.key(0), dtype=dtype, device=device)
    assert torch.equal(p["weight"], torch.ones(4, dtype=dtype, device=device))
    assert torch.equal(p["bias"], torch.zeros(4, dtype=dtype, device=device))
    assert fnn.GroupNorm(2, 4, affine=False).init(ftx.random.key(0)) == {}
    assert fnn.RMSNorm(3, elementwise_affine=False).init(ftx.random.key(0)) == {}
