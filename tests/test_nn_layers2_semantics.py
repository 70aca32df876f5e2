"""Issue 17 layers: dropout with a key, the functional forms, and bad input.

Dropout in ``MultiheadAttention`` is checked against an explicit reference built from
the twin's attention weights and the mask ``ftx.random.bernoulli`` draws from the same
key; the transformer layers' dropout by its laws (deterministic per key, identity
without a key or with ``p = 0``). Every bad input raises ``TypeError``/``ValueError``
naming the layer and the fix (``pytest.raises(..., match=...)``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ftx
from ftx import nn as fnn
from ftx.nn import functional as fnf

KEY = ftx.random.key(0)


def flat(params: Any) -> dict[str, torch.Tensor]:
    return dict(ftx.tree.leaves_with_path(params))


# --- dropout with a key ---------------------------------------------------------------


def test_attention_dropout_equals_the_reference_with_the_keys_mask() -> None:
    e, h, p = 8, 2, 0.4
    mha = fnn.MultiheadAttention(e, h, dropout=p, batch_first=True)
    params = mha.init(ftx.random.key(1), dtype=torch.float64)
    q = torch.randn(3, 5, e, dtype=torch.float64)
    kv = torch.randn(3, 6, e, dtype=torch.float64)
    out, w = mha(params, q, kv, key=KEY, need_weights=True, average_attn_weights=False)
    # reference: the twin's (eval) per-head weights, dropped with the key's Bernoulli mask
    twin = mha.twin().double().eval()
    twin.load_state_dict(flat(params))
    _, w_ref = twin(q, kv, kv, average_attn_weights=False)
    keep = ftx.random.bernoulli(KEY, 1 - p, (3, h, 5, 6))
    w_drop = torch.where(keep, w_ref / (1 - p), 0.0)
    torch.testing.assert_close(w, w_drop)
    v = torch.nn.functional.linear(kv, *(t.chunk(3)[2] for t in (params["in_proj_weight"],
                                                                  params["in_proj_bias"])))
    heads = (w_drop @ v.view(3, 6, h, e // h).transpose(1, 2)).transpose(1, 2).reshape(3, 5, e)
    ref = torch.nn.functional.linear(heads, params["out_proj"]["weight"],
                                     params["out_proj"]["bias"])
    torch.testing.assert_close(out, ref)
    # without need_weights the same key gives the same output
    torch.testing.assert_close(mha(params, q, kv, key=KEY)[0], out)
    # without a key: the eval twin (no dropout)
    torch.testing.assert_close(mha(params, q, kv)[0], twin(q, kv, kv)[0])


@pytest.mark.parametrize("cls", ["encoder", "decoder"])
def test_transformer_dropout_is_keyed_and_off_without_a_key(cls: str) -> None:
    def build(p: float) -> Any:
        if cls == "encoder":
            return fnn.TransformerEncoderLayer(8, 2, 16, dropout=p, batch_first=True)
        return fnn.TransformerDecoderLayer(8, 2, 16, dropout=p, batch_first=True)

    layer = build(0.3)
    params = layer.init(ftx.random.key(2))
    x = torch.randn(2, 5, 8)
    args = (x,) if cls == "encoder" else (x, torch.randn(2, 4, 8))
    twin = layer.twin().eval()
    twin.load_state_dict(flat(params))
    plain = layer(params, *args)
    torch.testing.assert_close(plain, twin(*args))  # no key: evaluation
    a, b = layer(params, *args, key=KEY), layer(params, *args, key=KEY)
    assert torch.equal(a, b)  # one key, one result
    assert not torch.allclose(a, plain, atol=1e-3)
    assert not torch.allclose(a, layer(params, *args, key=ftx.random.key(1)), atol=1e-3)
    torch.testing.assert_close(build(0.0)(params, *args, key=KEY), plain)  # p = 0
    g = ftx.grad(lambda pp: layer(pp, *args, key=KEY).square().sum())(params)
    assert all(torch.isfinite(t).all() for t in ftx.tree.leaves(g))


def test_embedding_padding_row_gets_no_gradient() -> None:
    emb = fnn.Embedding(5, 3, padding_idx=1)
    params = emb.init(KEY)
    g = ftx.grad(lambda p: emb(p, torch.tensor([1, 2, 1, 4])).sum())(params)
    assert torch.equal(g["weight"][1], torch.zeros(3))
    assert torch.equal(g["weight"][2], torch.ones(3))


# --- functional forms equal the layers -------------------------------------------------


def test_functional_forms_equal_the_layers() -> None:
    x = torch.randn(2, 4, 6)
    emb = fnn.Embedding(7, 3, padding_idx=0)
    pe = emb.init(KEY)
    idx = torch.tensor([[0, 6], [3, 3]])
    assert torch.equal(fnf.embedding(pe, idx, padding_idx=0), emb(pe, idx))
    rms = fnn.RMSNorm(6, eps=1e-4)
    pr = {"weight": torch.randn(6)}
    assert torch.equal(fnf.rms_norm(pr, x, eps=1e-4), rms(pr, x))
    assert torch.equal(fnf.rms_norm({}, x, (6,)), fnn.RMSNorm(6, elementwise_affine=False)({}, x))
    gn = fnn.GroupNorm(2, 4)
    pg = {"weight": torch.randn(4), "bias": torch.randn(4)}
    assert torch.equal(fnf.group_norm(pg, x, 2), gn(pg, x))
    assert torch.equal(fnf.group_norm({}, x, 4), fnn.GroupNorm(4, 4, affine=False)({}, x))
    mha = fnn.MultiheadAttention(6, 3, batch_first=True)
    pm = mha.init(KEY)
    out = fnf.multi_head_attention(pm, x, num_heads=3, batch_first=True, is_causal=True)
    assert torch.equal(out[0], mha(pm, x, is_causal=True)[0]) and out[1] is None


# --- bad input ------------------------------------------------------------------------

MHA = fnn.MultiheadAttention(8, 2, batch_first=True)
MHA_P = MHA.init(KEY)
ENC = fnn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
ENC_P = ENC.init(KEY)
DEC = fnn.TransformerDecoderLayer(8, 2, 16)
DEC_P = DEC.init(KEY)
EMB = fnn.Embedding(5, 3)
EMB_P = EMB.init(KEY)
X = torch.randn(3, 5, 8)


def without(params: dict[str, Any], outer: str, inner: str | None = None) -> dict[str, Any]:
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in params.items()}
    if inner is None:
        del out[outer]
    else:
        del out[outer][inner]
    return out


BAD: list[Any] = [
    # hyper-parameters
    pytest.param(lambda: fnn.MultiheadAttention(8, 3), ValueError,
                 r"ftx\.nn\.MultiheadAttention: num_heads must divide embed_dim, got "
                 r"embed_dim=8 and num_heads=3\. Pick a divisor", id="mha-heads"),
    pytest.param(lambda: fnn.MultiheadAttention(8, 2, kdim=4), ValueError,
                 r"ftx\.nn\.MultiheadAttention: kdim must be None.*got 4\. Project keys and "
                 r"values to embed_dim first", id="mha-kdim"),
    pytest.param(lambda: fnn.MultiheadAttention(8, 2, dropout=1.5), ValueError,
                 r"dropout must be in \[0, 1\], got 1\.5", id="mha-dropout"),
    pytest.param(lambda: fnn.Embedding(5, 3, max_norm=1.0), ValueError,
                 r"ftx\.nn\.Embedding: max_norm must be None \(torch's max_norm rescales the "
                 r"weight in place.*got 1\.0\. Renormalise the table yourself", id="emb-maxnorm"),
    pytest.param(lambda: fnn.Embedding(5, 3, padding_idx=5), ValueError,
                 r"ftx\.nn\.Embedding: padding_idx must be in \[-num_embeddings, "
                 r"num_embeddings\) = \[-5, 5\), got 5", id="emb-padding"),
    pytest.param(lambda: fnn.GroupNorm(3, 4), ValueError,
                 r"ftx\.nn\.GroupNorm: num_groups must divide num_channels, got num_groups=3 "
                 r"and num_channels=4\. Pick a divisor", id="gn-groups"),
    pytest.param(lambda: fnn.RMSNorm(4, eps=-1.0), ValueError,
                 r"ftx\.nn\.RMSNorm: eps must be >= 0, got -1\.0", id="rms-eps"),
    pytest.param(lambda: fnn.TransformerEncoderLayer(8, 3), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer: nhead must divide d_model, got d_model=8 "
                 r"and nhead=3", id="enc-nhead"),
    pytest.param(lambda: fnn.TransformerEncoderLayer(8, 2, activation="tanh"), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                 r"callable, got 'tanh'\. Pass a function of x", id="enc-activation-name"),
    pytest.param(lambda: fnn.TransformerDecoderLayer(8, 2, activation=fnn.GELU), TypeError,
                 r"ftx\.nn\.TransformerDecoderLayer: activation must be 'relu', 'gelu' or a "
                 r"callable, got type.*ftx\.nn\.GELU\('tanh'\)", id="dec-activation-class"),
    # wrong shapes
    pytest.param(lambda: MHA(MHA_P, torch.randn(3, 5, 6)), ValueError,
                 r"ftx\.nn\.MultiheadAttention: query must have shape \(N, L, 8\) "
                 r"\(batch_first=True\) or unbatched \(L, 8\), got shape \(3, 5, 6\)\. Pass "
                 r"embed_dim features last", id="mha-query-shape"),
    pytest.param(lambda: MHA(MHA_P, X, torch.randn(4, 6, 8)), ValueError,
                 r"ftx\.nn\.MultiheadAttention: query and key_input must have one batch size "
                 r"\(dimension 0 of \(N, L, E\)\), got shapes \(3, 5, 8\) and \(4, 6, 8\)\. "
                 r"Check batch_first", id="mha-batch"),
    pytest.param(lambda: MHA(MHA_P, X, torch.randn(3, 6, 8), torch.randn(3, 7, 8)), ValueError,
                 r"key_input and value must have the same leading shape", id="mha-kv"),
    pytest.param(lambda: ENC(ENC_P, torch.randn(3, 5, 4)), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer: src must have shape \(N, S, E\) with E = "
                 r"d_model = 8 \(batch_first=True\), or unbatched \(S, 8\), got shape "
                 r"\(3, 5, 4\)\. Put the features last", id="enc-shape"),
    pytest.param(lambda: DEC(DEC_P, torch.randn(4, 3, 8), torch.randn(6, 3, 5)), ValueError,
                 r"ftx\.nn\.TransformerDecoderLayer: memory must have shape \(S, N, E\) with "
                 r"E = d_model = 8", id="dec-memory-shape"),
    pytest.param(lambda: fnn.GroupNorm(2, 4)({"weight": torch.ones(4), "bias": torch.zeros(4)},
                                             torch.randn(2, 6, 3)), ValueError,
                 r"ftx\.nn\.GroupNorm: input x must have shape \(N, C, \*\) = \(N, 4, \*\), got "
                 r"input of shape \(2, 6, 3\)\. Put the batch first", id="gn-shape"),
    pytest.param(lambda: fnn.RMSNorm(4)({"weight": torch.ones(4)}, torch.randn(2, 3)),
                 ValueError, r"ftx\.nn\.RMSNorm: input x must have shape \(\*, \*normalized_"
                 r"shape\) = \(\*, 4\), got input of shape \(2, 3\)", id="rms-shape"),
    pytest.param(lambda: EMB(EMB_P, torch.tensor([0, 5])), ValueError,
                 r"ftx\.nn\.Embedding: indices must lie in \[0, num_embeddings\) = \[0, 5\), got "
                 r"indices in \[0, 5\]\. Map tokens", id="emb-range"),
    pytest.param(lambda: EMB(EMB_P, torch.tensor([-1, 2])), ValueError,
                 r"indices must lie in \[0, num_embeddings\) = \[0, 5\), got indices in \[-1, 2\]",
                 id="emb-negative"),
    # dtypes
    pytest.param(lambda: EMB(EMB_P, torch.tensor([0.0, 1.0])), TypeError,
                 r"ftx\.nn\.Embedding: input idx must be an int64 or int32 tensor of indices, got "
                 r"dtype torch\.float32\. Cast it: idx\.long\(\)", id="emb-float-idx"),
    pytest.param(lambda: MHA(MHA_P, X.double()), TypeError,
                 r"ftx\.nn\.MultiheadAttention: input and params must share one dtype, got "
                 r"input torch\.float64 and params\['in_proj_weight'\] torch\.float32\. Cast one "
                 r"side", id="mha-dtype"),
    pytest.param(lambda: ENC(ENC_P, X.double()), TypeError,
                 r"ftx\.nn\.TransformerEncoderLayer: src and params must share one dtype, got "
                 r"src torch\.float64 and params torch\.float32\. Cast one side", id="enc-dtype"),
    pytest.param(lambda: ENC(ENC_P, X.long()), TypeError,
                 r"ftx\.nn\.TransformerEncoderLayer: src must be a floating tensor, got dtype "
                 r"torch\.int64\. Cast it", id="enc-int"),
    pytest.param(lambda: fnn.RMSNorm(4)({"weight": torch.ones(4)}, torch.randn(2, 4).double()),
                 TypeError, r"ftx\.nn\.RMSNorm: input and params must share one dtype",
                 id="rms-dtype"),
    pytest.param(lambda: fnn.GroupNorm(2, 4)({"weight": torch.ones(4), "bias": torch.zeros(4)},
                                             torch.randn(2, 4, 3).double()), TypeError,
                 r"ftx\.nn\.GroupNorm: input and params must share one dtype", id="gn-dtype"),
    # params
    pytest.param(lambda: MHA(without(MHA_P, "out_proj", "bias"), X), ValueError,
                 r"ftx\.nn\.MultiheadAttention: params must hold exactly the paths .*got missing "
                 r"paths \['out_proj\.bias'\] and extra paths \[\]\. Build params with "
                 r"layer\.init\(key\)", id="mha-missing"),
    pytest.param(lambda: ENC(without(ENC_P, "norm2"), X), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer: params must hold exactly the paths .*got "
                 r"missing paths \['norm2\.bias', 'norm2\.weight'\]", id="enc-missing"),
    pytest.param(lambda: ENC(without(ENC_P, "linear1", "weight"), X), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer: params must hold exactly the paths .*got "
                 r"missing paths \['linear1\.weight'\]", id="enc-missing-inner"),
    pytest.param(lambda: DEC(without(DEC_P, "multihead_attn", "in_proj_weight"),
                             torch.randn(4, 3, 8), torch.randn(6, 3, 8)), ValueError,
                 r"ftx\.nn\.TransformerDecoderLayer.*missing paths "
                 r"\['multihead_attn\.in_proj_weight'\]", id="dec-missing"),
    pytest.param(lambda: EMB({}, torch.tensor([0])), ValueError,
                 r"ftx\.nn\.Embedding: params must hold exactly the paths \['weight'\], got "
                 r"missing paths \['weight'\]", id="emb-missing"),
    pytest.param(lambda: fnn.GroupNorm(2, 4)({"weight": torch.ones(4)}, torch.randn(2, 4, 3)),
                 ValueError, r"ftx\.nn\.GroupNorm: params must hold exactly the paths "
                 r"\['bias', 'weight'\], got missing paths \['bias'\]", id="gn-missing"),
    # masks
    pytest.param(lambda: MHA(MHA_P, X, key_padding_mask=torch.zeros(3, 6, dtype=torch.bool)),
                 ValueError, r"ftx\.nn\.MultiheadAttention: key_padding_mask must have shape "
                 r"\(N, S\) = \(3, 5\), got shape \(3, 6\)\. One entry per batch element",
                 id="mha-kpm-shape"),
    pytest.param(lambda: MHA(MHA_P, X, attn_mask=torch.zeros(5, 4)), ValueError,
                 r"ftx\.nn\.MultiheadAttention: attn_mask must have shape \(L, S\) = \(5, 5\) or "
                 r"\(N \* num_heads, L, S\) = \(6, 5, 5\), got shape \(5, 4\)\. Build it",
                 id="mha-mask-shape"),
    pytest.param(lambda: MHA(MHA_P, X, attn_mask=torch.zeros(5, 5, dtype=torch.int64)),
                 TypeError, r"ftx\.nn\.MultiheadAttention: attn_mask must be bool or have the "
                 r"input's dtype torch\.float32, got dtype torch\.int64\. Pass a bool mask",
                 id="mha-mask-dtype"),
    pytest.param(lambda: MHA(MHA_P, X, key_padding_mask=[[True]]), TypeError,
                 r"key_padding_mask must be a tensor", id="mha-mask-kind"),
    pytest.param(lambda: ENC(ENC_P, X, torch.zeros(4, 4)), ValueError,
                 r"ftx\.nn\.TransformerEncoderLayer \(self_attn\): src_mask must have shape "
                 r"\(L, S\) = \(5, 5\)", id="enc-mask-shape"),
    pytest.param(lambda: ENC(ENC_P, X, src_key_padding_mask=torch.zeros(3, 4).bool()),
                 ValueError, r"ftx\.nn\.TransformerEncoderLayer \(self_attn\): "
                 r"src_key_padding_mask must have shape \(N, S\) = \(3, 5\)", id="enc-kpm"),
    pytest.param(lambda: DEC(DEC_P, torch.randn(4, 3, 8), torch.randn(6, 3, 8),
                             memory_key_padding_mask=torch.zeros(3, 4).bool()), ValueError,
                 r"ftx\.nn\.TransformerDecoderLayer \(multihead_attn\): memory_key_padding_mask "
                 r"must have shape \(N, S\) = \(3, 6\)", id="dec-memory-kpm"),
    pytest.param(lambda: DEC(DEC_P, torch.randn(4, 3, 8), torch.randn(6, 3, 8),
                             tgt_mask=torch.zeros(4, 6)), ValueError,
                 r"ftx\.nn\.TransformerDecoderLayer \(self_attn\): tgt_mask must have shape "
                 r"\(L, S\) = \(4, 4\)", id="dec-tgt-mask"),
    # flags and keys
    pytest.param(lambda: MHA(MHA_P, X, need_weights=1), TypeError,
                 r"ftx\.nn\.MultiheadAttention: need_weights must be True or False, got int 1",
                 id="mha-flag"),
    pytest.param(lambda: ENC(ENC_P, X, key=3), TypeError,
                 r"ftx\.nn\.TransformerEncoderLayer: key must be an ftx\.random key",
                 id="enc-key"),
]


@pytest.mark.parametrize(("thunk", "exc", "pattern"), BAD)
def test_bad_input_names_the_layer_and_the_fix(thunk: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        thunk()
