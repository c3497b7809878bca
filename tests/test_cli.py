"""`fastvid` end to end on real sample videos with the tiny random model, and every bad input."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastvid_cli.cli import run

ROOT = Path(__file__).resolve().parents[1]


def fastvid(capsys, *args):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    code = run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ask_json_end_to_end(tiny_dir, sample_video):
    """The installed console script, as a user runs it; stdout is one JSON object."""
    exe = shutil.which("fastvid", path=os.path.dirname(sys.executable)) or shutil.which("fastvid")
    assert exe, "the fastvid console script is installed"
    proc = subprocess.run(
        [
            exe,
            "ask",
            str(sample_video),
            "What happens in this video?",
            "--model",
            "tiny-random",
            "--json",
            "--max-new-tokens",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert not re.search(r"^\S+:\d+: \w*Warning: ", proc.stderr, re.MULTILINE), proc.stderr  # no Python warning
    data = json.loads(proc.stdout)  # nothing else on stdout
    assert isinstance(data["answer"], str) and data["answer"]
    assert data["model"]["id"] == "tiny-random" and data["model"]["tiny_random"] is True
    assert data["model"]["family"] == "llava_onevision" and data["model"]["device"] == "cpu"
    assert data["frames"] == 32 and data["retention"] == 0.1
    assert data["video"]["total_frames"] == 250 and len(data["video"]["frame_indices"]) == 32
    tokens = data["tokens"]
    assert tokens["video_before"] == 32 * 196 and tokens["video_after"] == 32 * 19
    assert tokens["tokens_per_frame"] == 196 and tokens["newline_before"] == tokens["newline_after"] == 1
    assert tokens["prompt_before"] - tokens["prompt_after"] == tokens["video_before"] - tokens["video_after"]
    flops = data["flops"]
    assert flops["unit"] == "TFLOPs"
    for key in ("table5", "causal_2mac"):
        assert 0 < flops[key]["after"] < flops[key]["before"]
        assert flops[key]["ratio"] == pytest.approx(flops[key]["after"] / flops[key]["before"])
    assert flops["table5"]["ratio"] < 0.1
    timing = data["timing"]
    for stage in ("decode", "preprocess", "vision", "pruning", "prefill", "generation"):
        assert timing[f"{stage}_ms"] > 0
    assert timing["prefill_vanilla_ms"] > 0
    assert timing["prefill_speedup"] == pytest.approx(timing["prefill_vanilla_ms"] / timing["prefill_ms"])
    assert sum(data["segments"]) == 32 and len(data["segments"]) >= 8
    assert data["config"] == {
        "retention_ratio": 0.1,
        "c": 8,
        "tau": 0.9,
        "d": 0.4,
        "p": 4,
        "beta": 0.6,
        "segmentation": "dyseg",
        "split_tau": None,
        "max_segment": None,
    }
    assert any("noise" in note for note in data["notes"])
    assert "noise" in proc.stderr


def test_ask_prints_answer_and_tables(capsys, tiny_dir):
    video = ROOT / "sample_videos" / "carphone.mp4"
    code, out, err = fastvid(
        capsys,
        "ask",
        video,
        "What happens?",
        "--model",
        "tiny-random",
        "--frames",
        "8",
        "--retention",
        "0.25",
        "--max-new-tokens",
        "6",
    )
    assert code == 0, err
    assert out.strip() and "\n" not in out.strip(), "stdout holds only the answer"
    for title in ("Tokens", "LLM prefill FLOPs", "Measured prefill", "Time breakdown", "DySeg segments"):
        assert title in err
    assert "1,568" in err and f"{8 * 49:,}" in err  # 8 x 196 before, 8 x 49 after


def test_no_baseline_skips_vanilla_prefill(capsys, tiny_dir, sample_video):
    code, out, err = fastvid(
        capsys,
        "ask",
        sample_video,
        "q",
        "--model",
        "tiny-random",
        "--frames",
        "4",
        "--no-baseline",
        "--json",
        "--max-new-tokens",
        "2",
    )
    assert code == 0, err
    timing = json.loads(out)["timing"]
    assert timing["prefill_vanilla_ms"] is None and timing["prefill_speedup"] is None


def test_hyperparameters_reach_the_pruning(capsys, tiny_dir, sample_video):
    code, out, err = fastvid(
        capsys,
        "ask",
        sample_video,
        "q",
        "--model",
        "tiny-random",
        "--frames",
        "16",
        "--c",
        "2",
        "--tau",
        "-1",
        "--d",
        "0",
        "--retention",
        "0.5",
        "--json",
        "--max-new-tokens",
        "2",
    )
    assert code == 0, err
    data = json.loads(out)
    assert len(data["segments"]) == 2 and data["tokens"]["video_after"] == 16 * 98


def test_short_video_samples_what_exists(capsys, tiny_dir):
    video = ROOT / "sample_videos" / "carphone.mp4"  # 120 frames
    code, out, err = fastvid(
        capsys, "ask", video, "q", "--model", "tiny-random", "--frames", "200", "--json", "--no-baseline", "--max-new-tokens", "2"
    )
    assert code == 0, err
    data = json.loads(out)
    assert data["frames"] == 120 and data["tokens"]["video_after"] == 120 * 19
    assert "only 120 frames" in err


def test_tiny_model_writes_a_loadable_checkpoint(capsys, tmp_path, sample_video):
    target = tmp_path / "tiny"
    code, _, err = fastvid(capsys, "tiny-model", target)
    assert code == 0, err
    assert (target / "config.json").exists() and (target / "siglip_head" / "model.safetensors").exists()
    code, out, err = fastvid(
        capsys, "ask", sample_video, "q", "--model", target, "--frames", "4", "--json", "--max-new-tokens", "2", "--no-baseline"
    )
    assert code == 0, err
    assert json.loads(out)["model"]["tiny_random"] is True
    code, _, err = fastvid(capsys, "tiny-model", target)
    assert code == 2 and "not empty" in err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    "make_args,code,message",
    [
        (lambda f, v: [f["text"].parent / "missing.mp4", "q"], 2, "no such file"),
        (lambda f, v: [f["text"], "q"], 2, "not a readable video"),
        (lambda f, v: [f["corrupt"], "q"], 2, "not a readable video"),
        (lambda f, v: [f["truncated"], "q"], 2, "truncated or corrupt"),
        (lambda f, v: [v, "q", "--retention", "0"], 2, "retention ratio must be in (0, 1]"),
        (lambda f, v: [v, "q", "--retention", "1.5"], 2, "retention ratio must be in (0, 1]"),
        (lambda f, v: [v, "q", "--retention", "-0.1"], 2, "retention ratio must be in (0, 1]"),
        (lambda f, v: [v, "q", "--model", "no-such-model"], 2, "unknown model 'no-such-model'"),
        (lambda f, v: [v, "q", "--model", f["text"].parent], 2, "not a model checkpoint"),
        (lambda f, v: [v, "q", "--frames", "zero"], 2, "Invalid value for '--frames'"),
        (lambda f, v: [v, "q", "--frames", "0"], 2, "--frames"),
        (lambda f, v: [v, " ", "--model", "tiny-random"], 2, "question is empty"),
        (lambda f, v: [v, "q", "--p", "0", "--model", "tiny-random"], 2, "p must be an integer >= 1"),
    ],
    ids=[
        "missing",
        "text-file",
        "random-bytes",
        "truncated",
        "R=0",
        "R>1",
        "R<0",
        "unknown-model",
        "not-a-checkpoint",
        "frames-not-int",
        "frames-zero",
        "empty-question",
        "p-zero",
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, broken_files, sample_video, make_args, code, message):
    status, out, err = fastvid(capsys, "ask", *make_args(broken_files, sample_video))
    assert status == code
    assert out == ""
    assert message in one_error_line(err)


def test_model_neither_cached_nor_reachable(capsys, monkeypatch, tmp_path, sample_video):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    status, out, err = fastvid(capsys, "ask", sample_video, "q", "--model", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf")
    line = one_error_line(err)
    assert status == 2 and out == ""
    assert "not in the local cache" in line and "local checkpoint folder as the --model" in line
    assert "tiny-random" in line


def test_unsupported_architecture_lists_supported(capsys, tmp_path, sample_video):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    status, _, err = fastvid(capsys, "ask", sample_video, "q", "--model", tmp_path)
    line = one_error_line(err)
    assert status == 2 and "unsupported architecture 'bert'" in line
    assert all(family in line for family in ("llava_onevision", "llava_video", "qwen2_5_vl"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_gpu_asked_where_none_exists(capsys, tiny_dir, sample_video):
    status, out, err = fastvid(capsys, "ask", sample_video, "q", "--model", "tiny-random", "--device", "cuda")
    assert status == 2 and out == ""
    assert "--device cuda asked for a GPU, but no CUDA GPU is available here; use --device cpu" in one_error_line(err)


def test_help_lists_every_option(capsys):
    status, out, _ = fastvid(capsys, "ask", "--help")
    assert status == 0
    for option in (
        "--model",
        "--frames",
        "--retention",
        "--max-new-tokens",
        "--device",
        "--dtype",
        "--attn-implementation",
        "--c",
        "--tau",
        "--d",
        "--p",
        "--beta",
        "--no-baseline",
        "--json",
    ):
        assert option in out


def test_pruning_kept_budget_matches_formula():
    # the JSON's count is the project rule F * max(1, floor(N R)) for the LLaVA-OneVision grid
    assert 32 * max(1, math.floor(196 * 0.1)) == 608


def test_one_table_maps_errors_to_lines_and_statuses():
    from fastvid_cli.cli import option_of
    from fastvid_cli.errors import DeviceError, InputError, describe

    err = DeviceError("`attn_implementation` flash_attention_2 runs on a GPU only")
    assert str(err) == "attn_implementation flash_attention_2 runs on a GPU only"  # a library user sees the setting
    assert err.settings == ["attn_implementation"]
    assert describe(err, option_of).message == "--attn-implementation flash_attention_2 runs on a GPU only"
    assert describe(err, option_of).exit_code == 2
    assert describe(InputError("bad")).exit_code == 2
    assert describe(KeyboardInterrupt()).exit_code == 130
    oom = describe(MemoryError(), option_of)
    assert oom.exit_code == 1 and "--frames" in oom.message and "--retention" in oom.message
    assert "frames" in describe(MemoryError()).message and "--" not in describe(MemoryError()).message
    missing = describe(FileNotFoundError(2, "No such file or directory", "/x/y.jsonl"))
    assert (missing.message, missing.exit_code) == ("cannot use /x/y.jsonl: No such file or directory", 1)
    assert describe(RuntimeError("boom\nmore")).message == "RuntimeError: boom"


def test_library_errors_name_settings_not_flags():
    """No error raised under src/ (outside the CLI) names a command-line option."""
    import re

    src = ROOT / "src" / "fastvid_cli"
    offenders = []
    for path in src.rglob("*.py"):
        if path.relative_to(src).parts[0] == "cli":  # the command line names its options
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"raise \w*Error\(.*[\"' ]--[a-z]", line) or re.search(r"^\s+f?\"(?!\"\").*[\"' ]--[a-z].*\"\)?$", line):
                offenders.append(f"{path.relative_to(src)}:{number}")
    assert offenders == []
