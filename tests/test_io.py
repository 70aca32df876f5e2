"""ftx.io: round trips (structure, dtypes, devices), like=, corruption, atomic writes."""

from __future__ import annotations

import collections
import dataclasses
import glob
import json
import math
import os
import pickle
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import safetensors.torch
import torch

import ftx
from ftx.io import _file as _io_file
from ftx.io import _format as _io_format

REPO = Path(__file__).resolve().parents[1]


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Exact equality: container types, keys, Python scalar types, tensor dtype/shape/values."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device, path
        if a.dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
            a, b = a.view(torch.uint8), b.view(torch.uint8)
        assert torch.equal(a.cpu(), b.cpu()) or (
            a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
            and torch.equal(a.nan_to_num(), b.nan_to_num())
        ), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}.{i}")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path


# ---------------------------------------------------------------------------------
# Round trips.

ALL_DTYPES = [
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
    torch.int16, torch.int8, torch.uint8, torch.uint16, torch.uint32, torch.uint64, torch.bool,
    torch.complex64, torch.float8_e4m3fn, torch.float8_e5m2,
]


def make_tree(case: str, device: str) -> Any:
    g = torch.Generator().manual_seed(0)

    def r(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(shape, generator=g).to(dtype).to(device)

    return {
        "nested": {"a": {"b": [r(2, 3), (r(4), None)], "c": None}, "d": [], "e": {}, "f": ()},
        "dtypes": {str(dt).removeprefix("torch."): (r(3, 2) * 10).abs().to(dt)
                   for dt in ALL_DTYPES},
        "zero_d_and_empty": [r(), r(0, 3), torch.zeros(2, 0, dtype=torch.int64, device=device)],
        "scalars": {"i": 3, "big": 2**70, "f": 0.1, "nan": math.nan, "inf": -math.inf,
                    "b": True, "s": "adam", "t": (1, 2.5, False)},
        "int_keys": {0: r(2), 7: {"x": r(1)}, "str": r(1)},
        "ordered": collections.OrderedDict([("z", r(2)), ("a", r(3))]),
        "root_tensor": r(3, 3),
        "root_scalar": 5,
        "root_none": None,
        "empty_dict": {},
        "special_values": torch.tensor([math.inf, -math.inf, math.nan, -0.0], device=device),
    }[case]


CASES = ["nested", "dtypes", "zero_d_and_empty", "scalars", "int_keys", "ordered",
         "root_tensor", "root_scalar", "root_none", "empty_dict", "special_values"]


@pytest.mark.parametrize("case", CASES)
def test_round_trip(case: str, device: str, tmp_path: Path) -> None:
    tree = make_tree(case, device)
    path = tmp_path / "ck.safetensors"
    ftx.io.save(path, tree)
    back = ftx.io.load(path, device=device)
    assert_same(back, tree)
    # and into like=, which puts tensors where like's are
    assert_same(ftx.io.load(str(path), like=tree), tree)


def test_state_dict_names_are_readable_by_safetensors(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    params = ftx.nn.params_of(model)
    ftx.io.save(tmp_path / "p.safetensors", params)
    plain = safetensors.torch.load_file(str(tmp_path / "p.safetensors"))
    assert sorted(plain) == sorted(model.state_dict())
    for k, v in model.state_dict().items():
        assert torch.equal(plain[k], v)
    # model.state_dict() itself (an OrderedDict) round-trips as an OrderedDict
    ftx.io.save(tmp_path / "sd.safetensors", model.state_dict())
    assert_same(ftx.io.load(tmp_path / "sd.safetensors"), model.state_dict())


def test_plain_safetensors_file_loads_flat_or_into_like(tmp_path: Path) -> None:
    sd = {"0.weight": torch.ones(2, 3), "0.bias": torch.zeros(2)}
    safetensors.torch.save_file(sd, str(tmp_path / "plain.safetensors"))
    flat = ftx.io.load(tmp_path / "plain.safetensors")
    assert_same(dict(sorted(flat.items())), dict(sorted(sd.items())))
    like = {"0": {"weight": torch.empty(2, 3), "bias": torch.empty(2)}}
    back = ftx.io.load(tmp_path / "plain.safetensors", like=like)
    assert_same(back, {"0": {"weight": torch.ones(2, 3), "bias": torch.zeros(2)}})
    with pytest.raises(ValueError, match=r"got like paths not in the file \['0.scale'\] and "
                       r"file tensors not in like \['0.bias', '0.weight'\]"):
        ftx.io.load(tmp_path / "plain.safetensors", like={"0": {"scale": torch.empty(2)}})
    with pytest.raises(ValueError, match=r"not in the file \[\] and file tensors not in like "
                       r"\['0.weight'\]"):
        ftx.io.load(tmp_path / "plain.safetensors", like={"0": {"bias": torch.empty(2)}})


# ---------------------------------------------------------------------------------
# Layout: non-contiguous, views, tied tensors.


def test_non_contiguous_tensors(tmp_path: Path) -> None:
    base = torch.arange(24.0).reshape(4, 6)
    tree = {
        "t": base.T,
        "strided": base[:, ::2],
        "expanded": torch.tensor([1.0, 2.0]).expand(3, 2),
        "window": base[1:, 1:4],
    }
    assert not any(v.is_contiguous() for v in tree.values())
    ftx.io.save(tmp_path / "nc", tree)
    back = ftx.io.load(tmp_path / "nc")
    for k, v in tree.items():
        assert torch.equal(back[k], v) and back[k].is_contiguous(), k


def test_tied_tensors_stay_tied_and_views_are_independent(tmp_path: Path) -> None:
    big = torch.arange(1000.0)
    w = torch.randn(3, 3)
    tree = {"enc": w, "dec": w, "head": big[:3], "tail": big[2:5], "also_w": w[:]}
    ftx.io.save(tmp_path / "t", tree)
    back = ftx.io.load(tmp_path / "t")
    assert back["enc"] is back["dec"]
    assert back["also_w"] is back["enc"]  # w[:] is the same view of the same storage
    assert torch.equal(back["head"], big[:3]) and torch.equal(back["tail"], big[2:5])
    back["head"][2] = -1.0
    assert back["tail"][0] == 2.0  # overlapping views come back independent
    # only the view's bytes are stored, not the 1000-element storage behind it
    assert os.path.getsize(tmp_path / "t") < 2000
    names = safetensors.torch.load_file(str(tmp_path / "t"))
    assert len(names) == 3  # w once, head, tail
    tied = ftx.io.load(tmp_path / "t", like=tree)
    assert tied["enc"] is tied["dec"]


# ---------------------------------------------------------------------------------
# like=: registered nodes, optimizer states, mismatches.


@ftx.tree.register_dataclass
@dataclasses.dataclass
class Layer:
    weight: torch.Tensor
    bias: torch.Tensor | None
    name: str = ftx.tree.static_field(default="layer")


class State(NamedTuple):
    step: torch.Tensor
    mu: dict[str, torch.Tensor]


def test_registered_dataclass_and_namedtuple_need_like(tmp_path: Path) -> None:
    tree = {"layer": Layer(torch.ones(2, 2), None, name="enc"),
            "state": State(torch.tensor(3), {"w": torch.zeros(2)})}
    ftx.io.save(tmp_path / "n", tree)
    like = {"layer": Layer(torch.zeros(2, 2), None, name="enc"),
            "state": State(torch.tensor(0), {"w": torch.ones(2)})}
    back = ftx.io.load(tmp_path / "n", like=like)
    assert isinstance(back["layer"], Layer) and back["layer"].name == "enc"
    assert back["layer"].bias is None and torch.equal(back["layer"].weight, torch.ones(2, 2))
    assert isinstance(back["state"], State) and back["state"].step.item() == 3
    # without like=, registered nodes come back as dicts keyed by field name
    plain = ftx.io.load(tmp_path / "n")
    assert_same(plain, {"layer": {"weight": torch.ones(2, 2), "bias": None},
                        "state": {"step": torch.tensor(3), "mu": {"w": torch.zeros(2)}}})


@pytest.mark.parametrize("name", ["sgd_momentum", "adam", "adamw_amsgrad", "rmsprop", "adagrad"])
def test_ftx_optimizer_state_round_trips_and_training_continues(name: str,
                                                                tmp_path: Path) -> None:
    opt = {
        "sgd_momentum": lambda: ftx.optim.sgd(lr=0.1, momentum=0.9),
        "adam": lambda: ftx.optim.adam(lr=0.1),
        "adamw_amsgrad": lambda: ftx.optim.adamw(lr=0.1, amsgrad=True),
        "rmsprop": lambda: ftx.optim.rmsprop(lr=0.01),
        "adagrad": lambda: ftx.optim.adagrad(lr=0.1),
    }[name]()
    params = {"w": torch.randn(3, dtype=torch.float64), "b": torch.zeros((), dtype=torch.float64)}
    loss = lambda p: ((p["w"] - 1.0) ** 2).sum() + p["b"] ** 2  # noqa: E731
    state = opt.init(params)

    def step(p: Any, s: Any) -> tuple[Any, Any]:
        g = torch.func.grad(loss)(p)
        upd, s = opt.update(g, s, p)
        return ftx.optim.apply_updates(p, upd), s

    for _ in range(3):
        params, state = step(params, state)
    if name.startswith("adam"):
        steps = [x for x in ftx.tree.leaves(state) if x.dtype == torch.int64]
        assert [s.item() for s in steps] == [3], "adam's state carries an int64 step tensor"
    ftx.io.save(tmp_path / "opt", {"params": params, "opt": state})
    back = ftx.io.load(tmp_path / "opt", like={"params": params, "opt": state})
    assert_same(back, {"params": params, "opt": state})
    p1, s1 = params, state
    p2, s2 = back["params"], back["opt"]
    for _ in range(3):
        p1, s1 = step(p1, s1)
        p2, s2 = step(p2, s2)
    assert_same(p1, p2)
    assert_same(s1, s2)


def test_torch_optimizer_state_dict_round_trips(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    sd = opt.state_dict()  # int keys, tensor steps, tuples, None, bools, floats
    ftx.io.save(tmp_path / "adam", sd)
    back = ftx.io.load(tmp_path / "adam")
    assert_same(back, sd)
    twin = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    twin.load_state_dict(back)


LIKE_ERRORS = [
    ("fewer_leaves", {"a": torch.zeros(2)}, r"like must have the file's 2 leaves, got 1"),
    ("renamed", {"a": torch.zeros(2), "c": torch.zeros(3, dtype=torch.int64)},
     r"got like path 'c' where the file has 'b'"),
    ("shape", {"a": torch.zeros(3), "b": torch.zeros(3, dtype=torch.int64)},
     r"leaf at 'a' must match like's Tensor\(shape=\(3,\).*got Tensor\(shape=\(2,\)"),
    ("dtype", {"a": torch.zeros(2), "b": torch.zeros(3)},
     r"leaf at 'b' must match like's .*float32.*got .*int64"),
    ("tensor_vs_scalar", {"a": 1.0, "b": torch.zeros(3, dtype=torch.int64)},
     r"leaf at 'a' must be a Python float like like's, got a tensor"),
]


@pytest.mark.parametrize("name,like,match", LIKE_ERRORS, ids=[e[0] for e in LIKE_ERRORS])
def test_like_mismatch(name: str, like: Any, match: str, tmp_path: Path) -> None:
    ftx.io.save(tmp_path / "m", {"a": torch.ones(2), "b": torch.arange(3)})
    with pytest.raises(ValueError, match=match):
        ftx.io.load(tmp_path / "m", like=like)


def test_like_scalar_type_mismatch(tmp_path: Path) -> None:
    ftx.io.save(tmp_path / "s", {"n": 3})
    with pytest.raises(ValueError, match=r"leaf at 'n' must be a Python float .*got a Python int"):
        ftx.io.load(tmp_path / "s", like={"n": 3.0})
    assert ftx.io.load(tmp_path / "s", like={"n": 0}) == {"n": 3}


# ---------------------------------------------------------------------------------
# Bad files: truncated, corrupted, not safetensors -> ValueError, never a partial tree.


@pytest.fixture
def good_file(tmp_path: Path) -> Path:
    path = tmp_path / "good.safetensors"
    ftx.io.save(path, {"w": torch.randn(64, 8), "b": torch.arange(8), "step": 3})
    return path


def _header_len(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


CORRUPTIONS = [
    ("empty", lambda d: b"", r"got a file of 0 bytes: it is truncated or not a safetensors"),
    ("cut_in_length", lambda d: d[:5], r"got a file of 5 bytes"),
    ("cut_in_header", lambda d: d[:40], r"header length of \d+ bytes in a file of 40 bytes"),
    ("cut_in_data", lambda d: d[: _header_len(d) + 100], r"the file is truncated"),
    ("last_byte_missing", lambda d: d[:-1], r"the file is truncated"),
    ("trailing_bytes", lambda d: d + b"\0" * 3, r"3 trailing bytes\): the file is corrupted"),
    ("flipped_data_byte", lambda d: d[:-20] + bytes([d[-20] ^ 0x10]) + d[-19:],
     r"checksum mismatch in tensor .*: the file is corrupted"),
    ("flipped_header_byte", lambda d: d[:9] + b"#" + d[10:], r"header that is not valid JSON"),
    ("text_file", lambda d: b"hello, this is not a checkpoint\n" * 4,
     r"it is truncated or not a safetensors file"),
    ("pickle", lambda d: pickle.dumps({"w": [1.0, 2.0]}), r"not a safetensors file"),
]


@pytest.mark.parametrize("name,corrupt,match", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_bad_files_raise_value_error(name: str, corrupt: Any, match: str,
                                     good_file: Path) -> None:
    bad = good_file.with_name("bad.safetensors")
    bad.write_bytes(corrupt(good_file.read_bytes()))
    with pytest.raises(ValueError, match=r"ftx.io.load: '.*bad.safetensors' must be .*" + match):
        ftx.io.load(bad)
    with pytest.raises(ValueError):
        ftx.io.load(bad, like={"w": torch.zeros(64, 8), "b": torch.zeros(8, dtype=torch.int64),
                               "step": 0})


def test_torch_save_file_is_rejected(tmp_path: Path) -> None:
    torch.save({"w": torch.ones(3)}, tmp_path / "pickled.pt")
    with pytest.raises(ValueError, match=r"not a safetensors file"):
        ftx.io.load(tmp_path / "pickled.pt")


def rewrite(data: bytes, change: Any) -> bytes:
    """``data`` with its ftx.io doc changed by ``change(doc)`` (in place, or returning the
    new doc's JSON text) and a valid header checksum, as a crafted file would have."""
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    doc = json.loads(header.pop("__metadata__")["ftx.io"])
    text = change(doc)
    entries = [(k, v["dtype"], v["shape"], *v["data_offsets"]) for k, v in header.items()]
    entries.sort(key=lambda e: e[3])
    doc_text = text if isinstance(text, str) else json.dumps(doc)
    return _io_format.build_header(doc_text, entries) + data[8 + n :]


def test_tampered_metadata_is_detected(good_file: Path) -> None:
    data = good_file.read_bytes()
    bad = good_file.with_name("tampered.safetensors")
    bad.write_bytes(rewrite(data, lambda d: d["leaves"][0].update(shape=[8, 64])))
    with pytest.raises(ValueError, match=r"recorded as float32 \[8, 64\]"):
        ftx.io.load(bad)
    bad.write_bytes(rewrite(data, lambda d: d.update(format=99)))
    with pytest.raises(ValueError, match=r"in ftx.io format 2, got format 99"):
        ftx.io.load(bad)


# ---------------------------------------------------------------------------------
# Atomic writes.


def test_overwrite_and_file_mode_follow_umask(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    ftx.io.save(path, {"v": torch.zeros(2)})
    ftx.io.save(path, {"v": torch.ones(2)})
    assert torch.equal(ftx.io.load(path)["v"], torch.ones(2))
    (tmp_path / "plain").write_bytes(b"x")
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert sorted(os.listdir(tmp_path)) == ["ck", "plain"]  # no temp file left


def test_failed_write_leaves_old_file_and_no_temp(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ck"
    old = {"v": torch.arange(5)}
    ftx.io.save(path, old)

    def broken(fd: int, data: Any) -> None:
        os.write(fd, bytes(memoryview(data)[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_io_file, "_write_all", broken)
    with pytest.raises(OSError, match="No space left"):
        ftx.io.save(path, {"v": torch.arange(7)})
    assert_same(ftx.io.load(path), old)
    assert os.listdir(tmp_path) == ["ck"]


CHILD = textwrap.dedent("""
    import os, sys, time, torch, ftx
    from ftx.io import _file as _io_file
    from ftx.io import _format as _io_format
    path, mode = sys.argv[1], sys.argv[2]
    real = _io_file._write_all
    if mode == "slow":
        def slow(fd, data):
            view = memoryview(data)
            if len(view) < 1000:  # the header
                return real(fd, view)
            real(fd, view[: len(view) // 2])
            os.fsync(fd)
            print("HALF", flush=True)
            time.sleep(120)
            real(fd, view[len(view) // 2 :])
        _io_file._write_all = slow
    new = {"w": torch.full((%d,), 2.0), "step": torch.tensor(2)}
    print("START", flush=True)
    while True:
        ftx.io.save(path, new)
        if mode == "slow":
            break
""")


def _spawn(path: Path, mode: str, numel: int) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-c", CHILD % numel, str(path), mode],
                            stdout=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_kill_mid_save_keeps_previous_checkpoint(tmp_path: Path) -> None:
    """A child process is SIGKILLed with half the new file written: the old file loads."""
    path = tmp_path / "ck.safetensors"
    old = {"w": torch.full((1000,), 1.0), "step": torch.tensor(1)}
    ftx.io.save(path, old)
    child = _spawn(path, "slow", 1000)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "START"
        assert child.stdout.readline().strip() == "HALF"
        temps = glob.glob(str(tmp_path / ".ck.safetensors.*.tmp"))
        assert len(temps) == 1 and os.path.getsize(temps[0]) > 0
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert_same(ftx.io.load(path), old)
    # the half-written temp file itself is recognised as truncated
    with pytest.raises(ValueError, match=r"truncated"):
        ftx.io.load(temps[0])


@pytest.mark.slow
def test_kill_during_real_saves_never_leaves_a_partial_file(tmp_path: Path) -> None:
    """Unpatched saves of a 32 MB tree in a loop, killed at once: old or new, always whole."""
    path = tmp_path / "ck.safetensors"
    numel = 8_000_000
    old = {"w": torch.full((numel,), 1.0), "step": torch.tensor(1)}
    ftx.io.save(path, old)
    child = _spawn(path, "loop", numel)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "START"
        deadline = time.monotonic() + 60
        while not glob.glob(str(tmp_path / ".ck.safetensors.*.tmp")):
            assert time.monotonic() < deadline, "no temp file appeared"
            time.sleep(0.001)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    back = ftx.io.load(path)
    assert back["step"].item() in (1, 2)
    assert torch.equal(back["w"], torch.full((numel,), float(back["step"].item())))


# ---------------------------------------------------------------------------------
# Argument errors.

SAVE_ERRORS = [
    ("path_type", 3, {"a": torch.ones(1)}, TypeError, r"ftx.io.save: path must be a str"),
    ("object_leaf", "x", {"a": object()}, TypeError,
     r"leaves must be tensors or Python bool/int/float/str, got object .* at 'a'"),
    ("list_of_arrays", "x", {"a": [bytearray(b"x")]}, TypeError, r"got bytearray .* at 'a.0'"),
    ("float_key", "x", {1.5: torch.ones(1)}, TypeError, r"dict keys must be str or int"),
    ("complex128", "x", {"z": torch.ones(2, dtype=torch.complex128)}, TypeError,
     r"dtypes must be supported by safetensors, got torch.complex128 at 'z'"),
    ("sparse", "x", {"s": torch.eye(2).to_sparse()}, TypeError,
     r"must be dense tensors with data, got torch.sparse_coo"),
    ("meta", "x", {"m": torch.empty(2, device="meta")}, TypeError, r"got torch.strided meta"),
    ("no_folder", "missing/x", {"a": torch.ones(1)}, FileNotFoundError,
     r"ftx.io.save: path's folder must exist, got '.*missing/x', whose folder"),
]


@pytest.mark.parametrize("name,path,tree,exc,match", SAVE_ERRORS, ids=[e[0] for e in SAVE_ERRORS])
def test_save_errors(name: str, path: Any, tree: Any, exc: type[Exception], match: str,
                     tmp_path: Path) -> None:
    target = tmp_path / path if isinstance(path, str) else path
    with pytest.raises(exc, match=match):
        ftx.io.save(target, tree)
    assert os.listdir(tmp_path) == []  # nothing written


def test_load_errors(good_file: Path) -> None:
    with pytest.raises(TypeError, match=r"ftx.io.load: path must be a str"):
        ftx.io.load(None)
    with pytest.raises(TypeError, match=r"device must be a str, a torch.device or None"):
        ftx.io.load(good_file, device=0.5)
    with pytest.raises(ValueError, match=r"device must name a torch device, got 'gpu7'"):
        ftx.io.load(good_file, device="gpu7")
    with pytest.raises(TypeError, match=r"like's leaves must be tensors or Python scalars"):
        ftx.io.load(good_file, like={"w": object(), "b": object(), "step": 0})
    with pytest.raises(FileNotFoundError, match=r"ftx.io.load: path must name an existing "
                       r"file, got '.*missing', which does not exist"):
        ftx.io.load(good_file.with_name("missing"))


def test_meta_like_loads_to_cpu(good_file: Path) -> None:
    like = {"w": torch.empty(64, 8, device="meta"), "b": torch.empty(8, dtype=torch.int64,
                                                                      device="meta"), "step": 0}
    back = ftx.io.load(good_file, like=like)
    assert back["w"].device.type == "cpu" and back["step"] == 3
