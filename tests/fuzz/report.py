"""Run the fuzz suite in record mode and write the violation report (and the xfail list).

    python -m tests.fuzz.report                  # CI-size run -> /tmp/fuzz_report.md
    python -m tests.fuzz.report --long           # 20x examples (the nightly run)
    python -m tests.fuzz.report --write-xfail    # also regenerate tests/fuzz/_xfail.py

Violations are grouped by the file that should change: the innermost ftx frame of the
exception (wrong class, wrong message, timeout), else the API's own file (mutated inputs,
leaked state, changed files). Each distinct signature (API, kind, exception, place) is
listed once, with its smallest reproducer.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
XFAIL_FILE = Path(__file__).with_name("_xfail.py")
# Files whose violations are fixed here, never xfailed.
MINE = ("ftx/tree.py", "ftx/picograd/", "ftx/_transforms/jit.py", "ftx/distributed/",
        "ftx/_internal/errors.py")


def run(long: bool, extra: list[str]) -> tuple[list[dict[str, Any]], float, str]:
    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "violations.jsonl")
        env = dict(os.environ, FTX_FUZZ_RECORD=record)
        env.pop("FTX_FUZZ_LONG", None)
        cmd = [sys.executable, "-m", "pytest", "tests/fuzz", "-q", "-rf", "-p",
               "no:cacheprovider", *(["--fuzz-long"] if long else []), *extra]
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        took = time.monotonic() - start
        out = (proc.stdout + proc.stderr).strip().splitlines()
        tail = out[-1:] or [""]
        failed = [line for line in out if line.startswith("FAILED ")]
        if failed:  # not a violation: the suite itself broke (a table or pool error)
            tail = [tail[0] + "; " + "; ".join(failed)]
        rows = []
        if os.path.exists(record):
            with open(record) as f:
                rows = [json.loads(line) for line in f if line.strip()]
    return rows, took, tail[0]


def owner(r: dict[str, Any]) -> str:
    """The file to change: for a RecursionError, the ftx file that recursed (most frames)."""
    return str(r.get("recursing") or r["owner"])


def signature(r: dict[str, Any]) -> tuple[str, ...]:
    detail = r["detail"].split(":", 1)[0] if r["kind"] in ("class", "message") else r["kind"]
    return (owner(r), r["api"], r["kind"], str(r["exc"]), str(r["where"]), detail)


def case_id(r: dict[str, Any]) -> str:
    return f"{r['api']}[{r['slot']}]"


def mine(owner: str) -> bool:
    return any(owner.startswith(m) for m in MINE)


def write_report(rows: list[dict[str, Any]], path: Path, cmd: str, took: float, tail: str,
                 xfail: dict[str, tuple[str, ...]]) -> None:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = collections.defaultdict(list)
    for r in rows:
        groups[signature(r)].append(r)
    by_owner: dict[str, list[tuple[tuple[str, ...], list[dict[str, Any]]]]] = \
        collections.defaultdict(list)
    for sig, rs in groups.items():
        by_owner[sig[0]].append((sig, rs))
    lines = [
        "# ftx bad-input fuzz report (issue 20)", "",
        f"Command: `{cmd}` ({took:.0f} s; pytest: {tail})", "",
        f"{len(rows)} violating examples, {len(groups)} distinct signatures, "
        f"{len({case_id(r) for r in rows})} cases (api[slot]) affected, "
        f"{len(by_owner)} files.", "",
        "Reproducers run from the repository root after "
        "`import torch, numpy as np, ftx; from tests.fuzz._values import *` (the helpers "
        "`cyc_list`, `deep`, `lying`, `f_sin`... live there).", "",
        "Contract (tests/fuzz/_contract.py): TypeError/ValueError only, message "
        "`^ftx\\.[\\w.]+: .+, got .+\\.`, inputs unchanged, no global state leaked, no file "
        "changed on failure, answer within 10 s. Documented exceptions: tests/fuzz/_allow.py.",
        "",
    ]
    for owner in sorted(by_owner, key=lambda o: (mine(o), o)):
        entries = sorted(by_owner[owner], key=lambda e: (e[0][1], e[0][2]))
        lines += [f"## {owner} ({len(entries)} signatures)", ""]
        for sig, rs in entries:
            best = min(rs, key=lambda r: len(r["repro"]))
            cases = sorted({case_id(r) for r in rs})
            lines += [
                f"- **ftx.{sig[1]}** [{sig[2]}] at `{sig[4]}`, {len(rs)} examples, cases "
                f"{', '.join(cases[:6])}{' ...' if len(cases) > 6 else ''}",
                f"  - repro: `{best['repro']}`",
                f"  - raw: `{best['detail'][:300]}`",
            ]
        lines.append("")
    lines += ["## Temporary strict xfails (tests/fuzz/_xfail.py)", ""]
    if xfail:
        lines += [f"- `{cid}`: owner fixing: {', '.join(owners)}"
                  for cid, owners in sorted(xfail.items())]
    else:
        lines.append("(none)")
    path.write_text("\n".join(lines) + "\n")


def write_xfail(rows: list[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    owners: dict[str, set[str]] = collections.defaultdict(set)
    for r in rows:
        owners[case_id(r)].add(owner(r))
    xfail = {cid: tuple(sorted(o)) for cid, o in sorted(owners.items())
             if not any(mine(x) for x in o)}
    head = XFAIL_FILE.read_text().split("XFAIL: dict")[0]
    body = "".join(f"    {cid!r}: {owners_!r},\n" for cid, owners_ in xfail.items())
    XFAIL_FILE.write_text(f"{head}XFAIL: dict[str, tuple[str, ...]] = {{\n{body}}}\n")
    return xfail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--long", action="store_true", help="20x examples (the nightly run)")
    ap.add_argument("--out", default="/tmp/fuzz_report.md")
    ap.add_argument("--write-xfail", action="store_true",
                    help="regenerate tests/fuzz/_xfail.py from a CI-size run")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()
    rows, took, tail = run(args.long, args.pytest_args)
    cmd = "python -m tests.fuzz.report" + (" --long" if args.long else "")
    if args.write_xfail:
        ci_rows = rows if not args.long else run(False, args.pytest_args)[0]
        xfail = write_xfail(ci_rows)
    else:
        sys.path.insert(0, str(ROOT))
        from tests.fuzz._xfail import XFAIL
        xfail = XFAIL
    write_report(rows, Path(args.out), cmd, took, tail, xfail)
    print(f"{len(rows)} violating examples, {len({signature(r) for r in rows})} signatures; "
          f"report: {args.out}; {len(xfail)} xfails")


if __name__ == "__main__":
    main()
