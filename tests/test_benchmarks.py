"""The benchmark harness: agreement checks, skips, report files, and a --quick smoke run.

No timing is asserted anywhere: the smoke run checks that every implementation
that runs agrees with its case's baseline (the harness exits 1 otherwise) and
that the table, JSON and chart are written.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from benchmarks import _compile_latency as CL
from benchmarks import _harness as H
from benchmarks import _report as R
from benchmarks.__main__ import keep_freed_memory, label_rows, main
from benchmarks.cases import load_all

FAST = H.Config(quick=True, compile=False, min_run_time=0.002, warmup=0, rounds=1)


def _case(name: str = "c", **kw: Any) -> H.Case:
    """A case outside the global registry."""
    return H.Case(name, "test", kw.pop("setup", lambda cfg: torch.arange(4.0)), **kw)


def _by_impl(results: list[H.Result]) -> dict[str, H.Result]:
    return {r.impl: r for r in results}


# ---------------------------------------------------------------- the harness on toy cases


def test_agreeing_implementations_are_timed_with_ratio_to_baseline() -> None:
    c = _case()
    c.impl("base")(lambda x: lambda: x * 2)
    c.impl("same")(lambda x: lambda: x + x)
    c.impl("numpy")(lambda x: lambda: np.arange(4.0) * 2)
    res = _by_impl(H.run_case(c, FAST))
    assert [r.status for r in res.values()] == ["ok", "ok", "ok"]
    assert res["base"].ratio == pytest.approx(1.0)
    for r in res.values():
        assert r.median_s is not None and r.median_s > 0 and r.runs >= 1
        assert r.ratio is not None and r.ratio > 0
    assert res["same"].max_abs_diff == 0.0


def test_named_baseline_runs_first_and_is_the_reference() -> None:
    c = _case(baseline="ref")
    c.impl("other")(lambda x: lambda: x * 3)
    c.impl("ref")(lambda x: lambda: x * 2)
    res = H.run_case(c, FAST)
    assert [r.impl for r in res] == ["ref", "other"]
    assert res[1].status.startswith("mismatch: leaf 0 differs by 3")
    assert res[1].median_s is None


@pytest.mark.parametrize(
    "other, message",
    [
        pytest.param(lambda x: x[:3], r"leaf 0 has shape \(3,\), reference \(4,\)", id="shape"),
        pytest.param(lambda x: (x, x), r"2 leaves against the reference's 1", id="leaves"),
        pytest.param(lambda x: x + 1e-3, r"leaf 0 differs by 0.001", id="value"),
    ],
)
def test_disagreement_is_reported_not_timed(other: Any, message: str) -> None:
    c = _case(rtol=1e-6, atol=1e-6)
    c.impl("base")(lambda x: lambda: x)
    c.impl("bad")(lambda x: lambda: other(x))
    res = _by_impl(H.run_case(c, FAST))
    assert res["bad"].failed
    assert res["bad"].status.startswith("mismatch")
    assert re.search(message, res["bad"].status)


def test_tolerances_are_the_cases() -> None:
    c = _case(rtol=0.0, atol=1e-2)
    c.impl("base")(lambda x: lambda: x)
    c.impl("close")(lambda x: lambda: x + 1e-3)
    assert _by_impl(H.run_case(c, FAST))["close"].ok


def test_not_implemented_and_missing_requirements_are_skips() -> None:
    def placeholder(x: Any) -> Any:
        def run() -> Any:
            raise NotImplementedError("ftx.thing is not implemented yet")

        return run

    c = _case()
    c.impl("base")(lambda x: lambda: x)
    c.impl("placeholder")(placeholder)
    c.impl("needs module", requires=("no_such_module_ftx_bench",))(lambda x: lambda: x)
    c.impl("needs ftx attr", requires=("ftx.no_such_thing",))(lambda x: lambda: x)
    c.impl("compiled", compiled=True)(lambda x: lambda: x)
    res = _by_impl(H.run_case(c, FAST))
    assert res["base"].ok
    assert res["placeholder"].status == "skipped: not implemented"
    assert res["needs module"].status == "skipped: needs no_such_module_ftx_bench"
    assert res["needs ftx attr"].status == "skipped: not implemented"
    assert res["compiled"].status.startswith("skipped: torch.compile implementations are off")
    assert not any(r.failed for r in res.values())


def test_errors_are_reported_and_fail_the_run() -> None:
    def broken(x: Any) -> Any:
        return lambda: x @ x @ x  # 1-d @ 1-d is a scalar; scalar @ 1-d raises

    c = _case()
    c.impl("base")(lambda x: lambda: x)
    c.impl("broken")(broken)
    r = _by_impl(H.run_case(c, FAST))["broken"]
    assert r.failed and r.status.startswith("error: RuntimeError")


def test_whole_case_skips_and_setup_errors() -> None:
    full = _case(full_only=True)
    full.impl("a")(lambda x: lambda: x)
    assert H.run_case(full, FAST)[0].status == "skipped: full run only (too slow for --quick)"
    assert H.run_case(full, H.Config(quick=False, min_run_time=0.002, warmup=0, rounds=1))[0].ok

    needs = _case(requires=("ftx.random.no_such_fn",))
    needs.impl("a")(lambda x: lambda: x)
    assert H.run_case(needs, FAST)[0].status == "skipped: not implemented"

    def bad_setup(cfg: H.Config) -> Any:
        raise ValueError("bad size")

    broken = _case(setup=bad_setup)
    broken.impl("a")(lambda x: lambda: x)
    r = H.run_case(broken, FAST)[0]
    assert r.failed and "ValueError: bad size" in r.status


def test_ref_picks_the_reference_and_check_false_skips_it() -> None:
    c = _case()
    c.impl("base")(lambda x: lambda: x)
    c.impl("triple", check=False)(lambda x: lambda: 3 * x)
    c.impl("triple again", ref="triple")(lambda x: lambda: x * 3)
    c.impl("wrong", ref="triple")(lambda x: lambda: x * 4)
    res = _by_impl(H.run_case(c, FAST))
    assert res["triple"].ok and res["triple again"].ok
    assert res["wrong"].status.startswith("mismatch")


def test_ftx_warnings_become_notes() -> None:
    import warnings

    def falls_back(x: Any) -> Any:
        def run() -> Any:
            warnings.warn("ftx.jit: a function torch.compile can trace, got X.\nmore", stacklevel=1)
            warnings.warn("some other library's warning", stacklevel=1)
            return x

        return run

    c = _case()
    c.impl("base")(lambda x: lambda: x)
    c.impl("jit", compiled=True)(falls_back)
    cfg = H.Config(quick=True, compile=True, min_run_time=0.002, warmup=0, rounds=1)
    r = _by_impl(H.run_case(c, cfg))["jit"]
    assert r.ok and r.notes == ["ftx.jit: a function torch.compile can trace, got X."]
    assert "see note" in R.format_table([r])
    assert R.format_notes([r]) == "note: test/c [jit]: " + r.notes[0]


def test_duplicate_names_are_rejected() -> None:
    c = _case()
    c.impl("a")(lambda x: lambda: x)
    with pytest.raises(ValueError, match=r"already has impl 'a'"):
        c.impl("a")(lambda x: lambda: x)
    load_all()
    first = next(iter(H.REGISTRY.values()))
    with pytest.raises(ValueError, match="registered twice"):
        H.case(first.group, first.name, lambda cfg: None)


def test_results_line_up_across_libraries() -> None:
    """A flat state dict, a nested ftx tree and a JAX-style dict flatten alike."""
    w, b = torch.ones(2, 3), torch.zeros(2)
    flat = {"0.weight": w, "0.bias": b, "10.bias": b + 1}
    nested = {"10": {"bias": b + 1}, "0": {"weight": w.numpy(), "bias": b.double()}}
    a, bb = H.to_numpy_leaves(flat), H.to_numpy_leaves(nested)
    assert H.compare(a, bb, 0.0, 0.0) == (None, 0.0)
    assert [x.dtype for x in bb] == [np.float64] * 3
    assert H.to_numpy_leaves((None, 2, 3.5, [True])) == [np.array(2.0), np.array(3.5),
                                                        np.array(1.0)]
    assert H.compare([np.array([1.0])], [np.array([math.nan])], 1e-3, 1e-3)[0] is not None
    assert H.compare([np.array([math.inf])], [np.array([math.inf])], 1e-3, 1e-3)[0] is None
    assert H.compare([np.array([math.inf])], [np.array([-math.inf])], 1e-3, 1e-3)[0] is not None


def test_requirements() -> None:
    assert H.missing_requirement("torch") is None
    assert H.missing_requirement("torch.func.grad") is None
    assert H.missing_requirement("no_such_module_ftx_bench") == "needs no_such_module_ftx_bench"
    assert H.missing_requirement("ftx.no_such_thing") == "not implemented"
    assert H.missing_requirement("torch.no_such_thing") == "needs torch.no_such_thing"


def test_select_is_a_regex_search_over_group_and_name() -> None:
    cases = [H.Case("a-tiny", "g1", lambda c: None), H.Case("b-big", "g2", lambda c: None)]
    assert H.select(cases, None) == cases
    assert [c.full_name for c in H.select(cases, "tiny|g2/")] == ["g1/a-tiny", "g2/b-big"]
    assert H.select(cases, "^g2/b") == cases[1:]


# ---------------------------------------------------------------- the report


def _results() -> list[H.Result]:
    c = _case("toy")
    c.impl("base")(lambda x: lambda: x * 2)
    c.impl("ftx")(lambda x: lambda: x + x)
    c.impl("skip", requires=("no_such_module_ftx_bench",))(lambda x: lambda: x)
    return H.run_case(c, FAST)


def test_table_json_and_chart(tmp_path: Path) -> None:
    results = _results()
    table = R.format_table(results)
    assert table.splitlines()[0].split() == [
        "case", "implementation", "median", "IQR/median", "ratio", "compile", "status"]
    assert "1.00x (base)" in table and "skipped: needs no_such_module_ftx_bench" in table
    md = R.format_table(results, markdown=True)
    assert md.startswith("| case | implementation |") and "`test/toy`" in md

    R.write_json(tmp_path / "r.json", results, FAST, ["--quick"])
    doc = json.loads((tmp_path / "r.json").read_text())
    for key in ("cpu", "cpu_count", "torch_threads", "torch", "jax", "date", "gpu",
                "load_average", "load_average_at_end"):
        assert key in doc["machine"]
    assert doc["command"] == "python -m benchmarks --quick"
    assert [r["status"] for r in doc["results"]][:2] == ["ok", "ok"]
    assert doc["results"][0]["ratio"] == pytest.approx(1.0)

    assert R.write_chart(tmp_path / "r.png", results, "toy", R.machine_line(R.machine_info()))
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not R.write_chart(tmp_path / "none.png", results[2:], "nothing ran")


@pytest.mark.parametrize(
    "ratio, text",
    [(1 / 3000, "3 000x faster"), (1 / 141_234, "140 000x faster"), (0.5, "2.0x faster"),
     (1.3, "1.30x slower"), (25.4, "25x slower"), (1.004, "same (1.00x)"), (0.0, "-")],
    ids=["3000", "140k", "half", "1.3", "25", "same", "zero"],
)
def test_speed_labels_read_at_a_glance(ratio: float, text: str) -> None:
    assert R.speed_label(ratio) == text


def test_chart_axis_labels_are_plain_text() -> None:
    """No mathtext (the old chart showed $\\mathdefault{10^{-3}}$ literally)."""
    assert R._axis_label(1e-3) == "1 000x\nfaster"
    assert R._axis_label(1.0) == "baseline"
    assert R._axis_label(100.0) == "100x\nslower"


def test_machine_line_is_readable() -> None:
    info = {"cpu": "Some CPU", "cpu_count": 2, "torch": "2.13.0", "torch_threads": 2,
            "jax": "0.10.2", "date": "2026-11-30T15:40:00+00:00", "load_average": [7.5, 6, 5.25],
            "malloc": "default"}
    assert R.machine_line(info) == (
        "Some CPU (2 cores), torch 2.13.0 (2 threads), jax 0.10.2, 2026-11-30 15:40 UTC, "
        "load average 7.5 / 6.0 / 5.2 (1/5/15 min), malloc: default")


def test_tuned_rows_are_labelled() -> None:
    results = _results()
    label_rows(results, "tuned malloc")
    assert [r.impl for r in results] == ["base (tuned malloc)", "ftx (tuned malloc)",
                                         "skip (tuned malloc)"]
    assert all(r.baseline == "base (tuned malloc)" for r in results)


@pytest.mark.parametrize(
    "seconds, text",
    [(2.5, "2.5 s"), (0.0123, "12.3 ms"), (4.56e-5, "45.6 us"), (3e-9, "3 ns"), (None, "-"),
     (0.0, "0")],
    ids=["s", "ms", "us", "ns", "none", "zero"],
)
def test_time_format(seconds: float | None, text: str) -> None:
    assert R.fmt_time(seconds) == text


# ---------------------------------------------------------------- the command line


def smoke_pattern() -> str:
    """One case per group: the first one that --quick runs (so a new group is covered too)."""
    assert load_all() == {}
    first: dict[str, str] = {}
    for c in H.REGISTRY.values():
        if not c.full_only:
            first.setdefault(c.group, c.full_name)
    return "|".join(f"^{re.escape(name)}$" for name in first.values())


def test_every_group_has_a_quick_case() -> None:
    load_all()
    groups = {c.group for c in H.REGISTRY.values()}
    quick_groups = {c.group for c in H.REGISTRY.values() if not c.full_only}
    assert groups == quick_groups
    assert {"wrapper", "fastpath", "why_vmap", "per_sample_grads", "jacobians", "train_step",
            "nn", "optim", "picograd", "random"} <= groups


def test_quick_smoke_run_one_case_per_group(tmp_path: Path, capsys: Any) -> None:
    pattern = smoke_pattern()
    rc = main(["--quick", "--filter", pattern, "--out", str(tmp_path), "--no-progress",
               "--min-run-time", "0.005"])
    out = capsys.readouterr()
    assert rc == 0, out.err[-3000:]
    doc = json.loads((tmp_path / "benchmarks-cpu-quick.json").read_text())
    results = doc["results"]
    groups = {r["group"] for r in results}
    assert groups == {c.group for c in H.REGISTRY.values()}
    assert not [r for r in results if r["status"].startswith(("mismatch", "error"))]
    for group in groups:
        ran = [r for r in results if r["group"] == group and r["status"] == "ok"]
        # the baseline and at least one peer ran and agreed with it
        assert len(ran) >= 2, (group, [(r["impl"], r["status"]) for r in results])
    assert (tmp_path / "benchmarks-cpu-quick.png").exists()
    md = (tmp_path / "benchmarks-cpu-quick.md").read_text()
    assert "| case | implementation |" in md and "`wrapper/grad-tiny`" in md
    assert "implementation" in out.out and "wrote" in out.out


@pytest.mark.parametrize(
    "argv, code, message",
    [
        pytest.param(["--filter", "^no-such-case$"], 2, "no case matches", id="empty-filter"),
        pytest.param(["--device", "tpu"], 2, "invalid choice", id="bad-device"),
    ],
)
def test_cli_errors(argv: list[str], code: int, message: str, capsys: Any) -> None:
    try:
        rc = main([*argv, "--no-progress"])
    except SystemExit as exc:  # argparse
        rc = int(exc.code or 0)
    assert rc == code
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_a_device(capsys: Any) -> None:
    assert main(["--device", "cuda", "--quick", "--no-progress"]) == 2
    assert "--device cuda needs a CUDA device" in capsys.readouterr().err


def test_list(capsys: Any) -> None:
    assert main(["--list", "--filter", "^wrapper/"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("wrapper/") for line in lines)


@pytest.mark.slow
def test_quick_compiled_train_step(tmp_path: Path) -> None:
    """--compile runs the ftx.jit step under --quick, and it agrees with nn.Module + optim."""
    rc = main(["--quick", "--compile", "--filter", "^train_step/mlp32-64-64-10-b64$",
               "--out", str(tmp_path), "--no-progress", "--min-run-time", "0.005"])
    assert rc == 0
    doc = json.loads((tmp_path / "benchmarks-cpu-quick.json").read_text())
    status = {r["impl"]: r for r in doc["results"]}
    assert status["ftx.jit"]["status"] == "ok"
    assert status["ftx.jit"]["compiled"] and status["ftx.jit"]["first_call_s"] > 0


def test_keep_freed_memory_sets_glibc_thresholds() -> None:
    """On glibc both mallopt calls are accepted; elsewhere the run says it kept the default."""
    import platform

    got = keep_freed_memory()
    if platform.libc_ver()[0] == "glibc":
        assert got == "glibc mallopt: M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=2 GiB"
    else:  # pragma: no cover - this project's machines run glibc
        assert got.startswith("default")


def test_command_line_run_default_and_tuned_malloc(tmp_path: Path) -> None:
    """``python -m benchmarks`` leaves the C library and torch's allocator alone;
    ``--tuned-malloc`` restarts itself with THP_MEM_ALLOC_ENABLE=1, sets glibc's
    thresholds, says so in the JSON and labels every row."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    root = Path(__file__).resolve().parents[1]
    for extra, want in ((["--tuned-malloc"], "THP_MEM_ALLOC_ENABLE=1"), ([], None)):
        out = tmp_path / ("tuned" if extra else "default")
        subprocess.run(
            [sys.executable, "-m", "benchmarks", "--quick", "--no-compile", "--no-progress",
             "--filter", "wrapper/grad-tiny", "--out", str(out), *extra],
            cwd=root, env=env, check=True, capture_output=True, timeout=300,
        )
        stem = "benchmarks-cpu-quick" + ("-tuned-malloc" if extra else "")
        doc = json.loads((out / f"{stem}.json").read_text())
        malloc = doc["machine"]["malloc"]
        impls = {r["impl"] for r in doc["results"]}
        if want is None:
            assert malloc == "default"
            assert impls == {"torch.func", "ftx"}
        else:
            assert want in malloc and malloc.startswith("glibc mallopt")
            assert impls == {"torch.func (tuned malloc)", "ftx (tuned malloc)"}


