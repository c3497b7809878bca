"""Checkpoints built from the real checkpoints' published files (tests/realcfg) run as the paper ran them.

Each folder's tiny checkpoint (``fastvid tiny-model DIR --config REAL``) keeps every published
field that decides layout, prompt and decoding, so these tests see what a user of the real
checkpoint sees: LLaVA-Video's published ``bilinear`` pooling, the llava-hf config without a system
turn, Qwen2.5-VL's processor without a video pixel budget, LLaVA-Video's sampling generation config.
The expected values come from the paper's rules, computed here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from test_paper_settings import SYSTEM, paper_qwen_frames, paper_qwen_size, qwen_1_5, run_json

REALCFG = Path(__file__).parent / "realcfg"
FOLDERS = ["llava-onevision-qwen2-7b-ov-hf", "LLaVA-Video-7B-Qwen2", "Qwen2.5-VL-3B-Instruct", "Qwen2.5-VL-7B-Instruct"]


@pytest.fixture(scope="module")
def built(realcfg_checkpoint):
    """One tiny checkpoint per realcfg folder, built through the CLI."""
    return {name: realcfg_checkpoint(name) for name in FOLDERS}


def test_llava_onevision_from_its_published_config(capsys, built, sample_video):
    data, _ = run_json(
        capsys,
        "ask",
        sample_video,
        "What happens?",
        "--model",
        built[FOLDERS[0]],
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "2",
    )
    assert data["frames"] == 32 and data["tokens"]["tokens_per_frame"] == 196
    assert data["tokens"]["video_before"] == 32 * 196 and data["tokens"]["newline_before"] == 1
    assert data["settings"]["system_prompt"] == SYSTEM and data["settings"]["decoding"]["greedy"]
    total = data["video"]["total_frames"]
    assert data["video"]["frame_indices"] == np.linspace(0, total - 1, 32, dtype=int).tolist()


def test_llava_video_from_its_published_config(capsys, built, sample_video):
    published = json.loads((REALCFG / FOLDERS[1] / "config.json").read_text())
    assert published["mm_spatial_pool_mode"] == "bilinear"  # what a user of the real checkpoint gets
    data, _ = run_json(
        capsys,
        "ask",
        sample_video,
        "What happens?",
        "--model",
        built[FOLDERS[1]],
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "2",
    )
    assert data["frames"] == 64 and data["tokens"]["tokens_per_frame"] == 169
    assert data["tokens"]["video_before"] == 10816 and data["tokens"]["newline_before"] == 832
    assert (data["tokens"]["video_before"] + data["tokens"]["newline_before"]) / 64 == 182
    assert any("bilinear" in note for note in data["notes"])
    generation = json.loads((REALCFG / FOLDERS[1] / "generation_config.json").read_text())
    assert generation["do_sample"] is True
    assert data["settings"]["decoding"]["repetition_penalty"] == generation["repetition_penalty"]
    assert any("sampling" in note for note in data["notes"])


@pytest.mark.parametrize("name", FOLDERS[2:])
def test_qwen_from_its_published_config(capsys, built, sample_video, name):
    from fastvid_cli.video import probe_video

    processor = json.loads((REALCFG / name / "preprocessor_config.json").read_text())
    assert processor["max_pixels"] == 12845056  # a per-frame cap only: the paper's budget is fastvid's
    info = probe_video(sample_video)
    data, _ = run_json(
        capsys, "ask", sample_video, "What happens?", "--model", built[name], "--json", "--no-baseline", "--max-new-tokens", "2"
    )
    frames = paper_qwen_frames(info.total_frames, info.fps)
    h, w = paper_qwen_size(info.height, info.width, frames)
    assert data["frames"] == frames and data["tokens"]["grid_thw"] == [frames // 2, h // 14, w // 14]
    assert data["tokens"]["video_before"] == frames // 2 * (h // 28) * (w // 28)
    assert data["settings"]["system_prompt"] == SYSTEM


@pytest.mark.parametrize("name", FOLDERS)
def test_prompt_text_around_the_video(built, sample_video, name):
    from fastvid_cli.models import load_model
    from fastvid_cli.video import read_video

    model = load_model(str(built[name]), device="cpu", dtype="float32")
    ids = model.prepare(read_video(sample_video, 4), "What is on the road?")["input_ids"][0]
    tokenizer = model.processor.tokenizer
    token = tokenizer.convert_ids_to_tokens(model.video_token_id)
    text = tokenizer.decode(ids).replace(token * int((ids == model.video_token_id).sum()), "<VIDEO>")
    if model.family == "qwen2_5_vl":
        assert text == (
            f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|><VIDEO><|vision_end|>"
            "What is on the road?<|im_end|>\n<|im_start|>assistant\n"
        )
    else:
        assert text == qwen_1_5("What is on the road?", "<VIDEO>")


def test_llava_video_decodes_greedily_under_its_sampling_config(built, sample_video):
    from fastvid_cli.models import load_model
    from fastvid_cli.video import read_video

    model = load_model(str(built[FOLDERS[1]]), device="cpu", dtype="float32")
    assert model.model.generation_config.do_sample  # as published
    inputs = model.prepare(read_video(sample_video, 4), "What happens?")
    llm = model.build_inputs(inputs, model.encode(inputs), None)
    answers = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        answers.append(model.generate(llm, 6).tolist())
    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize("name", FOLDERS)
def test_flops_bench_and_ask_agree_on_the_geometry(capsys, built, sample_video, tmp_path, name):
    """One source of truth: tokens per frame, newline slots and FLOPs agree across the three commands."""
    ask, _ = run_json(
        capsys, "ask", sample_video, "q", "--model", built[name], "--json", "--no-baseline", "--max-new-tokens", "1", "-r", "0.1"
    )
    real, _ = run_json(capsys, "flops", "--model", REALCFG / name, "--video", sample_video, "--json", "-r", "0.1")
    tiny, _ = run_json(capsys, "flops", "--model", built[name], "--video", sample_video, "--json", "-r", "0.1")
    bench, _ = run_json(
        capsys,
        "bench",
        "--model",
        built[name],
        "--layers",
        "1",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--method",
        "fastvid",
        "-r",
        "0.1",
        "--json",
        "--output",
        tmp_path / "bench.json",
    )
    tokens = ask["tokens"]
    for flops in (real, tiny):
        assert flops["frames"] == ask["frames"]
        assert flops["model"]["tokens_per_frame"] == tokens["tokens_per_frame"]
        per_frame_newlines = flops["model"]["newlines_per_frame"] * flops["token_frames"] + flops["model"]["extra_slots"]
        assert per_frame_newlines == tokens["newline_before"]
        assert flops["rows"][0]["video_tokens"] == tokens["video_before"]  # the vanilla row
        assert flops["rows"][-1]["video_tokens"] == tokens["video_after"]
    assert tiny["rows"][0]["table5"] == pytest.approx(ask["flops"]["table5"]["before"])
    assert tiny["rows"][-1]["table5"] == pytest.approx(ask["flops"]["table5"]["after"])
    # the flops command's geometry is the family adapter's, from the published config alone
    from fastvid_cli.models.registry import adapter_class, read_config

    adapter = adapter_class(ask["model"]["family"]).geometry_from_config(read_config(REALCFG / name), name).to_dict()
    for key in ("family", "llm", "heads", "extra_slots", "newlines_per_frame", "frames_per_group"):
        assert real["model"][key] == adapter[key], key
    geometry = bench["settings"]["geometry"]
    assert geometry["family"] == ask["model"]["family"]
    assert geometry["newlines_per_frame"] == real["model"]["newlines_per_frame"]
    if ask["model"]["family"] != "qwen2_5_vl":  # Qwen's tokens per frame depend on the video; bench has none
        assert geometry["tokens_per_frame"] == tokens["tokens_per_frame"] and geometry["frames"] == ask["frames"]
        assert bench["prefill"][0]["video_tokens"] == tokens["video_before"]
        assert bench["prefill"][1]["video_tokens"] == tokens["video_after"]
