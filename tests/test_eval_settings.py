"""The lmms-eval plugin's light parts, which need no lmms-eval: entry point, model args, task table."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from fastvid_cli.lmms_eval_plugin import BENCHMARKS, PAPER_TASKS, PAPER_WRAPPERS, paper_task, tasks_dir
from fastvid_cli.lmms_eval_plugin.settings import HYPERPARAMETERS, parse_model_args, resolve_method
from fastvid_cli.pruning import METHODS, DyCokeConfig, FastVIDConfig, VisionZipConfig


def test_entry_point_is_registered_and_its_module_imports_nothing_heavy():
    points = {ep.name: ep.value for ep in entry_points(group="lmms_eval.models")}
    assert points.get("fastvid") == "fastvid_cli.lmms_eval_plugin:manifest"
    code = (
        "import json, sys; import fastvid_cli.lmms_eval_plugin as plugin; "
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'lmms_eval', 'decord') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_model_args_defaults_leave_the_family_to_decide():
    settings = parse_model_args(pretrained="tiny-random")
    assert (settings.method, settings.retention, settings.frames, settings.hyperparameters) == ("fastvid", None, None, {})
    assert (settings.device, settings.dtype, settings.attn_implementation) == ("auto", "auto", "sdpa")


def test_model_args_as_lmms_eval_converts_them():
    # lmms-eval turns "retention=1" into int 1, "tau=0.8" into float, "split_tau=none" stays a string
    settings = parse_model_args(
        pretrained="tiny-random",
        retention=1,
        frames=16,
        tau=0.8,
        c=4,
        split_tau="none",
        method="'fastvid:p=2,beta=0.8'",
        segmentation="fixed",
    )
    assert settings.retention == 1 and settings.frames == 16
    assert settings.method == "fastvid:p=2,beta=0.8"  # quotes keep a spec's commas from lmms-eval's split
    assert settings.hyperparameters == {"tau": 0.8, "c": 4, "split_tau": None, "segmentation": "fixed"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retention_ratio": 0.1}, "unknown model_args retention_ratio; accepted: pretrained, method, retention"),
        ({"retention": 0}, "retention must be in (0, 1]"),
        ({"retention": 1.5}, "retention must be in (0, 1]"),
        ({"retention": "low"}, "retention must be a number"),
        ({"retention": True}, "retention must be a number"),
        ({"frames": 0}, "frames must be an integer >= 1"),
        ({"frames": 8.5}, "frames must be an integer >= 1"),
        ({"c": 2.5}, "c must be an integer >= 1"),
        ({"method": "tome"}, "unknown method 'tome'; choose from fastvid, uniform, visionzip, dycoke"),
        ({"method": "fastvid:q=1"}, "bad option 'q=1' for fastvid"),
        ({"d": 1.5}, "d must be in [0, 1]"),
        ({"segmentation": "kmeans"}, "segmentation must be one of dyseg, fixed, cluster"),
        ({"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
    ],
)
def test_bad_model_args_fail_with_a_clear_message(kwargs, message):
    with pytest.raises(ValueError) as err:
        parse_model_args(pretrained="tiny-random", **kwargs)
    assert message in str(err.value)
    assert str(err.value).startswith("fastvid: ")


def test_the_accepted_hyperparameters_are_the_method_dataclass_fields():
    fields = {name for cls in METHODS.values() for name in cls.hyperparameters()}
    assert set(HYPERPARAMETERS) == fields and "window" in fields and "dominant_share" in fields
    settings = parse_model_args(pretrained="m", method="dycoke", window=8, dominant_share=0.5, max_segment="off")
    assert settings.hyperparameters == {"window": 8, "dominant_share": 0.5, "max_segment": None}
    assert resolve_method(settings, {}) == DyCokeConfig(window=8)
    with pytest.raises(ValueError, match="fastvid: window must be an integer >= 1"):
        parse_model_args(pretrained="m", window=0)


def test_pretrained_is_required():
    with pytest.raises(ValueError, match="pretrained=MODEL is required"):
        parse_model_args(pretrained=" ")


def test_resolved_method_takes_family_defaults_then_model_args():
    qwen_like = {"retention_ratio": 0.27, "tau": 0.84, "split_tau": 0.95}
    config = resolve_method(parse_model_args(pretrained="m"), qwen_like)
    assert config == FastVIDConfig(retention_ratio=0.27, tau=0.84, split_tau=0.95)
    config = resolve_method(parse_model_args(pretrained="m", retention=0.1, tau=0.9, split_tau="off"), qwen_like)
    assert config == FastVIDConfig(retention_ratio=0.1, tau=0.9, split_tau=None)
    assert resolve_method(parse_model_args(pretrained="m"), {}) == FastVIDConfig()
    # a spec's own fields win over the model args; fields a method lacks are ignored
    config = resolve_method(parse_model_args(pretrained="m", method="fastvid:d=0", d=0.5, retention=0.25), {})
    assert config == FastVIDConfig(retention_ratio=0.25, d=0)
    assert resolve_method(parse_model_args(pretrained="m", method="visionzip", tau=0.5), qwen_like) == VisionZipConfig(
        retention_ratio=0.27
    )
    assert resolve_method(parse_model_args(pretrained="m", method="dycoke:window=8", retention=0.5), {}) == DyCokeConfig(
        retention_ratio=0.5, window=8
    )


def test_paper_task_table_covers_every_family_and_benchmark():
    from fastvid_cli.models.registry import FAMILIES

    assert set(PAPER_TASKS) == set(PAPER_WRAPPERS) == set(FAMILIES)
    shipped = {path.stem for path in tasks_dir().glob("*.yaml")}
    for family, tasks in PAPER_TASKS.items():
        assert set(tasks) == set(BENCHMARKS)
        for benchmark, task in tasks.items():
            assert paper_task(family, benchmark) == task
            assert task == BENCHMARKS[benchmark] or task in shipped  # a stock task, or a group of ours
    with pytest.raises(ValueError, match="unknown benchmark 'egoschema'"):
        paper_task("llava_video", "egoschema")
    with pytest.raises(ValueError, match="unknown model family 'llava'"):
        paper_task("llava", "videomme")


def test_include_path_is_printed_by_the_module():
    out = subprocess.run([sys.executable, "-m", "fastvid_cli.lmms_eval_plugin"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tasks_dir())
    assert (tasks_dir() / "videomme_llava_vid.yaml").is_file()
