"""One flow: a video is encoded, pruned and prefilled once; each question prefills only its own tokens.

Each question's first-token logits and answer must equal a fresh single-question run: one forward
over the whole pruned prompt with no KV cache split, and the adapter's own ``generate`` on it.
"""

from __future__ import annotations

import json

import pytest
import torch

from fastvid_cli.engine import pipeline
from fastvid_cli.engine.pipeline import AskOptions, ask_many
from fastvid_cli.pruning import FastVIDConfig

QUESTIONS = ["What happens in this video?", "Who is riding?", "Where is this?"]
FAMILIES = ["tiny-random", "tiny-random-llava-video", "tiny-random-qwen2.5-vl"]


@pytest.fixture(scope="module", params=FAMILIES)
def family_model(request):
    from fastvid_cli.models import load_model

    return load_model(request.param, device="cpu", dtype="float32")


def record_calls(model):
    """(input length, last-position logits) of every forward of the whole model."""
    calls = []

    def hook(module, args, kwargs, out):
        ids = kwargs.get("input_ids")
        calls.append((int(ids.shape[1]), out.logits[0, -1].float().clone()))

    return calls, model.model.register_forward_hook(hook, with_kwargs=True)


def own_suffix(model, question: str) -> int:
    """Tokens of the prompt after the video, tokenized on their own from the template's text."""
    text = model.full_prompt(question)
    after = text[text.rindex(model.media_token) + len(model.media_token) :]
    assert question in after
    return len(model.processor.tokenizer(after, add_special_tokens=False)["input_ids"])


def test_each_question_equals_a_fresh_single_question_run(family_model, sample_video):
    from fastvid_cli.video import read_video

    model = family_model
    options = AskOptions(frames=8, config=FastVIDConfig(retention_ratio=0.3), max_new_tokens=6, baseline=False)
    pipeline._WARMED.add(id(model.model))  # no warm-up call in the count
    calls, handle = record_calls(model)
    try:
        results = ask_many(model, str(sample_video), QUESTIONS, options)
    finally:
        handle.remove()
    long_calls = [(n, logits) for n, logits in calls if n > 1]
    suffixes = [own_suffix(model, q) for q in QUESTIONS]
    prefix = results[0].tokens.prompt_after - suffixes[0]
    # the LLM read the video once (the prefix), then each question's own tokens; decoding is one token a step
    assert [n for n, _ in long_calls] == [prefix, *suffixes]
    assert [r.tokens.prefill_tokens for r in results] == [prefix + suffixes[0], *suffixes[1:]]
    assert results[0].timing.vision_ms > 0 and all(r.timing.vision_ms == 0 and r.timing.pruning_ms == 0 for r in results[1:])

    video = read_video(sample_video, model.settings.sampling.with_frames(8))
    for k, question in enumerate(QUESTIONS):
        inputs = model.prepare(video, question)
        features = model.encode(inputs)
        kept = options.config(features.video_tokens, features.frame_features, features.saliency)
        full = model.build_inputs(inputs, features, kept)
        with torch.inference_mode():
            reference = model.model(**full.kwargs).logits[0, -1].float()
        first = long_calls[k + 1][1]
        assert torch.allclose(first, reference, atol=1e-5, rtol=1e-5), (k, float((first - reference).abs().max()))
        assert results[k].answer == model.decode(model.generate(full, options.max_new_tokens))
        assert results[k].question == question and results[k].tokens.prompt_after == full.length


def test_one_pruned_prefill_per_answer_and_one_vanilla_for_the_baseline(sample_video, tiny_model):
    model = tiny_model
    pipeline._WARMED.add(id(model.model))
    for baseline in (False, True):
        calls, handle = record_calls(model)
        try:
            result = ask_many(
                model, str(sample_video), ["What happens?"], AskOptions(frames=4, max_new_tokens=3, baseline=baseline)
            )[0]
        finally:
            handle.remove()
        over_video = [n for n, _ in calls if n > result.tokens.video_after]
        expected = [result.tokens.prompt_after - own_suffix(model, "What happens?")]
        if baseline:
            expected = [result.tokens.prompt_before, *expected]
        assert over_video == expected
        assert (result.timing.prefill_vanilla_ms is not None) == baseline


