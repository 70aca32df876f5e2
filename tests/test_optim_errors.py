"""ftx.optim bad input never hurts (issue 20): every refusal, its class and its message.

Tables of cases, each checked with ``pytest.raises(..., match=...)``:

* a schedule's value is checked at every update (``adam(lambda step: None)`` used to
  climb the gradient);
* grads, params, state buffers and updates must match leaf by leaf in structure,
  shape and dtype, and the first mismatch is named by its path (no broadcasting, no
  silent dtype mixing);
* ``apply_updates`` takes real floating params and updates of the same shapes (an
  update of another floating dtype is rounded to the param's dtype); integer, bool
  and complex leaves raise ``TypeError``;
* hyper-parameters as ``torch.optim`` checks them, flags must be bools;
* empty and ``None`` trees work, cyclic trees raise ``ValueError``;
* nothing is mutated when a call fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import torch

import ftx
from ftx import optim

W3 = {"w": torch.zeros(3)}
G3 = {"w": torch.ones(3)}
NESTED = {"layer": [{"w": torch.zeros(2, 2), "b": torch.zeros(2)}], "scale": torch.ones(())}


def _update(opt: optim.GradientTransformation, grads: Any, params: Any) -> Any:
    return opt.update(grads, opt.init(params), params)


# ---------------------------------------------------------------------------
# 1. Schedules: the value is checked at update time.

SCHEDULE_TYPE = (r"ftx\.optim\.{api}\.update: the {what} schedule must return a real scalar "
                 r"\(a float, an int or a 0-d floating tensor\), got {got} at step 0\.")
SCHEDULE_VALUE = r"ftx\.optim\.{api}\.update: the {what} schedule must return a finite number"

BAD_VALUES = [
    pytest.param(None, TypeError, "NoneType None", id="none"),
    pytest.param(True, TypeError, "bool True", id="bool"),
    pytest.param(1j, TypeError, "complex 1j", id="complex"),
    pytest.param("0.1", TypeError, "str '0.1'", id="str"),
    pytest.param(torch.ones(3), TypeError, r"Tensor\(shape=\(3,\), dtype=torch\.float32\)",
                 id="tensor-with-shape"),
    pytest.param(torch.ones(1), TypeError, r"Tensor\(shape=\(1,\), dtype=torch\.float32\)",
                 id="tensor-(1,)"),
    pytest.param(torch.tensor(1), TypeError, r"Tensor\(shape=\(\), dtype=torch\.int64\)",
                 id="integer-tensor"),
    pytest.param(-0.1, ValueError, r" >= 0, got -0\.1 at step 0", id="negative"),
    pytest.param(float("nan"), ValueError, r" >= 0, got nan at step 0", id="nan"),
    pytest.param(float("inf"), ValueError, r" >= 0, got inf at step 0", id="inf"),
]

LR_OPTIMIZERS = [
    pytest.param(optim.adam, "adam", id="adam"),
    pytest.param(optim.adamw, "adamw", id="adamw"),
    pytest.param(optim.sgd, "sgd", id="sgd"),
    pytest.param(lambda lr: optim.sgd(lr, momentum=0.9), "sgd", id="sgd-momentum"),
    pytest.param(optim.rmsprop, "rmsprop", id="rmsprop"),
    pytest.param(optim.adagrad, "adagrad", id="adagrad"),
    pytest.param(lambda lr: optim.adagrad(lr, lr_decay=0.1), "adagrad", id="adagrad-lr_decay"),
    pytest.param(optim.scale_by_learning_rate, "scale_by_learning_rate", id="scale_by_lr"),
]


@pytest.mark.parametrize(("make", "api"), LR_OPTIMIZERS)
@pytest.mark.parametrize(("value", "exc", "got"), BAD_VALUES)
def test_bad_schedule_value_raises_at_update(
    make: Callable[[Any], optim.GradientTransformation], api: str, value: Any,
    exc: type[Exception], got: str,
) -> None:
    opt = make(lambda step: value)
    state = opt.init(W3)
    if exc is TypeError:
        pattern = SCHEDULE_TYPE.format(api=api, what="lr", got=got)
    else:
        pattern = SCHEDULE_VALUE.format(api=api, what="lr") + got
    with pytest.raises(exc, match=pattern):
        opt.update(G3, state, W3)


def test_issue_example_adam_schedule_none_no_longer_climbs() -> None:
    opt = optim.adam(lambda step: None)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam\.update: the lr schedule must "
                       r"return a real scalar .*got NoneType None at step 0\. Return a number"):
        _update(opt, G3, W3)


def test_scale_by_schedule_takes_any_sign_but_not_nan_or_none() -> None:
    tx = optim.scale_by_schedule(lambda step: -2.0)
    u, _ = tx.update(G3, tx.init(W3))
    torch.testing.assert_close(u["w"], torch.full((3,), -2.0))
    for value, exc in ((float("nan"), ValueError), (None, TypeError)):
        tx = optim.scale_by_schedule(lambda step, v=value: v)
        what = "the scale schedule must return"
        with pytest.raises(exc, match=rf"ftx\.optim\.scale_by_schedule\.update: {what}"):
            tx.update(G3, tx.init(W3))


GOOD_VALUES = [
    pytest.param(0.1, id="float"),
    pytest.param(1, id="int"),
    pytest.param(0, id="zero"),
    pytest.param(torch.tensor(0.1), id="0-d-float32"),
    pytest.param(torch.tensor(0.1, dtype=torch.float64), id="0-d-float64"),
]


@pytest.mark.parametrize(("make", "api"), LR_OPTIMIZERS)
@pytest.mark.parametrize("value", GOOD_VALUES)
def test_good_schedule_values_are_accepted(
    make: Callable[[Any], optim.GradientTransformation], api: str, value: Any
) -> None:
    updates, _ = _update(make(lambda step: value), G3, W3)
    assert updates["w"].shape == (3,) and bool(torch.isfinite(updates["w"]).all())


def test_schedule_is_checked_under_vmap_too() -> None:
    """Under a transform the step is a tensor: a bad kind is still refused (the value of
    a tensor is not read there, as that would need a host synchronisation)."""
    params = {"w": torch.zeros(4, 3)}
    grads = {"w": torch.ones(4, 3)}

    def step(opt: optim.GradientTransformation) -> Any:
        def one(p: Any, g: Any) -> Any:
            return opt.update(g, opt.init(p), p)[0]

        return ftx.vmap(one)(params, grads)

    out = step(optim.adam(optim.cosine_decay(0.1, 10)))
    assert out["w"].shape == (4, 3)
    with pytest.raises(TypeError, match=r"ftx\.optim\.adam\.update: the lr schedule must "
                       r"return a real scalar .*got NoneType None at step \(a tensor step"):
        step(optim.adam(lambda s: None))  # type: ignore[arg-type, return-value]


# ---------------------------------------------------------------------------
# 2. Leaves of grads, params and state must match exactly.

LIKE = r"every leaf of {name} must have the shape and dtype of {ref}, got "

LEAF_CASES: list[Any] = [
    pytest.param(  # the issue's case: (4,) grads on (3,) params returned (4,) updates
        lambda: _update(optim.sgd(momentum=0.9), {"w": torch.ones(4)}, W3), ValueError,
        r"ftx\.optim\.sgd\.update: " + LIKE.format(name="grads", ref="params")
        + r"grads \(4,\) torch\.float32 and params \(3,\) torch\.float32 at path 'w'\. Pass grads",
        id="sgd-momentum-grads-shape"),
    pytest.param(
        lambda: _update(optim.sgd(), {"w": torch.ones(3, 1)}, W3), ValueError,
        r"grads \(3, 1\) torch\.float32 and params \(3,\) torch\.float32 at path 'w'",
        id="sgd-grads-broadcastable-shape"),
    pytest.param(
        lambda: _update(optim.adam(), {"w": torch.ones(3, dtype=torch.float64)}, W3), ValueError,
        r"ftx\.optim\.adam\.update: every leaf of grads must have the shape and dtype of params, "
        r"got grads \(3,\) torch\.float64 and params \(3,\) torch\.float32 at path 'w'",
        id="adam-grads-dtype"),
    pytest.param(
        lambda: _update(optim.adam(), {**NESTED, "layer": [{"w": torch.ones(2, 3),
                                                             "b": torch.ones(2)}]}, NESTED),
        ValueError, r"grads \(2, 3\) torch\.float32 and params \(2, 2\) torch\.float32 at path "
        r"'layer\.0\.w'", id="nested-path"),
    pytest.param(
        lambda: _update(optim.adam(), {"w": torch.ones(3, dtype=torch.int64)}, W3), TypeError,
        r"ftx\.optim\.adam\.update: every leaf of grads must be a floating tensor \(float16, "
        r"bfloat16, float32 or float64\), got Tensor\(shape=\(3,\), dtype=torch\.int64\) at path "
        r"'w'\. Keep integer and bool tensors", id="integer-grads"),
    pytest.param(
        lambda: _update(optim.sgd(), {"w": torch.ones(3, dtype=torch.bool)}, W3), TypeError,
        r"every leaf of grads must be a floating tensor.*dtype=torch\.bool\) at path 'w'",
        id="bool-grads"),
    pytest.param(
        lambda: _update(optim.adam(), {"w": torch.ones(3, dtype=torch.complex64)}, W3), TypeError,
        r"ftx\.optim\.adam\.update: grads must be real tensors, got Tensor\(shape=\(3,\), "
        r"dtype=torch\.complex64\) at path 'w'", id="complex-grads"),
    pytest.param(
        lambda: _update(optim.adam(), {"w": [1.0, 2.0, 3.0]}, W3), TypeError,
        r"ftx\.optim\.adam\.update: every leaf of grads must be a tensor, got float 1\.0 at path "
        r"'w\.0'", id="list-grads"),
    pytest.param(
        lambda: optim.adam().update(G3, optim.adam().init(W3), {"w": torch.zeros(3, 1)}),
        ValueError, r"grads \(3,\) torch\.float32 and params \(3, 1\) torch\.float32 at path 'w'",
        id="params-shape"),
    pytest.param(
        lambda: optim.sgd().update((torch.ones(3),), (), (1.0,)), TypeError,
        r"ftx\.optim\.sgd\.update: every leaf of params must be a tensor, got float 1\.0 at path "
        r"'0'", id="params-number-in-a-tuple"),
    pytest.param(
        lambda: optim.adam().update(G3, optim.adam().init({"w": torch.zeros(4)}), W3),
        ValueError, r"ftx\.optim\.adam\.update: " + LIKE.format(name=r"state\.exp_avg",
                                                                ref="params")
        + r"state\.exp_avg \(4,\) torch\.float32 and params \(3,\) torch\.float32 at path 'w'\. "
        r".*call opt\.init again after changing params", id="adam-state-shape"),
    pytest.param(
        lambda: optim.sgd(momentum=0.9).update(
            G3, optim.sgd(momentum=0.9).init({"w": torch.zeros(3, dtype=torch.float64)}), W3),
        ValueError, r"ftx\.optim\.sgd\.update: every leaf of state\.momentum_buffer must have "
        r"the shape and dtype of params, got state\.momentum_buffer \(3,\) torch\.float64 and "
        r"params \(3,\) torch\.float32", id="sgd-state-dtype"),
    pytest.param(
        lambda: optim.rmsprop(centered=True, momentum=0.5).update(
            G3, optim.rmsprop(centered=True, momentum=0.5).init({"w": torch.zeros(2)})),
        ValueError, r"ftx\.optim\.rmsprop\.update: every leaf of state\.square_avg must have the "
        r"shape and dtype of grads, got state\.square_avg \(2,\) torch\.float32 and grads \(3,\)",
        id="state-vs-grads-without-params"),
    pytest.param(
        lambda: optim.adam().update(
            G3, (optim.adam().init(W3)[0]._replace(step=torch.tensor(0.0)),), W3), TypeError,
        r"ftx\.optim\.adam\.update: state\.step must be a 0-d int64 tensor \(the update count\), "
        r"got Tensor\(shape=\(\), dtype=torch\.float32\)", id="step-dtype"),
    pytest.param(
        lambda: optim.sgd(momentum=0.9).update(
            G3, (optim.sgd(momentum=0.9).init(W3)[0]._replace(step=3), ()), W3), TypeError,
        r"ftx\.optim\.sgd\.update: state\.step must be a 0-d int64 tensor", id="step-int"),
    pytest.param(
        lambda: optim.adam().update({"w": torch.ones(3, device="meta")},
                                    optim.adam().init(W3), W3),
        ValueError, r"ftx\.optim\.adam\.update: every leaf of params must be on the device of "
        r"grads, got params on cpu and grads on meta at path 'w'", id="device"),
    pytest.param(
        lambda: optim.chain(optim.GradientTransformation(lambda p: (), lambda g, s, p=None: (g, s)),
                            optim.sgd()).update(G3, (), W3),
        TypeError, r"ftx\.optim\.chain\.update: state must be what this optimizer's init "
        r"returned, got tuple \(\)", id="user-chain-state-length"),
]


@pytest.mark.parametrize(("fn", "exc", "match"), LEAF_CASES)
def test_leaf_mismatches_are_refused_with_the_path(
    fn: Callable[[], Any], exc: type[Exception], match: str
) -> None:
    with pytest.raises(exc, match=match):
        fn()


def test_grads_params_and_state_are_not_mutated_by_a_failed_update() -> None:
    opt = optim.adam(lr=0.1, weight_decay=0.1)
    params = {"a": torch.randn(3), "b": torch.randn(2)}
    state = opt.init(params)
    _, state = opt.update(ftx.tree.map(torch.ones_like, params), state, params)
    grads = {"a": torch.randn(3), "b": torch.randn(4)}  # b has the wrong shape
    snap = ftx.tree.map(torch.clone, (grads, params, state))
    with pytest.raises(ValueError, match=r"at path 'b'"):
        opt.update(grads, state, params)
    for x, y in zip(ftx.tree.leaves(snap), ftx.tree.leaves((grads, params, state))):
        assert torch.equal(x, y)


# ---------------------------------------------------------------------------
# 3. apply_updates: real floating params, same shapes; the dtype rule.

APPLY = r"ftx\.optim\.apply_updates: "
APPLY_CASES: list[Any] = [
    pytest.param({"w": torch.zeros(3, 1)}, {"w": torch.ones(3)}, ValueError,
                 APPLY + r"every leaf of updates must have the shape of params, got updates "
                 r"\(3,\) and params \(3, 1\) at path 'w'\. .*never broadcasts",
                 id="broadcast"),
    pytest.param({"w": torch.zeros(3, dtype=torch.int64)}, {"w": torch.full((3,), 0.5)},
                 TypeError, APPLY + r"every leaf of params must be a floating tensor \(float16, "
                 r"bfloat16, float32 or float64\), got Tensor\(shape=\(3,\), dtype=torch\.int64\) "
                 r"at path 'w'", id="integer-params"),
    pytest.param({"w": torch.zeros(3, dtype=torch.int64)}, {"w": torch.ones(3, dtype=torch.int64)},
                 TypeError, APPLY + r"every leaf of params must be a floating tensor",
                 id="integer-params-and-updates"),
    pytest.param({"m": torch.zeros(3, dtype=torch.bool)}, {"m": torch.ones(3)}, TypeError,
                 APPLY + r"every leaf of params must be a floating tensor.*at path 'm'",
                 id="bool-params"),
    pytest.param({"z": torch.zeros(3, dtype=torch.complex64)},
                 {"z": torch.ones(3, dtype=torch.complex64)}, TypeError,
                 APPLY + r"params must be real tensors, got .*complex64\) at path 'z'",
                 id="complex-params"),
    pytest.param({"w": torch.zeros(3)}, {"w": torch.ones(3, dtype=torch.int64)}, TypeError,
                 APPLY + r"every leaf of updates must be a floating tensor.*int64\) at path 'w'",
                 id="integer-updates"),
    pytest.param({"w": torch.zeros(3)}, {"w": 0.5}, TypeError,
                 APPLY + r"every leaf of updates must be a tensor, got float 0\.5 at path 'w'",
                 id="number-update"),
    pytest.param({"w": torch.zeros(3)}, {"w": [1.0, 2.0, 3.0]}, TypeError,
                 APPLY + r"every leaf of updates must be a tensor, got float 1\.0 at path 'w\.0'",
                 id="list-updates"),
    pytest.param({"w": torch.zeros(3)}, {"w": [torch.zeros(3)]}, ValueError,
                 APPLY + r"updates must have the structure of params, got paths only in updates: "
                 r"\['w\.0'\], paths only in params: \['w'\]", id="list-of-tensor-updates"),
    pytest.param({"a": torch.zeros(2), "b": torch.zeros(2)},
                 {"a": torch.zeros(2), "b": torch.zeros(2, 2)}, ValueError,
                 APPLY + r"every leaf of updates must have the shape of params, got updates "
                 r"\(2, 2\) and params \(2,\) at path 'b'", id="second-leaf"),
    pytest.param({"w": torch.zeros(3)}, {"w": torch.ones(3, device="meta")}, ValueError,
                 APPLY + r"every leaf of updates must be on the device of params, got updates on "
                 r"meta and params on cpu at path 'w'", id="device"),
    pytest.param({"w": torch.zeros(3)}, {"v": torch.zeros(3)}, ValueError,
                 APPLY + r"updates must have the structure of params, got paths only in updates: "
                 r"\['v'\], paths only in params: \['w'\]", id="structure"),
]


@pytest.mark.parametrize(("params", "updates", "exc", "match"), APPLY_CASES)
def test_apply_updates_refuses(params: Any, updates: Any, exc: type[Exception],
                               match: str) -> None:
    snap = ftx.tree.map(torch.clone, params)
    with pytest.raises(exc, match=match):
        optim.apply_updates(params, updates)
    assert all(torch.equal(a, b) for a, b in zip(ftx.tree.leaves(snap), ftx.tree.leaves(params)))


@pytest.mark.parametrize("pdtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("udtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_apply_updates_rounds_a_floating_update_to_the_param_dtype(
    pdtype: torch.dtype, udtype: torch.dtype
) -> None:
    """The documented rule: any real floating update, rounded as ``param.add_(update)``."""
    p = torch.tensor([1.0, 2.0], dtype=pdtype)
    u = torch.tensor([0.5, -0.25], dtype=udtype)
    out = optim.apply_updates({"w": p}, {"w": u})["w"]
    assert out.dtype == pdtype
    assert torch.equal(out, p.clone().add_(u))


# ---------------------------------------------------------------------------
# 4. Hyper-parameters: torch.optim's checks, as ValueError / TypeError in ftx's form.

HPARAMS: list[Any] = [
    (lambda: optim.sgd(lr=-1.0), ValueError, r"ftx\.optim\.sgd: lr must be >= 0\.0, got -1\.0\."),
    (lambda: optim.sgd(lr="0.1"), TypeError, r"ftx\.optim\.sgd: lr must be a real number, got "
     r"str '0\.1'"),
    (lambda: optim.sgd(lr=None), TypeError, r"ftx\.optim\.sgd: lr must be a real number, got "
     r"NoneType None"),
    (lambda: optim.sgd(lr=True), TypeError, r"ftx\.optim\.sgd: lr must be a real number, got "
     r"bool True"),
    (lambda: optim.sgd(lr=float("inf")), ValueError, r"lr must be >= 0\.0, got inf"),
    (lambda: optim.sgd(momentum=-0.1), ValueError, r"ftx\.optim\.sgd: momentum must be >= 0\.0"),
    (lambda: optim.sgd(momentum="0.9"), TypeError, r"momentum must be a real number"),
    (lambda: optim.sgd(dampening=float("nan")), ValueError,
     r"ftx\.optim\.sgd: dampening must be finite, got nan"),
    (lambda: optim.sgd(nesterov=True), ValueError, r"ftx\.optim\.sgd: nesterov=True requires "
     r"momentum > 0 and dampening == 0, got momentum=0\.0"),
    (lambda: optim.sgd(momentum=0.9, nesterov="yes"), TypeError,
     r"ftx\.optim\.sgd: nesterov must be True or False, got str 'yes'"),
    (lambda: optim.sgd(maximize=1), TypeError, r"ftx\.optim\.sgd: maximize must be True or False"),
    (lambda: optim.sgd(weight_decay=-1.0), ValueError, r"sgd: weight_decay must be >= 0\.0"),
    (lambda: optim.adam(betas=(1.0, 0.999)), ValueError,
     r"ftx\.optim\.adam: betas\[0\] must be in \[0\.0, 1\.0\), got 1\.0"),
    (lambda: optim.adam(betas=(0.9, 1.5)), ValueError, r"betas\[1\] must be in \[0\.0, 1\.0\)"),
    (lambda: optim.adam(betas=(-0.1, 0.9)), ValueError, r"betas\[0\] must be in \[0\.0, 1\.0\)"),
    (lambda: optim.adam(betas=(0.9, 0.99, 0.9)), TypeError,
     r"ftx\.optim\.adam: betas must be a pair of floats"),
    (lambda: optim.adam(betas=("a", 0.9)), TypeError, r"betas\[0\] must be a real number"),
    (lambda: optim.adam(eps=-1e-8), ValueError, r"ftx\.optim\.adam: eps must be >= 0\.0"),
    (lambda: optim.adam(amsgrad="no"), TypeError,
     r"ftx\.optim\.adam: amsgrad must be True or False, got str 'no'"),
    (lambda: optim.adamw(weight_decay=-0.1), ValueError, r"adamw: weight_decay must be >= 0\.0"),
    (lambda: optim.adamw(maximize=None), TypeError, r"adamw: maximize must be True or False"),
    (lambda: optim.rmsprop(alpha=1.5), ValueError,
     r"ftx\.optim\.rmsprop: alpha must be in \[0\.0, 1\.0\], got 1\.5"),
    (lambda: optim.rmsprop(centered=1), TypeError, r"rmsprop: centered must be True or False"),
    (lambda: optim.rmsprop(momentum=-1), ValueError, r"rmsprop: momentum must be >= 0\.0"),
    (lambda: optim.adagrad(lr_decay=-0.1), ValueError, r"adagrad: lr_decay must be >= 0\.0"),
    (lambda: optim.adagrad(eps=-1.0), ValueError, r"adagrad: eps must be >= 0\.0"),
    (lambda: optim.clip_by_global_norm(0.0), ValueError,
     r"ftx\.optim\.clip_by_global_norm: max_norm must be > 0\.0, got 0\.0"),
    (lambda: optim.clip_by_global_norm(-1.0), ValueError, r"max_norm must be > 0\.0, got -1\.0"),
    (lambda: optim.clip_by_global_norm("1"), TypeError, r"max_norm must be a real number"),
    (lambda: optim.scale(float("nan")), ValueError,
     r"ftx\.optim\.scale: step_size must be finite, got nan"),
    (lambda: optim.scale(None), TypeError, r"ftx\.optim\.scale: step_size must be a real number"),
    (lambda: optim.scale_by_schedule(0.1), TypeError,
     r"ftx\.optim\.scale_by_schedule: schedule must be callable"),
    (lambda: optim.add_decayed_weights(-0.1), ValueError,
     r"ftx\.optim\.add_decayed_weights: weight_decay must be >= 0\.0"),
    (lambda: optim.chain(optim.sgd(), "adam"), TypeError,
     r"ftx\.optim\.chain: every argument must be a GradientTransformation, got str 'adam' at "
     r"position 1"),
    (lambda: optim.chain(optim.adam), TypeError,
     r"every argument must be a GradientTransformation, got function .* at position 0"),
    # schedules
    (lambda: optim.constant(-1.0), ValueError, r"ftx\.optim\.constant: value must be >= 0\.0"),
    (lambda: optim.linear(0.0, 1.0, 0), ValueError,
     r"ftx\.optim\.linear: transition_steps must be a positive int, got 0"),
    (lambda: optim.linear(0.0, 1.0, 2.5), TypeError,
     r"ftx\.optim\.linear: transition_steps must be a positive int, got float 2\.5"),
    (lambda: optim.cosine_decay("a", 10), TypeError,
     r"ftx\.optim\.cosine_decay: init_value must be a real number"),
    (lambda: optim.cosine_decay(0.1, -5), ValueError, r"decay_steps must be a positive int"),
    (lambda: optim.exponential_decay(0.1, -0.5), ValueError,
     r"ftx\.optim\.exponential_decay: decay_rate must be >= 0\.0"),
    (lambda: optim.exponential_decay(0.1, 0.5, staircase="yes"), TypeError,
     r"ftx\.optim\.exponential_decay: staircase must be True or False"),
    (lambda: optim.exponential_decay(0.1, 0.5, transition_steps=True), TypeError,
     r"transition_steps must be a positive int, got bool True"),
    (lambda: optim.warmup_cosine(-1.0, 2, 10), ValueError,
     r"ftx\.optim\.warmup_cosine: peak_value must be >= 0\.0"),
    (lambda: optim.warmup_cosine(1.0, 10, 5), ValueError,
     r"ftx\.optim\.warmup_cosine: decay_steps must be greater than warmup_steps"),
]


@pytest.mark.parametrize(("build", "exc", "match"), HPARAMS,
                         ids=[re.sub(r"\W+", "-", m[2][:40]).strip("-") for m in HPARAMS])
def test_bad_hyper_parameters(build: Callable[[], Any], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        build()


# ---------------------------------------------------------------------------
# 5. Empty, None and cyclic trees; dtypes of params.

ALIASES = [
    pytest.param(lambda: optim.sgd(0.1, momentum=0.9, weight_decay=0.1), id="sgd"),
    pytest.param(lambda: optim.adam(0.1, amsgrad=True), id="adam"),
    pytest.param(lambda: optim.adamw(0.1), id="adamw"),
    pytest.param(lambda: optim.rmsprop(0.1, centered=True, momentum=0.5), id="rmsprop"),
    pytest.param(lambda: optim.adagrad(0.1, lr_decay=0.1), id="adagrad"),
    pytest.param(lambda: optim.chain(optim.clip_by_global_norm(1.0),
                                     optim.adam(optim.warmup_cosine(0.1, 2, 10))), id="chain"),
]


@pytest.mark.parametrize("make", ALIASES)
@pytest.mark.parametrize("tree", [None, {}, [], (), {"a": None, "b": [None]}],
                         ids=["None", "dict", "list", "tuple", "only-None"])
def test_empty_and_none_trees(make: Callable[[], optim.GradientTransformation],
                              tree: Any) -> None:
    opt = make()
    state = opt.init(tree)
    updates, state = opt.update(tree, state, tree)
    assert updates == tree
    assert optim.apply_updates(tree, updates) == tree


def _cyclic_dict() -> Any:
    d: dict[str, Any] = {"w": torch.zeros(2)}
    d["self"] = d
    return d


def _cyclic_nested() -> Any:
    inner: list[Any] = [torch.zeros(2)]
    outer = {"a": {"b": inner}}
    inner.append(outer)
    return outer


CYCLES: list[Any] = [
    pytest.param(lambda t: optim.adam().init(t), r"ftx\.optim\.adam\.init: params", id="init"),
    pytest.param(lambda t: optim.sgd().update(t, optim.sgd().init(W3), W3),
                 r"ftx\.optim\.sgd\.update: grads", id="update-grads"),
    pytest.param(lambda t: optim.sgd().update(G3, optim.sgd().init(W3), t),
                 r"ftx\.optim\.sgd\.update: params", id="update-params"),
    pytest.param(lambda t: optim.apply_updates(t, t), r"ftx\.optim\.apply_updates: params",
                 id="apply_updates"),
]


@pytest.mark.parametrize("call,prefix", CYCLES)
@pytest.mark.parametrize(("make", "path"), [(_cyclic_dict, "self"), (_cyclic_nested, "a.b.1")],
                         ids=["dict-in-itself", "list-holding-its-grandparent"])
def test_cyclic_trees_raise_value_error_naming_the_path(
    call: Callable[[Any], Any], prefix: str, make: Callable[[], Any], path: str
) -> None:
    with pytest.raises(ValueError, match=prefix + r" must be a pytree without cycles, got a "
                       rf"container at path '{re.escape(path)}' that contains itself"):
        call(make())


@pytest.mark.parametrize("make", ALIASES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_every_floating_dtype_trains(make: Callable[[], optim.GradientTransformation],
                                     dtype: torch.dtype) -> None:
    opt = make()
    params = {"w": torch.ones(3, dtype=dtype), "b": torch.zeros((), dtype=dtype)}
    state = opt.init(params)
    for _ in range(2):
        updates, state = opt.update(ftx.tree.map(torch.ones_like, params), state, params)
        params = optim.apply_updates(params, updates)
    assert all(x.dtype == dtype and bool(torch.isfinite(x).all())
               for x in ftx.tree.leaves(params))


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool])
def test_integer_params_are_refused_at_init(dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=r"ftx\.optim\.sgd\.init: every leaf of params must be a "
                       rf"floating tensor .*dtype=torch\.{str(dtype)[6:]}\) at path 'n'\. "
                       r"Keep integer and bool tensors"):
        optim.sgd().init({"w": torch.zeros(2), "n": torch.zeros(2, dtype=dtype)})


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_complex_params_are_refused_at_init(dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match=r"ftx\.optim\.adamw\.init: params must be real tensors, "
                       r".* at path 'z'\. Optimise torch\.view_as_real\(param\) instead"):
        optim.adamw().init({"z": torch.zeros(2, dtype=dtype)})