# ---------------------------------------------------------------- compile latency


def test_compile_phases_from_nested_wall_times() -> None:
    """Each phase is its region minus the regions nested in it; the rest is 'other'."""
    before = {"bytecode_tracing": [1.0]}
    after = {"bytecode_tracing": [1.0, 0.5], "build_guards": [0.1], "compile_file": [0.75, 1.0]}
    records = CL.metrics_delta(before, after)
    assert records == {"bytecode_tracing": [0.5], "build_guards": [0.1],
                       "compile_file": [0.75, 1.0]}
    spent = CL.spent_delta({"entire_frame_compile": 1.0, "gc": 0.5},
                           {"entire_frame_compile": 5.0, "backend_compile": 3.5, "gc": 0.5,
                            "inductor_compile": 3.0, "code_gen": 2.0})
    assert spent == {"entire_frame_compile": 4.0, "backend_compile": 3.5,
                     "inductor_compile": 3.0, "code_gen": 2.0}
    got = CL.phases(spent, records, compile_s=4.25)
    assert got == pytest.approx({"dynamo": 0.4, "guards": 0.1, "aot_autograd": 0.5,
                                 "cache_load": 0.0, "inductor": 1.25, "cpp_compile": 1.75,
                                 "other": 0.25})
    # AOT autograd's cache hit: no inductor compile, the module is loaded
    got = CL.phases({"entire_frame_compile": 3.0, "backend_compile": 2.5},
                    {"AOTAutogradCache.inductor_load": [2.0]}, 3.0)
    assert got["cache_load"] == 2.0 and got["aot_autograd"] == 0.5 and got["inductor"] == 0
    # C++ builds in parallel threads: the main thread's wait stands in, capped by code_gen
    spent = {"entire_frame_compile": 4.0, "backend_compile": 3.5, "inductor_compile": 3.0,
             "code_gen": 2.0, "async_compile.wait": 1.5}
    got = CL.phases(spent, {"compile_file": [3.0, 3.0]}, 4.0)
    assert got["cpp_compile"] == 1.5 and got["inductor"] == 1.5 and got["other"] == 0.0
    assert CL.phases({}, {"compile_file": [3.0]}, 1.0)["cpp_compile"] == 0.0
    # a lazily compiled backward graph: AOT autograd and inductor outside the frame compile
    spent = {"entire_frame_compile": 30.9, "backend_compile": 26.2, "entire_backward_compile": 16.3,
             "inductor_compile": 38.6, "code_gen": 34.8, "async_compile.wait": 26.5}
    got = CL.phases(spent, {"build_guards": [0.6]}, 47.5)
    assert got == pytest.approx({"dynamo": 4.1, "guards": 0.6, "aot_autograd": 3.9,
                                 "cache_load": 0.0, "inductor": 12.1, "cpp_compile": 26.5,
                                 "other": 0.3})


