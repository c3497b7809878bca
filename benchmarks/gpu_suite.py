"""Every GPU figure of the project from one process, inside one device call (issue 19).

One H200 is lent to some sessions by chance, for 15 minutes in all, start-up included, with nothing
on it but the repository and its Python. This script runs every GPU check of ``../shared/GPU_CHECKS.md``
in one process, most valuable first, each within its own share of a time budget, with random weights
at the real geometries (built in GPU memory, nothing downloaded, no checkpoint written), and writes
its results after every check:

1. ``llava_ov_7b_prefill_pruning``: ``fastvid bench``'s machinery (:func:`fastvid_cli.bench.runner.run_bench`)
   on LLaVA-OneVision-7B's geometry, 32 frames, all 28 layers, bf16: pruning ms of every method and
   the LLM's prefill, vanilla against R = 0.1 and 0.25, with sdpa (and FlashAttention-2 when
   ``flash_attn`` imports).
2. ``llava_ov_7b_ask_ttft``: a full-size random-weight LLaVA-OneVision-7B (SigLIP-so400m + Qwen2-7B,
   from ``tests/realcfg``, as ``fastvid tiny-model --config ... --full-size`` builds it), then the
   pipeline ``fastvid ask`` runs on a sample clip: time to first token and each stage, vanilla
   against R = 0.1 (:func:`fastvid_cli.bench.runner.ttft_on_video`).
3. ``llava_ov_7b_questions``: 8 questions on one video in one ``ask`` (:func:`fastvid_cli.engine.pipeline.ask_many`):
   the first question's TTFT and each further one's.
4. ``long_video_pruning``: pruning time and peak GPU memory at 32, 128 and 512 frames
   (:func:`fastvid_cli.bench.runner.run_pruning_sweep`).
5. ``long_video_ask_256``: ``ask`` at 256 frames of a clip made from the sample clips: TTFT, stages,
   peak GPU memory.
6. ``qwen3_vl_8b_prefill`` and ``qwen3_5_9b_prefill``: prefill vanilla against R = 0.1 and 0.25 on the
   text models of Qwen3-VL-8B and Qwen3.5-9B (transformers' own classes, from the published configs
   in ``tests/realcfg``), at the token geometry of the project's adapters, with the project's token
   budget F * max(1, floor(N * R)).
7. ``fastvid_device_vs_cpu``: FastVID's kept indices on the GPU equal the CPU's on the same float32
   inputs, and the bfloat16 path runs.
8. ``vllm_pruning``: FastVID inside vLLM beside vLLM's own EVS and VidCom2 (``benchmarks/vllm_pruning.py``'s
   part 1 in a child process of this Python): selection + merge time at the Qwen3-VL-8B geometry, T = 16 and
   64, q = 0.75 and 0.9, and FastVID's saliency from the last vision block; skipped, saying so, where vLLM
   is not installed.

``--smoke`` runs the same code at tiny sizes on the CPU (a minute or less; CI runs it through
``tests/test_gpu_suite.py``), so the suite cannot rot between GPU sessions.

Results: ``OUT/<device-slug>.json`` (``-smoke`` added for a smoke run) and ``OUT/<device-slug>.md``,
a markdown table docs/benchmarks.md's results include as it is. ``benchmarks/README.md`` gives
the device call, ready to paste.

Usage::

    PYTHONPATH=src python benchmarks/gpu_suite.py --out $OUT              # on the GPU
    PYTHONPATH=src python benchmarks/gpu_suite.py --smoke --out /tmp/s    # anywhere, CPU, tiny sizes
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import importlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
try:
    import fastvid_cli  # noqa: F401
except ImportError:  # run without PYTHONPATH=src
    sys.path.insert(0, str(ROOT / "src"))

import torch

LLAVA_DIR = ROOT / "tests" / "realcfg" / "llava-onevision-qwen2-7b-ov-hf"
LLAVA_NAME = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
SAMPLE_CLIP = ROOT / "sample_videos" / "bikes.mp4"
"""The clip of the end-to-end checks: 250 frames, 25 fps, 640 x 272, 10 s (sample_videos/SOURCES.md)."""
LONG_CLIP_SOURCES = ("bikes.mp4", "big_buck_bunny.mp4", "carphone.mp4")
COMMIT_FILE = ROOT / ".device-wheels" / "COMMIT"
"""Written by ``benchmarks/prepare_device.sh``: the commit the device's copy was made from (no .git travels)."""
QUESTION = "What happens in this video?"
QUESTIONS = (
    "What happens in this video?",
    "How many people are there?",
    "What colour is the most visible object?",
    "Where does the video take place?",
    "Is anyone riding a bicycle?",
    "What happens at the end?",
    "Describe the camera motion.",
    "Is it day or night?",
)
QWEN_TEXT_MODELS = {
    "qwen3_vl": ("transformers.models.qwen3_vl.modeling_qwen3_vl", "Qwen3VLTextModel"),
    "qwen3_5": ("transformers.models.qwen3_5.modeling_qwen3_5", "Qwen3_5TextModel"),
}
"""model_type -> (module, class) of the text model transformers builds the LLM of that family with."""
MODEL_CLASSES = {
    "llava_onevision": "LlavaOnevisionForConditionalGeneration",
    "llava_video": "LlavaOnevisionForConditionalGeneration",
    "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration",
}
"""Family -> the transformers class its adapter loads (``ModelAdapter.from_pretrained``)."""
GPU_TARGETS = {"fastvid_pruning_ms": 1.0, "prefill_speedup_at_0.1": 9.0, "ttft_speedup_at_0.1": 3.0}
"""../shared/GPU_CHECKS.md's targets: FastVID pruning of 32 x 196 x 3584 at most 1 ms (paper: 6.1 ms
on an A100), prefill speedup at R = 0.1 at least 9x (paper: 7.1x), TTFT speedup at R = 0.1 at least 3x
(FlashVID's authors measured FastVID's at 1.8x on an A100). ``fastvid bench``'s own, read by
:func:`fastvid_cli.bench.results.targets`, are 2 ms and 8x; both are written."""


class Skip(Exception):
    """A check, or part of one, cannot run here; the message says why."""


