"""Bad input is said before torch and transformers load, and stdout carries only results.

Each case runs ``fastvid`` in a fresh process (its ``main()``, as the console script does) and records
the modules the process had loaded when it exited: a bad input must answer with one line on stderr, a
non-zero exit and nothing on stdout, without torch or transformers ever imported. Their import takes
seconds; how long each error path takes against it is measured by benchmarks/fast_errors.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers")

PROBE = textwrap.dedent(
    """\
    import atexit, os, sys
    atexit.register(lambda: open(os.environ["FASTVID_TEST_MODULES"], "w").write("\\n".join(sorted(sys.modules))))
    from fastvid_cli.cli import main
    sys.argv = ["fastvid", *sys.argv[1:]]
    main()
    """
)
"""Runs the CLI's entry point and, at exit, writes the names of the loaded modules where the environment says."""


def run_cli(tmp_path: Path, *args, stdin: str | None = None, env: dict | None = None) -> tuple[int, str, str, set[str]]:
    """``fastvid ARGS`` in a fresh process: (exit status, stdout, stderr, modules loaded at exit)."""
    modules = tmp_path / "modules.txt"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *[str(a) for a in args]],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"HF_HUB_OFFLINE": "1", "FASTVID_TEST_MODULES": str(modules)} | (env or {}),
        check=False,
    )
    loaded = set(modules.read_text().split()) if modules.exists() else set()
    return proc.returncode, proc.stdout, proc.stderr, loaded


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


VIDEO = ROOT / "sample_videos" / "bikes.mp4"

CASES = {
    # ask
    "ask-missing": (lambda f: ["ask", f["dir"] / "missing.mp4", "q", "--model", "tiny-random"], "no such file"),
    "ask-folder": (lambda f: ["ask", f["dir"], "q", "--model", "tiny-random"], "not a file"),
    "ask-text-file": (lambda f: ["ask", f["text"], "q", "--model", "tiny-random"], "not a readable video"),
    "ask-truncated": (lambda f: ["ask", f["truncated"], "q", "--model", "tiny-random"], "truncated or corrupt"),
    "ask-R>1": (lambda f: ["ask", VIDEO, "q", "-r", "1.5", "--model", "tiny-random"], "retention ratio must be in (0, 1]"),
    "ask-R=0": (lambda f: ["ask", VIDEO, "q", "-r", "0", "--model", "tiny-random"], "retention ratio must be in (0, 1]"),
    "ask-unknown-model": (lambda f: ["ask", VIDEO, "q", "--model", "no-such-model"], "unknown model 'no-such-model'"),
    "ask-repo-not-cached": (lambda f: ["ask", VIDEO, "q", "--model", "no-org/no-model"], "not in the local cache"),
    "ask-folder-not-a-checkpoint": (lambda f: ["ask", VIDEO, "q", "--model", f["dir"]], "not a model checkpoint"),
    "ask-empty-question": (lambda f: ["ask", VIDEO, "  ", "--model", "tiny-random"], "question is empty"),
    "ask-empty-questions-file": (
        lambda f: ["ask", VIDEO, "--questions", f["empty"], "--model", "tiny-random"],
        "holds no question",
    ),
    # compare
    "compare-missing": (lambda f: ["compare", f["dir"] / "missing.mp4", "q", "--model", "tiny-random"], "no such file"),
    "compare-methods-missing": (
        lambda f: ["compare", f["dir"] / "missing.mp4", "q", "--method", "fastvid", "uniform", "-r", "0.1", "0.2"],
        "no such file",
    ),
    "compare-text-file": (lambda f: ["compare", f["text"], "q", "--model", "tiny-random"], "not a readable video"),
    "compare-R": (lambda f: ["compare", VIDEO, "q", "-r", "0.1", "2", "--model", "tiny-random"], "retention ratio"),
    "compare-unknown-model": (lambda f: ["compare", VIDEO, "q", "--model", "no-such-model"], "unknown model"),
    "compare-empty-question": (lambda f: ["compare", VIDEO, " ", "--model", "tiny-random"], "question is empty"),
    # batch
    "batch-unknown-model": (lambda f: ["batch", VIDEO, "-q", "q", "--model", "no-such-model", "-o", f["out"]], "unknown model"),
    "batch-R": (lambda f: ["batch", VIDEO, "-q", "q", "-r", "-1", "--model", "tiny-random", "-o", f["out"]], "retention ratio"),
    "batch-empty-question": (lambda f: ["batch", VIDEO, "-q", " ", "--model", "tiny-random", "-o", f["out"]], "question"),
    "batch-no-videos": (lambda f: ["batch", f["no_videos"], "-q", "q", "-o", f["out"]], "no videos to process"),
    "batch-empty-questions-file": (lambda f: ["batch", "--questions", f["empty"], "-o", f["out"]], "no videos to process"),
    "batch-output-exists": (lambda f: ["batch", VIDEO, "-q", "q", "-o", f["text"]], "exists: pass --resume"),
    "batch-stdout-resume": (lambda f: ["batch", VIDEO, "-q", "q", "-o", "-", "--resume"], "need a results file"),
    # show
    "show-missing": (lambda f: ["show", f["dir"] / "missing.mp4", "--model", "tiny-random"], "no such file"),
    "show-truncated": (lambda f: ["show", f["truncated"], "--model", "tiny-random"], "truncated or corrupt"),
    "show-R": (lambda f: ["show", VIDEO, "-r", "7", "--model", "tiny-random"], "retention ratio"),
    "show-unknown-model": (lambda f: ["show", VIDEO, "--model", "no-such-model"], "unknown model"),
    # bench
    "bench-video-missing": (lambda f: ["bench", "--video", f["dir"] / "missing.mp4", "--model", "tiny-random"], "no such file"),
    "bench-video-text-file": (lambda f: ["bench", "--video", f["text"], "--model", "tiny-random"], "not a readable video"),
    "bench-unknown-model": (lambda f: ["bench", "--model", "no-such-model"], "unknown model"),
    "bench-R": (lambda f: ["bench", "-r", "0", "--model", "tiny-random"], "retention ratio"),
    # flops
    "flops-unknown-model": (lambda f: ["flops", "--model", "no-such-model"], "unknown model"),
    "flops-R": (lambda f: ["flops", "-r", "1.01"], "retention ratio"),
    "flops-video-missing": (lambda f: ["flops", "--video", f["dir"] / "missing.mp4"], "no such file"),
}


