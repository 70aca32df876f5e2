"""Forward+backward of ftx.nn models against their nn.Module twins, batch 256 (issue 4).

An MLP 64-256-256-10 (ReLU) and a small depthwise-separable CNN on 3x32x32
images (Conv 3->16, then two depthwise 3x3 + pointwise 1x1 blocks, average
pooling, Linear to 10). The ftx model holds the twin's parameters
(``ftx.nn.params_of``); the checked result is the gradient dict.
Baseline: ``nn.Module`` forward + ``loss.backward()``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import ftx
from benchmarks import Config, case

GROUP = "nn"
BATCH = 256


def mlp_pair() -> tuple[Any, nn.Module]:
    layer = ftx.nn.MLP([64, 256, 256, 10], activation=ftx.nn.ReLU())
    torch.manual_seed(0)
    twin = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 10))
    return layer, twin


def cnn_pair() -> tuple[Any, nn.Module]:
    F_ = ftx.nn
    layer = F_.Sequential(
        F_.Conv2d(3, 16, 3, padding=1), F_.ReLU(),
        F_.DepthwiseConv2d(16, 3, padding=1), F_.Conv2d(16, 32, 1), F_.ReLU(),
        F_.AvgPool2d(2),
        F_.DepthwiseConv2d(32, 3, padding=1), F_.Conv2d(32, 64, 1), F_.ReLU(),
        F_.AvgPool2d(2),
        F_.Flatten(), F_.Linear(64 * 8 * 8, 10),
    )
    torch.manual_seed(0)
    twin = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 32, 1), nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.Conv2d(32, 64, 1), nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 10),
    )
    return layer, twin


def _register(name: str, pair: Any, in_shape: tuple[int, ...], quick_batch: int) -> None:
    def setup(cfg: Config) -> dict[str, Any]:
        layer, twin = pair()
        twin = twin.to(cfg.device)
        n = quick_batch if cfg.quick else BATCH
        g = torch.Generator().manual_seed(7)
        x = torch.randn(n, *in_shape, generator=g).to(cfg.device)
        y = torch.randint(0, 10, (n,), generator=g).to(cfg.device)
        return {"layer": layer, "twin": twin, "x": x, "y": y}

    c = case(GROUP, f"{name}-fwd-bwd-b{BATCH}", setup, baseline="nn.Module fwd+bwd",
             rtol=1e-4, atol=1e-6, requires=("ftx.nn.Sequential",))

    @c.impl("nn.Module fwd+bwd")
    def _module(i: dict[str, Any]) -> Any:
        twin, x, y = i["twin"], i["x"], i["y"]
        named = list(twin.named_parameters())

        def run() -> dict[str, torch.Tensor | None]:
            for _, q in named:
                q.grad = None
            F.cross_entropy(twin(x), y).backward()
            return {n: q.grad for n, q in named}

        return run

    @c.impl("ftx.nn + ftx.grad")
    def _ftx(i: dict[str, Any]) -> Any:
        layer, x, y = i["layer"], i["x"], i["y"]
        params = ftx.nn.params_of(i["twin"])
        g = ftx.grad(lambda p: ftx.nn.cross_entropy(layer(p, x), y))
        return lambda: g(params)


_register("mlp64-256-256-10", mlp_pair, (64,), 64)
_register("dwsep-cnn", cnn_pair, (3, 32, 32), 16)


# --- issue 17: a transformer block and a small language model ---------------------------

D_MODEL, HEADS, FF = 128, 4, 512


def block_pair(layers: int = 1) -> tuple[Any, nn.Module]:
    """A pre-norm causal GELU encoder block (GPT's), ftx and torch, same params."""
    layer = ftx.nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
    torch.manual_seed(0)
    twin = nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, dropout=0.0, activation="gelu",
                                      batch_first=True, norm_first=True)
    return layer, twin


def _block_setup(cfg: Config) -> dict[str, Any]:
    layer, twin = block_pair()
    n, t = (2, 32) if cfg.quick else (8, 64)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(n, t, D_MODEL, generator=g).to(cfg.device)
    ct = torch.randn(n, t, D_MODEL, generator=g).to(cfg.device)
    mask = nn.Transformer.generate_square_subsequent_mask(t, device=cfg.device)
    return {"layer": layer, "twin": twin.to(cfg.device), "x": x, "ct": ct, "mask": mask}


_block = case(GROUP, "transformer-block-fwd-bwd-b8x64", _block_setup,
              baseline="nn.Module fwd+bwd", rtol=1e-4, atol=1e-5,
              description="pre-norm causal encoder block d=128, 4 heads, ff 512, GELU; "
                          "8 x 64 tokens (2 x 32 with --quick); grads of params and input",
              requires=("ftx.nn.TransformerEncoderLayer",))


@_block.impl("nn.Module fwd+bwd")
def _block_module(i: dict[str, Any]) -> Any:
    twin, x, ct, mask = i["twin"], i["x"], i["ct"], i["mask"]
    named = list(twin.named_parameters())
    xr = x.clone().requires_grad_(True)

    def run() -> dict[str, torch.Tensor | None]:
        for _, q in named:
            q.grad = None
        xr.grad = None
        (twin(xr, mask, is_causal=True) * ct).sum().backward()
        return {**{n: q.grad for n, q in named}, "x": xr.grad}

    return run