class OverShare(BaseException):
    """Raised by the alarm when a check runs past its share of the budget (a BaseException, so that no
    ``except Exception`` in library code swallows it)."""


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so that the running check is recorded as stopped."""


def _terminate(signum, frame):
    raise Terminated(f"terminated by signal {signum} (SIGTERM)")


# --- sizes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """What the suite runs at. :func:`real_sizes` and :func:`smoke_sizes` differ only here.

    Attributes
    ----------
    smoke : bool
    device : torch.device
    dtype : torch.dtype
        Compute dtype (bfloat16 on the GPU, float32 on the CPU).
    full_size : bool
        Build LLaVA-OneVision-7B at its published widths (else the tiny builder's test size: Qwen2 64 wide,
        2 layers; SigLIP 32 wide; the real token layout, 196 tokens per frame).
    frames : int
        Frames of checks 1 to 3 (the paper's 32).
    retentions : tuple of float
    methods : tuple of str
        Method specs of the pruning timings.
    repeats, warmup : int
        Timed and untimed runs of each bench figure (median of ``repeats``).
    ask_repeats : int
        Runs of each TTFT (median), after one warm-up run.
    questions : int
        Questions on one video (check 3).
    sweep_frames : tuple of int
        Frame counts of the pruning sweep (check 4).
    long_ask_frames, long_clip_frames : int
        Frames ``ask`` samples in check 5, and frames of the clip made for it.
    qwen_frames : int
        Sampled frames of the Qwen prefill checks (2 per token frame).
    correctness_frames : int
    max_new_tokens : int
        Answer length in the ``ask`` checks (their figures stop at the first token).
    budget_s : float
        Default time budget, seconds.
    """

    smoke: bool
    device: torch.device
    dtype: torch.dtype
    full_size: bool
    frames: int
    retentions: tuple[float, ...]
    methods: tuple[str, ...]
    repeats: int
    warmup: int
    ask_repeats: int
    questions: int
    sweep_frames: tuple[int, ...]
    long_ask_frames: int
    long_clip_frames: int
    qwen_frames: int
    correctness_frames: int
    max_new_tokens: int
    budget_s: float


def real_sizes(device: torch.device) -> Sizes:
    """The GPU run: the real geometries, bf16, the paper's frame counts."""
    return Sizes(
        smoke=False,
        device=device,
        dtype=torch.bfloat16,
        full_size=True,
        frames=32,
        retentions=(0.1, 0.25),
        methods=("fastvid", "uniform", "visionzip", "dycoke"),
        repeats=5,
        warmup=2,
        ask_repeats=3,
        questions=8,
        sweep_frames=(32, 128, 512),
        long_ask_frames=256,
        long_clip_frames=512,
        qwen_frames=32,
        correctness_frames=32,
        max_new_tokens=16,
        budget_s=420.0,
    )


def smoke_sizes(device: torch.device) -> Sizes:
    """The CPU smoke run: the same checks at tiny widths and few frames, float32."""
    return Sizes(
        smoke=True,
        device=device,
        dtype=torch.float32,
        full_size=False,
        frames=8,
        retentions=(0.1, 0.25),
        methods=("fastvid", "uniform", "visionzip", "dycoke"),
        repeats=1,
        warmup=0,
        ask_repeats=1,
        questions=8,
        sweep_frames=(4, 8, 16),
        long_ask_frames=16,
        long_clip_frames=24,
        qwen_frames=4,
        correctness_frames=8,
        max_new_tokens=2,
        budget_s=90.0,
    )


# --- the budget ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One check of the suite.

    Attributes
    ----------
    name : str
        Key in the result file.
    title : str
    share : float
        Its share of the budget (0 to 1); time a check before it left unused passes on to it.
    need_s : tuple of float
        Least seconds it needs (GPU, smoke): with less left of its share it is skipped, saying so.
        Estimates, not readings (no GPU run existed when they were set).
    run : callable
        ``run(suite, data)`` fills ``data`` (a dict) as it goes, so a check stopped at its share keeps
        what it measured.
    """

    name: str
    title: str
    share: float
    need_s: tuple[float, float]
    run: Callable[[Suite, dict], None]


class Budget:
    """Shares of a time budget, in seconds from the suite's start (``time.monotonic``).

    Check k may run until ``min(end, max(now + share_k * B, start + (share_1 + ... + share_k) * B))``:
    its own share at least, plus whatever the checks before it left unused, never past the budget.
    """

    def __init__(self, total_s: float, shares: list[float]) -> None:
        self.total_s, self.shares = total_s, shares
        self.start = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since the suite's start."""
        return time.monotonic() - self.start

    def allowance(self, index: int) -> float:
        """Seconds check ``index`` may run from now."""
        now = self.elapsed()
        cumulative = sum(self.shares[: index + 1]) * self.total_s
        deadline = min(self.total_s, max(now + self.shares[index] * self.total_s, cumulative))
        return max(0.0, deadline - now)


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise :class:`OverShare` in the main thread after ``seconds`` (SIGALRM; a running GPU kernel
    finishes first, Python stops at its next bytecode)."""

    def on_alarm(signum, frame):
        raise OverShare(f"{what}: stopped at its share of the budget ({seconds:.0f} s)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 0.01))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- models ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def prebuilt(cls, model):
    """``cls.from_pretrained`` returns ``model`` while inside (whatever it is asked), so that a
    family's adapter loads a model built in memory through its own ``from_pretrained``.

    Raises
    ------
    RuntimeError
        If nothing called ``cls.from_pretrained`` (the adapter loads another way now).
    """
    calls = []

    def fake(klass, *args, **kwargs):
        calls.append(kwargs)
        return model

    own = cls.__dict__.get("from_pretrained")
    cls.from_pretrained = classmethod(fake)
    try:
        yield calls
    finally:
        if own is None:
            del cls.from_pretrained
        else:
            cls.from_pretrained = own
    if not calls:
        raise RuntimeError(f"the adapter did not call {cls.__name__}.from_pretrained: update benchmarks/gpu_suite.py")


def build_video_model(real_dir: Path, full_size: bool, device: torch.device, dtype: torch.dtype, attn: str, workdir: Path):
    """A supported Video LLM with random weights, built in memory and loaded by ``fastvid``'s own ``load_model``.

    The checkpoint folder is the one ``fastvid tiny-model DIR --config REAL_DIR [--full-size]`` writes
    (configs, processor, local tokenizer, SigLIP head; :func:`fastvid_cli.tiny.write.write_plan`)
    less its weights: the model is built straight on ``device`` from the same config (transformers'
    initialisation: N(0, initializer_range), norms 1, biases 0), and the family's adapter loads it
    through its own ``from_pretrained`` (:func:`prebuilt`). A 7B model's 16 GB never touch the disk.

    Parameters
    ----------
    real_dir : Path
        Published files of the real checkpoint (``tests/realcfg/...``).
    full_size : bool
        Every width as published (else the tiny builder's test size).
    device : torch.device
    dtype : torch.dtype
    attn : str
        ``sdpa`` or ``flash_attention_2``.
    workdir : Path
        Where the folder (a few MB; 60 MB of SigLIP head at full size) is written.

    Returns
    -------
    adapter : fastvid_cli.models.ModelAdapter
    info : dict
        ``parameters`` (count), ``weights_mib`` (MiB), ``build_s`` (s: folder, model, load), ``folder``.
    """
    import transformers

    from fastvid_cli.engine.timing import synchronize
    from fastvid_cli.models import load_model
    from fastvid_cli.tiny.plan import plan_from_config
    from fastvid_cli.tiny.write import write_plan

    start = time.perf_counter()
    plan = plan_from_config(real_dir, full_size)
    folder = workdir / f"{real_dir.name}-{'full' if full_size else 'tiny'}"
    write_plan(plan, folder, device=device, weights=False)
    name = MODEL_CLASSES.get(plan.family) or (plan.model_config.architectures or [None])[0]
    cls = getattr(transformers, name)
    with torch.device(device):
        model = cls._from_config(copy.deepcopy(plan.model_config), dtype=dtype, attn_implementation=attn).eval()
    if (folder / "generation_config.json").exists():
        model.generation_config = transformers.GenerationConfig.from_pretrained(str(folder))
    synchronize(device)
    with prebuilt(cls, model):
        adapter = load_model(str(folder), device=str(device), dtype=str(dtype).removeprefix("torch."), attn_implementation=attn)
    parameters = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
    return adapter, {
        "model": f"{plan.family} from {real_dir.relative_to(ROOT)}",
        "full_size": full_size,
        "parameters": parameters,
        "weights_mib": round(weights, 1),
        "build_s": round(time.perf_counter() - start, 2),
        "attn_implementation": attn,
    }


def qwen_config(config_dir: Path, smoke: bool) -> dict:
    """The published ``config.json`` of a Qwen3-VL / Qwen3.5 checkpoint; for a smoke run, shrunk to test
    size as ``fastvid tiny-model --config`` shrinks it (the family's ``tiny_recipe.shrink``: the published
    layer pattern, head_dim and M-RoPE sections in proportion)."""
    from fastvid_cli.models import adapter_class, detect_family

    config = json.loads((config_dir / "config.json").read_text())
    if not smoke:
        return config
    return adapter_class(detect_family(config_dir)).tiny_recipe.shrink(config, 512)


def qwen_text_config(config: dict):
    """The transformers text config (``Qwen3VLTextConfig`` ...) of a published ``config.json`` dict.

    Raises
    ------
    Skip
        transformers does not know the model type here.
    """
    import transformers
    from transformers import CONFIG_MAPPING

    model_type = config["model_type"]
    if model_type not in CONFIG_MAPPING:
        raise Skip(f"transformers {transformers.__version__} does not know model_type {model_type!r}")
    return CONFIG_MAPPING[model_type].from_dict(copy.deepcopy(config)).text_config


def qwen_text_class(model_type: str):
    """transformers' text-model class of a Qwen3-VL / Qwen3.5 config (:data:`QWEN_TEXT_MODELS`).

    Raises
    ------
    Skip
        The class is missing from the installed transformers (Qwen3.5 came after some 5.x releases).
    """
    import transformers

    module, name = QWEN_TEXT_MODELS[model_type]
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise Skip(f"transformers {transformers.__version__} has no {module}.{name} ({type(err).__name__})") from None


def qwen_geometry(config: dict, name: str):
    """The geometry of a Qwen3-VL / Qwen3.5 checkpoint, by its family's adapter (no weights read): 16
    temporal patches of (448 / 32)^2 = 196 tokens at the paper's 32 frames.

    Returns
    -------
    geometry : ModelGeometry
    source : str
        Where it came from, for the results.
    """
    from fastvid_cli.models.geometry import geometry_from_config

    return geometry_from_config(config, name), "the project's adapter for " + config["model_type"]


def text_model_builder(cls, text_config, attn: str = "sdpa") -> Callable:
    """A ``build(geometry, layers, device, dtype)`` for :func:`fastvid_cli.bench.runner.run_bench`: ``cls``
    (a transformers text model) from ``text_config`` with random weights and the first ``layers``
    layers, and a 16-row vocabulary (the prefill takes ``inputs_embeds``)."""

    def build(geometry, layers: int, device, dtype):
        config = copy.deepcopy(text_config)
        config.num_hidden_layers = layers
        if getattr(config, "layer_types", None):
            config.layer_types = list(config.layer_types)[:layers]
        config.vocab_size = 16
        for token in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if hasattr(config, token):
                setattr(config, token, None)
        torch.manual_seed(0)
        with torch.device(device):
            return cls._from_config(config, dtype=dtype, attn_implementation=attn).eval()

    return build


def flash_attention_builder(geometry, layers: int, device, dtype):
    """:func:`fastvid_cli.bench.runner.build_llm`'s Qwen2 decoder, switched to FlashAttention-2."""
    from fastvid_cli.bench.runner import build_llm

    llm = build_llm(geometry, layers, device, dtype)
    llm.set_attn_implementation("flash_attention_2")
    return llm


def flash_attention_missing(device: torch.device) -> str | None:
    """Why FlashAttention-2 cannot run here, or None."""
    if device.type != "cuda":
        return "FlashAttention-2 runs on a GPU only"
    if importlib.util.find_spec("flash_attn") is None:
        return (
            "flash_attn is not importable here (not in the device image; its wheel is built per torch and CUDA "
            "version); sdpa's own flash kernel is what ran"
        )
    return None


# --- the suite ----------------------------------------------------------------------------------------


def preload() -> None:
    """Import what the checks use (transformers' model modules take seconds on a CPU)."""
    import transformers  # noqa: F401
    from transformers import LlavaOnevisionForConditionalGeneration, Qwen2Model  # noqa: F401

    import fastvid_cli.bench.runner
    import fastvid_cli.engine.pipeline
    import fastvid_cli.tiny.write  # noqa: F401


class Suite:
    """Runs the checks in order, each under its share of the budget, and writes the results after each.

    Parameters
    ----------
    sizes : Sizes
    checks : list of Check
        The checks to run (all of :data:`CHECKS`, or some).
    out_dir : Path
    budget_s : float
    earlier : dict, optional
        An earlier result file of this device: the entries of the checks not run now are kept from it
        (marked ``earlier_run``), so a second device call can run what the first did not.
    """

    def __init__(self, sizes: Sizes, checks: list[Check], out_dir: Path, budget_s: float, earlier: dict | None = None) -> None:
        from fastvid_cli.bench.device import device_slug

        self.sizes, self.checks, self.budget_s = sizes, checks, budget_s
        self.out_dir = out_dir
        slug = device_slug(sizes.device) + ("-smoke" if sizes.smoke else "")
        self.json_path, self.md_path = out_dir / f"{slug}.json", out_dir / f"{slug}.md"
        self.workdir = Path(tempfile.mkdtemp(prefix="fastvid-gpu-suite-"))
        self.cache: dict[str, Any] = {}
        kept = {r["name"]: r for r in (earlier or {}).get("checks", [])}
        when = (earlier or {}).get("environment", {})
        self.records = {c.name: {"name": c.name, "title": c.title, "status": "pending"} for c in checks}
        self.results: list[dict] = [
            self.records.get(c.name) or {**kept[c.name], "earlier_run": {k: when.get(k) for k in ("date", "commit")}}
            for c in CHECKS
            if c.name in self.records or c.name in kept
        ]
        self.environment = environment(sizes)
        preload()  # one-off import costs before the budget starts, not inside the first check's share
        whole = sum(c.share for c in CHECKS)
        part = sum(c.share for c in checks)
        self.budget = Budget(budget_s, [c.share * whole / part for c in checks])  # a subset shares what all would

    def say(self, message: str) -> None:
        """A progress line on stderr, with the seconds since the start (the device call tees it to $OUT/log)."""
        print(f"[{self.budget.elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)

    def run(self) -> int:
        """Run every check; returns 0, or 1 if one failed or was stopped (at its share, or by SIGTERM).

        SIGTERM (``timeout`` sends it first) stops the running check as its share's alarm does; the
        checks not run yet are recorded as skipped, and the files are written before the exit.
        """
        self.out_dir.mkdir(parents=True, exist_ok=True)
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            self.write()
            for index, check in enumerate(self.checks):
                if self._run_check(index, check):
                    for later in self.checks[index + 1 :]:
                        self.records[later.name].update(
                            status="skipped", reason="the run was terminated (SIGTERM) before this check"
                        )
                    break
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.write()
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.say(f"done in {self.budget.elapsed():.1f} s; {self.json_path} and {self.md_path}")
        return 1 if any(r["status"] in ("failed", "stopped") for r in self.records.values()) else 0

    def _run_check(self, index: int, check: Check) -> bool:
        """Run one check under its allowance and record it; True if the run was terminated meanwhile."""
        record = self.records[check.name]
        allowance = self.budget.allowance(index)
        need = check.need_s[1 if self.sizes.smoke else 0]
        record.update(share_s=round(check.share * self.budget_s, 1), allowance_s=round(allowance, 1))
        if allowance < need:
            record.update(
                status="skipped",
                reason=f"would pass the budget: {allowance:.0f} s of its share left "
                f"({self.budget.elapsed():.0f} of {self.budget_s:.0f} s used), it needs about {need:.0f} s",
            )
            self.say(f"{check.name}: skipped ({record['reason']})")
            self.write()
            return False
        record.update(status="running", data={})
        self.write()
        self.say(f"{check.name}: {check.title} (up to {allowance:.0f} s)")
        start, terminated = time.monotonic(), False
        try:
            with time_limit(allowance, check.name):
                check.run(self, record["data"])
            record["status"] = "ok"
        except Skip as why:
            record.update(status="skipped", reason=str(why))
        except (OverShare, Terminated) as why:
            record.update(status="stopped", reason=str(why))
            terminated = isinstance(why, Terminated)
        except Exception as err:  # noqa: BLE001 - one check's failure must not cost the others' figures
            record.update(
                status="failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc().splitlines()[-24:]
            )
        finally:
            record["seconds"] = round(time.monotonic() - start, 2)
            self.free()
        self.say(
            f"{check.name}: {record['status']} in {record['seconds']:.1f} s"
            + (f" ({record['reason']})" if record.get("reason") else "")
        )
        self.write()
        return terminated

    def free(self) -> None:
        """Release what a check left behind (its models, unless cached; the allocator's cache)."""
        gc.collect()
        if self.sizes.device.type == "cuda":
            try:
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            except RuntimeError as err:  # a CUDA error of the check that just failed surfaces here again
                self.say(f"freeing GPU memory failed: {err}")

    # shared, built once ----------------------------------------------------------------------------

    def video_model(self, data: dict):
        """The LLaVA-OneVision-7B adapter (test size in a smoke run), built on first use; its build is
        recorded in ``data['model']`` of the check that built it.

        Raises
        ------
        Skip
            The model failed to build in an earlier check.
        """
        if "video_model_error" in self.cache:
            raise Skip(f"the model could not be built earlier: {self.cache['video_model_error']}")
        if "video_model" not in self.cache:
            self.say("building LLaVA-OneVision-7B with random weights in memory" + (" (test size)" if self.sizes.smoke else ""))
            try:
                adapter, info = build_video_model(
                    LLAVA_DIR, self.sizes.full_size, self.sizes.device, self.sizes.dtype, "sdpa", self.workdir
                )
            except BaseException as err:  # OverShare too: the next check should not start the build again
                self.cache["video_model_error"] = f"{type(err).__name__}: {err}"
                raise
            self.cache["video_model"] = adapter
            data["model"] = info
            self.say(
                f"built in {info['build_s']:.1f} s: {info['parameters'] / 1e9:.2f} B parameters, {info['weights_mib']:,.0f} MiB"
            )
        return self.cache["video_model"]

    def drop_video_model(self) -> None:
        """Let the LLaVA-OneVision-7B model go (16 GB of GPU memory) once no check needs it."""
        self.cache.pop("video_model", None)
        self.free()

    def llava_geometry(self):
        """LLaVA-OneVision-7B's geometry (its test size in a smoke run), through its adapter."""
        from fastvid_cli.models.geometry import geometry_from_config
        from fastvid_cli.tiny.plan import plan_from_config

        if "llava_geometry" not in self.cache:
            plan = plan_from_config(LLAVA_DIR, self.sizes.full_size)
            self.cache["llava_geometry"] = geometry_from_config(
                plan.config, LLAVA_NAME + ("" if self.sizes.full_size else " (test size)")
            )
        return self.cache["llava_geometry"]

    def long_clip(self) -> tuple[Path, str]:
        """A clip of ``sizes.long_clip_frames`` frames (640 x 360, 25 fps) cycling through the sample clips,
        made once: OpenCV's MPEG-4 writer (in the device image), else PyAV's H.264
        (``benchmarks/long_video.py``), else the longest sample clip as it is.

        Returns
        -------
        path : Path
        how : str
        """
        if "long_clip" not in self.cache:
            self.cache["long_clip"] = make_long_clip(self.workdir / "long_clip.mp4", self.sizes.long_clip_frames)
        return self.cache["long_clip"]

    def bench_settings(self, **changes):
        """:class:`fastvid_cli.bench.runner.BenchSettings` of these sizes (frames, R, methods, repeats, device, dtype), with ``changes``."""
        from fastvid_cli.bench.runner import BenchSettings

        s = self.sizes
        settings = BenchSettings(
            frames=s.frames,
            retentions=list(s.retentions),
            methods=list(s.methods),
            repeats=s.repeats,
            warmup=s.warmup,
            device=s.device,
            dtype=s.dtype,
        )
        return replace(settings, **changes)

    # output ------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """The result file: environment, settings (budget s, sizes, shares), elapsed s, the checks, the targets."""
        return {
            "suite": "benchmarks/gpu_suite.py",
            "smoke": self.sizes.smoke,
            "environment": self.environment,
            "settings": {
                "budget_s": self.budget_s,
                "sizes": {
                    k: (str(v) if isinstance(v, (torch.device, torch.dtype)) else v) for k, v in asdict(self.sizes).items()
                },
                "weights": "random, at the geometries of tests/realcfg (no download)",
                "shares": {c.name: c.share for c in self.checks},
            },
            "elapsed_s": round(self.budget.elapsed(), 2),
            "checks": self.results,
            "targets": collect_targets(self.results),
        }

    def write(self) -> None:
        """Write the JSON and the markdown (to a temporary name, then renamed: a kill leaves the last whole file)."""
        report = self.to_dict()
        for path, text in ((self.json_path, json.dumps(report, indent=1, default=str) + "\n"), (self.md_path, markdown(report))):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text)
            tmp.replace(path)


def make_long_clip(path: Path, frames: int, size: tuple[int, int] = (360, 640), fps: int = 25) -> tuple[Path, str]:
    """Write ``frames`` frames cycling through the sample clips (bikes, big_buck_bunny, carphone, ...), each
    resized to ``size`` (h, w): a scene cut every 4 to 10 s, as in ``benchmarks/long_video.py``.

    Returns
    -------
    path : Path
        The clip, or the longest sample clip when no writer is importable.
    how : str
    """
    import decord
    import numpy as np

    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is None:
        if importlib.util.find_spec("av") is not None:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from long_video import make_long_clip as with_pyav

            return with_pyav(path, frames, size, fps), "PyAV, H.264 (benchmarks/long_video.py)"
        return SAMPLE_CLIP, "no video writer importable: the longest sample clip, as it is"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (size[1], size[0]))
    if not writer.isOpened():
        return SAMPLE_CLIP, "OpenCV could not open an MPEG-4 writer: the longest sample clip, as it is"
    written, k = 0, 0
    while written < frames:
        reader = decord.VideoReader(str(ROOT / "sample_videos" / LONG_CLIP_SOURCES[k % len(LONG_CLIP_SOURCES)]))
        count = min(len(reader), frames - written)
        for frame in reader.get_batch(list(range(count))).asnumpy():
            resized = cv2.resize(np.ascontiguousarray(frame), (size[1], size[0]), interpolation=cv2.INTER_AREA)
            writer.write(cv2.cvtColor(resized, cv2.COLOR_RGB2BGR))
        written += count
        k += 1
    writer.release()
    return path, f"OpenCV, MPEG-4 part 2, {frames} frames, {size[1]} x {size[0]}, {fps} fps, the sample clips cycled"


# --- the checks ---------------------------------------------------------------------------------------


def check_prefill_pruning(suite: Suite, data: dict) -> None:
    """Check 1: :func:`fastvid_cli.bench.runner.run_bench` on LLaVA-OneVision-7B's geometry, every layer.

    ``data``: ``sdpa`` (the bench result's JSON), ``flash_attention_2`` (the same with FastVID alone,
    or ``{"skipped": why}``), ``tflops_per_s`` (analytic causal-prefill TFLOPs, 2 x MACs
    (:func:`fastvid_cli.flops.causal_prefill_tflops`), over the measured full-model ms, per R).
    """
    from fastvid_cli.bench.runner import run_bench
    from fastvid_cli.flops import causal_prefill_tflops

    geometry = suite.llava_geometry()
    result = run_bench(geometry, suite.bench_settings(), on_stage=suite.say)
    data["sdpa"] = result.to_dict()
    data["tflops_per_s"] = {
        str(p.retention): causal_prefill_tflops(p.prompt_tokens, geometry.llm) / (p.full_model_ms / 1e3) for p in result.prefill
    }
    missing = flash_attention_missing(suite.sizes.device)
    if missing:
        data["flash_attention_2"] = {"skipped": missing}
        return
    suite.say("again with FlashAttention-2 (FastVID only)")
    flash = run_bench(geometry, suite.bench_settings(methods=["fastvid"]), on_stage=suite.say, build=flash_attention_builder)
    data["flash_attention_2"] = flash.to_dict()


def check_ask_ttft(suite: Suite, data: dict) -> None:
    """Check 2: TTFT of ``ask`` on :data:`SAMPLE_CLIP`, vanilla and FastVID at R = 0.1 (medians of
    ``sizes.ask_repeats`` runs after one warm-up; :func:`fastvid_cli.bench.runner.ttft_on_video`).

    ``data``: ``model`` (its build), ``clip``, ``rows`` (``TTFTRow`` dicts, ms), ``ttft_speedup``
    (vanilla TTFT over R = 0.1's).
    """
    from fastvid_cli.bench.runner import ttft_on_video

    adapter = suite.video_model(data)
    data["clip"] = str(SAMPLE_CLIP.relative_to(ROOT))
    rows = ttft_on_video(adapter, str(SAMPLE_CLIP), QUESTION, suite.sizes.frames, [0.1], suite.sizes.ask_repeats)
    data["rows"] = [r.to_dict() for r in rows]
    data["ttft_speedup"] = rows[0].ttft_ms / rows[1].ttft_ms


def check_questions(suite: Suite, data: dict) -> None:
    """Check 3: ``sizes.questions`` questions in one ``ask`` on :data:`SAMPLE_CLIP`, vanilla and R = 0.1
    (:func:`fastvid_cli.engine.pipeline.ask_many`, no baseline prefill).

    ``data[str(R)]``: ``first_ttft_ms`` (file to first token), ``further_ttft_ms`` (each further
    question's prefill to its first token, ms), ``median_further_ms``, ``further_share`` (median
    further over first), ``prompt_tokens`` (the first question's prefill), ``stages_ms``.
    """
    from fastvid_cli.engine.pipeline import AskOptions, ask_many
    from fastvid_cli.pruning import method_for_family

    adapter = suite.video_model(data)
    questions = list(QUESTIONS[: suite.sizes.questions])
    for retention in (1.0, 0.1):
        config = method_for_family(adapter.fastvid_defaults, retention_ratio=retention)
        options = AskOptions(frames=suite.sizes.frames, config=config, max_new_tokens=suite.sizes.max_new_tokens, baseline=False)
        results = ask_many(adapter, str(SAMPLE_CLIP), questions, options)
        ttfts = [r.timing.ttft_ms for r in results]
        further = statistics.median(ttfts[1:]) if len(ttfts) > 1 else None
        t = results[0].timing
        data[str(retention)] = {
            "questions": len(questions),
            "first_ttft_ms": ttfts[0],
            "further_ttft_ms": ttfts[1:],
            "median_further_ms": further,
            "further_share": further / ttfts[0] if further is not None else None,
            "prompt_tokens": results[0].tokens.prefill_tokens,
            "video_tokens": results[0].tokens.video_after,
            "stages_ms": {k: getattr(t, f"{k}_ms") for k in ("decode", "preprocess", "vision", "pruning", "prefill")},
        }


def check_long_pruning(suite: Suite, data: dict) -> None:
    """Check 4: :func:`fastvid_cli.bench.runner.run_pruning_sweep` at ``sizes.sweep_frames`` frames (LLaVA-OneVision-7B's
    width; on a GPU, peak memory is ``torch.cuda.max_memory_allocated`` with ``baseline_mib`` in use before).

    ``data["sweep"]``: the sweep result's JSON.
    """
    from fastvid_cli.bench.runner import run_pruning_sweep

    settings = suite.bench_settings(frames=None)
    result = run_pruning_sweep(suite.llava_geometry(), settings, list(suite.sizes.sweep_frames), on_stage=suite.say)
    data["sweep"] = result.to_dict()


def check_long_ask(suite: Suite, data: dict) -> None:
    """Check 5: ``ask`` at ``sizes.long_ask_frames`` frames of the long clip, R = 0.1, the vanilla baseline
    as ``ask`` decides (skipped past the LLM's context window).

    ``data``: ``clip``, ``frames``, ``tokens`` (``TokenCounts``), ``timing`` (ms), ``memory_before_mib``
    (weights and whatever is held), ``peak_mib`` (GPU: ``max_memory_allocated``; CPU: the process's
    peak resident set), ``peak_above_before_mib``, ``notes``.
    """
    from fastvid_cli.bench.device import memory_in_use_mib, peak_memory_mib, reset_peak
    from fastvid_cli.engine.pipeline import AskOptions, ask_many
    from fastvid_cli.pruning import method_for_family

    adapter = suite.video_model(data)
    clip, how = suite.long_clip()
    data["clip"] = {"path": clip.name, "how": how}
    device = suite.sizes.device
    suite.free()
    before = memory_in_use_mib(device)
    reset_peak(device)
    config = method_for_family(adapter.fastvid_defaults, retention_ratio=0.1)
    options = AskOptions(frames=suite.sizes.long_ask_frames, config=config, max_new_tokens=suite.sizes.max_new_tokens)
    result = ask_many(adapter, str(clip), [QUESTION], options)[0]
    peak = peak_memory_mib(device)
    data.update(
        frames=result.frames,
        tokens=asdict(result.tokens),
        timing=asdict(result.timing),
        memory_before_mib=before,
        peak_mib=peak,
        peak_above_before_mib=peak - (before or 0.0),
        notes=result.notes,
    )


def qwen_check(config_dir: Path, name: str) -> Callable[[Suite, dict], None]:
    """Check 6 for one model: :func:`fastvid_cli.bench.runner.run_bench` (FastVID's pruning, and the prefill at
    the vanilla and pruned token counts) on the LLM of ``config_dir`` built by :func:`text_model_builder`.

    ``data``: ``geometry_source``, ``text_model`` (class), ``bench`` (the bench result's JSON),
    ``linear_attention_kernels`` (Qwen3.5: whether flash-linear-attention and causal-conv1d import;
    else transformers' PyTorch fallback ran).
    """

    def run(suite: Suite, data: dict) -> None:
        from fastvid_cli.bench.runner import run_bench

        suite.drop_video_model()  # the 7B's 16 GB are not needed any more
        config = qwen_config(config_dir, suite.sizes.smoke)
        text = qwen_text_config(config)
        cls = qwen_text_class(config["model_type"])
        geometry, source = qwen_geometry(config, name + ("" if not suite.sizes.smoke else " (test size)"))
        data.update(geometry_source=source, text_model=f"{cls.__module__}.{cls.__name__}", geometry=geometry.to_dict())
        if "layer_types" in text.to_dict():
            data["linear_attention_kernels"] = {m: importlib.util.find_spec(m) is not None for m in ("fla", "causal_conv1d")}
        settings = suite.bench_settings(frames=suite.sizes.qwen_frames, methods=["fastvid"])
        result = run_bench(geometry, settings, on_stage=suite.say, build=text_model_builder(cls, text))
        data["bench"] = result.to_dict()

    return run


def check_device_vs_cpu(suite: Suite, data: dict) -> None:
    """Check 7: FastVID on the device against the CPU, on the same float32 inputs (LLaVA-OneVision-7B's
    geometry, ``sizes.correctness_frames`` frames; 4 scenes, and a scene every 8 frames), then in bfloat16.

    ``data["float32"]``: per case, ``indices_equal`` and ``segments_equal`` (bool), ``max_abs_diff``
    of the kept tokens. ``data["bfloat16"]``: per R, ``tokens_kept`` against the float32 CPU count,
    ``finite``, ``index_agreement`` (share of the CPU's indices also kept). In a smoke run the device
    is the CPU, so it compares the CPU with itself (the code is what is tested).
    """
    from fastvid_cli.bench.runner import synthetic_video
    from fastvid_cli.pruning import make_method

    device, geometry, frames = suite.sizes.device, suite.llava_geometry(), suite.sizes.correctness_frames
    data["devices"] = [str(device), "cpu"]
    data["float32"], data["bfloat16"] = [], []
    for scene_frames in (None, 8):
        tokens, features, saliency = synthetic_video(geometry, frames, "cpu", torch.float32, scene_frames=scene_frames)
        for retention in suite.sizes.retentions:
            method = make_method("fastvid", retention)
            cpu = method(tokens, features, saliency)
            dev = method(tokens.to(device), features.to(device), saliency.to(device))
            data["float32"].append(
                {
                    "retention": retention,
                    "scene_frames": scene_frames,
                    "shape": list(tokens.shape),
                    "tokens_kept": int(cpu.indices.numel()),
                    "indices_equal": bool(torch.equal(cpu.indices, dev.indices.cpu())),
                    "segments_equal": cpu.segment_lengths == dev.segment_lengths,
                    "max_abs_diff": float((cpu.tokens - dev.tokens.cpu()).abs().max())
                    if cpu.tokens.shape == dev.tokens.shape
                    else None,
                }
            )
            if scene_frames is None:
                low = method(tokens.to(device, torch.bfloat16), features.to(device, torch.bfloat16), saliency.to(device))
                kept_cpu = set(cpu.indices.tolist())
                data["bfloat16"].append(
                    {
                        "retention": retention,
                        "tokens_kept": int(low.indices.numel()),
                        "tokens_kept_float32": len(kept_cpu),
                        "dtype": str(low.tokens.dtype).removeprefix("torch."),
                        "finite": bool(torch.isfinite(low.tokens).all()),
                        "index_agreement": len(kept_cpu & set(low.indices.cpu().tolist())) / len(kept_cpu),
                    }
                )


def check_vllm_pruning(suite: Suite, data: dict) -> None:
    """Check 8: ``benchmarks/vllm_pruning.py --part selection`` on this device, in a child process of this Python
    (vLLM's import and its distributed state stay out of the suite's process; the child dies with the check).

    ``data``: ``selection`` and ``saliency`` (the script's part 1: per T and q, EVS's, VidCom2's and FastVID's
    median ms and kept tokens, and the ratios), ``environment`` (the child's: vLLM's version among them),
    ``ttft`` (why part 2 is not run here). Part 2, the time to first token of an engine per method, starts four
    vLLM engines on a checkpoint it writes first: minutes, not a share of this budget; run the script alone.

    Raises
    ------
    Skip
        vLLM is not installed here, or does not import.
    """
    if importlib.util.find_spec("vllm") is None:
        raise Skip("vLLM not installed")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    probe = subprocess.run([sys.executable, "-c", "import vllm"], capture_output=True, text=True, env=env, check=False)
    if probe.returncode != 0:
        raise Skip(f"vLLM does not import: {(probe.stderr.strip().splitlines() or ['?'])[-1]}")
    out = suite.workdir / "vllm-pruning.json"
    temporal = ["2"] if suite.sizes.smoke else ["16", "64"]
    command = [sys.executable, str(ROOT / "benchmarks" / "vllm_pruning.py"), "--part", "selection", "--device"]
    command += [str(suite.sizes.device), "--threads", str(torch.get_num_threads()), "--temporal", *temporal]
    command += ["--repeats", str(suite.sizes.repeats), "--warmup", str(suite.sizes.warmup), "--out", str(out)]
    suite.say("vllm_pruning: " + " ".join(command[1:]))
    proc = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmarks/vllm_pruning.py exited with {proc.returncode}: {proc.stderr.strip()[-1500:]}")
    result = json.loads(out.read_text())
    data.update(
        environment=result["environment"],
        selection=result["selection"]["selection"],
        saliency=result["selection"]["saliency"],
        ttft="not run in the suite (four vLLM engines on a checkpoint written first): benchmarks/vllm_pruning.py --part ttft",
    )


CHECKS = [
    Check(
        "llava_ov_7b_prefill_pruning",
        "prefill and pruning time, every method, LLaVA-OneVision-7B geometry, all layers",
        0.14,
        (20, 2),
        check_prefill_pruning,
    ),
    Check(
        "llava_ov_7b_ask_ttft", "ask end to end at real size: TTFT vanilla vs R = 0.1, per stage", 0.22, (45, 3), check_ask_ttft
    ),
    Check("llava_ov_7b_questions", "8 questions on one video: first and further TTFT", 0.07, (8, 1), check_questions),
    Check("long_video_pruning", "pruning time and peak memory at 32, 128, 512 frames", 0.10, (10, 1), check_long_pruning),
    Check("long_video_ask_256", "ask at 256 frames: TTFT and peak memory", 0.11, (15, 2), check_long_ask),
    Check(
        "qwen3_vl_8b_prefill",
        "Qwen3-VL-8B LLM: prefill speedup at R = 0.1 and 0.25",
        0.11,
        (15, 1),
        qwen_check(ROOT / "tests" / "realcfg" / "Qwen3-VL-8B-Instruct", "Qwen/Qwen3-VL-8B-Instruct"),
    ),
    Check(
        "qwen3_5_9b_prefill",
        "Qwen3.5-9B LLM: prefill speedup at R = 0.1 and 0.25",
        0.13,
        (20, 1),
        qwen_check(ROOT / "tests" / "realcfg" / "Qwen3.5-9B", "Qwen/Qwen3.5-9B"),
    ),
    Check(
        "fastvid_device_vs_cpu",
        "FastVID's kept indices on the device equal the CPU's; bf16 runs",
        0.05,
        (5, 0.5),
        check_device_vs_cpu,
    ),
    Check(
        "vllm_pruning",
        "FastVID inside vLLM: selection time against EVS and VidCom2 (Qwen3-VL-8B geometry)",
        0.06,
        (25, 3),
        check_vllm_pruning,
    ),
]
"""The checks, most valuable first; shares sum to 0.99 of the budget (the rest: slack for the alarm's lag)."""


# --- targets, environment, markdown ---------------------------------------------------------------------


def collect_targets(results: list[dict]) -> list[dict]:
    """The targets read from the checks that ran: ``fastvid bench``'s own (:func:`fastvid_cli.bench.results.targets`,
    :func:`~fastvid_cli.bench.results.sweep_targets`) and ../shared/GPU_CHECKS.md's (:data:`GPU_TARGETS`)."""
    out = []
    by_name = {r["name"]: r.get("data") or {} for r in results}

    def add(name, value, target, met, source, how):
        out.append({"name": name, "value": value, "target": target, "met": met, "source": source, "how": how})

    bench = (by_name.get("llava_ov_7b_prefill_pruning") or {}).get("sdpa")
    if bench:
        for key, t in bench["targets"].items():
            if key != "note":
                add(key, t["value"], t["target"], t["met"], "fastvid bench", t.get("how", ""))
        fastvid = next((p for p in bench["pruning"] if p["spec"] == "fastvid" and p["retention"] == 0.1), None)
        pruned = next((p for p in bench["prefill"] if p["retention"] == 0.1), None)
        if fastvid:
            add(
                "fastvid_pruning_ms",
                fastvid["median_ms"],
                GPU_TARGETS["fastvid_pruning_ms"],
                fastvid["median_ms"] <= GPU_TARGETS["fastvid_pruning_ms"],
                "GPU_CHECKS.md",
                "FastVID pruning median at R = 0.1, ms",
            )
        if pruned:
            add(
                "prefill_speedup_at_0.1",
                pruned["speedup"],
                GPU_TARGETS["prefill_speedup_at_0.1"],
                pruned["speedup"] >= GPU_TARGETS["prefill_speedup_at_0.1"],
                "GPU_CHECKS.md",
                "vanilla prefill / R = 0.1 prefill",
            )
    ttft = by_name.get("llava_ov_7b_ask_ttft", {}).get("ttft_speedup")
    if ttft is not None:
        add(
            "ttft_speedup_at_0.1",
            ttft,
            GPU_TARGETS["ttft_speedup_at_0.1"],
            ttft >= GPU_TARGETS["ttft_speedup_at_0.1"],
            "GPU_CHECKS.md",
            "vanilla TTFT / R = 0.1 TTFT, file to first token",
        )
    questions = by_name.get("llava_ov_7b_questions", {}).get("0.1")
    if questions and questions["further_share"] is not None:
        add(
            "further_question_share",
            questions["further_share"],
            0.05,
            questions["further_share"] <= 0.05,
            "fastvid bench",
            "median further question's TTFT / the first question's TTFT, R = 0.1, measured end to end",
        )
    sweep = by_name.get("long_video_pruning", {}).get("sweep")
    if sweep:
        for key, t in sweep["targets"].items():
            if key != "note":
                add(key, t["value"], t["target"], t["met"], "fastvid bench", t.get("how", ""))
    correctness = by_name.get("fastvid_device_vs_cpu", {}).get("float32")
    if correctness:
        equal = all(c["indices_equal"] for c in correctness)
        add(
            "fastvid_indices_device_equal_cpu",
            float(equal),
            1.0,
            equal,
            "GPU_CHECKS.md",
            f"kept indices identical in {sum(c['indices_equal'] for c in correctness)} of {len(correctness)} float32 cases",
        )
    return out


def commit_info() -> dict:
    """The commit measured: ``git`` in the checkout, else :data:`COMMIT_FILE` (the device's copy has no .git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
        status = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if head.returncode == 0:
            return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip()), "from": "git"}
    except (OSError, subprocess.SubprocessError):
        pass
    if COMMIT_FILE.exists():
        fields = dict(line.split("=", 1) for line in COMMIT_FILE.read_text().splitlines() if "=" in line)
        return {
            "commit": fields.get("commit"),
            "dirty": fields.get("dirty") == "true",
            "from": "benchmarks/prepare_device.sh (.device-wheels/COMMIT)",
        }
    return {"commit": None, "dirty": None, "from": "unknown: no git and no .device-wheels/COMMIT"}


def environment(sizes: Sizes) -> dict:
    """Device, driver, versions and commit, for the result file."""
    from fastvid_cli.bench.device import environment as bench_environment
    from fastvid_cli.models.gpu import nvidia_driver

    env = bench_environment(sizes.device, sizes.dtype).to_dict()
    if sizes.device.type == "cuda":
        driver = nvidia_driver()
        props = torch.cuda.get_device_properties(sizes.device)
        env.update(
            driver=driver.version if driver else None,
            driver_cuda=driver.cuda if driver else None,
            gpu_memory_mib=round(props.total_memory / 2**20),
            multiprocessors=props.multi_processor_count,
            cudnn=torch.backends.cudnn.version(),
            sdpa_backends={
                name: getattr(torch.backends.cuda, f"{name}_sdp_enabled")()
                for name in ("flash", "mem_efficient", "cudnn", "math")
                if hasattr(torch.backends.cuda, f"{name}_sdp_enabled")
            },
        )
    env["flash_attn"] = _version("flash_attn")
    env["decord"] = _version("decord")
    env["cv2"] = _version("cv2")
    env.update(commit_info())
    return env


def _version(module: str) -> str | None:
    if importlib.util.find_spec(module) is None:
        return None
    try:
        return str(getattr(importlib.import_module(module), "__version__", "?"))
    except Exception as err:  # noqa: BLE001 - a version report, whatever the import raises
        return f"import fails: {type(err).__name__}"


def _ms(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def markdown(report: dict) -> str:
    """The results as markdown: one line on the run, the checks' status, then a table per check that ran.

    Written for docs/benchmarks.md's results to include as it is.
    """
    env = report["environment"]
    commit = (env.get("commit") or "unknown")[:12] + (" (dirty)" if env.get("dirty") else "")
    versions = (
        f"torch {env['torch']}" + (f" (CUDA {env['cuda']})" if env.get("cuda") else "") + f", transformers {env['transformers']}"
    )
    driver = f", driver {env['driver']}" if env.get("driver") else ""
    kind = (
        "**smoke run** (tiny sizes on the CPU: checks that the suite runs; no figure here is a measurement of the real models)"
        if report["smoke"]
        else "random weights at the real geometries, bf16"
    )
    lines = [
        "<!-- written by benchmarks/gpu_suite.py; do not edit by hand -->",
        (
            f"**{env['device']}**{driver}, {versions}, Python {env['python']}, commit `{commit}`, {env['date']}; {kind}; "
            f"budget {report['settings']['budget_s']:.0f} s, {report['elapsed_s']:.0f} s used."
        ),
        "",
        "| check | status | s | note |",
        "|---|---|---|---|",
    ]
    for r in report["checks"]:
        note = (r.get("reason") or "").replace("|", "/")
        if r.get("earlier_run"):
            earlier = r["earlier_run"]
            note = f"from the run of {earlier.get('date')}, commit `{(earlier.get('commit') or '?')[:12]}`" + (
                f"; {note}" if note else ""
            )
        lines.append(f"| {r['name']} | {r['status']} | {_ms(r.get('seconds'), 0)} | {note} |")
    data = {r["name"]: r.get("data") or {} for r in report["checks"]}
    renders = (_md_prefill, _md_ttft, _md_questions, _md_sweep, _md_long_ask, _md_qwen, _md_correctness, _md_vllm, _md_targets)
    for render in renders:
        part = render(data, report)
        if part:
            lines += ["", *part]
    return "\n".join(lines) + "\n"


def _prefill_rows(bench: dict, pruning_spec: str = "fastvid") -> list[str]:
    fastvid = {p["retention"]: p["median_ms"] for p in bench["pruning"] if p["spec"] == pruning_spec}
    rows = []
    for p in bench["prefill"]:
        label = "vanilla" if p["retention"] == 1.0 else f"R = {p['retention']:g}"
        rows.append(
            f"| {label} | {p['prompt_tokens']:,} ({p['video_tokens']:,} video) | {_ms(fastvid.get(p['retention']), 2)} | "
            f"{_ms(p['full_model_ms'])} | {p['speedup']:.2f}x | {_ms(p['peak_mib'], 0)} |"
        )
    return rows


def _md_prefill(data: dict, report: dict) -> list[str]:
    d = data.get("llava_ov_7b_prefill_pruning", {})
    bench = d.get("sdpa")
    if not bench:
        return []
    s = bench["settings"]
    out = [
        (
            f"Prefill and pruning, {s['model']}, {s['token_frames']} frames, {s['layers_run']} of {s['layers_full']} layers, "
            f"sdpa (median of {s['repeats']}):"
        ),
        "",
        "| | prompt tokens | FastVID pruning ms | prefill ms | speedup | peak MiB |",
        "|---|---|---|---|---|---|",
        *_prefill_rows(bench),
    ]
    rates = d.get("tflops_per_s") or {}
    if rates:
        out += [
            "",
            "Prefill TFLOP/s (analytic 2 x MACs over measured ms): "
            + ", ".join(f"{'vanilla' if float(k) == 1.0 else 'R = ' + k} {v:.3g}" for k, v in rates.items())
            + ".",
        ]
    others = [p for p in bench["pruning"] if p["spec"] != "fastvid"]
    if others:
        out += [
            "",
            "Pruning ms of the other methods: "
            + ", ".join(f"{p['method']} R = {p['retention']:g}: {p['median_ms']:.2f}" for p in others)
            + ".",
        ]
    flash = d.get("flash_attention_2") or {}
    if "skipped" in flash:
        out += ["", f"FlashAttention-2: not run ({flash['skipped']})."]
    elif flash:
        out += [
            "",
            "The same with FlashAttention-2:",
            "",
            "| | prompt tokens | FastVID pruning ms | prefill ms | speedup | peak MiB |",
            "|---|---|---|---|---|---|",
            *_prefill_rows(flash),
        ]
    return out


def _md_ttft(data: dict, report: dict) -> list[str]:
    d = data.get("llava_ov_7b_ask_ttft", {})
    if not d.get("rows"):
        return []
    model = d.get("model") or data.get("llava_ov_7b_questions", {}).get("model") or {}
    built = f" (built in memory in {model['build_s']:.0f} s: {model['parameters'] / 1e9:.2f} B parameters)" if model else ""
    out = [
        f"`ask` end to end on {d['clip']}, LLaVA-OneVision-7B{built}, ms:",
        "",
        "| | decode | preprocess | vision | pruning | prefill | TTFT |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        label = "vanilla" if r["retention"] == 1.0 else f"FastVID R = {r['retention']:g}"
        out.append(
            f"| {label} | "
            + " | ".join(_ms(r[f"{k}_ms"]) for k in ("decode", "preprocess", "vision", "pruning", "prefill", "ttft"))
            + " |"
        )
    out += ["", f"TTFT speedup at R = 0.1: {d['ttft_speedup']:.2f}x."] if "ttft_speedup" in d else []
    return out


def _md_questions(data: dict, report: dict) -> list[str]:
    d = data.get("llava_ov_7b_questions", {})
    rows = [(k, v) for k, v in d.items() if k in ("1.0", "0.1")]
    if not rows:
        return []
    out = [
        "Several questions on one video (one `ask`), ms:",
        "",
        "| | questions | first TTFT | further TTFT (median) | further / first | each further |",
        "|---|---|---|---|---|---|",
    ]
    for key, v in rows:
        label = "vanilla" if key == "1.0" else f"R = {key}"
        share = "-" if v["further_share"] is None else f"{100 * v['further_share']:.1f} %"
        out.append(
            f"| {label} | {v['questions']} | {_ms(v['first_ttft_ms'])} | {_ms(v['median_further_ms'])} | {share} | "
            f"{', '.join(_ms(t) for t in v['further_ttft_ms'])} |"
        )
    return out


def _md_sweep(data: dict, report: dict) -> list[str]:
    sweep = data.get("long_video_pruning", {}).get("sweep")
    if not sweep:
        return []
    out = [
        "Pruning by frame count (4 synthetic scenes), median ms / peak MiB (MiB in use before):",
        "",
        "| frames | method | R | ms | peak MiB | before MiB | longest segment |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sweep["sweep"]:
        out.append(
            f"| {r['frames']} | {r['method']} | {r['retention']:g} | {_ms(r['median_ms'], 2)} | {_ms(r['peak_mib'], 0)} | "
            f"{_ms(r['baseline_mib'], 0)} | {r['longest_segment']} |"
        )
    return out


def _md_long_ask(data: dict, report: dict) -> list[str]:
    d = data.get("long_video_ask_256", {})
    if "timing" not in d:
        return []
    t, tok = d["timing"], d["tokens"]
    return [
        (
            f"`ask` at {d['frames']} frames ({d['clip']['how']}), R = 0.1: {tok['video_after']:,} of {tok['video_before']:,} video "
            f"tokens; decode {_ms(t['decode_ms'])}, preprocess {_ms(t['preprocess_ms'])}, vision {_ms(t['vision_ms'])}, "
            f"pruning {_ms(t['pruning_ms'])}, prefill {_ms(t['prefill_ms'])}, TTFT {_ms(t['ttft_ms'])} ms; peak memory "
            f"{_ms(d['peak_mib'], 0)} MiB ({_ms(d['peak_above_before_mib'], 0)} above the {_ms(d['memory_before_mib'], 0)} held before)."
        )
    ]


def _md_qwen(data: dict, report: dict) -> list[str]:
    rows = []
    for name in ("qwen3_vl_8b_prefill", "qwen3_5_9b_prefill"):
        bench = data.get(name, {}).get("bench")
        if not bench:
            continue
        by_r = {p["retention"]: p for p in bench["prefill"]}
        vanilla = by_r[1.0]
        cells = " | ".join(
            f"{_ms(by_r[r]['full_model_ms'])} ({by_r[r]['speedup']:.2f}x)" if r in by_r else "-" for r in (0.1, 0.25)
        )
        kernels = data[name].get("linear_attention_kernels")
        note = (
            ""
            if not kernels
            else (" (linear attention: " + ("fla" if all(kernels.values()) else "transformers' PyTorch fallback") + ")")
        )
        rows.append(
            f"| {bench['settings']['model']}{note} | {bench['settings']['layers_run']} | {vanilla['prompt_tokens']:,} | "
            f"{_ms(vanilla['full_model_ms'])} | {cells} |"
        )
    if not rows:
        return []
    return [
        "Prefill of the Qwen3-VL / Qwen3.5 LLMs (transformers' text models, random weights), ms (speedup):",
        "",
        "| model | layers | vanilla tokens | vanilla | R = 0.1 | R = 0.25 |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def _md_correctness(data: dict, report: dict) -> list[str]:
    d = data.get("fastvid_device_vs_cpu", {})
    if not d.get("float32"):
        return []
    out = [
        f"FastVID on {d['devices'][0]} against {d['devices'][1]}, same float32 inputs:",
        "",
        "| R | scenes | tokens kept | indices equal | segments equal | max abs diff |",
        "|---|---|---|---|---|---|",
    ]
    for c in d["float32"]:
        scenes = "4" if c["scene_frames"] is None else f"every {c['scene_frames']} frames"
        out.append(
            f"| {c['retention']:g} | {scenes} | {c['tokens_kept']:,} | {'yes' if c['indices_equal'] else 'NO'} | "
            f"{'yes' if c['segments_equal'] else 'NO'} | {_ms(c['max_abs_diff'], 7) if c['max_abs_diff'] is not None else '-'} |"
        )
    for b in d.get("bfloat16", []):
        out.append(
            f"\nbfloat16, R = {b['retention']:g}: {b['tokens_kept']:,} kept (float32: {b['tokens_kept_float32']:,}), "
            f"{'finite' if b['finite'] else 'NOT finite'}, {100 * b['index_agreement']:.1f} % of the float32 indices."
        )
    return out


def _md_vllm(data: dict, report: dict) -> list[str]:
    d = data.get("vllm_pruning", {})
    if not d.get("selection"):
        return []
    saliency = {s["temporal_patches"]: s["median_ms"] for s in d["saliency"]}
    out = [
        (
            f"FastVID inside vLLM {d['environment'].get('vllm')} beside vLLM's own methods, Qwen3-VL-8B's embeddings "
            "(196 tokens per temporal patch, rows 4096 x 4, bf16), median ms:"
        ),
        "",
        "| T | q | kept | EVS | VidCom2 | FastVID | FastVID / EVS | FastVID / VidCom2 | saliency (last block) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["selection"]:
        out.append(
            f"| {r['temporal_patches']} | {r['rate']:g} | {r['fastvid']['tokens_kept']:,} | {_ms(r['evs']['median_ms'], 2)} | "
            f"{_ms(r['vidcom2']['median_ms'], 2)} | {_ms(r['fastvid']['median_ms'], 2)} | {r['ratios']['fastvid_over_evs']:.2f}x | "
            f"{r['ratios']['fastvid_over_vidcom2']:.2f}x | {_ms(saliency.get(r['temporal_patches']), 2)} |"
        )
    return out


def _md_targets(data: dict, report: dict) -> list[str]:
    targets = report.get("targets") or []
    if not targets:
        return []
    out = [
        "Targets"
        + (" (a smoke run reads them at tiny sizes on the CPU: they say nothing there)" if report["smoke"] else "")
        + ":",
        "",
        "| target | value | goal | met | from | how |",
        "|---|---|---|---|---|---|",
    ]
    for t in targets:
        out.append(
            f"| {t['name']} | {t['value']:.4g} | {t['target']:g} | {'yes' if t['met'] else 'NO'} | {t['source']} | {t['how']} |"
        )
    return out


# --- main --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="every check at tiny sizes on the CPU (CI)")
    ap.add_argument("--budget-s", type=float, default=None, help="time budget in seconds [420; smoke: 90]")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder of the result files [benchmarks/results; smoke: $TMPDIR/fastvid-gpu-suite-smoke]",
    )
    ap.add_argument("--device", default=None, help="cuda or cpu [cuda; smoke: cpu]")
    ap.add_argument("--checks", nargs="+", default=None, choices=[c.name for c in CHECKS], help="run only these checks")
    ap.add_argument(
        "--merge", type=Path, default=None, help="an earlier result file of this device: the checks not run now keep its entries"
    )
    args = ap.parse_args(argv)

    device = torch.device(args.device or ("cpu" if args.smoke else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_suite: no CUDA GPU here; --smoke runs every check at tiny sizes on the CPU", file=sys.stderr)
        return 2
    sizes = smoke_sizes(device) if args.smoke else real_sizes(device)
    if args.smoke and device.type == "cuda":
        sizes = replace(sizes, dtype=torch.bfloat16)
    out = args.out or (
        Path(os.environ.get("TMPDIR", "/tmp")) / "fastvid-gpu-suite-smoke" if args.smoke else ROOT / "benchmarks" / "results"
    )
    checks = [c for c in CHECKS if args.checks is None or c.name in args.checks]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded, whatever the machine
    earlier = json.loads(args.merge.read_text()) if args.merge else None
    suite = Suite(sizes, checks, out, sizes.budget_s if args.budget_s is None else args.budget_s, earlier)
    return suite.run()


if __name__ == "__main__":
    sys.exit(main())
