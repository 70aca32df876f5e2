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
