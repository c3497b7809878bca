"""Qwen3.5 (hybrid Gated DeltaNet + attention; dense and MoE) on tiny checkpoints built from the published
configs in tests/realcfg: transformers' own forward at R = 1, several questions on a hybrid cache, the
thinking switch, and detection from the config alone."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from fastvid_cli.engine.pipeline import AskOptions, ask_many
from fastvid_cli.models import load_model
from fastvid_cli.pruning import FastVIDConfig
from fastvid_cli.video import read_video

REALCFG = Path(__file__).parent / "realcfg"
SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
PUBLISHED = {"dense": "Qwen3.5-0.8B", "moe": "Qwen3.5-35B-A3B"}


@pytest.fixture(scope="module")
def built(realcfg_checkpoint):
    """A tiny checkpoint per published config (dense, MoE), built through the CLI."""
    return {kind: realcfg_checkpoint(name) for kind, name in PUBLISHED.items()}


@pytest.fixture(scope="module", params=list(PUBLISHED))
def model(request, built):
    return load_model(str(built[request.param]), device="cpu", dtype="float32")


def test_family_layer_types_and_no_deepstack(model):
    text = model.model.config.text_config
    assert model.family == "qwen3_5"
    assert text.layer_types == ["linear_attention"] * 3 + ["full_attention"]  # the published pattern, 4 layers
    assert model.model.config.vision_config.deepstack_visual_indexes == []
    assert model.settings.thinking is False
    assert any("Gated DeltaNet" in note for note in model.settings.notes)


def test_nothing_pruned_gives_transformers_logits_and_answer(model):
    from transformers.video_utils import VideoMetadata

    video = read_video(SAMPLES / "carphone.mp4", model.settings.sampling)
    inputs = model.prepare(video, "What happens?")
    features = model.encode(inputs)
    assert features.state.levels == ()
    kept = FastVIDConfig(retention_ratio=1.0)(features.video_tokens, features.frame_features, features.saliency)
    ours = model.build_inputs(inputs, features, kept)
    text = model.processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What happens?"}]}],
        add_generation_prompt=True,
        enable_thinking=False,
    )
    metadata = VideoMetadata(total_num_frames=video.total_frames, fps=video.fps, frames_indices=video.indices.tolist())
    reference = model.processor(
        text=[text],
        videos=[video.frames],
        video_metadata=[metadata],
        do_sample_frames=False,
        videos_kwargs={"cap_pixels_per_frame": True},
        return_tensors="pt",
    )
    assert torch.equal(inputs["input_ids"], reference["input_ids"])
    with torch.inference_mode():
        model.model.model.rope_deltas = None
        logits = model.model(**reference).logits[0, -1]
        model.model.model.rope_deltas = None
        answer = model.model.generate(**reference, max_new_tokens=6, do_sample=False)
    torch.testing.assert_close(model.prefill(ours).logits, logits.float(), atol=1e-5, rtol=1e-5)
    assert model.generate(ours, 6).tolist() == answer[0, reference["input_ids"].shape[1] :].tolist()


def test_questions_in_any_order_equal_fresh_runs(model):
    """Each question decodes on an exact copy of the prefix's hybrid cache: the order does not matter,
    and each answer equals a fresh single-question run."""
    options = AskOptions(max_new_tokens=6, baseline=False)
    video = SAMPLES / "carphone.mp4"
    questions = ["What happens?", "Who is there?", "Where is it?"]
    forward = {r.question: r.answer for r in ask_many(model, video, questions, options)}
    backward = {r.question: r.answer for r in ask_many(model, video, questions[::-1], options)}
    assert forward == backward
    for question in questions:
        assert ask_many(model, video, [question], options)[0].answer == forward[question]


def test_the_prefix_cache_is_left_as_it_was(model):
    from fastvid_cli.engine.pipeline import VideoSession

    session = VideoSession.open(model, SAMPLES / "carphone.mp4")
    pruned = session.prune(FastVIDConfig(retention_ratio=0.27, tau=0.84, split_tau=0.95))
    pruned.prefill()
    before = copy.deepcopy(pruned.cache)
    pruned.answer("What happens?", 4)
    compared = {"keys": 0, "recurrent_states": 0, "conv_states": 0}
    for old, new in zip(before.layers, pruned.cache.layers):
        for name in ("keys", "values"):
            if getattr(old, name, None) is not None:
                assert torch.equal(getattr(old, name), getattr(new, name))
                compared["keys"] += name == "keys"
        for name in ("recurrent_states", "conv_states"):
            for index, state in (getattr(old, name, None) or {}).items():
                if state is not None:
                    assert torch.equal(state, getattr(new, name)[index]), (name, index)
                    compared[name] += 1
    assert all(compared.values()), compared  # KV, recurrent and convolution states were all there to compare
    assert pruned.cache.get_seq_length() == before.get_seq_length()


def test_thinking_switch(capsys, built):
    from fastvid_cli.cli import run

    dense = load_model(str(built["dense"]), device="cpu", dtype="float32")
    assert dense.full_prompt("Q").endswith("<think>\n\n</think>\n\n")  # off: an empty think block
    code = run(
        [
            "ask",
            str(SAMPLES / "carphone.mp4"),
            "What happens?",
            "--model",
            str(built["dense"]),
            "--json",
            "--max-new-tokens",
            "4",
            "--no-baseline",
            "--thinking",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["settings"]["thinking"] is True and "thinking on" in data["settings"]["rule"]
    assert data["reasoning"] is not None  # the tiny model never closes </think>: all it wrote is reasoning
    code = run(["ask", str(SAMPLES / "carphone.mp4"), "q", "--model", "tiny-random-qwen3-vl", "--thinking"])
    err = capsys.readouterr().err
    assert code == 2 and "thinking switch" in err and len(err.strip().splitlines()) == 1


def test_ask_json_several_questions_and_compare_at_full_retention(capsys, built):
    from fastvid_cli.cli import run

    for kind in PUBLISHED:
        code = run(
            [
                "ask",
                str(SAMPLES / "bikes.mp4"),
                "What happens?",
                "Who rides?",
                "--model",
                str(built[kind]),
                "--json",
                "--max-new-tokens",
                "3",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        first, second = json.loads(out.out)
        assert first["model"]["family"] == "qwen3_5" and first["frames"] == 20 and first["reasoning"] is None
        assert first["tokens"]["video_after"] == 10 * math.floor(160 * 0.27)
        assert second["tokens"]["prefill_tokens"] < first["tokens"]["prefill_tokens"]
        code = run(
            [
                "compare",
                str(SAMPLES / "bikes.mp4"),
                "What happens?",
                "--model",
                str(built[kind]),
                "--retention",
                "1.0",
                "--method",
                "fastvid",
                "--json",
                "--max-new-tokens",
                "5",
            ]
        )
        out = capsys.readouterr()
        assert code == 0, out.err
        rows = json.loads(out.out)["rows"]
        assert rows[0]["answer"] == rows[1]["answer"]


def test_detection_and_geometry_come_from_the_config(tmp_path):
    """A checkpoint of the same architecture under another name, with another layer pattern, runs as its
    config says: no list of repo names."""
    from fastvid_cli.models import detect_family
    from fastvid_cli.models.geometry import geometry_from_folder

    folder = tmp_path / "my-finetune"
    shutil.copytree(REALCFG / "Qwen3.5-9B", folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["layer_types"] = ["linear_attention", "full_attention"] * 16
    config["text_config"]["full_attention_interval"] = 2
    (folder / "config.json").write_text(json.dumps(config))
    assert detect_family(folder) == "qwen3_5"
    llm = geometry_from_folder(folder).llm
    assert (llm.full_attention_layers, llm.linear_layers) == (16, 16)
    assert geometry_from_folder(REALCFG / "Qwen3.5-9B").llm.full_attention_layers == 8


def test_answers_stop_at_the_end_of_the_turn(built):
    """The published repos ship no generation config and config.json's eos is <|endoftext|>: fastvid also
    stops at <|im_end|>, the end of the assistant's turn."""
    dense = load_model(str(built["dense"]), device="cpu", dtype="float32")
    tokenizer = dense.processor.tokenizer
    stops = dense.generation_config(8).eos_token_id
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in stops
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") in stops