@pytest.fixture()
def inputs(tmp_path, broken_files) -> dict[str, Path]:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    out = tmp_path / "out" / "results.jsonl"
    no_videos = tmp_path / "no-videos"
    no_videos.mkdir()
    (no_videos / "notes.txt").write_text("not a video\n")
    return broken_files | {"dir": broken_files["text"].parent, "empty": empty, "out": out, "no_videos": no_videos}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_answers_without_torch(tmp_path, inputs, name):
    make_args, message = CASES[name]
    status, out, err, loaded = run_cli(tmp_path, *make_args(inputs))
    assert status == 2, err
    assert out == ""
    assert message in error_line(err)
    assert loaded, "the probe recorded the modules"
    assert "fastvid_cli.cli" in loaded
    assert [m for m in HEAVY if m in loaded] == []


def test_the_probe_sees_torch_where_it_loads(tmp_path):
    """The module record is not blind: a good input that needs the library shows torch loaded."""
    status, out, err, loaded = run_cli(tmp_path, "flops", "--model", "tiny-random", "-r", "0.1", "--json")
    assert status == 0, err
    assert json.loads(out)["rows"]
    assert "torch" in loaded


def test_resume_with_nothing_left_loads_no_model(tmp_path):
    """Every item is in the output already: the batch ends with its counts, torch never imported."""
    out = tmp_path / "results.jsonl"
    videos = [ROOT / "sample_videos" / name for name in ("bikes.mp4", "carphone.mp4")]
    out.write_text("".join(json.dumps({"id": str(v), "video": str(v), "answer": "a"}) + "\n" for v in videos))
    # an unknown model: were it looked for, the run would fail
    status, stdout, err, loaded = run_cli(tmp_path, "batch", *videos, "-q", "q", "-o", out, "--resume", "--model", "nope")
    assert status == 0, err
    assert stdout == ""
    assert "0 answered, 0 failed, 2 skipped" in err
    assert [m for m in HEAVY if m in loaded] == []
    assert len(out.read_text().splitlines()) == 2  # untouched


