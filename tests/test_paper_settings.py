"""The paper's run settings per family: frame sampling, Qwen2.5-VL's pixel budget, LLaVA-Video's layout
whatever its config says, the qwen_1_5 system prompt, and greedy decoding under a sampling config.

Expected values are computed here from the rules of the authors' evaluation code (as the issue
states them), not read back from fastvid.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from fastvid_cli.models.registry import paper_settings
from fastvid_cli.models.settings import PixelBudget
from fastvid_cli.video import FrameSampling, read_video

SYSTEM = "You are a helpful assistant."


def make_clip(path, width: int, height: int, fps: int, seconds: float):
    """A clip with moving content, written with PyAV (decord cannot write)."""
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(int(fps * seconds)):
            image = np.zeros((height, width, 3), np.uint8)
            image[..., 0] = (i * 7) % 255
            image[: height // 2, : (i * 13) % width + 1, 1] = 200
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def paper_qwen_frames(total: int, fps: float) -> int:
    """The release's rule: duration x 2 fps, at least 4, at most min(768, total), rounded down to even."""
    return int(min(max(total / fps * 2, 4), min(768, total))) // 2 * 2


def paper_qwen_size(height: int, width: int, frames: int) -> tuple[int, int]:
    """qwen-vl-utils' smart_resize under the release's whole-video budget, written out from its rule."""
    budget, least = 16384 * 28 * 28, 16 * 28 * 28
    most = max(int(budget / frames * 2), int(least * 1.05))
    h, w = max(28, round(height / 28) * 28), max(28, round(width / 28) * 28)
    if h * w > most:
        beta = math.sqrt(height * width / most)
        h, w = math.floor(height / beta / 28) * 28, math.floor(width / beta / 28) * 28
    elif h * w < least:
        beta = math.sqrt(least / (height * width))
        h, w = math.ceil(height * beta / 28) * 28, math.ceil(width * beta / 28) * 28
    return h, w


def run_json(capsys, *args):
    from fastvid_cli.cli import run

    code = run(list(map(str, args)))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out), out.err


def test_llava_sampling_is_the_evaluation_scripts_floor_of_linspace():
    for total, frames in [(250, 32), (1000, 64), (133, 64), (64, 64), (7919, 32)]:
        expected = np.linspace(0, total - 1, frames, dtype=int)
        got = FrameSampling(frames=frames).indices(total, 25.0)
        assert np.array_equal(got, expected)
        assert got[0] == 0 and got[-1] == total - 1


def test_qwen_sampling_is_two_fps_even_and_bounded():
    rule = paper_settings("qwen2_5_vl").sampling
    for total, fps in [(250, 25.0), (30, 10.0), (1800, 30.0), (90000, 30.0), (5, 30.0), (7, 2.0), (120, 2.0), (11530, 30.0)]:
        count = rule.count(total, fps)
        assert count == paper_qwen_frames(total, fps), (total, fps)
        indices = rule.indices(total, fps)
        assert np.array_equal(indices, torch.linspace(0, total - 1, count).round().long().numpy())  # qwen-vl-utils' own


def test_pixel_budget_example_of_the_issue():
    """60 s of 1920 x 1080 at 30 fps: 120 frames at 336 x 616, 60 pairs x 264 = 15,840 tokens."""
    frames = paper_settings("qwen2_5_vl").sampling.count(1800, 30.0)
    assert frames == 120
    budget = PixelBudget()
    assert budget.frame_size(1080, 1920, frames) == (336, 616) == paper_qwen_size(1080, 1920, frames)
    assert budget.tokens(1080, 1920, frames) == 15840
    for h, w, f in [(240, 320, 6), (1080, 1920, 8), (2160, 3840, 768), (100, 3000, 4)]:
        assert budget.frame_size(h, w, f) == paper_qwen_size(h, w, f)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    pytest.importorskip("av")
    folder = tmp_path_factory.mktemp("clips")
    return {
        "low_short": make_clip(folder / "low_short.mp4", 320, 240, 10, 3),
        "high_short": make_clip(folder / "high_short.mp4", 1920, 1080, 2, 4),
        "low_long": make_clip(folder / "low_long.mp4", 320, 240, 2, 60),
        "high_long": make_clip(folder / "high_long.mp4", 1920, 1080, 2, 60),
    }


