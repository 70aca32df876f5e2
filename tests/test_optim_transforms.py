"""ftx.optim under transforms: MAML (grad through updates), vmap ensembles, the three paths."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import ftx
from tests.helpers import tree_allclose
from tests.test_optim_cases import CASE_PARAMS

K = 3  # inner steps


def _task(seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(20, 3, generator=g, dtype=torch.float64)
    w_true = torch.randn(3, 2, generator=g, dtype=torch.float64)
    ys = torch.tanh(xs @ w_true)
    return xs[:10], ys[:10], xs[10:], ys[10:]


def _loss(p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return ((torch.tanh(x @ p["w"] + p["b"]) - y) ** 2).mean()


def _meta_params() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(7)
    return {"w": torch.randn(3, 2, generator=g, dtype=torch.float64) * 0.5,
            "b": torch.zeros(2, dtype=torch.float64)}


def _manual_sgd(p: Any, g: Any, st: Any, t: int) -> tuple[Any, Any]:
    lr, mom = 0.3, 0.9
    buf = {k: g[k] if t == 0 else mom * st[k] + g[k] for k in p}
    return {k: p[k] - lr * buf[k] for k in p}, buf


def _manual_adam(p: Any, g: Any, st: Any, t: int) -> tuple[Any, Any]:
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    m0, v0 = st if st else ({k: 0 * p[k] for k in p}, {k: 0 * p[k] for k in p})
    m = {k: b1 * m0[k] + (1 - b1) * g[k] for k in p}
    v = {k: b2 * v0[k] + (1 - b2) * g[k] ** 2 for k in p}
    n = t + 1
    new = {k: p[k] - lr * (m[k] / (1 - b1**n)) / ((v[k] / (1 - b2**n)).sqrt() + eps) for k in p}
    return new, (m, v)


MAML = [
    pytest.param(lambda: ftx.optim.sgd(lr=0.3, momentum=0.9), _manual_sgd, id="sgd-momentum"),
    pytest.param(lambda: ftx.optim.adam(lr=0.1), _manual_adam, id="adam"),
]


def _reference_meta_grad(manual: Any, meta: Any, task: Any) -> Any:
    """MAML meta-gradient with torch.autograd and create_graph=True, the update written by hand."""
    xs, ys, xq, yq = task
    p0 = {k: v.clone().requires_grad_() for k, v in meta.items()}
    p, st = p0, None
    for t in range(K):
        g = torch.autograd.grad(_loss(p, xs, ys), list(p.values()), create_graph=True)
        p, st = manual(p, dict(zip(p, g)), st, t)
    return dict(zip(p0, torch.autograd.grad(_loss(p, xq, yq), list(p0.values()))))


@pytest.mark.parametrize("make,manual", MAML)
def test_maml_with_ftx_grad(make: Any, manual: Any) -> None:
    """grad of (K inner ftx.optim steps, then the query loss) w.r.t. the initial params."""
    opt = make()
    task = _task(0)
    xs, ys, xq, yq = task

    def outer(meta: Any) -> torch.Tensor:
        params, state = meta, opt.init(meta)
        for _ in range(K):
            grads = ftx.grad(_loss)(params, xs, ys)
            updates, state = opt.update(grads, state, params)
            params = ftx.optim.apply_updates(params, updates)
        return _loss(params, xq, yq)

    meta = _meta_params()
    got = ftx.grad(outer)(meta)
    ref = _reference_meta_grad(manual, meta, task)
    tree_allclose(got, ref, rtol=1e-10, atol=1e-14)
    assert not all(torch.equal(got[k], torch.zeros_like(got[k])) for k in got)


@pytest.mark.parametrize("make,manual", MAML)
def test_maml_with_torch_autograd(make: Any, manual: Any) -> None:
    """The same through plain torch.autograd (eager, leaves requiring grad): the leafwise path."""
    opt = make()
    task = _task(1)
    xs, ys, xq, yq = task
    meta = _meta_params()
    p0 = {k: v.clone().requires_grad_() for k, v in meta.items()}
    params, state = p0, opt.init(p0)
    for _ in range(K):
        g = torch.autograd.grad(_loss(params, xs, ys), list(params.values()), create_graph=True)
        updates, state = opt.update(dict(zip(params, g)), state, params)
        params = ftx.optim.apply_updates(params, updates)
    got = dict(zip(p0, torch.autograd.grad(_loss(params, xq, yq), list(p0.values()))))
    tree_allclose(got, _reference_meta_grad(manual, meta, task), rtol=1e-10, atol=1e-14)


ENSEMBLE = [
    pytest.param(lambda: ftx.optim.sgd(lr=0.1, momentum=0.9, nesterov=True), id="sgd-nesterov"),
    pytest.param(lambda: ftx.optim.adam(lr=0.05, amsgrad=True, weight_decay=0.01), id="adam"),
    pytest.param(lambda: ftx.optim.adamw(lr=ftx.optim.warmup_cosine(0.05, 3, 20)), id="adamw"),
    pytest.param(lambda: ftx.optim.rmsprop(lr=0.01, centered=True, momentum=0.5), id="rmsprop"),
    pytest.param(lambda: ftx.optim.adagrad(lr=0.1, lr_decay=0.1), id="adagrad"),
    pytest.param(lambda: ftx.optim.chain(ftx.optim.clip_by_global_norm(0.5),
                                         ftx.optim.sgd(lr=ftx.optim.cosine_decay(0.2, 10))),
                 id="clip-sgd-schedule"),
]


@pytest.mark.parametrize("make", ENSEMBLE)
def test_vmap_ensemble_of_8_equals_loop(make: Any) -> None:
    opt = make()
    members = [_task(s) for s in range(8)]
    xs = torch.stack([m[0] for m in members])
    ys = torch.stack([m[1] for m in members])
    inits = []
    for s in range(8):
        g = torch.Generator().manual_seed(100 + s)
        inits.append({"w": torch.randn(3, 2, generator=g, dtype=torch.float64),
                      "b": torch.randn(2, generator=g, dtype=torch.float64)})
    stacked = ftx.tree.map(lambda *xs: torch.stack(xs), *inits)

    def step(params: Any, state: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        grads = ftx.grad(_loss)(params, x, y)
        updates, state = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates), state

    vstep = ftx.vmap(step)
    params, state = stacked, ftx.vmap(opt.init)(stacked)
    loop = [(p, opt.init(p)) for p in inits]
    for _ in range(12):
        params, state = vstep(params, state, xs, ys)
        loop = [step(p, st, x, y) for (p, st), x, y in zip(loop, xs, ys)]
    for i, (p, st) in enumerate(loop):
        tree_allclose(ftx.tree.map(lambda a: a[i], params), p, rtol=1e-11, atol=1e-14)
        tree_allclose(ftx.tree.map(lambda a: a[i], state), st, rtol=1e-11, atol=1e-14)


def _run(opt: Any, params: Any, grads_seq: list[Any], mode: str) -> list[Any]:
    state = opt.init(params)
    out = []
    for grads in grads_seq:
        if mode == "fast":
            updates, state = opt.update(grads, state, params)
        elif mode == "leafwise":  # a leaf requiring grad with grad mode on: out-of-place path
            p_rg = ftx.tree.map(lambda x: x.detach().requires_grad_(), params)
            updates, state = opt.update(grads, state, p_rg)
            updates, state = ftx.tree.map(torch.Tensor.detach, (updates, state))
        else:  # under a transform: a batch of one through vmap, the step count a tensor
            one = ftx.tree.map(lambda x: x.unsqueeze(0), (grads, state, params))
            updates, state = ftx.vmap(opt.update)(*one)
            updates, state = ftx.tree.map(lambda x: x.squeeze(0), (updates, state))
        params = ftx.optim.apply_updates(params, updates)
        out.append((params, state))
    return out


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_fast_leafwise_and_transform_paths_agree(case: Any, dtype: torch.dtype) -> None:
    """foreach fast path == leaf-by-leaf path bit for bit; == the tensor path to rounding."""
    _, make, _, hp = case
    opt = make(**hp)
    g = torch.Generator().manual_seed(3)
    params = {"a": torch.randn(4, 3, generator=g, dtype=torch.float64).to(dtype),
              "b": [torch.randn(5, generator=g, dtype=torch.float64).to(dtype), None]}
    grads_seq = [ftx.tree.map(lambda p: torch.randn(p.shape, generator=g,
                                                    dtype=torch.float64).to(dtype), params)
                 for _ in range(6)]
    fast = _run(opt, params, grads_seq, "fast")
    leafwise = _run(opt, params, grads_seq, "leafwise")
    transformed = _run(opt, params, grads_seq, "transform")
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for f, lw, tr in zip(fast, leafwise, transformed):
        tree_allclose(f, lw, rtol=0, atol=0)
        tree_allclose(f, tr, rtol=tol, atol=tol * 1e-2)


COMPILED = [c for c in CASE_PARAMS
            if c.values[0][0] in ("sgd-nesterov-max", "adam-wd", "adamw-amsgrad",
                                  "rmsprop-mom-wd-max", "adagrad-decay-wd")]


def test_large_tree_fast_path_agrees(dtype: torch.dtype) -> None:
    """Trees of >= 2**20 elements take the leaf-by-leaf kernels of the fast path (CPU), every
    optimizer's formula; same numbers as the out-of-place reference, for every branch."""
    g = torch.Generator().manual_seed(5)
    params = {f"p{i}": torch.randn(300_000, generator=g, dtype=dtype) for i in range(4)}
    grads_seq = [ftx.tree.map(lambda p: torch.randn(p.shape, generator=g, dtype=dtype), params)
                 for _ in range(3)]
    for opt in (ftx.optim.adam(lr=0.01, weight_decay=0.1), ftx.optim.adamw(lr=0.01),
                ftx.optim.adam(lr=0.01, amsgrad=True), ftx.optim.adam(lr=0.0),
                ftx.optim.scale_by_adam(),
                ftx.optim.sgd(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1,
                              maximize=True),
                ftx.optim.rmsprop(lr=0.01, momentum=0.5, centered=True, weight_decay=0.1),
                ftx.optim.adagrad(lr=0.1, lr_decay=0.1, weight_decay=0.1),
                ftx.optim.chain(ftx.optim.clip_by_global_norm(1.0),
                                ftx.optim.sgd(lr=ftx.optim.cosine_decay(0.1, 3)))):
        fast = _run(opt, params, grads_seq, "fast")
        leafwise = _run(opt, params, grads_seq, "leafwise")
        # rounding only: the fast path evaluates Adam's denominator in another (equal) form;
        # scale_by_adam's updates are of order 1, so the parameters move by order 1 too
        tol = 1e-13 if dtype == torch.float64 else 1e-5
        for f, lw in zip(fast, leafwise):
            tree_allclose(f, lw, rtol=tol, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("case", COMPILED)
def test_step_under_torch_compile(case: Any) -> None:
    """A full step (grad + update + apply) compiles with inductor, fullgraph, eager's numbers."""
    _, make, _, hp = case
    opt = make(**hp)
    xs, ys, _, _ = _task(0)

    def step(params: Any, state: Any) -> Any:
        grads = ftx.grad(_loss)(params, xs, ys)
        updates, state = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates), state

    torch._dynamo.reset()
    compiled = torch.compile(step, fullgraph=True)
    p_e = p_c = _meta_params()
    s_e = s_c = opt.init(p_e)
    for _ in range(3):
        p_e, s_e = step(p_e, s_e)
        p_c, s_c = compiled(p_c, s_c)
    tree_allclose(p_c, p_e, rtol=1e-12, atol=1e-15)
    tree_allclose(s_c, s_e, rtol=1e-12, atol=1e-15)


def test_scheduled_step_under_torch_compile_aot_eager() -> None:
    """The schedule path (tensor step count) traces in one graph."""
    opt = ftx.optim.adam(lr=ftx.optim.warmup_cosine(0.1, 2, 10), weight_decay=0.01)
    xs, ys, _, _ = _task(0)

    def step(params: Any, state: Any) -> Any:
        grads = ftx.grad(_loss)(params, xs, ys)
        updates, state = opt.update(grads, state, params)
        return ftx.optim.apply_updates(params, updates), state

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    p_e = p_c = _meta_params()
    s_e = s_c = opt.init(p_e)
    for _ in range(4):
        p_e, s_e = step(p_e, s_e)
        p_c, s_c = compiled(p_c, s_c)
    tree_allclose(p_c, p_e, rtol=1e-12, atol=1e-15)
    tree_allclose(s_c, s_e, rtol=1e-12, atol=1e-15)
