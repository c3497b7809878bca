"""LLaVA-Video: LLaVA-NeXT tensor names mapped at load time, grid layout, newline rule, positions."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors import safe_open
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fastvid_cli.models import detect_family, load_model
from fastvid_cli.pruning import FastVIDConfig, PruneResult, fastvid_prune
from fastvid_cli.tiny import tiny_random_dir
from fastvid_cli.video import read_video


@pytest.fixture(scope="module")
def video_model(isolated_cache):
    return load_model("tiny-random-llava-video", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def prepared(video_model, sample_video):
    inputs = video_model.prepare(read_video(sample_video, 6), "What happens?")
    return inputs, video_model.encode(inputs)


def test_llava_next_checkpoint_maps_every_tensor(video_model):
    folder = tiny_random_dir("tiny-random-llava-video")
    config = json.loads((folder / "config.json").read_text())
    published = safe_open(str(folder / "model.safetensors"), "pt").keys()
    assert config["architectures"] == ["LlavaQwenForCausalLM"] and "model.layers.0.self_attn.q_proj.weight" in published
    state = video_model.model.state_dict()
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        for key in f.keys():  # noqa: SIM118 - a safetensors file: keys(), no iteration
            name = re.sub(r"^model\.mm_projector\.0\.", "model.multi_modal_projector.linear_1.", key)
            name = re.sub(r"^model\.mm_projector\.2\.", "model.multi_modal_projector.linear_2.", name)
            name = re.sub(r"^model\.vision_tower\.vision_tower\.vision_model\.", "model.vision_tower.", name)
            name = re.sub(r"^model\.(embed_tokens|layers|norm)\.", r"model.language_model.\1.", name)
            assert torch.equal(state[name], f.get_tensor(key)), key
    assert video_model.family == "llava_video" and video_model.default_frames == 64
    tokenizer = video_model.processor.tokenizer
    assert (
        video_model.video_token_id == tokenizer.convert_tokens_to_ids("<video>") < video_model.model.config.text_config.vocab_size
    )


def test_grid_geometry(video_model, prepared):
    inputs, features = prepared
    assert features.video_tokens.shape[:2] == (6, 169) and features.grid == (13, 13)
    assert features.saliency.shape == (6, 169) and features.extra_slots == 6 * 13
    assert int((inputs["input_ids"] == video_model.video_token_id).sum()) == 6 * 182
    # tokens are the 2x2 average of the projected patches
    with torch.inference_mode():
        raw = video_model.model.model.vision_tower(inputs["pixel_values_videos"][0], output_hidden_states=True).hidden_states[-1]
        projected = video_model.model.model.multi_modal_projector(raw).view(6, 27, 27, -1)
    torch.testing.assert_close(features.video_tokens[0, 0], projected[0, :2, :2].mean((0, 1)))
    torch.testing.assert_close(features.video_tokens[0, 168], projected[0, 24:26, 24:26].mean((0, 1)))


def test_newline_kept_for_rows_that_keep_a_token(video_model, prepared):
    _, features = prepared
    # frame 0 keeps tokens in rows 0 and 5; frame 2 keeps one token in row 12
    indices = torch.tensor([0, 3, 5 * 13 + 7, 2 * 169 + 12 * 13 + 12])
    kept = PruneResult(
        tokens=torch.zeros(4, 1), indices=indices, segment_lengths=[6], anchor_mask=torch.zeros(4, dtype=torch.bool)
    )
    token_slots, newline_slots = video_model.slot_indices(features, kept)
    assert token_slots.tolist() == [0, 3, 5 * 14 + 7, 2 * 182 + 12 * 14 + 12]
    assert newline_slots.tolist() == [13, 5 * 14 + 13, 2 * 182 + 12 * 14 + 13]


def test_pruned_prefill_equals_masked_full_forward(video_model, prepared):
    inputs, features = prepared
    kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=0.1))
    pruned = video_model.build_inputs(inputs, features, kept)
    token_slots, newline_slots = video_model.slot_indices(features, kept)
    assert pruned.video_slots == kept.indices.numel() + newline_slots.numel() < 6 * 182
    ids = inputs["input_ids"]
    slots = (ids[0] == video_model.video_token_id).nonzero().flatten()
    full = video_model.build_inputs(inputs, features, None)
    values = full.kwargs["mm_encoder_outputs"]["video"].pooler_output[0].clone()
    values[token_slots] = kept.tokens
    mask = torch.zeros_like(ids)
    mask[0, ids[0] != video_model.video_token_id] = 1
    mask[0, slots[torch.cat([token_slots, newline_slots])]] = 1
    with torch.inference_mode():
        masked = video_model.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=torch.arange(ids.shape[1])[None],
            mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=values[None])},
        ).logits[0, -1]
    torch.testing.assert_close(video_model.prefill(pruned).logits, masked.float(), atol=1e-5, rtol=1e-5)
    keep_all = fastvid_prune(
        features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=1.0)
    )
    torch.testing.assert_close(
        video_model.prefill(video_model.build_inputs(inputs, features, keep_all)).logits, video_model.prefill(full).logits
    )


def test_layout_grid_for_transformers_format_checkpoint(video_model, tmp_path, sample_video):
    from transformers import LlavaOnevisionForConditionalGeneration

    folder = tmp_path / "llava-video-hf"
    plain = LlavaOnevisionForConditionalGeneration(video_model.model.config)  # no load-time renaming to undo
    plain.load_state_dict(video_model.model.state_dict())
    plain.save_pretrained(folder)
    video_model.processor.save_pretrained(folder)
    shutil.copytree(tiny_random_dir("tiny-random-llava-video") / "siglip_head", folder / "siglip_head")
    config = json.loads((folder / "config.json").read_text())
    config.pop("fastvid_layout", None)
    config.pop("mm_newline_position", None)
    (folder / "config.json").write_text(json.dumps(config))
    assert detect_family(folder) == "llava_onevision"
    assert detect_family(folder, "grid") == "llava_video"
    grid = load_model(str(folder), device="cpu", layout="grid")
    inputs = grid.prepare(read_video(sample_video, 4), "q")
    features = grid.encode(inputs)
    assert features.grid == (13, 13)
    ref_inputs = video_model.prepare(read_video(sample_video, 4), "q")
    torch.testing.assert_close(features.video_tokens, video_model.encode(ref_inputs).video_tokens)


def test_ask_json_with_tiny_llava_video(capsys, sample_video):
    from fastvid_cli.cli import run

    code = run(
        ["ask", str(sample_video), "What happens?", "--model", "tiny-random-llava-video", "--json", "--max-new-tokens", "4"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    tokens = data["tokens"]
    assert data["frames"] == 64 and data["model"]["family"] == "llava_video"
    assert tokens["video_before"] == 64 * 169 and tokens["video_after"] == 64 * 16
    assert tokens["newline_before"] == 64 * 13 and 0 < tokens["newline_after"] <= 64 * 13
    assert tokens["prompt_before"] - tokens["prompt_after"] == (
        tokens["video_before"] + tokens["newline_before"] - tokens["video_after"] - tokens["newline_after"]
    )
