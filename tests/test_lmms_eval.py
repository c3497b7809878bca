"""``fastvid`` under the real lmms-eval (0.7.3): offline runs, prompt parity with the paper's wrappers,
and the model class in-process. Skipped only when lmms-eval is not installed (``pip install -e ".[eval]"``).

The runs go through ``python -m lmms_eval`` in a subprocess, fully offline, and are judged by the
results JSON and samples they write: lmms-eval exits 0 even when a run fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval")

from fastvid_cli.lmms_eval_plugin import BENCHMARKS, PAPER_TASKS, PAPER_WRAPPERS, tasks_dir
from fastvid_cli.pruning import FastVIDConfig, tokens_per_frame_kept

ROOT = Path(__file__).resolve().parents[1]
TASK_DIR = ROOT / "tests" / "lmms_eval_task"
TASK = "fastvid_local_mcq"
FRAMES = 4
TINY_FAMILIES = {
    "tiny-random": "llava_onevision",
    "tiny-random-llava-video": "llava_video",
    "tiny-random-qwen2.5-vl": "qwen2_5_vl",
    "tiny-random-qwen3-vl": "qwen3_vl",
    "tiny-random-qwen3.5": "qwen3_5",
}


def read_docs() -> list[dict]:
    return [json.loads(line) for line in (TASK_DIR / "test.jsonl").read_text().splitlines() if line.strip()]


def offline_env(tmp: Path) -> dict:
    """The test session's environment (its FASTVID_CACHE holds the tiny models), with no network use."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        WANDB_MODE="disabled",
        HF_HOME=str(tmp / "hf-home"),
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    env.pop("HF_TOKEN", None)
    return env


