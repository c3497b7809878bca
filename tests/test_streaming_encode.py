"""Streaming encode: a video encoded chunk by chunk equals one pass over all its frames.

For each family, the features (tokens, frame features, saliency, extra slots, state), the prompt
and the pruned answer must not depend on how many frames a chunk holds, including an odd chunk size
(Qwen2.5-VL rounds it up to its frame pairs) and a last chunk shorter than the others. Frames read
lazily (``decode=False``) must equal frames decoded up front.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fastvid_cli.engine.pipeline import AskOptions, VideoSession, ask, encode_video
from fastvid_cli.errors import InputError
from fastvid_cli.pruning import FastVIDConfig
from fastvid_cli.video import read_video

FAMILIES = ["tiny-random", "tiny-random-llava-video", "tiny-random-qwen2.5-vl"]
FRAMES = 10


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    from fastvid_cli.models import load_model

    return load_model(request.param, device="cpu", dtype="float32")


def test_lazy_frames_equal_decoded(sample_video):
    decoded = read_video(sample_video, FRAMES)
    lazy = read_video(sample_video, FRAMES, decode=False)
    assert lazy.frames is None and lazy.num_frames == FRAMES
    assert (lazy.height, lazy.width) == decoded.frames.shape[1:3]
    chunks = list(lazy.frame_chunks(4))
    assert [c.shape[0] for c in chunks] == [4, 4, 2]
    assert np.array_equal(np.concatenate(chunks), decoded.frames)
    assert lazy.frames is None  # nothing kept between chunks
    with pytest.raises(InputError):
        next(lazy.frame_chunks(0))


@pytest.mark.parametrize("chunk", [3, 4])
def test_chunked_features_equal_one_pass(family_model, sample_video, chunk):
    model = family_model
    video = read_video(sample_video, FRAMES)
    whole, _ = encode_video(model, video, vision_batch=FRAMES + 6)
    parts, ms = encode_video(model, read_video(sample_video, FRAMES, decode=False), vision_batch=chunk)
    assert ms["decode"] > 0 and ms["vision"] > 0
    assert parts.video_tokens.shape == whole.video_tokens.shape
    torch.testing.assert_close(parts.video_tokens, whole.video_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts.frame_features, whole.frame_features, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(parts.saliency, whole.saliency, atol=1e-5, rtol=1e-5)
    assert parts.extra_slots == whole.extra_slots
    assert parts.grid == whole.grid
    assert type(parts.state) is type(whole.state)
    assert parts.state.patch_grid == whole.state.patch_grid


def test_prompt_inputs_match_the_processor_path(family_model, sample_video):
    """The prompt built from the frame count alone equals the one built with all pixels processed."""
    model = family_model
    video = read_video(sample_video, FRAMES)
    prepared = model.prepare(video, "What happens?")
    lazy = model.prompt_inputs(read_video(sample_video, FRAMES, decode=False), "What happens?")
    for key, value in lazy.items():
        assert torch.equal(value.cpu(), prepared[key].cpu()), key
    if model.family == "llava_onevision":  # against the processor's own expansion of <video>
        reference = model.processor(text=model.prompt_text("What happens?"), videos=[video.frames], return_tensors="pt")
        assert torch.equal(lazy["input_ids"].cpu(), reference["input_ids"])
    if model.family == "qwen2_5_vl":
        from transformers.video_utils import VideoMetadata

        frames = model.resize_frames(video.frames, model.frame_size(video))
        meta = VideoMetadata(
            total_num_frames=video.total_frames,
            fps=video.fps,
            frames_indices=video.indices.tolist(),
            width=frames.shape[2],
            height=frames.shape[1],
        )
        reference = model.processor(
            text=[model.prompt_text("What happens?")],
            videos=[frames],
            video_metadata=[meta],
            do_sample_frames=False,
            do_resize=False,
            cap_pixels_per_frame=True,
            return_tensors="pt",
        )
        for key in ("input_ids", "mm_token_type_ids", "video_grid_thw"):
            assert torch.equal(lazy[key].cpu(), reference[key]), key


def test_answer_does_not_depend_on_the_chunk_size(family_model, sample_video):
    options = {"frames": FRAMES, "config": FastVIDConfig(retention_ratio=0.3), "max_new_tokens": 6, "baseline": False}
    one = ask(family_model, str(sample_video), "What happens?", AskOptions(**options, vision_batch=64))
    streamed = ask(family_model, str(sample_video), "What happens?", AskOptions(**options, vision_batch=3))
    assert streamed.answer == one.answer
    assert streamed.tokens == one.tokens
    assert streamed.timing.decode_ms > 0
    assert streamed.timing.ttft_ms >= streamed.timing.prefill_ms


def test_session_streams_a_path_without_keeping_frames(family_model, sample_video):
    session = VideoSession.open(family_model, str(sample_video), FRAMES, vision_batch=4)
    assert session.video.frames is None
    assert session.features.num_frames * family_model.frames_per_chunk >= FRAMES


def test_bad_vision_batch_is_one_input_error(family_model, sample_video):
    with pytest.raises(InputError, match="at least 1"):
        AskOptions(vision_batch=0)
    with pytest.raises(InputError, match="at least 1"):
        encode_video(family_model, read_video(sample_video, 4), vision_batch=0)
