"""LLaVA-OneVision adapter on the tiny random checkpoint: geometry and position-id equivalences."""

from __future__ import annotations

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from fastvid_cli.pruning import FastVIDConfig, fastvid_prune
from fastvid_cli.video import read_video


@pytest.fixture(scope="module")
def prepared(tiny_model, sample_video):
    video = read_video(sample_video, 8)
    inputs = tiny_model.prepare(video, "What happens in this video?")
    features = tiny_model.encode(inputs)
    return inputs, features


def test_token_geometry(tiny_model, prepared):
    inputs, features = prepared
    assert features.video_tokens.shape == (8, 196, tiny_model.model.config.text_config.hidden_size)
    assert features.grid == (14, 14)
    assert features.saliency.shape == (8, 196)
    assert features.frame_features.shape == (8, tiny_model.model.config.vision_config.hidden_size)
    slots = int((inputs["input_ids"] == tiny_model.video_token_id).sum())
    assert slots == 8 * 196 + 1  # one image_newline after all frames
    assert inputs["pixel_values_videos"].shape == (1, 8, 3, 384, 384)


def test_saliency_is_head_attention_pooled_like_tokens(tiny_model, prepared):
    inputs, features = prepared
    out = tiny_model.model.model.get_video_features(inputs["pixel_values_videos"], output_hidden_states=True)
    _, attention = tiny_model.siglip_head(out.hidden_states[-1])
    pooled = torch.nn.functional.interpolate(attention.view(8, 1, 27, 27), size=(14, 14), mode="bilinear")
    torch.testing.assert_close(features.saliency, pooled.flatten(1))
    # bilinear pooling of a distribution keeps its mass close to one per frame
    assert torch.allclose(features.saliency.sum(1) * (27 * 27) / 196, torch.ones(8), atol=0.1)


def test_keep_all_matches_transformers_generate(tiny_model, prepared):
    inputs, features = prepared
    kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=1.0))
    ours = tiny_model.build_inputs(inputs, features, kept)
    with torch.inference_mode():
        reference = tiny_model.model(**inputs).logits[0, -1]
        ref_tokens = tiny_model.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    torch.testing.assert_close(tiny_model.prefill(ours).logits, reference.float(), atol=1e-5, rtol=1e-5)
    new = tiny_model.generate(ours, 12)
    assert new.tolist() == ref_tokens[0, inputs["input_ids"].shape[1] :].tolist()
    assert len(set(new.tolist())) > 1, "the tiny model's greedy answer depends on its input"


@pytest.mark.parametrize("retention", [0.1, 0.3])
def test_pruned_prefill_equals_masked_full_forward(tiny_model, prepared, retention):
    """Kept tokens at their original positions == the full sequence with the dropped slots masked."""
    inputs, features = prepared
    kept = fastvid_prune(
        features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=retention)
    )
    pruned = tiny_model.build_inputs(inputs, features, kept)
    assert pruned.length == inputs["input_ids"].shape[1] - (8 * 196 - kept.indices.numel())
    ids = inputs["input_ids"]
    slots = (ids[0] == tiny_model.video_token_id).nonzero().flatten()
    tokens = features.video_tokens.reshape(8 * 196, -1).clone()
    tokens[kept.indices] = kept.tokens
    dropped = torch.ones(8 * 196, dtype=torch.bool)
    dropped[kept.indices] = False
    mask = torch.ones_like(ids)
    mask[0, slots[:-1][dropped]] = 0
    video = torch.cat([tokens, features.state.newline])[None]
    with torch.inference_mode():
        masked = tiny_model.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=torch.arange(ids.shape[1])[None],
            mm_encoder_outputs={"video": BaseModelOutputWithPooling(pooler_output=video)},
        ).logits[0, -1]
        unpruned = tiny_model.model(**inputs).logits[0, -1]
    logits = tiny_model.prefill(pruned).logits
    torch.testing.assert_close(logits, masked.float(), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(logits, unpruned.float(), atol=1e-3), "pruning changes the logits"
    # positions with gaps: the last prompt token keeps its original index
    assert int(pruned.kwargs["position_ids"][0, -1]) == ids.shape[1] - 1


def test_generation_continues_from_original_length(tiny_model, prepared):
    """Decoding with cache after a pruned prefill equals decoding the masked full-length sequence."""
    inputs, features = prepared
    kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, FastVIDConfig(retention_ratio=0.1))
    pruned = tiny_model.build_inputs(inputs, features, kept)
    new = tiny_model.generate(pruned, 6)
    # greedy by hand with no cache: append each token at the next original position
    ids, pos = pruned.kwargs["input_ids"], pruned.kwargs["position_ids"]
    video = pruned.kwargs["mm_encoder_outputs"]
    suppressed = list(tiny_model.model.generation_config.suppress_tokens or [])
    manual = []
    with torch.inference_mode():
        for _ in range(6):
            logits = tiny_model.model(
                input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=pos, mm_encoder_outputs=dict(video)
            ).logits[0, -1]
            logits[suppressed] = float("-inf")
            nxt = int(logits.argmax())
            manual.append(nxt)
            ids = torch.cat([ids, torch.tensor([[nxt]])], 1)
            pos = torch.cat([pos, pos[:, -1:] + 1], 1)
    assert new.tolist() == manual