def test_ask_several_questions_from_the_command_line(capsys, sample_video, tmp_path):
    from fastvid_cli.cli import run

    code = run(
        ["ask", str(sample_video), *QUESTIONS, "--model", "tiny-random", "--json", "--max-new-tokens", "3", "--frames", "4"]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert [d["question"] for d in data] == QUESTIONS
    assert data[0]["timing"]["decode_ms"] > 0 and data[0]["timing"]["vision_ms"] > 0 and data[0]["timing"]["pruning_ms"] > 0
    for d in data[1:]:
        assert d["timing"]["decode_ms"] == d["timing"]["vision_ms"] == d["timing"]["pruning_ms"] == 0
        assert d["tokens"]["prefill_tokens"] < 40 < data[0]["tokens"]["prefill_tokens"]
    assert data[0]["timing"]["ttft_ms"] >= data[0]["timing"]["vision_ms"] + data[0]["timing"]["prefill_ms"]

    questions = tmp_path / "q.txt"
    questions.write_text("Who is there?\n\nWhat color is the car?\n")
    code = run(
        [
            "ask",
            str(sample_video),
            "First?",
            "--questions",
            str(questions),
            "--model",
            "tiny-random",
            "--max-new-tokens",
            "2",
            "--frames",
            "4",
            "--no-baseline",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    lines = out.out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["1", "2", "3"]


def test_a_template_with_the_question_first_is_refused(sample_video, tiny_model, monkeypatch):
    from fastvid_cli.errors import ModelError

    monkeypatch.setattr(type(tiny_model), "full_prompt", lambda self, q: f"{q}\n{self.media_token}\n")
    with pytest.raises(ModelError, match="before the video"):
        ask_many(tiny_model, str(sample_video), ["What?"], AskOptions(frames=2))


def test_batch_answers_the_questions_of_a_video_on_one_session(tmp_path, sample_video):
    from fastvid_cli.cli import run

    items = tmp_path / "items.jsonl"
    other = sample_video.parent / "carphone.mp4"
    items.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"video": str(sample_video), "question": "What happens?", "id": "a"},
                {"video": str(other), "question": "Who talks?", "id": "b"},
                {"video": str(sample_video), "question": "Where?", "id": "c"},
            ]
        )
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    assert (
        run(
            [
                "batch",
                "--questions",
                str(items),
                "--model",
                "tiny-random",
                "--frames",
                "4",
                "--max-new-tokens",
                "2",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert set(records) == {"a", "b", "c"}
    assert records["a"]["timing"]["vision_ms"] > 0 and records["b"]["timing"]["vision_ms"] > 0
    assert records["c"]["timing"]["vision_ms"] == 0  # the video's second question: no second encode
    assert records["c"]["tokens"]["prefill_tokens"] < records["a"]["tokens"]["prefill_tokens"]


def test_baseline_is_skipped_past_the_context_window_unless_asked(tiny_model, sample_video, monkeypatch):
    """The default runs the vanilla prefill only when the unpruned prompt fits the LLM's trained context."""
    options = {"frames": 4, "max_new_tokens": 2}
    fits = pipeline.ask(tiny_model, str(sample_video), "What happens?", AskOptions(**options))
    assert fits.timing.prefill_vanilla_ms is not None and pipeline.BASELINE_NOTE in fits.notes
    text = tiny_model.model.config.text_config
    monkeypatch.setattr(text, "max_position_embeddings", fits.tokens.prompt_before - 1)
    long = pipeline.ask(tiny_model, str(sample_video), "What happens?", AskOptions(**options))
    assert long.timing.prefill_vanilla_ms is None and long.timing.prefill_speedup is None
    assert any("vanilla baseline skipped" in note for note in long.notes)
    forced = pipeline.ask(tiny_model, str(sample_video), "What happens?", AskOptions(**options, baseline=True))
    assert forced.timing.prefill_vanilla_ms is not None
    assert long.answer == fits.answer == forced.answer
