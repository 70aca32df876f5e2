"""The checker itself: each broken promise is caught, a kept one passes."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import torch

from . import _contract, _values
from ._contract import Api, S, Violation, check

pytestmark = pytest.mark.skipif(bool(_contract.RECORD), reason="record mode collects, never raises")


def _api(call: str, **kw: Any) -> Api:
    return Api("probe", call, {"x": S("torch.ones(3)", ("None",))}, "tests", **kw)


def _bad_message(x: Any) -> None:
    raise ValueError("something is wrong")


def _good_error(x: Any) -> None:
    raise TypeError("ftx.probe: x must be a str, got Tensor. Pass a str.")


def _runtime(x: Any) -> None:
    raise RuntimeError("ftx.probe: x must be a str, got Tensor. Pass a str.")


def _mutate(x: Any) -> None:
    x.add_(1)
    raise ValueError("ftx.probe: x must be a str, got Tensor. Pass a str.")


def _set_grad(x: Any) -> None:
    x.grad = torch.zeros(3)


def _leak_grad_mode(x: Any) -> None:
    torch.set_grad_enabled(False)


def _leak_dtype(x: Any) -> None:
    torch.set_default_dtype(torch.float64)


def _append(x: Any) -> None:
    x.append(1)


def _sleep(x: Any) -> None:
    time.sleep(5)


def _write_then_fail(x: Any) -> None:
    with open(_values.dpath("junk"), "w") as f:
        f.write("x")
    raise ValueError("ftx.probe: x must be a str, got Tensor. Pass a str.")


_values.NS.update({f.__name__: f for f in (
    _bad_message, _good_error, _runtime, _mutate, _set_grad, _leak_grad_mode, _leak_dtype,
    _append, _sleep, _write_then_fail)})


@pytest.mark.parametrize(("call", "kind"), [
    ("_bad_message(x)", "message"),
    ("_runtime(x)", "class"),
    ("_mutate(x)", "_version"),
    ("_set_grad(x)", ".grad"),
    ("_leak_grad_mode(x)", "grad_enabled"),
    ("_leak_dtype(x)", "default_dtype"),
])
def test_caught(call: str, kind: str) -> None:
    with pytest.raises(Violation, match=kind):
        check(_api(call), {"x": "torch.ones(3)"}, "x")
    assert torch.is_grad_enabled() and torch.get_default_dtype() == torch.float32  # restored


def test_container_mutation_caught() -> None:
    with pytest.raises(Violation, match="container list changed"):
        check(_api("_append(x)"), {"x": "[torch.ones(1)]"}, "x")


def test_timeout_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_contract, "TIME_LIMIT", 0.2)
    with pytest.raises(Violation, match="timeout"):
        check(_api("_sleep(x)"), {"x": "torch.ones(3)"}, "x")


def test_file_change_caught(tmp_path: Any) -> None:
    _values.set_example_dir(str(tmp_path))
    with pytest.raises(Violation, match="changed files"):
        check(_api("_write_then_fail(x)", files=True), {"x": "torch.ones(3)"}, "x",
              folder=str(tmp_path))
    assert os.path.exists(tmp_path / "junk")


def test_kept_promises_pass() -> None:
    check(_api("_good_error(x)"), {"x": "torch.ones(3)"}, "x")
    check(_api("f_raise(x)"), {"x": "torch.ones(3)"}, "x")  # the user's own error
    check(_api("x + 1"), {"x": "torch.ones(3)"}, "x")  # success, nothing touched
