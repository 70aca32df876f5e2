"""ftx.io must-never-happen list: special files, refused keys, hangs, silent corruption,
stale temp files, raw exceptions. Every case is a regression test of a bug once seen."""

from __future__ import annotations

import base64
import collections
import dataclasses
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import safetensors.torch
import torch

import ftx
from ftx.io import _file as _io_file
from ftx.io import _format as _io_format

from .test_io import REPO, assert_same, rewrite


def snapshot(folder: Path) -> dict[str, tuple[int, bytes | None]]:
    """Every entry of ``folder``: (file type, bytes of regular files)."""
    out = {}
    for name in sorted(os.listdir(folder)):
        st = os.lstat(folder / name)
        data = (folder / name).read_bytes() if stat.S_ISREG(st.st_mode) else None
        out[name] = (stat.S_IFMT(st.st_mode), data)
    return out


# ---------------------------------------------------------------------------------
# 1. save never replaces a special file.


def _make(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "char_device":
        # a copy of /dev/null's node inside tmp_path: harmless, and save must not touch it
        rdev = os.stat("/dev/null").st_rdev
        try:
            os.mknod(path, 0o600 | stat.S_IFCHR, rdev)
        except (PermissionError, OSError) as e:
            pytest.skip(f"cannot create a device node here: {e}")
    elif kind == "socket":
        if len(os.fsencode(path)) > 100:
            pytest.skip("tmp_path too long for an AF_UNIX socket name")
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    elif kind == "folder":
        path.mkdir()
        (path / "inside").write_bytes(b"keep")
    elif kind == "link_to_fifo":
        os.mkfifo(path.with_name("fifo_target"))
        path.symlink_to("fifo_target")
    elif kind == "link_to_folder":
        path.with_name("dir_target").mkdir()
        path.symlink_to("dir_target")
    elif kind == "dangling_link":
        path.symlink_to("nothing_here")
    else:  # pragma: no cover
        raise AssertionError(kind)


SPECIAL = [
    ("fifo", r"got a FIFO \(named pipe\) at"),
    ("char_device", r"got a character device at"),
    ("socket", r"got a socket at"),
    ("folder", r"got a folder at"),
    ("link_to_fifo", r"got a symbolic link to a FIFO"),
    ("link_to_folder", r"got a symbolic link to a folder"),
    ("dangling_link", r"got a symbolic link to nothing \('nothing_here'\)"),
]


@pytest.mark.parametrize("kind,match", SPECIAL, ids=[s[0] for s in SPECIAL])
def test_save_refuses_special_files_and_leaves_them_alone(kind: str, match: str,
                                                          tmp_path: Path) -> None:
    path = tmp_path / "ck"
    _make(kind, path)
    before = snapshot(tmp_path)
    st = os.lstat(path)
    with pytest.raises(ValueError, match=r"ftx.io.save: path must name a regular file, a "
                       r"symbolic link to one, or nothing yet, " + match):
        ftx.io.save(path, {"w": torch.ones(3)})
    assert snapshot(tmp_path) == before  # same node, nothing written, no temp file
    after = os.lstat(path)
    assert (after.st_ino, after.st_mode, after.st_rdev) == (st.st_ino, st.st_mode, st.st_rdev)


def test_save_refuses_a_device_reported_by_stat(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The type check itself, where device nodes cannot be created (no CAP_MKNOD)."""
    path = tmp_path / "ck"
    ftx.io.save(path, {"w": torch.ones(1)})
    before = path.read_bytes()
    real = os.lstat

    def fake(p: Any, *a: Any, **k: Any) -> os.stat_result:
        st = real(p, *a, **k)
        if os.fspath(p) == str(path):
            fields = list(st)
            fields[0] = stat.S_IFCHR | 0o600
            return os.stat_result(fields)
        return st

    monkeypatch.setattr(_io_file.os, "lstat", fake)
    with pytest.raises(ValueError, match=r"got a character device at"):
        ftx.io.save(path, {"w": torch.zeros(1)})
    monkeypatch.undo()
    assert path.read_bytes() == before


def test_save_through_a_symlink_to_a_regular_file_replaces_the_link(tmp_path: Path) -> None:
    """Documented choice: the link is replaced by the new file; its target is left alone."""
    target = tmp_path / "real.safetensors"
    ftx.io.save(target, {"w": torch.zeros(2)})
    old = target.read_bytes()
    link = tmp_path / "latest.safetensors"
    link.symlink_to(target.name)
    assert_same(ftx.io.load(link), {"w": torch.zeros(2)})  # load follows links
    ftx.io.save(link, {"w": torch.ones(2)})
    assert not link.is_symlink() and link.is_file()
    assert target.read_bytes() == old
    assert_same(ftx.io.load(link), {"w": torch.ones(2)})


def test_save_refuses_a_special_file_swapped_in_during_the_save(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked again just before the rename: a FIFO created meanwhile survives."""
    path = tmp_path / "ck"
    real = _io_file._write_all

    def write_then_swap(fd: int, data: Any) -> None:
        real(fd, data)
        if not path.exists():
            os.mkfifo(path)

    monkeypatch.setattr(_io_file, "_write_all", write_then_swap)
    with pytest.raises(ValueError, match=r"got a FIFO"):
        ftx.io.save(path, {"w": torch.ones(2)})
    assert stat.S_ISFIFO(os.lstat(path).st_mode)
    assert os.listdir(tmp_path) == ["ck"]  # the temp file is gone


# ---------------------------------------------------------------------------------
# 2. What the file could not give back is refused before the old file is touched.


@ftx.tree.register_dataclass
@dataclasses.dataclass
class Box:
    value: Any


def _cycle() -> Any:
    a: list[Any] = [torch.ones(1)]
    a.append(a)
    return {"a": a}


def _deep(n: int) -> Any:
    tree: Any = torch.ones(1)
    for _ in range(n):
        tree = [tree]
    return tree


REFUSED = [
    ("metadata_key", {"__metadata__": torch.ones(1), "w": torch.ones(2)}, ValueError,
     r"got the key '__metadata__' \(reserved by safetensors\) in the container at the root"),
    ("metadata_key_nested", {"a": {"__metadata__": 1}}, ValueError,
     r"'__metadata__' \(reserved by safetensors\) in the container at 'a'"),
    ("lone_surrogate", {"\ud800": torch.ones(1)}, ValueError,
     r"got the key '\\ud800', which is not valid Unicode"),
    ("surrogate_in_scalar_key", {"a": {"x\udfff": 1.0}}, ValueError, r"not valid Unicode"),
    ("empty_key", {"": torch.ones(1)}, ValueError, r"got an empty string key"),
    ("empty_key_nested", {"a": [{"": 3}]}, ValueError,
     r"empty string key in the container at 'a.0'"),
    ("huge_int_key", {10**4300: torch.ones(1)}, ValueError,
     r"got an int key of 14285 bits \(more than 4300 digits\)"),
    ("huge_int_leaf", {"n": -(10**4300)}, ValueError,
     r"int leaves must have at most 4300 digits, got an int of 14285 bits at 'n'"),
    ("bool_key", {True: torch.ones(1)}, TypeError, r"got bool True in the container"),
    ("tuple_key", {(1, 2): torch.ones(1)}, TypeError, r"got tuple \(1, 2\)"),
    ("bad_key_in_registered_node", Box(collections.defaultdict(int, {2.5: 1})), TypeError,
     r"got float 2.5 in the container at 'value'"),
    ("cycle", _cycle(), ValueError,
     r"tree must not contain itself, got the list at 'a' again at 'a.1' \(a cycle\)"),
    ("self_dict", (lambda d: (d.update(me=d), d)[1])({}), ValueError,
     r"the dict at the root again at 'me'"),
    ("too_deep", _deep(101), ValueError, r"containers nested at most 100 deep"),
    ("object_leaf", {"a": [object()]}, TypeError, r"got object .* at 'a.0'"),
    ("meta_tensor", {"m": torch.empty(2, device="meta")}, TypeError, r"meta tensor at 'm'"),
    ("complex128", {"z": torch.ones(1, dtype=torch.complex128)}, TypeError,
     r"got torch.complex128 at 'z'"),
]


@pytest.mark.parametrize("name,tree,exc,match", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_trees_leave_the_old_file_byte_identical(name: str, tree: Any,
                                                         exc: type[Exception], match: str,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    ftx.io.save(path, {"w": torch.arange(4.0), "step": 3})
    before = snapshot(tmp_path)
    with pytest.raises(exc, match=match) as info:
        ftx.io.save(path, tree)
    assert type(info.value) is exc
    assert _re_form(str(info.value))
    assert snapshot(tmp_path) == before


def _re_form(message: str) -> bool:
    """``ftx.io.<api>: <required>, got <came>. <fix>``"""
    head, _, rest = message.partition(": ")
    return (head in ("ftx.io.save", "ftx.io.load") and ", got " in rest
            and ". " in rest.split(", got ", 1)[1] and message.endswith("."))


def test_hundred_levels_round_trip_and_odd_but_valid_keys(tmp_path: Path) -> None:
    tree = {"deep": _deep(99), "keys": {"a.b": 1, "é": torch.ones(1), "\x00": 2, -(10**4299): 3,
                                        "0": torch.zeros(1), 0: torch.ones(1),
                                        "x#1": torch.full((1,), 2.0)},
            "s": "lone \ud800 surrogate in a value"}
    ftx.io.save(tmp_path / "ck", tree)
    assert_same(ftx.io.load(tmp_path / "ck"), tree)
    assert_same(ftx.io.load(tmp_path / "ck", like=tree), tree)


def test_generated_tensor_names_never_collide(tmp_path: Path) -> None:
    """int 0 and str '0' both have path '0'; the second gets '0#2', which a real key has."""
    tree = {"0#2": torch.full((1,), 1.0), 0: torch.full((1,), 2.0), "0": torch.full((1,), 3.0)}
    ftx.io.save(tmp_path / "ck", tree)
    assert_same(ftx.io.load(tmp_path / "ck"), tree)
    assert len(safetensors.torch.load_file(str(tmp_path / "ck"))) == 3


# ---------------------------------------------------------------------------------
# 3. load never hangs or reads without bound: run in a child with a time and memory limit.

GUARDED_LOAD = textwrap.dedent("""
    import json, resource, sys, time, torch, ftx
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
    limit = vm + 2**30  # a read without bound fails after 1 GB instead of eating the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = {}
    for p in sys.argv[1:]:
        t = time.monotonic()
        try:
            ftx.io.load(p)
            r = "returned"
        except BaseException as e:
            r = f"{type(e).__name__}: {e}"
        out[p] = [r, time.monotonic() - t]
    print(json.dumps(out))
""")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and /dev")
def test_load_of_special_files_fails_fast(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # no writer: opening it for reading would block forever
    (tmp_path / "link").symlink_to("fifo")
    (tmp_path / "dir").mkdir()
    cases = {
        str(tmp_path / "fifo"): r"got a FIFO \(named pipe\) at",
        str(tmp_path / "link"): r"got a FIFO \(named pipe\) at",
        "/dev/zero": r"got a character device at '/dev/zero'",
        "/dev/urandom": r"got a character device at '/dev/urandom'",
        str(tmp_path / "dir"): r"got a folder at",
    }
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    try:
        res = subprocess.run([sys.executable, "-c", GUARDED_LOAD, *cases], env=env,
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("ftx.io.load hung on a special file")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for p, match in cases.items():
        got, seconds = out[p]
        assert got.startswith("ValueError: ftx.io.load: path must name a regular file, "), got
        import re

        assert re.search(match, got), got
        assert seconds < 5, (p, seconds)


def test_header_length_is_bounded_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge_header"
    with open(path, "wb") as f:  # a sparse 200 MB file claiming a 150 MB header
        f.write((150_000_000).to_bytes(8, "little") + b"{")
        f.truncate(200_000_000)
    with pytest.raises(ValueError, match=r"header of at most 100000000 bytes, got a header "
                       r"length of 150000000 bytes"):
        ftx.io.load(path)


# ---------------------------------------------------------------------------------
# 4. A flipped bit anywhere is a ValueError in the contract's form.


def _flip_and_load(data: bytes, bits: list[int], folder: Path, like: Any = None) -> list[str]:
    """Load ``data`` with each bit of ``bits`` flipped; the problems (empty: all refused)."""
    problems = []
    bad = folder / "flipped"
    bad.write_bytes(data)
    fd = os.open(bad, os.O_WRONLY)  # flip one byte in place, then put it back
    try:
        for i in bits:
            os.pwrite(fd, bytes([data[i // 8] ^ (1 << (i % 8))]), i // 8)
            try:
                ftx.io.load(bad, like=like)
                problems.append(f"bit {i}: loaded without error")
            except ValueError as e:
                if not _re_form(str(e)) or not str(e).startswith("ftx.io.load: "):
                    problems.append(f"bit {i}: message {e}")
            except Exception as e:
                problems.append(f"bit {i}: {type(e).__name__}: {e}")
            os.pwrite(fd, data[i // 8 : i // 8 + 1], i // 8)
    finally:
        os.close(fd)
    assert bad.read_bytes() == data
    return problems


SMALL = {"w": torch.arange(4.0), "b": torch.arange(3), "step": 3, "name": "adam",
         "nested": {"x": (1.5, None, True), 0: torch.ones(2, dtype=torch.bfloat16)},
         "é": torch.zeros(()), "od": collections.OrderedDict(z=torch.tensor([True, False]))}


def test_every_single_bit_flip_of_a_small_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    ftx.io.save(path, SMALL)
    data = path.read_bytes()
    assert len(data) < 2000
    assert _flip_and_load(data, list(range(len(data) * 8)), tmp_path) == []


def test_bit_flips_raise_with_like_too(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    ftx.io.save(path, SMALL)
    data = path.read_bytes()
    bits = random.Random(1).sample(range(len(data) * 8), 600)
    assert _flip_and_load(data, bits, tmp_path, like=SMALL) == []


def test_random_bit_flips_across_a_larger_file_raise(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    tree = {"layers": [{"weight": torch.randn(64, 32, generator=g), "bias": torch.randn(64,
            generator=g)} for _ in range(4)], "opt": {"step": torch.tensor(9), "lr": 1e-3},
            "mask": torch.rand(100, generator=g) > 0.5, "half": torch.randn(50).half()}
    path = tmp_path / "ck"
    ftx.io.save(path, tree)
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    rng = random.Random(1234)
    bits = rng.sample(range(len(data) * 8), 400) + rng.sample(range((8 + n) * 8), 200)
    assert _flip_and_load(data, bits, tmp_path) == []


# A file written by ftx.io format 1 (the previous version, before the header checksum):
# {'w': arange(6).reshape(2, 3), 'step': tensor(7), 'meta': (1.5, None, 'adam'),
#  'od': OrderedDict(z=ones(2, bfloat16)), 3: True}
FORMAT_1 = base64.b64decode("".join("""
6AMAAAAAAAB7Il9fbWV0YWRhdGFfXyI6eyJmdHguaW8iOiJ7XCJmb3JtYXRcIjogMSwgXCJ0cmVlXCI6IHtcImRpY3Rc
IjogW1tcIndcIiwge1wibGVhZlwiOiAwfV0sIFtcInN0ZXBcIiwge1wibGVhZlwiOiAxfV0sIFtcIm1ldGFcIiwge1wi
dHVwbGVcIjogW3tcImxlYWZcIjogMn0sIG51bGwsIHtcImxlYWZcIjogM31dfV0sIFtcIm9kXCIsIHtcIm9kaWN0XCI6
IFtbXCJ6XCIsIHtcImxlYWZcIjogNH1dXX1dLCBbMywge1wibGVhZlwiOiA1fV1dfSwgXCJsZWF2ZXNcIjogW3tcInBh
dGhcIjogXCJ3XCIsIFwia2luZFwiOiBcInRlbnNvclwiLCBcIm5hbWVcIjogXCJ3XCIsIFwiZHR5cGVcIjogXCJmbG9h
dDMyXCIsIFwic2hhcGVcIjogWzIsIDNdLCBcImNyYzMyXCI6IDI0NDc4NzIwMjN9LCB7XCJwYXRoXCI6IFwic3RlcFwi
LCBcImtpbmRcIjogXCJ0ZW5zb3JcIiwgXCJuYW1lXCI6IFwic3RlcFwiLCBcImR0eXBlXCI6IFwiaW50NjRcIiwgXCJz
aGFwZVwiOiBbXSwgXCJjcmMzMlwiOiAxODc3NDY0Njg4fSwge1wicGF0aFwiOiBcIm1ldGEuMFwiLCBcImtpbmRcIjog
XCJmbG9hdFwiLCBcInZhbHVlXCI6IDEuNX0sIHtcInBhdGhcIjogXCJtZXRhLjJcIiwgXCJraW5kXCI6IFwic3RyXCIs
IFwidmFsdWVcIjogXCJhZGFtXCJ9LCB7XCJwYXRoXCI6IFwib2QuelwiLCBcImtpbmRcIjogXCJ0ZW5zb3JcIiwgXCJu
YW1lXCI6IFwib2QuelwiLCBcImR0eXBlXCI6IFwiYmZsb2F0MTZcIiwgXCJzaGFwZVwiOiBbMl0sIFwiY3JjMzJcIjog
MTg1OTA5MjIyMH0sIHtcInBhdGhcIjogXCIzXCIsIFwia2luZFwiOiBcImJvb2xcIiwgXCJ2YWx1ZVwiOiB0cnVlfV19
In0sInN0ZXAiOnsiZHR5cGUiOiJJNjQiLCJzaGFwZSI6W10sImRhdGFfb2Zmc2V0cyI6WzAsOF19LCJ3Ijp7ImR0eXBl
IjoiRjMyIiwic2hhcGUiOlsyLDNdLCJkYXRhX29mZnNldHMiOls4LDMyXX0sIm9kLnoiOnsiZHR5cGUiOiJCRjE2Iiwi
c2hhcGUiOlsyXSwiZGF0YV9vZmZzZXRzIjpbMzIsMzZdfX0gICAgICAgBwAAAAAAAAAAAAAAAACAPwAAAEAAAEBAAACA
QAAAoECAP4A/
""".split()))
FORMAT_1_TREE = {"w": torch.arange(6.0).reshape(2, 3), "step": torch.tensor(7),
                 "meta": (1.5, None, "adam"),
                 "od": collections.OrderedDict(z=torch.ones(2, dtype=torch.bfloat16)), 3: True}


def test_format_1_files_still_load(tmp_path: Path) -> None:
    path = tmp_path / "v1.safetensors"
    path.write_bytes(FORMAT_1)
    assert_same(ftx.io.load(path), FORMAT_1_TREE)
    assert_same(ftx.io.load(path, like=FORMAT_1_TREE), FORMAT_1_TREE)
    # their tensors are still checksummed
    bad = tmp_path / "bad"
    bad.write_bytes(FORMAT_1[:-3] + bytes([FORMAT_1[-3] ^ 4]) + FORMAT_1[-2:])
    with pytest.raises(ValueError, match=r"checksum mismatch in tensor 'od.z'"):
        ftx.io.load(bad)
    # saving again writes format 2
    ftx.io.save(path, ftx.io.load(path))
    n = int.from_bytes(path.read_bytes()[:8], "little")
    meta = json.loads(path.read_bytes()[8 : 8 + n])["__metadata__"]
    assert list(meta) == ["ftx.io.crc32", "ftx.io"] and json.loads(meta["ftx.io"])["format"] == 2


# ---------------------------------------------------------------------------------
# Crafted files (a valid header checksum, a hostile doc): ValueError, never a raw error.


def _set_tree(skel: Any) -> Any:
    return lambda d: d.update(tree=skel)


def _deep_doc(n: int) -> Any:
    """A doc whose skeleton is nested ``n`` deep (too deep for json.dumps to write)."""
    def change(d: Any) -> str:
        skel = '{"list": [' * n + '{"leaf": 0}' + "]}" * n
        return f'{{"format": 2, "tree": {skel}, "leaves": {json.dumps(d["leaves"])}}}'
    return change


CRAFTED = [
    ("negative_leaf_index", _set_tree({"list": [{"leaf": -1}, {"leaf": 0}, {"leaf": 1}]}),
     r"bad skeleton entry"),
    ("leaf_out_of_order", _set_tree({"list": [{"leaf": 1}, {"leaf": 0}, {"leaf": 2}]}),
     r"bad skeleton entry"),
    ("leaf_used_twice", _set_tree({"list": [{"leaf": 0}, {"leaf": 0}]}), r"bad skeleton"),
    ("too_few_leaves", _set_tree({"list": [{"leaf": 0}]}), r"a skeleton with 3 leaves, got 1"),
    ("bool_index", _set_tree({"list": [{"leaf": False}]}), r"bad skeleton entry"),
    ("list_as_dict_key", _set_tree({"dict": [[[1], {"leaf": 0}]]}), r"bad skeleton entry"),
    ("unknown_entry", _set_tree({"set": []}), r"bad skeleton entry"),
    ("deep_skeleton", _deep_doc(200), r"bad skeleton entry"),
    ("very_deep_skeleton", _deep_doc(100_000), r"unreadable ftx.io metadata \(RecursionError"),
    ("value_of_wrong_type", lambda d: d["leaves"][2].update(value="three"),
     r"a int leaf entry, got"),
    ("unknown_kind", lambda d: d["leaves"][2].update(kind="pickle"), r"of a known kind"),
    ("missing_tensor", lambda d: d["leaves"][0].update(name="nope"),
     r"naming a stored tensor"),
    ("bool_crc", lambda d: d["leaves"][0].update(crc32=True), r"naming a stored tensor"),
    ("extra_doc_key", lambda d: d.update(code="import os"), r"got ftx.io metadata"),
    ("table_not_list", lambda d: d.update(leaves={}), r"a leaf table that is a list"),
]


@pytest.mark.parametrize("name,change,match", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_crafted_metadata_is_a_value_error(name: str, change: Any, match: str,
                                           tmp_path: Path) -> None:
    path = tmp_path / "ck"
    ftx.io.save(path, {"w": torch.arange(4.0), "b": torch.arange(3), "step": 3})
    path.write_bytes(rewrite(path.read_bytes(), change))
    with pytest.raises(ValueError, match=match) as info:
        ftx.io.load(path)
    assert _re_form(str(info.value))


def _header_file(tmp_path: Path, header: bytes, data: bytes = b"") -> Path:
    path = tmp_path / "h"
    path.write_bytes(len(header).to_bytes(8, "little") + header + data)
    return path


@pytest.mark.parametrize("header,data,match", [
    (b'{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}', b"",
     r"got the key '__metadata__' twice"),
    (b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
     b'"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8, r"'x' twice"),
    (b'{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4,
     r"malformed header entry for tensor 'x'"),
    (b'{"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8,
     r"at byte 4 where 0 was expected"),
    (b'{"x":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}', b"\0" * 4, r"malformed"),
    (b'{"ftx":1}', b"", r"malformed header entry"),
    (b'{"x":{"dtype":"F32","shape":[0,4611686018427387904,2],"data_offsets":[0,0]}}', b"",
     r"malformed header entry"),
    (b'{"x":{"dtype":"F32","shape":[0,1180591620717411303424],"data_offsets":[0,0]}}', b"",
     r"malformed header entry"),
    (b"[" * 100_000 + b"]" * 100_000, b"", r"does not start with|nested too deeply"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, b"", r"nested too deeply"),
    (b'{"__metadata__":{"ftx.io.crc32":"00000000"}}', b"",
     r"header checksum mismatch|checksum at byte"),
    (b'{"__metadata__":{"k":1}}', b"", r"__metadata__ that is not a map of strings"),
    (b'{"__metadata__":"x"}', b"", r"__metadata__ that is not a map of strings"),
])
def test_malformed_headers_are_value_errors(header: bytes, data: bytes, match: str,
                                            tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        ftx.io.load(_header_file(tmp_path, header, data))


def test_plain_file_without_ftx_metadata_still_loads_after_strict_checks(tmp_path: Path) -> None:
    path = _header_file(tmp_path, b'{"__metadata__":{"format":"pt"},'
                        b'"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}  ',
                        (7).to_bytes(4, "little") + (9).to_bytes(4, "little"))
    assert_same(ftx.io.load(path), {"x": torch.tensor([7, 9], dtype=torch.int32)})


# ---------------------------------------------------------------------------------
# 5. Temp files of killed saves are removed by the next save of that name.


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_next_save_removes_only_dead_processes_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    dead = _dead_pid()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            f".ck.safetensors.{dead}.0123abcd.tmp": False,    # removed
            f".ck.safetensors.{alive.pid}.0123abcd.tmp": True,  # its writer is alive
            f".ck.safetensors.{os.getpid()}.0123abcd.tmp": True,  # maybe another thread
            f".ck.safetensors.{dead}.xyz.tmp": True,           # not the pattern
            f".other.safetensors.{dead}.0123abcd.tmp": True,   # another name
            f"ck.safetensors.{dead}.0123abcd.tmp": True,       # not hidden
        }
        for n in names:
            (tmp_path / n).write_bytes(b"partial")
        (tmp_path / f".ck.safetensors.{dead}.fedcba98.tmp").mkdir()  # not a regular file
        ftx.io.save(path, {"w": torch.ones(2)})
        left = set(os.listdir(tmp_path))
        for n, kept in names.items():
            assert (n in left) == kept, n
        assert f".ck.safetensors.{dead}.fedcba98.tmp" in left
    finally:
        alive.kill()
        alive.wait()
    ftx.io.save(path, {"w": torch.zeros(2)})
    assert f".ck.safetensors.{alive.pid}.0123abcd.tmp" not in os.listdir(tmp_path)


def test_long_names_get_a_hashed_temp_name(tmp_path: Path) -> None:
    path = tmp_path / ("x" * 250)
    ftx.io.save(path, {"w": torch.ones(1)})
    ftx.io.save(path, {"w": torch.zeros(1)})
    assert os.listdir(tmp_path) == [path.name]
    assert len(os.path.basename(_io_file.temp_path_for(str(path)))) < 255


KILLED_CHILD = textwrap.dedent("""
    import os, sys, time, torch, ftx
    from ftx.io import _file as _io_file
    real = _io_file._write_all
    def slow(fd, data):
        view = memoryview(data)
        if len(view) > 100_000:  # a tensor: write half, then wait to be killed
            real(fd, view[: len(view) // 2])
            print("HALF", os.getpid(), flush=True)
            time.sleep(120)
        real(fd, view)
    _io_file._write_all = slow
    ftx.io.save(sys.argv[1], {"w": torch.full((1_000_000,), 2.0), "step": 2})
""")


@pytest.mark.slow
def test_temp_file_of_a_killed_save_is_removed_by_the_next_save(tmp_path: Path) -> None:
    path = tmp_path / "ck.safetensors"
    ftx.io.save(path, {"w": torch.full((1_000_000,), 1.0), "step": 1})
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(path)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        assert line[0] == "HALF", line
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    temps = [n for n in os.listdir(tmp_path) if n != path.name]
    assert temps == [f".ck.safetensors.{line[1]}.{temps[0].split('.')[-2]}.tmp"]
    assert ftx.io.load(path)["step"] == 1  # the old file, whole
    ftx.io.save(path, {"w": torch.full((1_000_000,), 3.0), "step": 3})
    assert os.listdir(tmp_path) == [path.name]
    back = ftx.io.load(path)
    assert back["step"] == 3 and torch.equal(back["w"], torch.full((1_000_000,), 3.0))


# ---------------------------------------------------------------------------------
# 6. Other bad input: tensors of every kind, like=, path, device.


def test_tensor_variants_are_saved_by_value(tmp_path: Path) -> None:
    z = torch.randn(3, dtype=torch.complex64)
    x = torch.randn(4)
    with torch.inference_mode():
        inf = torch.ones(2)
    tree = {"conj": z.conj(), "z": z, "neg": torch._neg_view(x), "x": x,
            "expanded": torch.ones(1).expand(5), "grad": torch.ones(2, requires_grad=True),
            "param": torch.nn.Parameter(torch.zeros(2)), "inference": inf,
            "transposed": torch.arange(6.0).reshape(2, 3).T}
    ftx.io.save(tmp_path / "ck", tree)
    back = ftx.io.load(tmp_path / "ck")
    for k, v in tree.items():
        assert torch.equal(back[k], v.resolve_conj().resolve_neg().detach()), k
        assert back[k].is_contiguous() and not back[k].is_conj() and not back[k].is_neg()
    assert not torch.equal(back["conj"], back["z"])  # not mistaken for one tied tensor


@pytest.mark.parametrize("transform", ["vmap", "grad"])
def test_tensors_inside_transforms_are_refused(transform: str, tmp_path: Path) -> None:
    def f(x: torch.Tensor) -> torch.Tensor:
        ftx.io.save(tmp_path / "ck", {"x": x})
        return x.sum()

    fn = torch.func.vmap(f) if transform == "vmap" else torch.func.grad(f)
    with pytest.raises(TypeError, match=r"ftx.io.save: tensor leaves must be plain tensors "
                       r"with storage, got .* at 'x' .*Save outside torch.func"):
        fn(torch.ones(3, 2) if transform == "vmap" else torch.ones(3))
    assert os.listdir(tmp_path) == []


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"ck"


PATH_ERRORS = [
    ("none", None, TypeError, r"path must be a str or os.PathLike, got NoneType None"),
    ("bytes", b"ck", TypeError, r"path must be a str or os.PathLike, got bytes"),
    ("bytes_pathlike", BytesPath(), TypeError, r"path must be a str or a str os.PathLike"),
    ("empty", "", ValueError, r"path must be a non-empty file name without NUL"),
    ("nul", "a\0b", ValueError, r"without NUL characters, got 'a\\x00b'"),
]


@pytest.mark.parametrize("name,path,exc,match", PATH_ERRORS, ids=[p[0] for p in PATH_ERRORS])
@pytest.mark.parametrize("api", ["save", "load"])
def test_path_errors(api: str, name: str, path: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=rf"ftx.io.{api}: .*" + match):
        if api == "save":
            ftx.io.save(path, {"w": torch.ones(1)})
        else:
            ftx.io.load(path)


def test_folder_path_on_save(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ftx.io.save: path must name a file, got the folder"):
        ftx.io.save(str(tmp_path) + os.sep, {"w": torch.ones(1)})
    missing = tmp_path / "no" / "ck"
    with pytest.raises(FileNotFoundError, match=r"path's folder must exist"):
        ftx.io.save(missing, {"w": torch.ones(1)})
    assert os.listdir(tmp_path) == []


def test_like_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "ck"
    ftx.io.save(path, {"a": {"b": [torch.ones(2), 3]}})
    with pytest.raises(ValueError, match=r"ftx.io.load: like's tree must not contain itself"):
        ftx.io.load(path, like=_cycle())
    with pytest.raises(ValueError, match=r"like path 'a.c.0' where the file has 'a.b.0'"):
        ftx.io.load(path, like={"a": {"c": [torch.ones(2), 3]}})
    with pytest.raises(ValueError, match=r"the leaf at 'a.b.1' must match like's Tensor\(shape="
                       r"\(1,\), dtype=torch.float32\), got a Python int in the file"):
        ftx.io.load(path, like={"a": {"b": [torch.ones(2), torch.ones(1)]}})
    with pytest.raises(ValueError, match=r"like's containers nested at most 100 deep"):
        ftx.io.load(path, like=_deep(150))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_value_error(tmp_path: Path) -> None:
    ftx.io.save(tmp_path / "ck", {"w": torch.ones(1)})
    with pytest.raises(ValueError, match=r"ftx.io.load: device must be available here, got "
                       r"'cuda'"):
        ftx.io.load(tmp_path / "ck", device="cuda")


def test_files_are_plain_safetensors_for_other_tools(tmp_path: Path) -> None:
    from safetensors import safe_open

    dtypes = [torch.float64, torch.float32, torch.bfloat16, torch.float16, torch.int64,
              torch.int8, torch.uint8, torch.bool, torch.complex64, torch.float8_e4m3fn,
              torch.uint16, torch.uint32]
    tree = {str(dt): (torch.arange(6) % 2).to(dt).reshape(2, 3) for dt in dtypes}
    tree["empty"] = torch.zeros(0, 3)
    ftx.io.save(tmp_path / "ck", tree)
    plain = safetensors.torch.load_file(str(tmp_path / "ck"))
    with safe_open(str(tmp_path / "ck"), "pt") as f:
        assert sorted(f.keys()) == sorted(tree)
        for k, v in tree.items():
            assert torch.equal(f.get_tensor(k).view(torch.uint8), v.view(torch.uint8)), k
            assert torch.equal(plain[k].view(torch.uint8), v.view(torch.uint8)), k
        assert sorted(f.metadata()) == ["ftx.io", "ftx.io.crc32"]
    data = (tmp_path / "ck").read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0
    for ent in json.loads(data[8 : 8 + n]).values():
        if "dtype" in ent:  # every tensor starts aligned to its item size
            item = _io_format.ST_DTYPES[ent["dtype"]].itemsize
            assert ent["data_offsets"][0] % item == 0