def test_batch_to_stdout_is_json_lines_only(tmp_path, broken_files, tiny_dir):
    """`batch -o -` over good and bad files: every stdout line is one JSON object, one per video; the
    failures say what is wrong in a line of their own, without decord's C++ internals."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("bikes.mp4", "carphone.mp4"):
        (folder / name).write_bytes((ROOT / "sample_videos" / name).read_bytes())
    for key in ("text", "truncated"):
        (folder / broken_files[key].name).write_bytes(broken_files[key].read_bytes())
    data = bytearray((ROOT / "sample_videos" / "bikes.mp4").read_bytes())
    data[100_000:400_000] = bytes(300_000)  # the header reads, the frames do not decode
    (folder / "zeroed.mp4").write_bytes(bytes(data))
    args = [
        "batch",
        folder,
        "-q",
        "What is this?",
        "--model",
        "tiny-random",
        "-o",
        "-",
        "--max-new-tokens",
        "2",
        "--prefetch",
        "1",
    ]
    status, out, err, _ = run_cli(tmp_path, *args)
    assert status == 1, err  # some items failed
    records = [json.loads(line) for line in out.splitlines()]  # every line is JSON
    assert len(records) == 5 and all(isinstance(r, dict) for r in records)
    by_name = {Path(r["video"]).name: r for r in records}
    assert set(by_name) == {"bikes.mp4", "carphone.mp4", "notes.mp4", "truncated.mp4", "zeroed.mp4"}
    assert "answer" in by_name["bikes.mp4"] and "answer" in by_name["carphone.mp4"]
    assert "not a readable video" in by_name["notes.mp4"]["error"]
    for name in ("truncated.mp4", "zeroed.mp4"):
        assert "truncated or corrupt" in by_name[name]["error"]
        assert ".cc:" not in by_name[name]["error"] and "Check failed" not in by_name[name]["error"]
    assert "3 failed" in err and "-> stdout" in err
    assert ".cc:" not in err and "ERROR opening" not in err  # decord's own log lines, from the prefetch thread
    assert not (tmp_path / "-").exists() and not Path("-").exists()


NATIVE = textwrap.dedent(
    """\
    import ctypes, os, sys
    from fastvid_cli.streams import native_output_to_stderr
    with native_output_to_stderr():
        os.write(1, b"native write to fd 1\\n")
        ctypes.CDLL(None).printf(b"native printf\\n")  # C stdio, buffered when fd 1 is a pipe
        print("result")
    print("after")
    """
)


def test_native_output_goes_to_stderr():
    proc = subprocess.run([sys.executable, "-c", NATIVE], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "result\nafter\n"
    assert "native write to fd 1" in proc.stderr and "native printf" in proc.stderr


QUIET = textwrap.dedent(
    """\
    import os, sys, threading
    from fastvid_cli.streams import native_output_to_stderr, quiet_native_stderr
    def worker():
        with quiet_native_stderr():
            os.write(2, b"native log line\\n")
            print("python line", file=sys.stderr, flush=True)
    with native_output_to_stderr():
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        os.write(2, b"native after\\n")
    """
)


def test_a_library_log_is_silenced_from_a_thread_but_python_output_is_not():
    """Under the CLI's streams, fd 2 silenced in a background thread hides the native line only: Python's
    stderr is its own copy of the real one, and fd 2 is back afterwards."""
    proc = subprocess.run([sys.executable, "-c", QUIET], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "native log line" not in proc.stderr
    assert "python line" in proc.stderr and "native after" in proc.stderr
