"""fastvid compare, flops and bench, end to end with the tiny model and the shipped geometries."""

from __future__ import annotations

import json
import math

import pytest
import typer

from fastvid_cli.cli import app, run


def fastvid(capsys, *args):
    code = run([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def parsed(*argv: str) -> dict:
    """The parameters click parses for ``fastvid ARGV`` (nothing runs)."""
    command = typer.main.get_command(app).commands[argv[0]]
    return command.make_context(argv[0], list(argv[1:])).params


def test_space_separated_values_and_repeated_options_mean_the_same():
    spaced = parsed("compare", "v.mp4", "q", "--retention", "0.1", "0.25", "--method", "fastvid", "uniform:x=1", "--frames", "8")
    repeated = parsed(
        "compare",
        "v.mp4",
        "q",
        "-r",
        "0.1",
        "--retention",
        "0.25",
        "--method",
        "fastvid",
        "--method",
        "uniform:x=1",
        "--frames",
        "8",
    )
    assert spaced == repeated
    assert spaced["retention"] == [0.1, 0.25] and spaced["method"] == ["fastvid", "uniform:x=1"] and spaced["frames"] == 8
    # a list ends at the next option or at a word that is not a value: here the arguments
    front = parsed("compare", "--retention", "0.1", "0.2", "v.mp4", "q")
    assert (front["video"].name, front["question"], front["retention"]) == ("v.mp4", "q", [0.1, 0.2])
    assert parsed("flops", "-r", "0.1", "0.2", "--json")["retention"] == [0.1, 0.2]
    assert parsed("flops", "--retention=0.1", "0.2")["retention"] == [0.1, 0.2]
    assert parsed("bench", "--frames", "4", "16", "--json")["frames"] == [4, 16]
    assert parsed("bench", "--method", "fastvid", "dycoke", "-r", "0.1")["method"] == ["fastvid", "dycoke"]


def test_argv_is_not_rewritten(capsys):
    argv = ["flops", "--retention", "0.1", "0.25", "--json"]
    code, out, err = fastvid(capsys, *argv)
    assert code == 0, err
    assert argv == ["flops", "--retention", "0.1", "0.25", "--json"]
    assert [row["retention"] for row in json.loads(out)["rows"]] == [1.0, 0.1, 0.25]  # vanilla first


@pytest.mark.parametrize(
    "argv,message",
    [
        (["bench", "--frames", "4", "0"], "Invalid value for '--frames'"),
        (["compare", "v.mp4", "q", "--method", "fastvid", "--retention", "0.1", "x"], "unexpected extra argument(s) (x)"),
    ],
)
def test_a_bad_value_in_a_list_is_one_line(capsys, argv, message):
    code, out, err = fastvid(capsys, *argv)
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1


def test_compare_every_method_side_by_side(capsys, tiny_dir, sample_video):
    methods = ["fastvid", "uniform", "visionzip", "dycoke", "fastvid:segmentation=fixed", "fastvid:d=0"]
    code, out, err = fastvid(
        capsys,
        "compare",
        sample_video,
        "What happens?",
        "--model",
        "tiny-random",
        "--frames",
        "8",
        "--method",
        *methods,
        "--retention",
        "0.1",
        "0.25",
        "--max-new-tokens",
        "4",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    rows = data["rows"]
    assert [r["method"] for r in rows[:3]] == ["vanilla", "fastvid", "fastvid"]
    assert len(rows) == 1 + len(methods) * 2
    vanilla = rows[0]
    assert vanilla["video_tokens"] == 8 * 196 and vanilla["speedup"] == pytest.approx(1.0)
    for row in rows[1:]:
        want = 8 * max(1, math.floor(196 * row["retention"]))
        if row["spec"] == "dycoke" and row["retention"] == 0.1:
            assert row["video_tokens"] == 2 * 196 and "first frame" in row["note"]  # 8 frames: 2 windows
        else:
            assert row["video_tokens"] == want, row["method"]
        assert row["same_as_vanilla"] == (row["answer"] == vanilla["answer"])
        assert row["speedup"] == pytest.approx(vanilla["prefill_ms"] / row["prefill_ms"])
        assert row["tflops_ratio"] == pytest.approx(row["tflops"] / vanilla["tflops"])
        assert row["pruning_ms"] > 0 and row["prompt_tokens"] < vanilla["prompt_tokens"]
    labels = {r["method"] for r in rows}
    assert {"fastvid (segmentation=fixed)", "fastvid (d=0)", "visionzip", "uniform"} <= labels
    assert any("first frame" in n for n in data["notes"])


def test_compare_prints_table_and_one_answer_line_per_row(capsys, tiny_dir, sample_video):
    code, out, err = fastvid(
        capsys,
        "compare",
        sample_video,
        "q",
        "--model",
        "tiny-random",
        "--frames",
        "4",
        "--method",
        "fastvid",
        "uniform",
        "-r",
        "0.25",
        "--max-new-tokens",
        "3",
    )
    assert code == 0, err
    lines = out.strip().splitlines()
    assert [line.split("\t")[:2] for line in lines] == [["vanilla", "1"], ["fastvid", "0.25"], ["uniform", "0.25"]]
    for header in ("method", "tokens", "TFLOPs", "prune ms", "prefill ms", "speedup", "answer"):
        assert header in err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "magic"], "unknown method 'magic'"),
        (["--method", "fastvid:zz=1"], "bad option"),
        (["--retention", "0.1", "2"], "retention ratio must be in (0, 1]"),
    ],
)
def test_compare_bad_input_before_any_work(capsys, sample_video, args, message):
    code, out, err = fastvid(capsys, "compare", sample_video, "q", "--model", "tiny-random", *args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and out == "" and len(lines) == 1 and message in lines[0]


def test_flops_reproduces_table5_offline(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = fastvid(capsys, "flops", "--retention", "0.1", "--json")
    assert code == 0, err
    data = json.loads(out)
    vanilla, pruned = data["rows"]
    assert vanilla["video_tokens"] == 6272 and round(vanilla["table5"], 2) == 48.82
    assert pruned["video_tokens"] == 608 and round(pruned["table5"], 2) == 4.04
    assert round(pruned["table5_ratio"], 3) == 0.083
    assert pruned["causal_2mac"] > pruned["table5"]  # 2 x MACs
    assert set(data["conventions"]) == {"table5", "causal_2mac"}
    code, out, err = fastvid(capsys, "flops", "-r", "0.1")
    assert code == 0 and "48.82" in err and "4.042" in err and "8.3%" in err
    assert out == "", "stdout carries only answers or JSON: the tables go to stderr"


@pytest.mark.parametrize(
    "model,hidden,layers",
    [("llava-ov-0.5b", 896, 24), ("llava-hf/llava-onevision-qwen2-72b-ov-hf", 8192, 80), ("tiny-random", 64, 2)],
)
def test_flops_for_every_supported_geometry(capsys, monkeypatch, tiny_dir, model, hidden, layers):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = fastvid(capsys, "flops", "--model", model, "--frames", "16", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"]["llm"]["hidden"] == hidden and data["model"]["llm"]["layers"] == layers
    assert data["rows"][0]["video_tokens"] == 16 * 196 and len(data["rows"]) == 5


def test_flops_from_a_local_checkpoint_folder(capsys, tiny_dir):
    code, out, err = fastvid(capsys, "flops", "--model", tiny_dir, "--json", "-r", "0.5")
    assert code == 0, err
    assert json.loads(out)["rows"][1]["video_tokens"] == 32 * 98


def test_flops_unknown_model_offline(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    code, out, err = fastvid(capsys, "flops", "--model", "someone/unknown-model")
    assert code == 2 and out == "" and "HF_HUB_OFFLINE" in err


def test_bench_writes_its_json(capsys, tmp_path, tiny_dir, sample_video):
    target = tmp_path / "results" / "cpu.json"
    code, out, err = fastvid(
        capsys,
        "bench",
        "--model",
        "tiny-random",
        "--layers",
        "1",
        "--frames",
        "8",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--method",
        "fastvid",
        "uniform",
        "--retention",
        "0.1",
        "0.5",
        "--video",
        sample_video,
        "--output",
        target,
        "--device",
        "cpu",
    )
    assert code == 0, err
    result = json.loads(target.read_text())
    assert result["environment"]["device_type"] == "cpu" and result["environment"]["torch"]
    assert result["settings"]["layers_run"] == 1 and result["settings"]["prefill_scaled_by"] == 2
    assert [(p["method"], p["retention"]) for p in result["pruning"]] == [
        ("fastvid", 0.1),
        ("fastvid", 0.5),
        ("uniform", 0.1),
        ("uniform", 0.5),
    ]
    for p in result["pruning"]:
        assert len(p["runs_ms"]) == 2 and p["median_ms"] > 0 and p["peak_mib"] > 0
        assert p["tokens_kept"] == 8 * max(1, math.floor(196 * p["retention"]))
    vanilla, r01, r05 = result["prefill"]
    assert (vanilla["video_tokens"], r01["video_tokens"], r05["video_tokens"]) == (8 * 196, 8 * 19, 8 * 98)
    assert r01["full_model_ms"] == pytest.approx(2 * r01["median_ms"])
    assert r01["speedup"] == pytest.approx(vanilla["median_ms"] / r01["median_ms"])
    assert "fastvid_pruning_share_of_pruned_prefill" in result["targets"]
    rows = result["ttft"]["rows"]
    assert [r["retention"] for r in rows] == [1.0, 0.1, 0.5]
    assert rows[0]["pruning_ms"] == 0 and rows[1]["pruning_ms"] > 0
    assert all(r["ttft_ms"] >= r["prefill_ms"] + r["vision_ms"] for r in rows)
    assert "Pruning time" in err and "LLM prefill" in err and "Time to first token" in err
    assert out == "", "without --json, stdout carries nothing: the tables go to stderr"


def test_bench_frame_sweep_times_pruning_only(capsys, tmp_path, tiny_dir, sample_video):
    target = tmp_path / "sweep.json"
    code, out, err = fastvid(
        capsys,
        "bench",
        "--model",
        "tiny-random",
        "--frames",
        "4",
        "16",
        "--scene-frames",
        "4",
        "--method",
        "fastvid",
        "uniform",
        "--retention",
        "0.1",
        "--repeats",
        "2",
        "--warmup",
        "0",
        "--device",
        "cpu",
        "--output",
        target,
    )
    assert code == 0, err
    result = json.loads(target.read_text())
    assert "prefill" not in result and result["settings"]["frames"] == [4, 16] and result["settings"]["scene_frames"] == 4
    rows = result["sweep"]
    assert [(r["frames"], r["method"]) for r in rows] == [(4, "fastvid"), (4, "uniform"), (16, "fastvid"), (16, "uniform")]
    for r in rows:
        assert r["tokens_kept"] == r["frames"] * 19 and r["shape"][0] == r["frames"]
        assert len(r["runs_ms"]) == 2 and r["median_ms"] > 0 and r["peak_mib"] > 0
    assert all(r["longest_segment"] <= 4 for r in rows if r["method"] == "fastvid")  # DySeg cuts a scene every 4 frames
    linear = result["targets"]["fastvid_time_linear_in_frames"]
    assert linear["target"] == 5 and linear["value"] == pytest.approx(rows[2]["median_ms"] / rows[0]["median_ms"])
    assert "Pruning time by frame count" in err and out == ""
    code, _, err = fastvid(capsys, "bench", "--model", "tiny-random", "--frames", "4", "16", "--video", sample_video)
    assert code == 2 and "--video" in err


@pytest.mark.parametrize(
    "model,family,per_frame,frames",
    [
        ("lmms-lab/LLaVA-Video-7B-Qwen2", "llava_video", 169, 64),
        ("llava-video-7b", "llava_video", 169, 64),
        ("Qwen/Qwen2.5-VL-7B-Instruct", "qwen2_5_vl", 256, 16),
        ("qwen2.5-vl-3b", "qwen2_5_vl", 256, 16),
        ("tiny-random-llava-video", "llava_video", 169, 64),
        ("tiny-random-qwen2.5-vl", "qwen2_5_vl", 256, 16),
    ],
)
def test_flops_for_the_other_families_offline(capsys, monkeypatch, tiny_dir, model, family, per_frame, frames):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, out, err = fastvid(capsys, "flops", "--model", model, "-r", "0.1", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["model"]["family"] == family and data["token_frames"] == frames
    assert data["rows"][0]["video_tokens"] == frames * per_frame
    assert data["rows"][1]["video_tokens"] == frames * max(1, math.floor(per_frame * 0.1))


@pytest.mark.parametrize("model", ["tiny-random-llava-video", "tiny-random-qwen2.5-vl"])
def test_compare_on_the_other_families(capsys, model, sample_video):
    code, out, err = fastvid(
        capsys,
        "compare",
        sample_video,
        "q",
        "--model",
        model,
        "--frames",
        "8",
        "--method",
        "fastvid",
        "visionzip",
        "-r",
        "0.25",
        "--max-new-tokens",
        "2",
        "--json",
    )
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [r["spec"] for r in rows] == ["vanilla", "fastvid", "visionzip"]
    assert rows[1]["video_tokens"] == rows[2]["video_tokens"] < rows[0]["video_tokens"]


# The JSON keys of `fastvid bench` (all three forms), pinned: the typed results' to_dict() must keep them, in order.
ENVIRONMENT_KEYS = ["device", "device_type", "dtype", "fastvid", "torch", "transformers", "python", "platform", "date"]
PRUNING_KEYS = [
    "method",
    "spec",
    "retention",
    "shape",
    "tokens_kept",
    "median_ms",
    "runs_ms",
    "peak_mib",
    "baseline_mib",
    "segments",
    "longest_segment",
]
TARGET_KEYS = ["value", "target", "met", "how"]


def test_bench_results_are_typed_and_keep_their_json_keys(tiny_dir, tiny_model, sample_video):
    from rich.console import Console

    from fastvid_cli.bench.results import (
        BenchResult,
        FrameCountTiming,
        PrefillTiming,
        PruningTiming,
        QuestionTiming,
        SweepResult,
        Target,
        TTFTRow,
        VideoTTFT,
    )
    from fastvid_cli.bench.runner import BenchSettings, run_bench, run_pruning_sweep, ttft_on_video
    from fastvid_cli.models.geometry import model_geometry
    from fastvid_cli.output.report import bench_tables, sweep_tables

    geometry = model_geometry("tiny-random")
    settings = BenchSettings(
        layers=1, frames=4, retentions=[0.1], methods=["fastvid"], repeats=1, warmup=0, questions=2, vision_layers=1
    )
    bench = run_bench(geometry, settings)
    assert isinstance(bench, BenchResult) and bench.ttft is None
    assert isinstance(bench.pruning[0], PruningTiming) and isinstance(bench.prefill[0], PrefillTiming)
    assert isinstance(bench.questions[0], QuestionTiming) and isinstance(bench.targets.checks["further_question_share"], Target)
    assert bench.prefill[1].speedup == pytest.approx(bench.prefill[0].median_ms / bench.prefill[1].median_ms)

    d = bench.to_dict()
    assert list(d) == ["environment", "settings", "pruning", "prefill", "questions", "targets"]  # no "ttft" without --video
    assert list(d["environment"]) == ENVIRONMENT_KEYS  # "cuda" only on a GPU
    assert list(d["settings"]) == [
        "model",
        "geometry",
        "token_frames",
        "layers_run",
        "layers_full",
        "prefill_scaled_by",
        "text_tokens",
        "retentions",
        "methods",
        "repeats",
        "warmup",
        "questions",
        "weights",
        "inputs",
    ]
    assert d["settings"]["geometry"] == geometry.to_dict()
    assert [list(p) for p in d["pruning"]] == [PRUNING_KEYS]
    assert [list(p) for p in d["prefill"]] == 2 * [
        [
            "retention",
            "video_tokens",
            "prompt_tokens",
            "median_ms",
            "runs_ms",
            "full_model_ms",
            "peak_mib",
            "speedup",
            "tflops",
            "tflops_by_layer_type",
        ]
    ]
    # the analytic FLOPs of each timed prompt, by layer type, on the whole model (causal, no LM head)
    from fastvid_cli.flops import prefill_macs

    for row in d["prefill"]:
        macs = prefill_macs(row["prompt_tokens"], geometry.llm, causal=True)
        assert row["tflops"] == pytest.approx(2 * (macs.total - macs.lm_head) / 1e12)
        assert row["tflops_by_layer_type"]["mlp"] == pytest.approx(2 * macs.mlp / 1e12)
    assert [list(q) for q in d["questions"]] == 2 * [
        [
            "retention",
            "prefix_tokens",
            "question_tokens",
            "first_ms",
            "further_ms",
            "further_share",
            "further_runs_ms",
            "vision_ms",
            "pruning_ms",
            "first_ttft_ms",
        ]
    ]
    for q in bench.questions:  # the first question's TTFT adds the vision encoder and the pruning to its prefill
        assert q.vision_ms > 0 and q.first_ttft_ms == pytest.approx(q.vision_ms + q.pruning_ms + q.first_ms)
        assert q.further_share == pytest.approx(q.further_ms / q.first_ttft_ms)
    assert bench.questions[0].pruning_ms == 0.0 and bench.questions[1].pruning_ms == bench.pruning[0].median_ms
    assert {k: list(t) for k, t in d["targets"].items()} == {
        "fastvid_pruning_share_of_pruned_prefill": TARGET_KEYS,
        "further_question_share": TARGET_KEYS,
    }
    assert json.loads(json.dumps(d)) == d

    # --video: the TTFT rows, vanilla first
    bench.ttft = VideoTTFT(
        video=str(sample_video),
        model="tiny-random",
        questions=2,
        rows=ttft_on_video(tiny_model, str(sample_video), "What happens?", 4, [0.1], 1, questions=2),
    )
    assert all(isinstance(r, TTFTRow) for r in bench.ttft.rows)
    d = bench.to_dict()
    assert list(d)[-1] == "ttft" and list(d["ttft"]) == ["video", "model", "questions", "rows"]
    assert [list(r) for r in d["ttft"]["rows"]] == 2 * [
        ["retention", "decode_ms", "preprocess_ms", "vision_ms", "pruning_ms", "prefill_ms", "ttft_ms", "further_ttft_ms"]
    ]
    assert [r["retention"] for r in d["ttft"]["rows"]] == [1.0, 0.1] and d["ttft"]["rows"][1]["further_ttft_ms"] is not None

    # --frames F1 F2: the sweep
    sweep = run_pruning_sweep(geometry, BenchSettings(retentions=[0.1], methods=["fastvid"], repeats=1, warmup=0), [2, 4])
    assert isinstance(sweep, SweepResult) and all(isinstance(r, FrameCountTiming) for r in sweep.sweep)
    d = sweep.to_dict()
    assert list(d) == ["environment", "settings", "sweep", "targets"] and list(d["environment"]) == ENVIRONMENT_KEYS
    assert list(d["settings"]) == [
        "model",
        "geometry",
        "frames",
        "retentions",
        "methods",
        "repeats",
        "warmup",
        "scene_frames",
        "inputs",
        "peak_memory",
    ]
    assert [list(r) for r in d["sweep"]] == 2 * [["frames", "token_frames", *PRUNING_KEYS]]
    assert list(d["targets"]["fastvid_time_linear_in_frames"]) == ["value", "target", "met", "retention", "how"]
    assert json.loads(json.dumps(d)) == d
    no_fastvid = run_pruning_sweep(geometry, BenchSettings(retentions=[0.1], methods=["uniform"], repeats=1, warmup=0), [2])
    assert list(no_fastvid.to_dict()["targets"]) == ["note"]

    # the report takes the typed results
    console = Console(width=200, record=True)
    for table in [*bench_tables(bench), *sweep_tables(sweep)]:
        console.print(table)
    text = console.export_text()
    assert "Pruning time" in text and "Time to first token" in text and "further_TTFT ms" in text
    assert "Pruning time by frame count" in text and "fastvid time, most / fewest frames" in text
