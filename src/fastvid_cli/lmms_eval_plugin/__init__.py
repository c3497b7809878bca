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
the family's own lmms-eval wrapper gets (the paper's wrapper for the paper's families;
``ModelAdapter.lmms_eval_model``): the benchmark itself where the two agree, or a group of
:func:`tasks_dir` that re-lists it with the wrapper's prompt (``videomme_llava_vid``; a family's
``ModelAdapter.lmms_eval_tasks``). The tests check each entry against the installed task configs.

:data:`PAPER_WRAPPERS` and :data:`PAPER_TASKS` are read from the model registry when first used, so
that importing this module (lmms-eval's plugin discovery) imports no adapter and no torch.
"""

from __future__ import annotations

from pathlib import Path

MODEL_NAME = "fastvid"
"""The ``--model`` name this plugin registers."""

MODEL_CLASS = "fastvid_cli.lmms_eval_plugin.model.FastVIDLMM"
"""Import path of the lmms-eval model class."""

BENCHMARKS = {
    "mvbench": "mvbench",
    "longvideobench": "longvideobench_val_v",
    "mlvu": "mlvu_dev",
    "videomme": "videomme",
}
"""The paper's four benchmarks (Table 1) -> their task in lmms-eval 0.7.3 (MVBench is a group of 20
tasks; LongVideoBench's validation set with video input; MLVU's dev set; VideoMME without subtitles)."""


def _wrappers() -> dict[str, str]:
    """Model family -> the lmms-eval model whose prompts its tasks give (``ModelAdapter.lmms_eval_model``)."""
    # deferred: lmms-eval's plugin discovery imports this module, which imports no adapter and no torch
    from ..models.registry import FAMILIES

    return {name: model for name, family in FAMILIES.items() if (model := family.adapter_class().lmms_eval_model)}


def _tasks() -> dict[str, dict[str, str]]:
    """Family -> benchmark -> the task to run with ``--model fastvid`` for its wrapper's prompt."""
    # deferred: lmms-eval's plugin discovery imports this module, which imports no adapter and no torch
    from ..models.registry import FAMILIES

    return {name: BENCHMARKS | FAMILIES[name].adapter_class().lmms_eval_tasks for name in _wrappers()}


def __getattr__(name: str):
    """:data:`PAPER_WRAPPERS` (family -> lmms-eval model the authors' fork, or the family's own wrapper,
    ran it with) and :data:`PAPER_TASKS` (family -> benchmark -> task), from the registry on first use.

    Only VideoMME has a prompt of its own for one of these wrappers (``llava_vid``: "The best
    answer is:"); every other (family, benchmark) pair gets the task's default prompt either way."""
    if name == "PAPER_WRAPPERS":
        return _wrappers()
    if name == "PAPER_TASKS":
        return _tasks()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tasks_dir() -> Path:
    """The folder to pass to lmms-eval's ``--include_path`` for the tasks of :data:`PAPER_TASKS`."""
    return Path(__file__).resolve().parent / "tasks"


def paper_task(family: str, benchmark: str) -> str:
    """The task to run with ``--model fastvid`` to get the prompt the paper's wrapper of ``family`` got.

    Parameters
    ----------
    family : str
        A family of the registry (``llava_onevision``, ``llava_video``, ``qwen2_5_vl``, ``qwen3_vl`` ...).
    benchmark : str
        ``mvbench``, ``longvideobench``, ``mlvu`` or ``videomme``.

    Raises
    ------
    ValueError
        Unknown family or benchmark.
    """
    tasks = _tasks()
    if family not in tasks:
        raise ValueError(f"unknown model family {family!r}; choose from {', '.join(tasks)}")
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}; choose from {', '.join(BENCHMARKS)}")
    return tasks[family][benchmark]


def manifest():
    """The entry point lmms-eval calls: a ``ModelManifest`` naming :data:`MODEL_CLASS` as ``fastvid``.

    Returns
    -------
    lmms_eval.models.registry_v2.ModelManifest
    """
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_NAME, simple_class_path=MODEL_CLASS)


__all__ = ["BENCHMARKS", "MODEL_CLASS", "MODEL_NAME", "PAPER_TASKS", "PAPER_WRAPPERS", "manifest", "paper_task", "tasks_dir"]
