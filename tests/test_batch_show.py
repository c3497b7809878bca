"""fastvid batch (folders, failures, resume, Ctrl-C, two-process sharding) and fastvid show."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastvid_cli.cli import run
from fastvid_cli.engine.batch import collect_items

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ["bikes.mp4", "carphone.mp4"]
FAST = ["--model", "tiny-random", "--frames", "4", "--max-new-tokens", "3"]


def fastvid(capsys, *args):
    code = run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def console_script() -> str:
    exe = shutil.which("fastvid", path=os.path.dirname(sys.executable)) or shutil.which("fastvid")
    assert exe
    return exe


@pytest.fixture()
def folder(tmp_path, broken_files):
    """Two real clips (one in a sub-folder), a corrupt .mp4, a text file named .mp4, and a .txt to skip."""
    root = tmp_path / "videos"
    (root / "sub").mkdir(parents=True)
    shutil.copy(ROOT / "sample_videos" / CLIPS[0], root / CLIPS[0])
    shutil.copy(ROOT / "sample_videos" / CLIPS[1], root / "sub" / CLIPS[1])
    shutil.copy(broken_files["corrupt"], root / "corrupt.mp4")
    shutil.copy(broken_files["text"], root / "notes.mp4")
    (root / "readme.txt").write_text("not a video, and not a video name\n")
    return root


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_batch_answers_good_reports_bad(capsys, tiny_dir, folder, tmp_path):
    out = tmp_path / "results.jsonl"
    code, stdout, err = fastvid(capsys, "batch", folder, folder / "readme.txt", "-q", "What happens?", "-o", out, *FAST)
    assert code == 1, err  # some items failed
    rows = records(out)  # valid JSONL
    assert [Path(r["id"]).name for r in rows] == ["bikes.mp4", "corrupt.mp4", "notes.mp4", "carphone.mp4", "readme.txt"]
    good = [r for r in rows if "error" not in r]
    bad = [r for r in rows if "error" in r]
    assert {Path(r["video"]).name for r in good} == set(CLIPS)
    for r in good:
        assert r["answer"] and r["tokens"]["video_after"] == 4 * 19 and r["video_info"]["total_frames"] > 0
        assert {"model", "frames", "retention", "flops", "timing", "segments"} <= set(r)
    assert all("not a readable video" in r["error"] for r in bad)
    assert stdout == ""
    last = err.strip().splitlines()[-1]
    assert "2 answered, 3 failed" in last
    summary = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in err.splitlines() if line.startswith("│")}
    assert summary["answered"] == "2" and summary["failed"] == "3"  # the summary table, on stderr
    assert summary["video tokens after pruning"] == f"{2 * 4 * 19:,}"


def test_paths_from_stdin_and_questions_file(tmp_path):
    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS]
    items = collect_items(["-"], "q?", None, stdin_lines=[clips[0] + "\n", "\n", clips[1] + "\n"])
    assert [i.video for i in items] == clips and all(i.question == "q?" for i in items)
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        "\n".join(
            [
                json.dumps({"video": clips[0], "question": "a?", "id": "first"}),
                json.dumps({"video": clips[0], "question": "b?"}),
                json.dumps({"video": clips[0], "question": "c?"}),
            ]
        )
        + "\n"
    )
    items = collect_items([], None, qfile)
    assert [i.id for i in items] == ["first", clips[0], clips[0] + "#1"]
    assert [i.question for i in items] == ["a?", "b?", "c?"]


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "no videos to process"),
        (["VIDEO"], "give --question"),
        (["VIDEO", "-q", "x", "--questions", "BADJSON"], "not valid JSON"),
        (["VIDEO", "-q", "x", "--retention", "3"], "retention ratio"),
    ],
)
def test_batch_bad_usage(capsys, tmp_path, args, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    args = [str(ROOT / "sample_videos" / CLIPS[0]) if a == "VIDEO" else str(bad) if a == "BADJSON" else a for a in args]
    code, out, err = fastvid(capsys, "batch", *args, "-o", tmp_path / "r.jsonl", "--model", "tiny-random")
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_existing_output_needs_resume_or_overwrite(capsys, tiny_dir, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text('{"id": "x"}\n')
    code, _, err = fastvid(capsys, "batch", ROOT / "sample_videos" / CLIPS[0], "-q", "q", "-o", out, *FAST)
    assert code == 2 and "--resume" in err
    code, _, err = fastvid(capsys, "batch", ROOT / "sample_videos" / CLIPS[0], "-q", "q", "-o", out, "--overwrite", *FAST)
    assert code == 0 and len(records(out)) == 1


def test_resume_after_interrupt_does_only_the_rest(tiny_model, tmp_path):
    import threading

    from fastvid_cli.engine.batch import run_batch
    from fastvid_cli.engine.pipeline import AskOptions

    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS + ["big_buck_bunny.mp4"]]
    items = collect_items(clips, "What happens?", None)
    out = tmp_path / "r.jsonl"
    options = AskOptions(frames=4, max_new_tokens=2, baseline=False)
    stop = threading.Event()
    first = run_batch(tiny_model, items, out, options, stop=stop, on_item=lambda item, record: stop.set())
    assert first.interrupted and first.answered == 1 and len(records(out)) == 1
    kept_line = out.read_text()
    second = run_batch(tiny_model, items, out, options, resume=True)
    assert (second.skipped, second.answered, second.failed) == (1, 2, 0)
    rows = records(out)
    assert [r["id"] for r in rows] == clips and out.read_text().startswith(kept_line)


def test_ctrl_c_stops_after_the_current_item(tiny_dir, tmp_path):
    qfile = tmp_path / "q.jsonl"
    clip = str(ROOT / "sample_videos" / "carphone.mp4")
    qfile.write_text("".join(json.dumps({"video": clip, "question": f"q{i}?", "id": f"item{i}"}) + "\n" for i in range(40)))
    out = tmp_path / "r.jsonl"
    proc = subprocess.Popen(
        [console_script(), "batch", "--questions", str(qfile), "-o", str(out), *FAST],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300  # the first answer, on a busy 2-core machine
    while (not out.exists() or not out.read_text().count("\n")) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    rows = records(out)  # every line complete
    assert 1 <= len(rows) < 40
    assert "--resume" in err.strip().splitlines()[-1]


def test_two_processes_give_the_same_lines_as_one(tiny_dir, tmp_path):
    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS + ["big_buck_bunny.mp4"]]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0" * 1000)
    args = ["batch", *clips, str(broken), "-q", "What happens?", *FAST, "--device", "cpu"]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    single = subprocess.run([console_script(), *args, "-o", str(one)], capture_output=True, text=True, timeout=300, check=False)
    assert single.returncode == 1, single.stderr
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    launch = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--module",
            "fastvid_cli",
            *args,
            "-o",
            str(two),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert two.exists(), launch.stderr[-2000:]
    keys = ("id", "video", "answer", "tokens", "segments", "error")
    a = [{k: r.get(k) for k in keys} for r in records(one)]
    b = [{k: r.get(k) for k in keys} for r in records(two)]
    assert a == b
    assert not list(tmp_path.glob("two.jsonl.part*")), "parts are merged and removed"


FAIL_ON_RANK_1 = """
import os, sys
import fastvid_cli.models as models
real = models.load_model
def load_model(*args, **kwargs):
    if os.environ["RANK"] == "1":
        raise RuntimeError("rank 1 cannot load the model")
    return real(*args, **kwargs)
