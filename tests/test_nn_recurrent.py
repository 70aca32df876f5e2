"""GRUCell, LSTMCell, GRU and LSTM against nn.GRUCell, nn.LSTMCell, nn.GRU and nn.LSTM.

The matrix of tests/nn_matrix.py (outputs and final states, gradients w.r.t. params and
input, ensembles, per-example vmap, state-dict names ``weight_ih_l0``,
``weight_hh_l1_reverse``, ..., to_module/from_module, init laws) in float32 and float64,
then inter-layer dropout with a key, and bad inputs.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import ftx
from ftx import nn as fnn
from tests import nn_matrix as M
from tests.nn_matrix import Case


def _h(*shape: int, seed: int = 5) -> Callable[[torch.dtype, str], tuple[Any, ...]]:
    def make(dtype: torch.dtype, device: str) -> tuple[Any, ...]:
        g = torch.Generator().manual_seed(seed)
        return (torch.randn(shape, generator=g, dtype=dtype).to(device),)

    return make


def _hc(*shape: int) -> Callable[[torch.dtype, str], tuple[Any, ...]]:
    def make(dtype: torch.dtype, device: str) -> tuple[Any, ...]:
        return ((_h(*shape, seed=5)(dtype, device)[0], _h(*shape, seed=6)(dtype, device)[0]),)

    return make


CASES = [
    Case("gru_cell", lambda: fnn.GRUCell(3, 5), lambda: nn.GRUCell(3, 5), (4, 3)),
    Case("gru_cell_hx_nobias", lambda: fnn.GRUCell(3, 5, bias=False),
         lambda: nn.GRUCell(3, 5, bias=False), (4, 3), extra=_h(4, 5), unbatched=False),
    Case("lstm_cell", lambda: fnn.LSTMCell(3, 5), lambda: nn.LSTMCell(3, 5), (4, 3)),
    Case("lstm_cell_hx", lambda: fnn.LSTMCell(3, 5), lambda: nn.LSTMCell(3, 5), (4, 3),
         extra=_hc(4, 5), unbatched=False),
    Case("gru", lambda: fnn.GRU(3, 4), lambda: nn.GRU(3, 4), (5, 2, 3), batch_dim=1),
    Case("gru_2layers_bidir_batch_first",
         lambda: fnn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
         lambda: nn.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True),
         (2, 5, 3), unbatched=False),
    Case("gru_3layers_nobias_hx", lambda: fnn.GRU(3, 4, num_layers=3, bias=False),
         lambda: nn.GRU(3, 4, num_layers=3, bias=False), (4, 2, 3), extra=_h(3, 2, 4),
         unbatched=False),
    Case("gru_unbatched_bidir", lambda: fnn.GRU(3, 4, bidirectional=True),
         lambda: nn.GRU(3, 4, bidirectional=True), (5, 3), unbatched=False),
    Case("lstm", lambda: fnn.LSTM(3, 4), lambda: nn.LSTM(3, 4), (5, 2, 3), batch_dim=1),
    Case("lstm_2layers_bidir_batch_first_hx",
         lambda: fnn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True),
         lambda: nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True),
         (2, 5, 3), extra=_hc(4, 2, 4), unbatched=False),
    Case("lstm_2layers_nobias", lambda: fnn.LSTM(3, 4, num_layers=2, bias=False),
         lambda: nn.LSTM(3, 4, num_layers=2, bias=False), (4, 2, 3), batch_dim=1),
]
IDS = [c.id for c in CASES]
EXAMPLES = [c for c in CASES if c.unbatched]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_equals_twin(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_forward(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grads_equal_twin_backward(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_grads(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vmap_over_ensemble_equals_loop(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_ensemble(case, dtype, device)


@pytest.mark.parametrize("case", EXAMPLES, ids=[c.id for c in EXAMPLES])
def test_vmap_over_examples_equals_batch(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_examples(case, dtype, device)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_param_paths_and_shapes_equal_state_dict(case: Case) -> None:
    M.check_paths(case)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_module_from_module_round_trip(case: Case, dtype: torch.dtype, device: str) -> None:
    M.check_round_trip(case, dtype, device)


def test_state_dict_names_are_torchs() -> None:
    names = list(fnn.LSTM(2, 3, num_layers=2, bidirectional=True).param_shapes())
    assert names == list(nn.LSTM(2, 3, num_layers=2, bidirectional=True).state_dict())
    assert "weight_hh_l1_reverse" in names


DISTS = [
    pytest.param(fnn.GRUCell(20, 40), lambda: nn.GRUCell(20, 40), 40, id="gru_cell"),
    pytest.param(fnn.LSTMCell(20, 40), lambda: nn.LSTMCell(20, 40), 40, id="lstm_cell"),
    pytest.param(fnn.GRU(8, 32, num_layers=2, bidirectional=True),
                 lambda: nn.GRU(8, 32, num_layers=2, bidirectional=True), 32, id="gru"),
    pytest.param(fnn.LSTM(8, 32, num_layers=2), lambda: nn.LSTM(8, 32, num_layers=2), 32,
                 id="lstm"),
]


@pytest.mark.parametrize(("layer", "twin", "hidden"), DISTS)
def test_init_laws_match_torch(layer: fnn.Layer, twin: Callable[[], nn.Module], hidden: int,
                               dtype: torch.dtype, device: str) -> None:
    # torch: every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))
    M.check_init_law(layer, twin, 1 / math.sqrt(hidden), dtype, device)


def test_inter_layer_dropout_with_a_key_is_dropout_between_two_layers() -> None:
    """GRU(num_layers=2, dropout=p) with a key == layer 0, Dropout(p) with the split key,
    layer 1; without a key it is the twin in eval mode (covered above)."""
    gru = fnn.GRU(3, 4, num_layers=2, dropout=0.5)
    params = gru.init(ftx.random.key(0), dtype=torch.float64)
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    key = ftx.random.key(9)
    out, h_n = gru(params, x, key=key)
    one = fnn.GRU(3, 4)
    first = {k: v for k, v in params.items() if k.endswith("_l0")}
    second = {k.replace("_l1", "_l0"): v for k, v in params.items() if k.endswith("_l1")}
    y0, h0 = one(first, x)
    y0 = fnn.Dropout(0.5)({}, y0, key=ftx.random.split(key, 2)[1])
    y1, h1 = fnn.GRU(4, 4)(second, y0)
    torch.testing.assert_close(out, y1)
    torch.testing.assert_close(h_n, torch.cat([h0, h1]))
    assert torch.equal(gru(params, x, key=key)[0], out)  # one key, one mask
    assert not torch.allclose(gru(params, x)[0], out)


LONG = os.environ.get("FTX_LONG_TESTS", "") not in ("", "0")


@pytest.mark.skipif(not LONG, reason="torch.compile of the scan takes a minute on 2 CPUs; "
                    "FTX_LONG_TESTS=1 runs it")
def test_sequence_layers_under_jit_equal_eager() -> None:
    lstm = fnn.LSTM(3, 4, num_layers=2, batch_first=True)
    params = lstm.init(ftx.random.key(0))
    x = torch.randn(2, 5, 3)
    want = lstm(params, x)
    got = ftx.jit(lambda p, xx: lstm(p, xx))(params, x)
    assert ftx.tree.allclose(got, want, 1e-5, 1e-6)


# ---------------------------------------------------------------------------
# Bad inputs

KEY = ftx.random.key(0)
GC = fnn.GRUCell(3, 4)
GCP = GC.init(KEY)
LC = fnn.LSTMCell(3, 4)
LCP = LC.init(KEY)
G = fnn.GRU(3, 4, num_layers=2)
GP = G.init(KEY)
L = fnn.LSTM(3, 4, batch_first=True)
LP = L.init(KEY)
X = torch.randn(5, 2, 3)

BAD: list[Any] = [
    (lambda: GC(GCP, torch.randn(2, 4)), ValueError,
     r"ftx\.nn\.GRUCell: input x must have shape \(N, input_size\) or \(input_size,\) = "
     r"\(N, 3\), got input of shape \(2, 4\)"),
    (lambda: GC(GCP, torch.randn(2, 3), torch.randn(2, 5)), ValueError,
     r"ftx\.nn\.GRUCell: hx must have shape \(2, 4\), got shape \(2, 5\)\. Pass zeros of that "
     r"shape, or None"),
    (lambda: GC(GCP, torch.randn(2, 3), torch.randn(2, 4).double()), TypeError,
     r"ftx\.nn\.GRUCell: hx and input x must share one dtype"),
    (lambda: GC(GCP, torch.randn(2, 3).double()), TypeError,
     r"ftx\.nn\.GRUCell: input and params must share one dtype, got input torch\.float64"),
    (lambda: GC({k: v for k, v in GCP.items() if k != "bias_hh"}, torch.randn(2, 3)),
     ValueError, r"ftx\.nn\.GRUCell: params must hold exactly the paths \['bias_hh', "
     r"'bias_ih', 'weight_hh', 'weight_ih'\], got missing paths \['bias_hh'\]"),
    (lambda: LC(LCP, torch.randn(2, 3), torch.zeros(2, 4)), TypeError,
     r"ftx\.nn\.LSTMCell: hx must be a pair \(h, c\) of tensors or None, got Tensor"),
    (lambda: LC(LCP, torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(3, 4))), ValueError,
     r"ftx\.nn\.LSTMCell: hx\[1\] must have shape \(2, 4\), got shape \(3, 4\)"),
    (lambda: G(GP, torch.randn(5, 2, 4)), ValueError,
     r"ftx\.nn\.GRU: input x must have shape \(T, N, input_size\) or \(T, input_size\) with "
     r"input_size = 3 and T >= 1, got input of shape \(5, 2, 4\)"),
    (lambda: G(GP, torch.randn(0, 2, 3)), ValueError, r"ftx\.nn\.GRU: input x must have shape "
     r".*T >= 1, got input of shape \(0, 2, 3\)"),
    (lambda: G(GP, X, torch.zeros(1, 2, 4)), ValueError,
     r"ftx\.nn\.GRU: hx must have shape \(2, 2, 4\), got shape \(1, 2, 4\)"),
    (lambda: G(GP, X, [0.0]), TypeError,
     r"ftx\.nn\.GRU: hx must be a tensor of shape \(2, 2, 4\), got list"),
    (lambda: G(GP, X.double()), TypeError, r"ftx\.nn\.GRU: input and params must share one "
     r"dtype"),
    (lambda: G({k: v for k, v in GP.items() if "l1" not in k}, X), ValueError,
     r"ftx\.nn\.GRU: params must hold exactly the paths .*got missing paths \['bias_hh_l1', "
     r"'bias_ih_l1', 'weight_hh_l1', 'weight_ih_l1'\]"),
    (lambda: G({**GP, "weight_hh_l1": torch.zeros(12, 5)}, X), ValueError,
     r"ftx\.nn\.GRU: params\['weight_hh_l1'\] must have shape \(12, 4\), got shape \(12, 5\)"),
    (lambda: G({**GP, "bias_ih_l0": torch.zeros(5)}, X), ValueError,
     r"ftx\.nn\.GRU: params\['bias_ih_l0'\] must have shape \(12,\), got shape \(5,\)"),
    (lambda: G({**GP, "bias_hh_l1": GP["bias_hh_l1"].double()}, X), TypeError,
     r"ftx\.nn\.GRU: input and params must share one dtype, got input torch\.float32 and "
     r"params\['bias_hh_l1'\] torch\.float64"),
    (lambda: G({**GP, "bias_hh_l1": GP["bias_hh_l1"].to("meta")}, X), ValueError,
     r"ftx\.nn\.GRU: input and params must be on one device, got input on cpu and "
     r"params\['bias_hh_l1'\] on meta"),
    (lambda: LC({**LCP, "bias_hh": torch.zeros(3)}, torch.randn(2, 3)), ValueError,
     r"ftx\.nn\.LSTMCell: params\['bias_hh'\] must have shape \(16,\), got shape \(3,\)"),
    (lambda: G(GP, X, key=torch.zeros(2)), TypeError, r"ftx\.nn\.GRU: key must be an "
     r"ftx\.random key"),
    (lambda: L(LP, torch.randn(2, 5, 3), torch.zeros(1, 2, 4)), TypeError,
     r"ftx\.nn\.LSTM: hx must be a pair \(h0, c0\) of tensors or None"),
    (lambda: L(LP, torch.randn(2, 5, 3), (torch.zeros(1, 2, 4), torch.zeros(1, 5, 4))),
     ValueError, r"ftx\.nn\.LSTM: hx\[1\] must have shape \(1, 2, 4\), got shape \(1, 5, 4\)"),
    (lambda: L(LP, torch.ones(2, 5, 3, dtype=torch.int64)), TypeError,
     r"ftx\.nn\.LSTM: input x must be a floating tensor"),
    (lambda: fnn.GRU(3, 4, dropout=1.5), ValueError,
     r"ftx\.nn\.GRU: dropout must be in \[0, 1\], got 1\.5"),
    (lambda: fnn.LSTM(3, 0), ValueError, r"ftx\.nn\.LSTM: hidden_size must be >= 1, got 0"),
    (lambda: fnn.LSTMCell(3, 4, bias=1), TypeError,
     r"ftx\.nn\.LSTMCell: bias must be True or False"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(fn: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        fn()
