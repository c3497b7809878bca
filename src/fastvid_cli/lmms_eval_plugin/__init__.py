"""``fastvid`` as a model of the unforked lmms-eval (0.7.3, from PyPI), registered as a plugin.

lmms-eval finds the model through the entry point group ``lmms_eval.models`` (see
``pyproject.toml``): :func:`manifest` names the class by its import path, so importing this module
(and calling :func:`manifest`) loads neither torch nor the model. The class itself is
:class:`fastvid_cli.lmms_eval_plugin.model.FastVIDLMM`::

    pip install -e ".[eval]"
    python -m lmms_eval --model fastvid --model_args pretrained=llava-ov-7b,retention=0.1 \\
        --tasks videomme --include_path "$(python -m fastvid_cli.lmms_eval_plugin)" --output_path logs/

A task picks its prompt by the ``--model`` string, so ``--model fastvid`` gets a task's default
prompt. :data:`PAPER_TASKS` names, per model family and benchmark, the task that builds the prompt
the paper's lmms-eval wrapper of that family got: the benchmark itself where the two agree, or a
group of :func:`tasks_dir` that re-lists it with the wrapper's prompt (``videomme_llava_vid``).
The tests check each entry against the installed task configs.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "fastvid"
"""The ``--model`` name this plugin registers."""

MODEL_CLASS = "fastvid_cli.lmms_eval_plugin.model.FastVIDLMM"
"""Import path of the lmms-eval model class."""

PAPER_WRAPPERS = {
    "llava_onevision": "llava_onevision",
    "llava_video": "llava_vid",
    "qwen2_5_vl": "qwen2_5_vl",
}
"""Model family (``ModelAdapter.family``) -> the lmms-eval model the authors' fork ran it with
(github.com/LunarShen/FastVID, ``scripts/eval.sh`` of each family)."""

BENCHMARKS = {
    "mvbench": "mvbench",
    "longvideobench": "longvideobench_val_v",
    "mlvu": "mlvu_dev",
    "videomme": "videomme",
}
"""The paper's four benchmarks (Table 1) -> their task in lmms-eval 0.7.3 (MVBench is a group of 20
tasks; LongVideoBench's validation set with video input; MLVU's dev set; VideoMME without subtitles)."""

PAPER_TASKS = {
    family: {bench: task for bench, task in BENCHMARKS.items()} for family in PAPER_WRAPPERS
}
PAPER_TASKS["llava_video"]["videomme"] = "videomme_llava_vid"
"""Family -> benchmark -> the task to run with ``--model fastvid`` for the paper's prompt.

Only VideoMME has a prompt of its own for one of the paper's wrappers (``llava_vid``: "The best
answer is:"); every other (family, benchmark) pair gets the task's default prompt either way."""


def tasks_dir() -> Path:
    """The folder to pass to lmms-eval's ``--include_path`` for the tasks of :data:`PAPER_TASKS`."""
    return Path(__file__).resolve().parent / "tasks"


def paper_task(family: str, benchmark: str) -> str:
    """The task to run with ``--model fastvid`` to get the prompt the paper's wrapper of ``family`` got.

    Parameters
    ----------
    family : str
        ``llava_onevision``, ``llava_video`` or ``qwen2_5_vl``.
    benchmark : str
        ``mvbench``, ``longvideobench``, ``mlvu`` or ``videomme``.

    Raises
    ------
    ValueError
        Unknown family or benchmark.
    """
    if family not in PAPER_TASKS:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(PAPER_TASKS)}")
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    return PAPER_TASKS[family][benchmark]


def manifest():
    """The entry point lmms-eval calls: a ``ModelManifest`` naming :data:`MODEL_CLASS` as ``fastvid``.

    Returns
    -------
    lmms_eval.models.registry_v2.ModelManifest
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_NAME, simple_class_path=MODEL_CLASS)


__all__ = ["BENCHMARKS", "MODEL_CLASS", "MODEL_NAME", "PAPER_TASKS", "PAPER_WRAPPERS", "manifest", "paper_task", "tasks_dir"]