models.load_model = load_model
from fastvid_cli.cli import run
sys.exit(run(sys.argv[1:]))
"""


def test_a_failing_process_does_not_hang_the_others_and_resume_finishes(tiny_dir, tmp_path):
    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS + ["big_buck_bunny.mp4"]]
    args = ["batch", *clips, "-q", "What happens?", *FAST, "--device", "cpu"]
    script = tmp_path / "fail_on_rank_1.py"
    script.write_text(FAIL_ON_RANK_1)
    out, one = tmp_path / "two.jsonl", tmp_path / "one.jsonl"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script), *args, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert launch.returncode != 0
    assert "rank 1: RuntimeError: rank 1 cannot load the model" in launch.stderr, launch.stderr[-2000:]
    assert [r["id"] for r in records(out)] == clips[:2], "rank 0's share is merged into the output"
    assert not list(tmp_path.glob("two.jsonl.part*"))
    resumed = subprocess.run(
        [console_script(), *args, "-o", str(out), "--resume"], capture_output=True, text=True, timeout=300, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "1 answered, 0 failed, 2 skipped" in resumed.stderr
    single = subprocess.run([console_script(), *args, "-o", str(one)], capture_output=True, text=True, timeout=300, check=False)
    assert single.returncode == 0, single.stderr
    keys = ("id", "video", "answer", "tokens", "segments")
    assert [{k: r[k] for k in keys} for r in records(out)] == [{k: r[k] for k in keys} for r in records(one)]


def test_resume_reads_part_files_left_by_a_crash(tiny_dir, tmp_path):
    from fastvid_cli.engine.batch import part_path, run_job

    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS]
    items = collect_items(clips, "What happens?", None)
    out = tmp_path / "r.jsonl"
    kept = {"id": clips[1], "video": clips[1], "answer": "from a crashed rank"}
    part_path(out, 1, 2).write_text(json.dumps(kept) + "\n" + '{"id": "torn')  # a crash mid-line
    summary = run_job(
        items,
        out,
        model="tiny-random",
        device="cpu",
        dtype="float32",
        settings=None,
        fastvid={},
        max_new_tokens=2,
        resume=True,
        prefetch=0,
    )
    assert (summary.answered, summary.skipped, summary.processes) == (1, 1, 1)
    rows = records(out)
    assert [r["id"] for r in rows] == clips and rows[1] == kept
    assert not list(tmp_path.glob("r.jsonl.part*"))
    import torch.distributed

    assert not torch.distributed.is_initialized(), "one process needs no process group"


def test_show_writes_png_of_expected_size(capsys, tiny_dir, tmp_path):
    from PIL import Image

    from fastvid_cli.output.show import figure_size_px

    out = tmp_path / "kept.png"
    code, _, err = fastvid(
        capsys,
        "show",
        ROOT / "sample_videos" / "big_buck_bunny.mp4",
        "--model",
        "tiny-random",
        "--frames",
        "8",
        "--columns",
        "4",
        "--width",
        "800",
        "--out",
        out,
        "--retention",
        "0.25",
    )
    assert code == 0, err
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == figure_size_px(8, 800, 4)
    assert figure_size_px(16, 800, 4)[1] > figure_size_px(8, 800, 4)[1] > 400
    assert "392 tokens kept" in err  # 8 x floor(196 x 0.25)


def test_token_map_classifies_every_token(tiny_model, sample_video):
    from fastvid_cli.engine.pipeline import VideoSession
    from fastvid_cli.output.show import token_map
    from fastvid_cli.pruning import FastVIDConfig

    f = VideoSession.open(tiny_model, str(sample_video), 8).features
    kept = FastVIDConfig(retention_ratio=0.1)(f.video_tokens, f.frame_features, f.saliency)
    tokens = token_map(kept, 8, f.grid)
    assert tokens.kind.shape == (8, 14, 14)
    assert (tokens.kind == 2).sum() == 8 * 12 and (tokens.kind == 1).sum() == 8 * 7
    merged = tokens.kind == 0
    assert (tokens.anchor_of[merged] >= 0).all(), "every dropped token went into an anchor"
    assert sorted(set(tokens.anchor_of[tokens.kind == 1].tolist())) == list(range(56))


def test_ask_in_a_pipe_is_plain(tiny_dir, sample_video):
    proc = subprocess.run(
        [console_script(), "ask", str(sample_video), "q", *FAST, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0
    json.loads(proc.stdout)
    assert "\x1b[" not in proc.stderr and "\x1b[" not in proc.stdout, "no colour or progress off a terminal"
    bad = subprocess.run([console_script(), "ask", "/no/such.mp4", "q"], capture_output=True, text=True, timeout=300, check=False)
    assert bad.returncode == 2 and bad.stdout == ""


def test_streamed_batch_gives_the_same_answers(tiny_model, tmp_path, broken_files):
    """With a vision batch the prefetch reads headers only and each video streams; the answers stay."""
    from fastvid_cli.engine.batch import run_batch
    from fastvid_cli.engine.pipeline import AskOptions

    clips = [str(ROOT / "sample_videos" / c) for c in CLIPS] + [str(broken_files["corrupt"])]
    items = collect_items(clips, "What happens?", None)
    lines = {}
    for name, vision_batch in (("whole", None), ("streamed", 3)):
        out = tmp_path / f"{name}.jsonl"
        summary = run_batch(
            tiny_model, items, out, AskOptions(frames=8, max_new_tokens=3, baseline=False, vision_batch=vision_batch)
        )
        assert (summary.answered, summary.failed) == (2, 1)
        lines[name] = [(r["id"], r.get("answer"), r.get("tokens"), "error" in r) for r in records(out)]
    assert lines["streamed"] == lines["whole"]