def run_lmms_eval(model_args: str, out: Path, launcher: list[str] | None = None, tasks: str = TASK) -> dict:
    """Run lmms-eval on the local task; return the results JSON, its samples and the log."""
    command = (launcher or [sys.executable, "-m"]) + [
        "lmms_eval",
        "--model",
        "fastvid",
        "--model_args",
        model_args,
        "--tasks",
        tasks,
        "--include_path",
        str(TASK_DIR),
        "--output_path",
        str(out),
        "--log_samples",
    ]
    proc = subprocess.run(command, cwd=ROOT, env=offline_env(out), capture_output=True, text=True, timeout=600, check=False)
    log = proc.stdout + proc.stderr
    found = sorted(out.glob("*/*_results.json"))
    assert proc.returncode == 0 and len(found) == 1, f"no results JSON from {' '.join(command)}:\n{log[-4000:]}"
    samples_files = sorted(out.glob(f"*/*_samples_{TASK}.jsonl"))
    assert len(samples_files) == 1, log[-4000:]
    samples = [json.loads(line) for line in samples_files[0].read_text().splitlines() if line.strip()]
    return {"results": json.loads(found[0].read_text()), "samples": samples, "log": log, "model_args": model_args}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The offline run of each tiny model, made once on first use: ``runs(name)``."""
    done = {}

    def get(name: str) -> dict:
        if name not in done:
            out = tmp_path_factory.mktemp(f"lmms-{name}")
            done[name] = {**run_lmms_eval(f"pretrained={name},retention=0.1,frames={FRAMES}", out), "name": name}
        return done[name]

    return get


@pytest.fixture(params=list(TINY_FAMILIES))
def family_run(request, runs):
    return runs(request.param)


def test_run_writes_the_metric_over_every_question(family_run):
    docs, results, samples = read_docs(), family_run["results"], family_run["samples"]
    accuracy = results["results"][TASK]["accuracy,none"]
    assert 0.0 <= accuracy <= 1.0
    assert results["n-samples"][TASK] == {"original": len(docs), "effective": len(docs)}
    assert sorted(s["doc_id"] for s in samples) == list(range(len(docs)))  # one sample per question
    assert accuracy == pytest.approx(sum(s["accuracy"] for s in samples) / len(docs))
    for sample in samples:
        assert isinstance(sample["filtered_resps"], str)
        assert sample["token_counts"][0]["input_tokens"] > 0  # the pruned prompt the LLM read
        assert sample["target"] == docs[sample["doc_id"]]["answer"]


def test_run_records_its_settings(family_run):
    from fastvid_cli.models import load_model

    results, docs = family_run["results"], read_docs()
    assert results["config"]["model"] == "fastvid"
    assert results["config"]["model_args"] == family_run["model_args"]
    assert results["config"]["model_backend"].startswith("fastvid_cli.lmms_eval_plugin.model.FastVIDLMM")
    throughput = results["throughput"]
    assert throughput["avg_fastvid_retention_ratio"] == pytest.approx(0.1)
    assert throughput["avg_fastvid_frames"] == FRAMES
    family_defaults = load_model(family_run["name"], device="cpu").fastvid_defaults  # e.g. Qwen2.5-VL's tau
    for field in ("c", "tau", "d", "p", "beta"):
        expected = family_defaults.get(field, getattr(FastVIDConfig(), field))
        assert throughput[f"avg_fastvid_{field}"] == pytest.approx(expected)
    assert throughput.get("avg_fastvid_split_tau") == family_defaults.get("split_tau")  # absent when off
    # 4 questions on 3 clips: one decode, vision pass and pruning per clip
    assert throughput["avg_fastvid_questions"] == len(docs)
    assert throughput["avg_fastvid_videos"] == len({d["video"] for d in docs})
    assert throughput["avg_fastvid_failed_videos"] == 0
    per_video = throughput["avg_fastvid_video_tokens_per_video"]
    assert 0 < throughput["avg_fastvid_video_tokens_kept_per_video"] < per_video
    usage = results["usage"]["total"]
    assert usage["n_api_calls"] == len(docs)
    assert usage["input_tokens"] == sum(s["token_counts"][0]["input_tokens"] for s in family_run["samples"])
    assert '"method": "fastvid' in family_run["log"] and f'"frames": {FRAMES}' in family_run["log"]


def test_llava_onevision_keeps_the_per_frame_budget(runs):
    throughput = runs("tiny-random")["results"]["throughput"]
    per_frame = throughput["avg_fastvid_video_tokens_per_video"] / FRAMES
    kept = throughput["avg_fastvid_video_tokens_kept_per_video"]
    assert kept == FRAMES * tokens_per_frame_kept(int(per_frame), 0.1)


def test_two_processes_split_the_requests_and_answer_the_same(runs, tmp_path):
    """``torchrun`` (as ``accelerate launch`` on GPUs): each rank answers its share; rank 0 merges."""
    single_process_run = runs("tiny-random")
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port), "-m"]
    run = run_lmms_eval(single_process_run["model_args"], tmp_path, launcher=launcher)
    assert run["results"]["n-samples"][TASK]["effective"] == len(read_docs())
    assert run["results"]["throughput"]["avg_fastvid_questions"] < len(read_docs())  # rank 0 had only its share
    by_doc = {s["doc_id"]: (s["filtered_resps"], s["token_counts"]) for s in run["samples"]}
    assert by_doc == {s["doc_id"]: (s["filtered_resps"], s["token_counts"]) for s in single_process_run["samples"]}


def test_a_baseline_method_runs_under_the_same_harness(tmp_path):
    run = run_lmms_eval(f"pretrained=tiny-random,method=visionzip,retention=0.25,frames={FRAMES}", tmp_path)
    throughput = run["results"]["throughput"]
    assert "avg_fastvid_dominant_share" in throughput and "avg_fastvid_tau" not in throughput
    per_frame = throughput["avg_fastvid_video_tokens_per_video"] / FRAMES
    assert throughput["avg_fastvid_video_tokens_kept_per_video"] == FRAMES * tokens_per_frame_kept(int(per_frame), 0.25)
    assert '"method": "visionzip"' in run["log"]
    assert run["results"]["n-samples"][TASK]["effective"] == len(read_docs())


# ---------------------------------------------------------------------------------------------
# Prompt parity: the context a paper benchmark builds for --model fastvid (with the task of
# PAPER_TASKS) equals the one it builds for the paper's wrapper of that family, on the installed
# task configs and a made-up document (no data is downloaded).
# ---------------------------------------------------------------------------------------------

DOCS = {  # the fields each benchmark's doc_to_text / doc_to_target read, with made-up values
    "videomme": {
        "video_id": "001",
        "duration": "short",
        "domain": "Knowledge",
        "sub_category": "History",
        "url": "",
        "videoID": "vid001",
        "question_id": "001-1",
        "task_type": "Counting Problem",
        "question": "How many people enter the room?",
        "options": ["A. One.", "B. Two.", "C. Three.", "D. Four."],
        "answer": "B",
    },
    "mvbench": {
        "video": "clip.mp4",
        "question": "What does the person do after opening the door?",
        "candidates": ["Sits down.", "Leaves.", "Turns on the light."],
        "answer": "Leaves.",
    },
    "longvideobench": {
        "video_path": "clip.mp4",
        "subtitle_path": "clip.json",
        "question": "What is on the table?",
        "option0": "A cup",
        "option1": "A book",
        "option2": "A phone",
        "option3": "A lamp",
        "option4": "N/A",
        "correct_choice": 1,
        "duration": 60.0,
        "starting_timestamp_for_subtitles": 0.0,
        "id": "q1",
        "question_category": "S2E",
        "topic_category": "NP",
        "level": "L1",
        "duration_group": 60,
        "view_count": 1,
    },
    "mlvu": {
        "video_name": "clip.mp4",
        "question": "What is the main event?\n(A) A race\n(B) A wedding\n(C) A storm\n(D) A match",
        "answer": "(A) A race",
        "task_type": "plotQA",
        "question_type": "plotQA",
    },
}


def _doc_for(task_name: str) -> dict:
    return next(doc for prefix, doc in DOCS.items() if task_name.startswith(prefix))


@pytest.fixture(scope="module")
def task_manager():
    """One index of the installed tasks plus ours; tasks built from it use a one-document dataset."""
    import datasets
    import lmms_eval.tasks as lmms_tasks
    from lmms_eval.api.task import ConfigurableTask

    class OneDocTask(ConfigurableTask):
        def download(self, dataset_kwargs=None) -> None:
            split = self.config.test_split or self.config.validation_split
            self.dataset = datasets.DatasetDict({split: datasets.Dataset.from_list([_doc_for(self.config.task)])})
            self.dataset_no_image = self.dataset

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_DATASETS_OFFLINE", "1")
        patch.setattr(lmms_tasks, "ConfigurableTask", OneDocTask)  # what TaskManager builds for a simple model
        yield lmms_tasks.TaskManager("WARNING", include_path=str(tasks_dir()))


def prompts(manager, task: str, model_name: str) -> dict[str, tuple[str, dict]]:
    """Leaf task name -> (context built for ``model_name``, generation kwargs)."""
    manager.model_name = model_name  # the --model string a task picks its prompt by
    loaded = manager.load_task_or_group([task])

    def leaves(tree):
        for key, value in tree.items():
            if isinstance(value, dict):
                yield from leaves(value)
            else:
                yield key, value

    return {name: (obj.fewshot_context(obj.task_docs[0], 0), obj.config.generation_kwargs) for name, obj in leaves(loaded)}


@pytest.mark.parametrize("benchmark", list(BENCHMARKS))
@pytest.mark.parametrize("family", list(PAPER_WRAPPERS))
def test_fastvid_gets_the_prompt_of_the_papers_wrapper(task_manager, family, benchmark):
    ours = prompts(task_manager, PAPER_TASKS[family][benchmark], "fastvid")
    theirs = prompts(task_manager, BENCHMARKS[benchmark], PAPER_WRAPPERS[family])
    assert ours == theirs
    assert len(ours) == (20 if benchmark == "mvbench" else 1)
    for context, _ in ours.values():
        assert _doc_for(next(iter(ours)))["question"].split("\n")[0] in context


def test_the_stock_videomme_task_would_give_fastvid_another_prompt_than_llava_vid(task_manager):
    """Why ``videomme_llava_vid`` exists: the task keys its prompt by the --model string."""
    plain = prompts(task_manager, "videomme", "fastvid")["videomme"][0]
    llava_vid = prompts(task_manager, "videomme", "llava_vid")["videomme"][0]
    assert plain != llava_vid and llava_vid.endswith("The best answer is:")


# ---------------------------------------------------------------------------------------------
# The model class in-process, on tiny-random.
# ---------------------------------------------------------------------------------------------

SAMPLES = ROOT / "sample_videos"


def make_requests(lm, items: list[tuple[str, str]], gen_kwargs: dict | None = None):
    """Instances of a made-up task ``t`` whose documents are (video, question) pairs."""
    from lmms_eval.api.instance import Instance

    lm.task_dict = {"t": {"test": [{"video": str(v), "question": q} for v, q in items]}}
    kwargs = gen_kwargs or {"max_new_tokens": 6, "until": ["\n\n"]}
    return [
        Instance(
            "generate_until",
            (q, dict(kwargs), lambda doc: [doc["video"]], i, "t", "test"),
            idx=0,
            metadata={"task": "t", "doc_id": i, "repeats": 1},
        )
        for i, (_, q) in enumerate(items)
    ]


@pytest.fixture(scope="module")
def tiny_lm():
    from fastvid_cli.lmms_eval_plugin.model import FastVIDLMM

    return FastVIDLMM(pretrained="tiny-random", frames=FRAMES, device="cpu", dtype="float32")


def test_questions_on_one_video_share_its_encoding_and_answer_as_ask_does(tiny_lm, monkeypatch):
    from fastvid_cli.engine.pipeline import AskOptions, ask

    calls = []
    encode = tiny_lm.adapter.encode
    monkeypatch.setattr(tiny_lm.adapter, "encode", lambda inputs: calls.append(1) or encode(inputs))
    items = [
        (SAMPLES / "bikes.mp4", "What moves?"),
        (SAMPLES / "carphone.mp4", "Who is there?"),
        (SAMPLES / "bikes.mp4", "Is it day?"),
    ]
    results = tiny_lm.generate_until(make_requests(tiny_lm, items))
    assert len(calls) == 2  # bikes once, carphone once
    monkeypatch.setattr(tiny_lm.adapter, "encode", encode)
    for (video, question), result in zip(items, results):
        alone = ask(
            tiny_lm.adapter,
            str(video),
            question,
            AskOptions(frames=FRAMES, config=tiny_lm.method, max_new_tokens=6, baseline=False),
        )
        assert result.text == alone.answer
        assert result.token_counts.input_tokens == alone.tokens.prompt_after


def test_retention_one_is_the_vanilla_model(tiny_lm):
    from fastvid_cli.engine.pipeline import AskOptions, ask
    from fastvid_cli.lmms_eval_plugin.model import FastVIDLMM

    lm = FastVIDLMM(pretrained="tiny-random", retention=1, frames=FRAMES, device="cpu", method="dycoke")
    assert lm.vanilla and lm.run_settings()["method"] == "vanilla"
    items = [(SAMPLES / "carphone.mp4", "What happens?")]
    vanilla = lm.generate_until(make_requests(lm, items))[0]
    pruned = tiny_lm.generate_until(make_requests(tiny_lm, items))[0]
    alone = ask(
        lm.adapter,
        str(items[0][0]),
        items[0][1],
        AskOptions(frames=FRAMES, config=FastVIDConfig(retention_ratio=1), max_new_tokens=6, baseline=False),
    )
    assert vanilla.token_counts.input_tokens == alone.tokens.prompt_before > pruned.token_counts.input_tokens
    assert vanilla.text == alone.answer


def test_an_unreadable_video_gets_empty_answers_and_the_run_goes_on(tiny_lm, tmp_path, broken_files):
    items = [
        (broken_files["corrupt"], "What happens?"),
        (SAMPLES / "bikes.mp4", "What moves?"),
        (tmp_path / "missing.mp4", "Why?"),
    ]
    results = tiny_lm.generate_until(make_requests(tiny_lm, items))
    assert [r.text for r in (results[0], results[2])] == ["", ""]
    assert results[0].token_counts is None and results[1].token_counts.input_tokens > 0


def test_requests_that_are_not_one_video_fail_before_any_model_work(tiny_lm):
    from lmms_eval.api.instance import Instance

    tiny_lm.task_dict = {"t": {"test": [{}]}}
    for visuals, kind in ((["a.mp4", "b.mp4"], "str, str"), ([], "none"), ([object()], "object")):
        request = Instance(
            "generate_until",
            ("Q?", {}, lambda doc, v=visuals: v, 0, "t", "test"),
            idx=0,
            metadata={"task": "t", "doc_id": 0, "repeats": 1},
        )
        with pytest.raises(ValueError, match=rf"one video file per request; task t, doc 0 gave visuals of type \[{kind}\]"):
            tiny_lm.generate_until([request])
    with pytest.raises(NotImplementedError, match="generate_until"):
        tiny_lm.loglikelihood([])


def test_stop_strings_cut_the_answer_but_not_the_default_delimiter():
    from fastvid_cli.lmms_eval_plugin.model import _cut

    assert _cut("B. Two\n\nBecause", ["\n\n"]) == "B. Two\n\nBecause"
    assert _cut("B. Two</s>x", ["</s>"]) == "B. Two"
    assert (_cut("B. Two. C", "."), _cut("B", None), _cut("B\nC", "\n")) == ("B", "B", "B")


def test_unknown_model_args_fail_before_loading():
    from fastvid_cli.lmms_eval_plugin.model import FastVIDLMM

    with pytest.raises(ValueError, match="unknown model_args max_frames_num"):
        FastVIDLMM(pretrained="no/such-model", max_frames_num=32)