@_block.impl("ftx.nn + ftx.grad")
def _block_ftx(i: dict[str, Any]) -> Any:
    layer, x, ct = i["layer"], i["x"], i["ct"]
    params = ftx.nn.params_of(i["twin"])
    g = ftx.grad(lambda p, xx: (layer(p, xx, is_causal=True) * ct).sum(), argnums=(0, 1))

    def run() -> dict[str, Any]:
        gp, gx = g(params, x)
        return {**dict(ftx.tree.leaves_with_path(gp)), "x": gx}

    return run


VOCAB, CONTEXT, LM_LAYERS, LR = 128, 64, 2, 1e-3


class TorchGPT(nn.Module):
    """The example's model (examples/char_transformer.py) as an nn.Module."""

    def __init__(self) -> None:
        super().__init__()
        self.tok = nn.Embedding(VOCAB, D_MODEL)
        self.pos = nn.Embedding(CONTEXT, D_MODEL)
        self.blocks = nn.ModuleList(block_pair()[1] for _ in range(LM_LAYERS))
        self.norm = nn.RMSNorm(D_MODEL)
        self.head = nn.Linear(D_MODEL, VOCAB, bias=False)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(CONTEXT),
                             persistent=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x, self.mask, is_causal=True)
        return self.head(self.norm(x))  # type: ignore[no-any-return]


def ftx_gpt() -> Any:
    tok, pos = ftx.nn.Embedding(VOCAB, D_MODEL), ftx.nn.Embedding(CONTEXT, D_MODEL)
    block = block_pair()[0]
    norm, head = ftx.nn.RMSNorm(D_MODEL), ftx.nn.Linear(D_MODEL, VOCAB, bias=False)

    def apply(p: Any, idx: torch.Tensor) -> torch.Tensor:
        x = tok(p["tok"], idx) + pos(p["pos"], torch.arange(idx.shape[1], device=idx.device))
        for j in range(LM_LAYERS):
            x = block(p["blocks"][str(j)], x, is_causal=True)
        out: torch.Tensor = head(p["head"], norm(p["norm"], x))
        return out

    return apply


def _lm_setup(cfg: Config) -> dict[str, Any]:
    n = 4 if cfg.quick else 16
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, VOCAB, (n, CONTEXT + 1), generator=g).to(cfg.device)
    return {"x": idx[:, :-1], "y": idx[:, 1:], "device": cfg.device}


def _lm_module(device: str) -> nn.Module:
    torch.manual_seed(0)
    return TorchGPT().to(device)


_lm = case(GROUP, f"lm-train-step-{16 * CONTEXT}tok", _lm_setup,
           baseline="nn.Module+torch.compile+AdamW", rtol=1e-4, atol=LR / 10,
           description=f"one AdamW step of the example's GPT (d=128, {LM_LAYERS} blocks, "
                       f"context {CONTEXT}), 16 x {CONTEXT} tokens; every implementation "
                       "carries its params and optimizer state from call to call (a training "
                       "loop); checked: loss and params after the first step",
           requires=("ftx.nn.TransformerEncoderLayer", "ftx.optim.adamw"))


@_lm.impl("nn.Module+torch.compile+AdamW", compiled=True)
def _lm_module_compiled(i: dict[str, Any]) -> Any:
    module = _lm_module(i["device"])
    compiled = torch.compile(module)
    opt = torch.optim.AdamW(module.parameters(), lr=LR)
    x, y = i["x"], i["y"]
    named = dict(module.named_parameters())

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(compiled(x).reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.detach(), named

    return run


def _ftx_lm_step() -> tuple[Any, Any]:
    apply = ftx_gpt()
    opt = ftx.optim.adamw(lr=LR)

    def loss_fn(p: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return ftx.nn.cross_entropy(apply(p, x).reshape(-1, VOCAB), y.reshape(-1))

    vg = ftx.value_and_grad(loss_fn)

    def step(p: Any, state: Any, x: torch.Tensor, y: torch.Tensor) -> Any:
        loss, grads = vg(p, x, y)
        updates, state = opt.update(grads, state, p)
        return loss, ftx.optim.apply_updates(p, updates), state

    return opt, step


def _advancing(step: Any, i: dict[str, Any]) -> Any:
    """Each call takes the previous call's params and optimizer state, as a training loop
    does (and as the module baselines do in place), so the step count moves on."""
    p = ftx.nn.params_of(_lm_module(i["device"]))
    opt, _ = _ftx_lm_step()
    box = {"p": p, "state": opt.init(p)}

    def run() -> tuple[torch.Tensor, Any]:
        loss, box["p"], box["state"] = step(box["p"], box["state"], i["x"], i["y"])
        return loss, box["p"]

    return run


@_lm.impl("ftx eager")
def _lm_ftx(i: dict[str, Any]) -> Any:
    return _advancing(_ftx_lm_step()[1], i)


@_lm.impl("ftx.jit", compiled=True)
def _lm_ftx_jit(i: dict[str, Any]) -> Any:
    return _advancing(ftx.jit(_ftx_lm_step()[1]), i)


@_lm.impl("nn.Module+AdamW (eager)")
def _lm_module_eager(i: dict[str, Any]) -> Any:
    module = _lm_module(i["device"])
    opt = torch.optim.AdamW(module.parameters(), lr=LR)
    x, y = i["x"], i["y"]
    named = dict(module.named_parameters())

    def run() -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x).reshape(-1, VOCAB), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.detach(), named

    return run
