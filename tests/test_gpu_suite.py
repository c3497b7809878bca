"""benchmarks/gpu_suite.py --smoke: every GPU check runs at tiny sizes on the CPU, so the suite a GPU
session runs in its one device call cannot rot in between (issue 19)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "gpu_suite.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_suite

CHECK_NAMES = [c.name for c in gpu_suite.CHECKS]


def run_suite(out: Path, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, float]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "PYTHONUNBUFFERED": "1",
    }
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SUITE), "--smoke", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    return proc, time.monotonic() - start


def read(out: Path) -> tuple[dict, str]:
    [path] = out.glob("*-smoke.json")
    return json.loads(path.read_text()), path.with_suffix(".md").read_text()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the whole suite: (process, wall seconds, report, markdown)."""
    out = tmp_path_factory.mktemp("gpu-suite-smoke")
    proc, wall = run_suite(out)
    report, md = read(out)
    return proc, wall, report, md


def test_smoke_has_an_entry_for_every_check(smoke):
    proc, wall, report, _ = smoke
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert report["smoke"] is True
    assert [c["name"] for c in report["checks"]] == CHECK_NAMES
    for check in report["checks"]:
        assert check["status"] in ("ok", "skipped"), (check["name"], check.get("reason"), check.get("traceback"))
        if check["status"] == "skipped":
            assert check["reason"].strip(), check["name"]
        else:
            assert check["data"], check["name"]
            assert check["seconds"] <= check["allowance_s"] + 1.0
    assert report["elapsed_s"] <= report["settings"]["budget_s"] == 90
    print(f"smoke: {wall:.1f} s wall, {report['elapsed_s']:.1f} s in the checks")


def test_smoke_records_where_and_what_it_ran(smoke):
    _, _, report, _ = smoke
    env = report["environment"]
    for key in ("device", "device_type", "torch", "transformers", "python", "date", "commit", "dirty"):
        assert key in env, key
    assert env["device_type"] == "cpu"
    assert report["settings"]["sizes"]["smoke"] is True
    assert set(report["settings"]["shares"]) == set(CHECK_NAMES)
    for target in report["targets"]:
        assert {"name", "value", "target", "met", "source", "how"} <= set(target)
    ok = {c["name"]: c["data"] for c in report["checks"] if c["status"] == "ok"}
    if "llava_ov_7b_prefill_pruning" in ok:
        bench = ok["llava_ov_7b_prefill_pruning"]["sdpa"]
        assert [p["retention"] for p in bench["prefill"]] == [1.0, 0.1, 0.25]
        assert {p["spec"] for p in bench["pruning"]} == {"fastvid", "uniform", "visionzip", "dycoke"}
    if "fastvid_device_vs_cpu" in ok:
        assert all(c["indices_equal"] for c in ok["fastvid_device_vs_cpu"]["float32"])


def test_smoke_markdown_is_well_formed(smoke):
    _, _, _report, md = smoke
    assert md.startswith("<!-- written by benchmarks/gpu_suite.py")
    lines = md.splitlines()
    tables = 0
    for i, line in enumerate(lines):
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|")):  # a table's header
            tables += 1
            cells = line.count("|")
            assert set(lines[i + 1].replace("|", "")) == {"-"}, lines[i + 1]
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                assert lines[j].count("|") == cells, (line, lines[j])
                j += 1
    assert tables >= 2
    for name in CHECK_NAMES:
        assert f"| {name} |" in md


def test_no_budget_skips_every_check_saying_why(tmp_path):
    proc, _ = run_suite(tmp_path, "--budget-s", "0", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report, _md = read(tmp_path)
    assert [c["status"] for c in report["checks"]] == ["skipped"] * len(CHECK_NAMES)
    assert all(c["reason"].startswith("would pass the budget") for c in report["checks"])


def test_budget_shares_pass_unused_time_on():
    budget = gpu_suite.Budget(100.0, [0.2, 0.3, 0.5])
    assert budget.allowance(0) == pytest.approx(20, abs=0.5)
    assert budget.allowance(1) == pytest.approx(50, abs=0.5)  # its 30 s and the first's 20 unused
    budget.start -= 90  # 90 s gone: the last has what is left, not its whole share
    assert budget.allowance(2) == pytest.approx(10, abs=0.5)


def test_time_limit_stops_a_check():
    start = time.monotonic()
    with pytest.raises(gpu_suite.OverShare), gpu_suite.time_limit(0.2, "spin"):
        while True:
            pass
    assert time.monotonic() - start < 2
