"""Shared fixtures: devices (CUDA cases skip cleanly without a GPU) and dtypes."""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param(
        "cuda",
        id="cuda",
        marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")],
    ),
]
DTYPES = [
    pytest.param(torch.float32, id="float32"),
    pytest.param(torch.float64, id="float64"),
]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=DTYPES)
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return request.param  # type: ignore[no-any-return]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="tests/fuzz: run 20x more examples per case (nightly); same as FTX_FUZZ_LONG=1",
    )


@pytest.fixture(autouse=True)
def _jax_x64_stays_off(request: pytest.FixtureRequest) -> object:
    """No test may leave JAX's 64-bit mode on: a global ``jax_enable_x64`` switch changes
    JAX's default dtypes for every later test in the worker (e.g. ``jax.random.bits`` turns
    uint64). Scope it with ``with jax.enable_x64(True):`` instead."""
    import sys

    yield
    jax = sys.modules.get("jax")
    if jax is not None and bool(jax.config.jax_enable_x64):
        jax.config.update("jax_enable_x64", False)
        pytest.fail(f"{request.node.nodeid} left jax_enable_x64 on; scope it with jax.enable_x64")
