"""Qwen3-VL (dense and MoE) on tiny checkpoints built from the published configs in tests/realcfg.

What is checked against transformers' own path (``Qwen3VLProcessor`` + the model computing its own
M-RoPE positions and DeepStack), and against hand-computed values from the published files.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from fastvid_cli.models import load_model
from fastvid_cli.pruning import FastVIDConfig
from fastvid_cli.video import read_video

REALCFG = Path(__file__).parent / "realcfg"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
PUBLISHED = {"dense": "Qwen3-VL-8B-Instruct", "moe": "Qwen3-VL-30B-A3B-Instruct"}


@pytest.fixture(scope="module")
def built(realcfg_checkpoint):
    """A tiny checkpoint per published config (dense, MoE), built through the CLI."""
    return {kind: realcfg_checkpoint(name) for kind, name in PUBLISHED.items()}


@pytest.fixture(scope="module", params=list(PUBLISHED))
def qwen3(request, built):
    return load_model(str(built[request.param]), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def dense(built):
    return load_model(str(built["dense"]), device="cpu", dtype="float32")


def processor_inputs(model, video, question):
    """transformers' own processing of the same frames: chat template, processor expansion, pixels."""
    from transformers.video_utils import VideoMetadata

    conversation = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    text = model.processor.apply_chat_template(conversation, add_generation_prompt=True)
    metadata = VideoMetadata(total_num_frames=video.total_frames, fps=video.fps, frames_indices=video.indices.tolist())
    return model.processor(
        text=[text],
        videos=[video.frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        videos_kwargs={"cap_pixels_per_frame": True},
        return_tensors="pt",
    )


def test_family_and_model_class(qwen3, built):
    config = json.loads((built["moe" if "Moe" in type(qwen3.model).__name__ else "dense"] / "config.json").read_text())
    assert qwen3.family == "qwen3_vl"
    assert (
        type(qwen3.model).__name__
        == {"qwen3_vl": "Qwen3VLForConditionalGeneration", "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration"}[
            config["model_type"]
        ]
    )
    assert len(qwen3.model.config.vision_config.deepstack_visual_indexes) == 3


def test_prompt_and_pixels_equal_the_processors(qwen3):
    """The prompt (timestamps, start/end pairs, slots), its token types, the grid and the pixels are
    exactly what Qwen3VLProcessor gives for the same frames."""
    video = read_video(SAMPLES / "bikes.mp4", qwen3.settings.sampling)
    ours = qwen3.prepare(video, "What happens?")
    reference = processor_inputs(qwen3, video, "What happens?")
    assert torch.equal(ours["input_ids"], reference["input_ids"])
    assert torch.equal(ours["mm_token_type_ids"], reference["mm_token_type_ids"])
    assert torch.equal(ours["video_grid_thw"], reference["video_grid_thw"])
    assert torch.equal(ours["pixel_values_videos"], reference["pixel_values_videos"])


def test_one_timestamp_and_one_start_end_pair_per_temporal_patch(dense):
    video = read_video(SAMPLES / "carphone.mp4", dense.settings.sampling)
    inputs = dense.prompt_inputs(video, "What happens?")
    t = int(inputs["video_grid_thw"][0, 0])
    text = dense.processor.tokenizer.decode(inputs["input_ids"][0])
    stamps = re.findall(r"<(\d+\.\d) seconds>", text)
    assert len(stamps) == t == math.ceil(video.num_frames / 2)
    # each stamp is the mean time of its pair of sampled frames (the last odd frame paired with itself)
    indices = list(video.indices) + [video.indices[-1]] * (video.num_frames % 2)
    want = [f"{(indices[2 * i] + indices[2 * i + 1]) / 2 / video.fps:.1f}" for i in range(t)]
    assert stamps == want
    assert text.count("<|vision_start|>") == text.count("<|vision_end|>") == t


def test_nothing_pruned_gives_transformers_logits_and_answer(qwen3):
    """R = 1 through the pruned path (explicit kept slots, positions and DeepStack rows) equals the model
    computing everything itself from the processor's inputs."""
    video = read_video(SAMPLES / "bikes.mp4", qwen3.settings.sampling)
    inputs = qwen3.prepare(video, "What happens?")
    features = qwen3.encode(inputs)
    kept = FastVIDConfig(retention_ratio=1.0)(features.video_tokens, features.frame_features, features.saliency)
    ours = qwen3.build_inputs(inputs, features, kept)
    reference = processor_inputs(qwen3, video, "What happens?")
    with torch.inference_mode():
        qwen3.model.model.rope_deltas = None
        logits = qwen3.model(**reference).logits[0, -1]
        qwen3.model.model.rope_deltas = None
        answer = qwen3.model.generate(**reference, max_new_tokens=8, do_sample=False)
    torch.testing.assert_close(qwen3.prefill(ours).logits, logits.float(), atol=1e-5, rtol=1e-5)
    assert qwen3.generate(ours, 8).tolist() == answer[0, reference["input_ids"].shape[1] :].tolist()


def masked_reference(model, inputs, features, kept, levels):
    """The whole prompt with the dropped video slots masked out, the kept slots holding the pruned tokens
    and the given DeepStack rows (``levels``: one (K, D) per level, for the kept slots), at the original
    positions: what the pruned prefill must equal."""
    from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

    ids = inputs["input_ids"]
    slots = (ids[0] == model.video_token_id).nonzero().flatten()
    dim = features.video_tokens.shape[-1]
    tokens = features.video_tokens.reshape(-1, dim).clone()
    tokens[kept.indices] = kept.tokens
    full_levels = []
    for level, rows in zip(features.state.levels, levels):
        level = level.reshape(-1, dim).clone()
        level[kept.indices] = rows
        full_levels.append((level,))
    dropped = torch.ones(tokens.shape[0], dtype=torch.bool)
    dropped[kept.indices] = False
    mask = torch.ones_like(ids)
    mask[0, slots[dropped]] = 0
    video = BaseModelOutputWithDeepstackFeatures(pooler_output=(tokens,), deepstack_features=full_levels)
    with torch.inference_mode():
        return (
            model.model(
                input_ids=ids, attention_mask=mask, position_ids=model.position_ids(inputs), mm_encoder_outputs={"video": video}
            )
            .logits[0, -1]
            .float()
        )


def test_pruned_prefill_equals_masked_full_forward_with_merged_deepstack(dense):
    """DeepStack rows follow the kept tokens, in order, merged with DTM's weights: the pruned prefill
    equals the masked full forward with those rows, and not with the anchors' own (unmerged) rows."""
    video = read_video(SAMPLES / "bikes.mp4", dense.settings.sampling)
    inputs = dense.prepare(video, "What happens?")
    features = dense.encode(inputs)
    kept = FastVIDConfig(retention_ratio=0.27, tau=0.84, split_tau=0.95)(
        features.video_tokens, features.frame_features, features.saliency
    )
    assert kept.anchor_mask.any(), "DTM merged some tokens"
    logits = dense.prefill(dense.build_inputs(inputs, features, kept)).logits
    merged = [kept.gather(level) for level in features.state.levels]
    torch.testing.assert_close(logits, masked_reference(dense, inputs, features, kept, merged), atol=1e-5, rtol=1e-5)
    # the rows of the kept indices without the merge, or in another order, give another prefill
    unmerged = [level.reshape(-1, level.shape[-1])[kept.indices] for level in features.state.levels]
    assert not torch.allclose(logits, masked_reference(dense, inputs, features, kept, unmerged), atol=1e-4)
    shuffled = [rows.roll(1, 0) for rows in merged]
    assert not torch.allclose(logits, masked_reference(dense, inputs, features, kept, shuffled), atol=1e-4)
    # the kept columns keep their unpruned positions; decoding continues one past the largest
    pruned = dense.build_inputs(inputs, features, kept)
    positions = dense.position_ids(inputs)
    assert torch.equal(pruned.kwargs["position_ids"][:, :, -1], positions[:, :, -1])
    assert pruned.next_position.flatten().tolist() == [inputs["input_ids"].shape[1]] + [int(positions[1:].max()) + 1] * 3


@pytest.mark.parametrize("retention", [0.1, 0.27, 0.5])
def test_exact_token_budget_and_every_timestamp_kept(dense, retention):
    video = read_video(SAMPLES / "bikes.mp4", dense.settings.sampling)
    inputs = dense.prepare(video, None)
    features = dense.encode(inputs)
    t, n = features.num_frames, features.tokens_per_frame
    kept = FastVIDConfig(retention_ratio=retention)(features.video_tokens, features.frame_features, features.saliency)
    assert kept.indices.numel() == t * max(1, math.floor(n * retention))
    llm = dense.build_inputs(inputs, features, kept)
    before = dense.processor.tokenizer.decode(inputs["input_ids"][0])
    after = dense.processor.tokenizer.decode(llm.kwargs["input_ids"][0])
    assert re.findall(r"<\d+\.\d seconds>", after) == re.findall(r"<\d+\.\d seconds>", before)
    assert after.count("<|vision_start|>") == after.count("<|vision_end|>") == t
    assert int((llm.kwargs["input_ids"] == dense.video_token_id).sum()) == kept.indices.numel()
    assert all(
        level.shape[0] == kept.indices.numel() for level in llm.kwargs["mm_encoder_outputs"]["video"].deepstack_features[0]
    )


def test_a_temporal_patch_that_keeps_no_token_keeps_its_timestamp(dense):
    """Even with every token of a patch dropped, its timestamp and start/end pair stay in the prompt."""
    from fastvid_cli.pruning import PruneResult

    video = read_video(SAMPLES / "carphone.mp4", dense.settings.sampling)
    inputs = dense.prepare(video, None)
    features = dense.encode(inputs)
    n = features.tokens_per_frame
    keep = torch.arange(n, features.num_frames * n)  # nothing of the first temporal patch
    kept = PruneResult(
        tokens=features.video_tokens.reshape(-1, features.video_tokens.shape[-1])[keep],
        indices=keep,
        segment_lengths=[features.num_frames],
        anchor_mask=torch.zeros(keep.numel(), dtype=torch.bool),
    )
    after = dense.processor.tokenizer.decode(dense.build_inputs(inputs, features, kept).kwargs["input_ids"][0])
    first = re.search(r"<\d+\.\d seconds><\|vision_start\|><\|vision_end\|>", after)
    assert first is not None and after.count("<|vision_start|>") == features.num_frames


def test_several_questions_equal_fresh_runs(dense):
    from fastvid_cli.engine.pipeline import AskOptions, ask_many

    options = AskOptions(max_new_tokens=5, baseline=False)
    video = SAMPLES / "carphone.mp4"
    together = ask_many(dense, video, ["What happens?", "Who is there?"], options)
    for result in together:
        alone = ask_many(dense, video, [result.question], options)[0]
        assert alone.answer == result.answer
    assert together[1].tokens.prefill_tokens < together[0].tokens.prefill_tokens


@pytest.mark.parametrize(
    "clip, frames, grid",
    [
        # 250 frames at 25 fps = 10 s -> 20 frames; 272 x 640 -> (round(8.5) = 8, 20) x 32 px: 8 x 20 tokens
        ("bikes.mp4", 20, (8, 20)),
        # 120 frames at 29.97 fps = 4.004 s -> int(8.008) = 8 frames; 144 x 176 -> (4, round(5.5) = 6) x 32 px
        ("carphone.mp4", 8, (4, 6)),
        # 132 frames at 25 fps = 5.28 s -> 10 frames; 720 x 1280 = 921,600 px > 768 tokens x 1024 px per frame:
        # beta = sqrt(921600 / 786432) -> floor(720 / beta / 32) = 20, floor(1280 / beta / 32) = 36
        ("big_buck_bunny.mp4", 10, (20, 36)),
    ],
)
def test_geometry_at_2_fps_by_hand(dense, clip, frames, grid):
    """Frames and tokens per temporal patch from the published video processor, computed by hand."""
    video = read_video(SAMPLES / clip, dense.settings.sampling, decode=False)
    assert video.num_frames == frames
    h, w = dense.frame_size(video)
    assert (h // 32, w // 32) == grid
    inputs = dense.prompt_inputs(video, None)
    assert int((inputs["input_ids"] == dense.video_token_id).sum()) == math.ceil(frames / 2) * grid[0] * grid[1]


def test_sampling_is_the_processors_and_agrees_with_qwen_vl_utils():
    """The frame numbers are Qwen3VLVideoProcessor.sample_frames' own; where qwen-vl-utils (the model
    card's reader) gives an even count too, its frames and per-frame size agree."""
    from qwen_vl_utils.vision_process import smart_nframes, smart_resize
    from transformers import Qwen3VLVideoProcessor
    from transformers.video_utils import VideoMetadata

    from fastvid_cli.models.qwen3_vl import QWEN3_SAMPLING, Qwen3VLPixels

    processor = Qwen3VLVideoProcessor()
    for total, fps in [(250, 25.0), (132, 25.0), (3000, 30.0), (90000, 30.0), (7, 30.0), (121, 29.97)]:
        ours = QWEN3_SAMPLING.indices(total, fps)
        assert ours.tolist() == processor.sample_frames(VideoMetadata(total_num_frames=total, fps=fps), fps=2).tolist()
        count = len(ours)
        if count % 2 == 0 and count >= 4:
            assert smart_nframes({"fps": 2.0}, total, fps) == count
            assert ours.tolist() == torch.linspace(0, total - 1, count).round().long().tolist()
    pixels = Qwen3VLPixels()
    for height, width, frames in [(272, 640, 20), (720, 1280, 10), (1080, 1920, 32)]:
        # qwen-vl-utils' fetch_video: per-frame max = max(min(768 x 32^2, total / frames x 2), 1.05 x min)
        reference = smart_resize(
            height,
            width,
            32,
            min_pixels=128 * 32 * 32,
            max_pixels=max(min(768 * 32 * 32, pixels.total_pixels / frames * 2), int(128 * 32 * 32 * 1.05)),
        )
        assert pixels.frame_size(height, width, frames) == reference
    # where they differ: qwen-vl-utils raises a small frame to 128 tokens (the published processor's floor is
    # 4,096 px for the whole video); on a long video transformers shares longest_edge over frames, qwen-vl-utils over pairs
    assert pixels.frame_size(144, 176, 8) == (128, 192)
    assert smart_resize(144, 176, 32, min_pixels=128 * 32 * 32, max_pixels=768 * 32 * 32) == (352, 416)
    assert pixels.frame_size(1080, 1920, 256)[0] < smart_resize(1080, 1920, 32, max_pixels=pixels.total_pixels / 256 * 2)[0]


def test_frame_size_equals_the_processors_resize(dense):
    """Our whole-video size (computed once for a streaming encode) is the size the processor picks
    when it gets all the frames at once."""
    from transformers.image_utils import SizeDict

    processor = dense.processor.video_processor
    size = processor.size if isinstance(processor.size, SizeDict) else SizeDict(**processor.size)
    for frames, height, width in [(20, 272, 640), (10, 720, 1280), (64, 720, 1280), (9, 144, 176)]:
        video = torch.zeros(1, frames, 3, height, width, dtype=torch.uint8)
        resized = processor.resize(
            video, size=size, resample=processor.resample, factor=32, temporal_factor=2, cap_pixels_per_frame=True
        )
        assert tuple(resized.shape[-2:]) == dense.settings.pixels.frame_size(height, width, frames)


def test_thinking_split():
    from fastvid_cli.models.qwen3_vl import split_reasoning

    assert split_reasoning("a man rides</think>\n\nHe rides a bike.", True) == ("He rides a bike.", "a man rides")
    assert split_reasoning("<think>\nhm</think>ok", True) == ("ok", "hm")
    assert split_reasoning("no end yet", True) == ("", "no end yet")
    assert split_reasoning("He rides.", False) == ("He rides.", None)


def test_ask_json_and_compare_at_full_retention(capsys, built):
    """``fastvid ask --json`` on a real clip, and ``compare --retention 1.0`` answering as the vanilla model."""
    from fastvid_cli.cli import run

    for kind in PUBLISHED:
        model = str(built[kind])
        code = run(["ask", str(SAMPLES / "bikes.mp4"), "What happens?", "--model", model, "--json", "--max-new-tokens", "4"])
        out = capsys.readouterr()
        assert code == 0, out.err
        data = json.loads(out.out)
        assert data["model"]["family"] == "qwen3_vl" and data["frames"] == 20
        assert data["settings"]["frames"]["fps"] == 2.0 and data["settings"]["system_prompt"] is None
        assert data["tokens"]["grid_thw"][0] == 10 and data["reasoning"] is None
        assert data["tokens"]["video_after"] == 10 * math.floor(160 * 0.27)
        assert data["retention"] == 0.27
        code = run(
            [
                "compare",
                str(SAMPLES / "bikes.mp4"),
                "What happens?",
                "--model",
                model,
                "--retention",
                "1.0",
                "--method",
                "fastvid",
                "--json",
                "--max-new-tokens",
                "6",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        rows = json.loads(out.out)["rows"]
        assert rows[0]["answer"] == rows[1]["answer"], rows