def test_compile_phases_of_a_real_compile() -> None:
    """On a real torch.compile the regions are there and the phases fit in the first call."""
    import time

    before, spent0, _ = CL._torch_snapshot()
    f = torch.compile(lambda x: torch.sin(x) * 3 + 1)
    t0 = time.perf_counter()
    f(torch.ones(5))
    wall = time.perf_counter() - t0
    after, spent1, counters = CL._torch_snapshot()
    ph = CL.phases(CL.spent_delta(spent0, spent1), CL.metrics_delta(before, after), wall)
    assert set(ph) == set(CL.PHASES)
    assert ph["dynamo"] > 0
    assert ph["inductor"] + ph["cache_load"] > 0  # compiled, or loaded from inductor's cache
    assert sum(ph.values()) == pytest.approx(wall, rel=0.05)
    assert counters["unique_graphs"] >= 1


def test_jax_peer_matching() -> None:
    assert CL.jax_peer("ftx.jit(jacfwd)", ["jax.jit(jacfwd)", "jax.jit(jacrev)"]) == \
        "jax.jit(jacfwd)"
    assert CL.jax_peer("ftx.jit", ["jax.jit+optax"]) == "jax.jit+optax"
    assert CL.jax_peer("ftx.jit(hessian)", ["jax.jit(a)", "jax.jit(b)"]) is None
    assert CL.jax_peer("torch.compile(x)", []) is None


def test_compile_latency_child_process_jax(tmp_path: Path) -> None:
    """A real child process: first call, steady call and compile time of a jax.jit case."""
    out = CL.run_child("random/normal-2^20", "jax.random.normal (jit)", "own", str(tmp_path),
                       quick=True, device="cpu", threads=None, timeout=600)
    assert "error" not in out, out
    assert out["kind"] == "jax" and out["phases"] is None
    assert out["first_call_s"] >= out["steady_s"] > 0
    assert out["compile_s"] == pytest.approx(out["first_call_s"] - out["steady_s"])
    assert out["start_up_s"] > 0
    row = {"case": out["case"], "impl": out["impl"], "kind": "jax", "own": out,
           "cold": {"error": "exit 1: boom"}}
    table = CL.format_table([row])
    assert table.splitlines()[0].split()[:3] == ["case", "implementation", "cold"]
    assert "error" in table
    assert CL.errors([row]) == [f"{out['case']} [{out['impl']}] cold: exit 1: boom"]


def test_compile_latency_needs_a_compiled_case(capsys: Any) -> None:
    assert main(["--compile-latency", "--filter", "^wrapper/", "--no-progress"]) == 2
    assert "no case with a compiled implementation" in capsys.readouterr().err