@pytest.mark.parametrize("clip", ["low_short", "high_short", "low_long"])
def test_qwen_ask_token_counts_follow_the_paper_formula(capsys, clips, clip):
    from fastvid_cli.video import probe_video

    info = probe_video(clips[clip])
    data, _ = run_json(
        capsys,
        "ask",
        clips[clip],
        "What happens?",
        "--model",
        "tiny-random-qwen2.5-vl",
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "1",
    )
    frames = paper_qwen_frames(info.total_frames, info.fps)
    h, w = paper_qwen_size(info.height, info.width, frames)
    assert data["frames"] == frames
    assert data["tokens"]["grid_thw"] == [frames // 2, h // 14, w // 14]
    assert data["tokens"]["video_before"] == frames // 2 * (h // 28) * (w // 28)
    assert data["settings"]["pixel_budget"]["total_pixels"] == 16384 * 28 * 28
    assert data["settings"]["frames"]["fps"] == 2.0 and data["settings"]["system_prompt"] == SYSTEM
    flops, _ = run_json(capsys, "flops", "--model", "tiny-random-qwen2.5-vl", "--video", clips[clip], "--json")
    assert flops["frames"] == frames and flops["model"]["tokens_per_frame"] == (h // 28) * (w // 28)
    assert flops["rows"][0]["video_tokens"] <= data["tokens"]["video_before"]


def test_qwen_flops_on_the_long_high_resolution_clip(capsys, clips):
    """The issue's example through `fastvid flops --video` (the header is enough to count)."""
    data, _ = run_json(capsys, "flops", "--model", "qwen2.5-vl-7b", "--video", clips["high_long"], "--json", "-r", "1")
    assert data["frames"] == 120 and data["token_frames"] == 60 and data["model"]["tokens_per_frame"] == 264
    assert data["rows"][0]["video_tokens"] == 15840


def test_qwen_frames_override_keeps_the_budget(capsys, clips):
    data, _ = run_json(
        capsys,
        "ask",
        clips["high_short"],
        "q",
        "--model",
        "tiny-random-qwen2.5-vl",
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "1",
        "--frames",
        "4",
    )
    h, w = paper_qwen_size(1080, 1920, 4)
    assert data["frames"] == 4 and data["tokens"]["grid_thw"] == [2, h // 14, w // 14]


def grid_layout_checkpoint(tmp_path, pool_mode: str):
    """The tiny LLaVA-Video checkpoint with its config saying what the published one says."""
    from fastvid_cli.tiny import tiny_random_dir

    target = tmp_path / f"llava-video-{pool_mode}"
    shutil.copytree(tiny_random_dir("tiny-random-llava-video"), target)
    config = json.loads((target / "config.json").read_text())
    config["mm_spatial_pool_mode"] = pool_mode
    config.pop("frames_upbound", None)  # the published config has none
    (target / "config.json").write_text(json.dumps(config))
    return target


def test_llava_video_runs_the_paper_layout_whatever_the_config_says(capsys, tmp_path, sample_video):
    target = grid_layout_checkpoint(tmp_path, "bilinear")
    data, _err = run_json(
        capsys, "ask", sample_video, "What happens?", "--model", target, "--json", "--no-baseline", "--max-new-tokens", "2"
    )
    assert data["frames"] == 64 and data["tokens"]["tokens_per_frame"] == 13 * 13
    assert data["tokens"]["video_before"] == 10816 and data["tokens"]["newline_before"] == 832
    assert data["tokens"]["prompt_before"] - 10816 - 832 > 0
    assert data["settings"]["pooling"].startswith("average 2x2")
    assert any("bilinear" in note and "182" in note for note in data["notes"])
    assert data["video"]["frame_indices"] == np.linspace(0, data["video"]["total_frames"] - 1, 64, dtype=int).tolist()
    flops, _ = run_json(capsys, "flops", "--model", target, "--json", "-r", "0.1")
    assert flops["frames"] == 64 and flops["model"]["tokens_per_frame"] == 169 and flops["model"]["newlines_per_frame"] == 13
    bilinear, _ = run_json(
        capsys,
        "ask",
        sample_video,
        "q",
        "--model",
        target,
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "1",
        "--frames",
        "4",
        "--pool-mode",
        "bilinear",
    )
    assert bilinear["tokens"]["tokens_per_frame"] == 14 * 14 and bilinear["tokens"]["newline_before"] == 4 * 14


def qwen_1_5(question: str, video: str, system: str | None = SYSTEM) -> str:
    """LLaVA-NeXT's qwen_1_5 conversation (SeparatorStyle.CHATML), as the paper's LLaVA runs built it."""
    head = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
    return f"{head}<|im_start|>user\n{video}\n{question}<|im_end|>\n<|im_start|>assistant\n"


@pytest.mark.parametrize("name", ["tiny-random", "tiny-random-llava-video"])
def test_llava_prompt_is_the_qwen_1_5_template(sample_video, name):
    from fastvid_cli.models import SettingsOverrides, load_model

    video = read_video(sample_video, 4)
    for system in (SYSTEM, None):
        overrides = None if system else SettingsOverrides(system_prompt="")
        model = load_model(name, device="cpu", dtype="float32", overrides=overrides)
        ids = model.prepare(video, "What is the man holding?")["input_ids"][0]
        token = model.processor.tokenizer.convert_ids_to_tokens(model.video_token_id)
        slots = int((ids == model.video_token_id).sum())
        text = model.processor.tokenizer.decode(ids).replace(token * slots, "<VIDEO>")
        assert text == qwen_1_5("What is the man holding?", "<VIDEO>", system)


def test_qwen_prompt_has_the_system_turn_first(sample_video):
    from fastvid_cli.models import load_model

    model = load_model("tiny-random-qwen2.5-vl", device="cpu", dtype="float32")
    ids = model.prepare(read_video(sample_video, 4), "Why?")["input_ids"][0]
    text = model.processor.tokenizer.decode(ids)
    assert text.startswith(f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n<|vision_start|>")
    assert text.endswith("<|vision_end|>Why?<|im_end|>\n<|im_start|>assistant\n")


PUBLISHED_LLAVA_VIDEO_GENERATION = {
    "do_sample": True,
    "temperature": 0.7,
    "top_k": 20,
    "top_p": 0.8,
    "repetition_penalty": 1.05,
}
"""The sampling fields of LLaVA-Video-7B-Qwen2's published generation_config.json (realcfg)."""


def test_greedy_under_a_sampling_generation_config(tmp_path, sample_video):
    """Same answer under any seed, equal to a greedy loop that applies the checkpoint's repetition penalty."""
    from fastvid_cli.models import load_model

    target = grid_layout_checkpoint(tmp_path, "average")
    generation = json.loads((target / "generation_config.json").read_text()) | PUBLISHED_LLAVA_VIDEO_GENERATION
    (target / "generation_config.json").write_text(json.dumps(generation))
    model = load_model(str(target), device="cpu", dtype="float32")
    assert model.settings.decoding.repetition_penalty == 1.05
    assert any("sampling" in note for note in model.settings.notes)
    inputs = model.prepare(read_video(sample_video, 4), "What happens?")
    llm = model.build_inputs(inputs, model.encode(inputs), None)
    answers = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        answers.append(model.generate(llm, 8).tolist())
    assert answers[0] == answers[1]

    kwargs = dict(llm.kwargs)
    ids, positions = kwargs.pop("input_ids"), kwargs.pop("position_ids")
    seen, out, cache = [], [], None  # LLaVA-NeXT's generate saw inputs_embeds only: the penalty counts the answer
    eos = model.model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    suppressed = model.model.generation_config.suppress_tokens or []
    with torch.inference_mode():
        step = model.model(input_ids=ids, position_ids=positions, use_cache=True, **kwargs)
        for _ in range(8):
            logits = step.logits[0, -1].clone()
            if seen:
                unique = torch.tensor(sorted(set(seen)))
                picked = logits[unique]
                logits[unique] = torch.where(picked > 0, picked / 1.05, picked * 1.05)
            logits[suppressed] = -float("inf")
            token = int(logits.argmax())
            out.append(token)
            seen.append(token)
            if token in eos:
                break
            cache = step.cache
            position = positions[:, -1:] + 1
            positions = torch.cat([positions, position], dim=1)
            mask = torch.ones(1, positions.shape[1], dtype=torch.long)
            step = model.model(
                input_ids=torch.tensor([[token]]), position_ids=position, attention_mask=mask, cache=cache, use_cache=True
            )
    assert answers[0] == out


def test_settings_overrides_and_their_errors(capsys, sample_video):
    from fastvid_cli.cli import run

    data, _ = run_json(
        capsys,
        "ask",
        sample_video,
        "q",
        "--model",
        "tiny-random",
        "--json",
        "--no-baseline",
        "--max-new-tokens",
        "1",
        "--fps",
        "1",
        "--max-frames",
        "6",
        "--system-prompt",
        "",
        "--repetition-penalty",
        "1.2",
    )
    assert data["frames"] == 6 and data["settings"]["frames"]["fps"] == 1.0
    assert data["settings"]["system_prompt"] is None and data["settings"]["decoding"]["repetition_penalty"] == 1.2
    for bad, words in [
        (["--video-pixels", "1000"], "Qwen models"),
        (["--frames", "4", "--fps", "1"], "not both"),
        (["--max-frames", "4"], "frame rate"),
        (["--pool-mode", "max"], "LLaVA-Video"),
    ]:
        code = run(["ask", str(sample_video), "q", "--model", "tiny-random", *bad])
        err = capsys.readouterr().err
        assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
