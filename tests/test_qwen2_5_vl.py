"""Qwen2.5-VL adapter on the tiny random checkpoint: M-RoPE positions, saliency, end to end."""

from __future__ import annotations

import json

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fastvid_cli.models import load_model
from fastvid_cli.pruning import FastVIDConfig, fastvid_prune
from fastvid_cli.video import read_video


@pytest.fixture(scope="module")
def qwen(isolated_cache):
    return load_model("tiny-random-qwen2.5-vl", device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def prepared(qwen, sample_video):
    inputs = qwen.prepare(read_video(sample_video, 8), "What happens?")
    return inputs, qwen.encode(inputs)


def test_geometry_and_temporal_metadata(qwen, prepared):
    inputs, features = prepared
    t, h, w = inputs["video_grid_thw"][0].tolist()
    assert t == 4 and features.state.grid_thw == (t, h, w)  # 8 frames in pairs
    assert features.video_tokens.shape[:2] == (4, (h // 2) * (w // 2)) and features.grid == (h // 2, w // 2)
    assert int((inputs["input_ids"] == qwen.video_token_id).sum()) == t * (h // 2) * (w // 2)
    # the paper's runs: the processor's default 2 fps, so one grid step (2 frames) = 1 s whatever the sampling
    assert float(inputs["second_per_grid_ts"][0]) == pytest.approx(2 / 2.0)
    torch.testing.assert_close(features.frame_features, features.video_tokens.mean(1))
    # attention received, mean over heads and queries of each group: sums to 1 per group, 1/4 per merged token
    torch.testing.assert_close(features.saliency.sum(1), torch.full((4,), 0.25), atol=1e-5, rtol=0)


def test_keep_all_matches_transformers_generate(qwen, prepared):
    inputs, features = prepared
    kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=1.0))
    ours = qwen.build_inputs(inputs, features, kept)
    with torch.inference_mode():
        qwen.model.model.rope_deltas = None
        reference = qwen.model(**inputs).logits[0, -1]
        qwen.model.model.rope_deltas = None
        ref_tokens = qwen.model.generate(**inputs, max_new_tokens=10, do_sample=False)
    torch.testing.assert_close(qwen.prefill(ours).logits, reference.float(), atol=1e-5, rtol=1e-5)
    new = qwen.generate(ours, 10)
    assert new.tolist() == ref_tokens[0, inputs["input_ids"].shape[1] :].tolist()


def test_pruned_prefill_equals_masked_full_forward(qwen, prepared):
    inputs, features = prepared
    kept = fastvid_prune(
        features.video_tokens,
        features.frame_features,
        features.saliency,
        FastVIDConfig(retention_ratio=0.27, tau=0.84, split_tau=0.95),
    )
    pruned = qwen.build_inputs(inputs, features, kept)
    ids = inputs["input_ids"]
    slots = (ids[0] == qwen.video_token_id).nonzero().flatten()
    tokens = features.video_tokens.reshape(-1, features.video_tokens.shape[-1]).clone()
    tokens[kept.indices] = kept.tokens
    dropped = torch.ones(tokens.shape[0], dtype=torch.bool)
    dropped[kept.indices] = False
    mask = torch.ones_like(ids)
    mask[0, slots[dropped]] = 0
    positions = qwen.position_ids(inputs)
    assert positions.shape == (4, 1, ids.shape[1]) and not torch.equal(positions[1], positions[0]), "3-D M-RoPE rows"
    with torch.inference_mode():
        masked = qwen.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=(tokens,))},
        ).logits[0, -1]
        unpruned = qwen.model(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            position_ids=positions,
            mm_encoder_outputs={
                "video": BaseModelOutputWithPooling(pooler_output=(features.video_tokens.reshape(tokens.shape),))
            },
        ).logits[0, -1]
    logits = qwen.prefill(pruned).logits
    torch.testing.assert_close(logits, masked.float(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits, unpruned.float(), atol=1e-3)
    # the kept columns are the original ones: the last text token keeps M-RoPE's last position
    assert torch.equal(pruned.kwargs["position_ids"][:, :, -1], positions[:, :, -1])


def test_generation_continues_from_original_positions(qwen, prepared):
    inputs, features = prepared
    kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=0.27))
    pruned = qwen.build_inputs(inputs, features, kept)
    new = qwen.generate(pruned, 5)
    ids, pos = pruned.kwargs["input_ids"], pruned.kwargs["position_ids"]
    suppressed = list(qwen.model.generation_config.suppress_tokens or [])
    manual = []
    with torch.inference_mode():
        for _ in range(5):
            logits = qwen.model(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                position_ids=pos,
                mm_encoder_outputs=dict(pruned.kwargs["mm_encoder_outputs"]),
            ).logits[0, -1]
            logits[suppressed] = float("-inf")
            nxt = int(logits.argmax())
            manual.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
            pos = torch.cat([pos, pos[:, :, -1:] + 1], 2)
    assert new.tolist() == manual


def test_ask_json_with_release_defaults(capsys, sample_video):
    from fastvid_cli.cli import run

    code = run(
        ["ask", str(sample_video), "What happens?", "--model", "tiny-random-qwen2.5-vl", "--json", "--max-new-tokens", "4"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    video = data["video"]
    two_fps = int(min(max(video["duration_s"] * 2, 4), min(768, video["total_frames"]))) // 2 * 2  # the paper's rule
    assert data["model"]["family"] == "qwen2_5_vl" and data["frames"] == two_fps
    assert data["config"]["retention_ratio"] == 0.27 and data["config"]["tau"] == 0.84 and data["config"]["split_tau"] == 0.95
    t, h, w = data["tokens"]["grid_thw"]
    per_group = (h // 2) * (w // 2)
    assert t == two_fps // 2 and data["tokens"]["video_before"] == t * per_group
    assert data["tokens"]["video_after"] == t * max(1, int(per_group * 0.27))
    code = run(
        [
            "ask",
            str(sample_video),
            "q",
            "--model",
            "tiny-random-qwen2.5-vl",
            "--json",
            "-r",
            "0.5",
            "--tau",
            "0.9",
            "--max-new-tokens",
            "2",
            "--frames",
            "8",
        ]
    )
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["config"]["retention_ratio"] == 0.5 and data["config"]["tau"] == 0.9


@pytest.mark.parametrize("arch,family", [("qwen2.5-vl", "qwen2_5_vl"), ("llava-video", "llava_video")])
def test_tiny_model_arch_writes_a_loadable_checkpoint(capsys, tmp_path, sample_video, arch, family):
    from fastvid_cli.cli import run

    target = tmp_path / arch
    assert run(["tiny-model", str(target), "--arch", arch]) == 0
    code = run(["ask", str(sample_video), "q", "--model", str(target), "--json", "--frames", "4", "--max-new-tokens", "2"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["model"]["family"] == family
    assert run(["tiny-model", str(tmp_path / "x"), "--arch", "gpt-2"]) == 2
    assert "unknown --arch" in capsys.readouterr().err
