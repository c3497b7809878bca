"""How fast a bad input is answered: each error path of the CLI against ``import torch, transformers``.

A bad input (a missing or unreadable video, R outside (0, 1], an unknown model, an empty question...)
is checked before torch and transformers load, so its answer should cost a small part of their import.
Each case runs ``fastvid`` in a fresh process, as a user types it, ``--repeats`` times interleaved with
``python -c "import torch, transformers"`` (the reference, measured in the same run), and the medians
are compared: the target is each error path under half of the import (``--target``), also reported as
the worst ratio. Wall-clock seconds include the interpreter's start in both. Every error path must
exit 2 with one line on stderr; a case that does not is reported and fails the run.

Usage::

    python benchmarks/fast_errors.py [--repeats 5] [--output benchmarks/results/fast-errors-cpu.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEO = ROOT / "sample_videos" / "bikes.mp4"


def cases(work: Path) -> dict[str, list[str]]:
    """Error path -> ``fastvid`` arguments; the files they need are written under ``work``."""
    text = work / "notes.mp4"
    text.write_text("this is not a video\n")
    truncated = work / "truncated.mp4"
    data = VIDEO.read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    empty = work / "empty.txt"
    empty.write_text("\n")
    out = str(work / "results.jsonl")
    missing = str(work / "missing.mp4")
    return {
        "ask: missing file": ["ask", missing, "q", "--model", "tiny-random"],
        "ask: a folder": ["ask", str(work), "q", "--model", "tiny-random"],
        "ask: text file named .mp4": ["ask", str(text), "q", "--model", "tiny-random"],
        "ask: truncated video": ["ask", str(truncated), "q", "--model", "tiny-random"],
        "ask: R = 1.5": ["ask", str(VIDEO), "q", "-r", "1.5", "--model", "tiny-random"],
        "ask: unknown model": ["ask", str(VIDEO), "q", "--model", "no-such-model"],
        "ask: repo neither cached nor reachable": ["ask", str(VIDEO), "q", "--model", "no-org/no-model"],
        "ask: empty question": ["ask", str(VIDEO), " ", "--model", "tiny-random"],
        "ask: empty --questions file": ["ask", str(VIDEO), "--questions", str(empty), "--model", "tiny-random"],
        "compare: missing file": ["compare", missing, "q", "--model", "tiny-random"],
        "compare: R = 0": ["compare", str(VIDEO), "q", "-r", "0", "--model", "tiny-random"],
        "batch: unknown model": ["batch", str(VIDEO), "-q", "q", "--model", "no-such-model", "-o", out],
        "batch: empty question": ["batch", str(VIDEO), "-q", " ", "-o", out],
        "show: truncated video": ["show", str(truncated), "--model", "tiny-random"],
        "bench --video: missing file": ["bench", "--video", missing, "--model", "tiny-random"],
        "flops --model: unknown model": ["flops", "--model", "no-such-model"],
    }


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, timeout=600)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.5, help="Largest allowed error path / import ratio.")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "fast-errors-cpu.json")
    args = parser.parse_args()

    exe = shutil.which("fastvid", path=os.path.dirname(sys.executable)) or shutil.which("fastvid")
    if exe is None:
        sys.exit("the fastvid console script is not installed in this environment")
    env = os.environ | {"HF_HUB_OFFLINE": "1"}  # no network here: a repo id not cached is said at once
    reference = [sys.executable, "-c", "import torch, transformers"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = cases(Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in paths}
        import_times: list[float] = []
        failures: dict[str, str] = {}
        messages: dict[str, str] = {}
        timed(reference, env)  # one untimed run of each: the files are in the page cache for all
        for argv in paths.values():
            timed([exe, *argv], env)
        for _ in range(args.repeats):  # interleaved: a busy moment of the machine hits both alike
            import_times.append(timed(reference, env)[0])
            for name, argv in paths.items():
                seconds, proc = timed([exe, *argv], env)
                times[name].append(seconds)
                lines = [line for line in proc.stderr.splitlines() if line.strip()]
                if proc.returncode != 2 or proc.stdout or len(lines) != 1:
                    failures[name] = f"exit {proc.returncode}, stdout {proc.stdout[:80]!r}, stderr {proc.stderr[-200:]!r}"
                else:
                    messages[name] = lines[0]
    import_s = statistics.median(import_times)
    rows = [
        {
            "case": name,
            "median_s": round(statistics.median(runs), 3),
            "runs_s": [round(t, 3) for t in runs],
            "ratio_to_import": round(statistics.median(runs) / import_s, 3),
            "message": messages.get(name, ""),
        }
        for name, runs in times.items()
    ]
    worst = max(row["ratio_to_import"] for row in rows)
    import torch
    import transformers

    result = {
        "benchmark": "fast_errors",
        "device": {"machine": platform.machine(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__},
        "repeats": args.repeats,
        "import_torch_transformers_s": round(import_s, 3),
        "import_runs_s": [round(t, 3) for t in import_times],
        "target_ratio": args.target,
        "worst_ratio": worst,
        "met": worst <= args.target and not failures,
        "failures": failures,
        "cases": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    width = max(len(name) for name in times)
    print(f"{'import torch, transformers':<{width}}  {import_s:6.2f} s", file=sys.stderr)
    for row in rows:
        print(f"{row['case']:<{width}}  {row['median_s']:6.2f} s  {row['ratio_to_import']:5.2f} x import", file=sys.stderr)
    print(f"worst ratio {worst:.2f} (target <= {args.target}); {len(failures)} failed; wrote {args.output}", file=sys.stderr)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