@pytest.mark.parametrize("kind", list(PUBLISHED))
def test_bench_one_layer_of_a_hybrid_model_times_every_layer_type(capsys, tmp_path, built, kind):
    """`bench --layers 1 --questions 2` on hybrid Qwen3.5 (dense and MoE) gives a result, not transformers' error
    on a cache without an attention layer (or on cropping Gated DeltaNet states): it runs a whole period of
    the pattern, and says so."""
    from fastvid_cli.cli import run

    target = tmp_path / "bench.json"
    args = ["bench", "--model", built[kind], "--layers", "1", "--frames", "4", "--repeats", "1", "--warmup", "0"]
    args += ["--method", "fastvid", "-r", "0.5", "--device", "cpu", "--json", "--output", target, "--questions", "2"]
    code = run([str(a) for a in args])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    assert result["settings"]["layers_run"] == 4 and result["settings"]["layers_full"] == 4
    assert [p["retention"] for p in result["prefill"]] == [1.0, 0.5]
    assert "is hybrid" in err and "4 layers run, not 1" in err
    # a further question runs on a copy of the prefix's hybrid cache (Gated DeltaNet states cannot be cropped)
    assert [q["retention"] for q in result["questions"]] == [1.0, 0.5]
    assert all(0 < q["further_ms"] and len(q["further_runs_ms"]) == 1 for q in result["questions"])


@pytest.mark.parametrize(
    ("model", "asked", "expected"),
    [("qwen3.5-9b", 1, 4), ("qwen3.5-9b", 4, 4), ("qwen3.5-9b", 5, 8), ("qwen3.5-9b", 99, None), ("qwen3.5-35b-a3b", 3, 4)],
)
def test_layers_run_rounds_up_to_whole_periods_of_the_pattern(model, asked, expected):
    """The published 32- and 40-layer patterns (3 Gated DeltaNet, 1 attention): K rounds up to a multiple
    of 4, at most every layer; the types run are in the model's proportion."""
    from fastvid_cli.bench.runner import layer_pattern, layers_run
    from fastvid_cli.models.geometry import model_geometry

    geometry = model_geometry(model)
    expected = expected or geometry.llm.layers  # None: more than the model has, so all of them
    layers, note = layers_run(geometry, asked)
    assert layers == expected
    assert (note is None) == (asked == expected)
    run = layer_pattern(geometry)[:layers]
    assert run.count("full_attention") * 3 == run.count("linear_attention") > 0


def test_layers_run_keeps_k_for_a_model_of_one_layer_type():
    from fastvid_cli.bench.runner import layers_run
    from fastvid_cli.models.geometry import model_geometry

    geometry = model_geometry("qwen3-vl-8b")
    assert layers_run(geometry, 1) == (1, None)
    assert layers_run(geometry, None) == (geometry.llm.layers, None)
