"""The ``fastvid`` command line: parses options, calls the library, prints.

The answer (or ``--json``) goes to stdout; tables, notes, progress and errors go to stderr, for
every command: everything is printed through :mod:`.terminal`, the one output sink.
Exit status: 0 success, 1 runtime failure, 2 bad usage or input.

The library (torch, transformers, the models) is imported inside each command, never at module
level: ``fastvid --help`` and a usage error load only typer, rich and :mod:`.errors` (about 0.2 s).
Each such import says so (``# deferred``); ``tests/test_import_rules.py`` holds every other
function-level import of the package to the same rule.
"""

from __future__ import annotations

import json
import os
import re
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from . import __version__
from .cli_types import LAZY_HELP, Command, Group, MultiValueCommand
from .errors import InputError, describe
from .streams import native_output_to_stderr
from .terminal import err_console, print_answer, print_json, print_notes, print_tables

DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-7b-ov-hf"

app = typer.Typer(
    name="fastvid",
    cls=Group,
    help="Ask Video LLMs about videos, several times cheaper with FastVID token pruning (NeurIPS 2025).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Device(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class DType(str, Enum):
    auto = "auto"
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


class Layout(str, Enum):
    auto = "auto"
    onevision = "onevision"
    grid = "grid"


class PoolMode(str, Enum):
    average = "average"
    max = "max"
    bilinear = "bilinear"


class Attention(str, Enum):
    sdpa = "sdpa"
    flash_attention_2 = "flash_attention_2"
    eager = "eager"


def _version(value: bool) -> None:
    if value:
        print(f"fastvid {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Ask Video LLMs about videos, several times cheaper with FastVID token pruning (NeurIPS 2025)."""
    _quiet_libraries()


QUIET_LIBRARIES = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_VERBOSITY": "error"}
"""Environment that keeps library chatter (retry warnings, load reports) off stderr; a value the user set wins."""


def _quiet_libraries() -> None:
    """Keep library chatter off stderr, and progress bars off a non-terminal, without importing the libraries.

    transformers and huggingface_hub read these variables when they load (a bad input is answered before
    they do); a library already loaded (the CLI run in-process) is set directly.
    """
    quiet = dict(QUIET_LIBRARIES)
    if not sys.stderr.isatty():
        quiet["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' bars follow huggingface_hub's switch
    for name, value in quiet.items():
        os.environ.setdefault(name, value)
    if "transformers" in sys.modules:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        if not sys.stderr.isatty():
            transformers.utils.logging.disable_progress_bar()
    if "huggingface_hub" in sys.modules:
        import huggingface_hub

        huggingface_hub.utils.logging.set_verbosity_error()


def _model_names() -> str:
    """``--model``'s help: the aliases (sizes of one model grouped: ``qwen2.5-vl-3b/7b``, MoE sizes apart) and
    the tiny models."""
    # deferred: read when this help is shown, not by `fastvid --help`
    from .models import ALIASES, TINY_MODELS

    groups: dict[tuple[str, bool], list[str]] = {}
    for alias in ALIASES:
        match = re.fullmatch(r"(.+?)-(\d[\d.]*b(-a\d+b)?)", alias)
        prefix, size, active = match.groups() if match else (alias, "", None)
        groups.setdefault((prefix, active is not None), []).append(size)
    aliases = ", ".join(f"{prefix}-{'/'.join(sizes)}" if sizes[0] else prefix for (prefix, _), sizes in groups.items())
    return f"alias ({aliases}), local checkpoint folder, or {', '.join(TINY_MODELS)} (offline, noise)"


LAZY_HELP["{model_names}"] = _model_names

ModelOpt = Annotated[
    str,
    typer.Option(help="Hub repo id, {model_names}."),
]
FramesOpt = Annotated[
    int | None,
    typer.Option(
        help="Frames sampled uniformly [default: the paper's: 32 LLaVA-OneVision, 64 LLaVA-Video; the Qwen models sample 2 fps].",
        min=1,
    ),
]
FpsOpt = Annotated[
    float | None,
    typer.Option(
        "--fps",
        help="Sample by time instead: frames per second of video [default: the Qwen models 2 (Qwen2.5-VL: the paper's; Qwen3-VL/3.5: their processor's)].",
        min=0.001,
    ),
]
MaxFramesOpt = Annotated[int | None, typer.Option(help="With --fps: at most this many frames [default: 768].", min=1)]
SystemPromptOpt = Annotated[
    str | None,
    typer.Option(
        help='System turn of the prompt; "" for none [default: the paper\'s "You are a helpful assistant."; Qwen3-VL/3.5: none, as their template].'
    ),
]
VideoPixelsOpt = Annotated[
    int | None,
    typer.Option(
        help="Qwen models: pixels for the whole video, shared by its frames [default: Qwen2.5-VL the paper's 16384 x 28 x 28; Qwen3-VL/3.5 the checkpoint's video processor, 24576 x 32 x 32].",
        min=1,
    ),
]
PoolModeOpt = Annotated[
    PoolMode | None,
    typer.Option(
        help="LLaVA-Video: pooling of each frame's 27x27 patches [default: average, the paper's, whatever the checkpoint's config says]."
    ),
]
RepetitionPenaltyOpt = Annotated[
    float | None,
    typer.Option(
        help="Decoding is greedy; this replaces the checkpoint's repetition penalty (kept by the paper's runs, 1.05 for LLaVA-Video); 1 = none.",
        min=0.001,
    ),
]
LayoutOpt = Annotated[
    Layout,
    typer.Option(
        help="LLaVA video layout: auto (from the config), onevision, or grid (LLaVA-Video weights in llava_onevision format)."
    ),
]
MaxNewTokensOpt = Annotated[
    int | None, typer.Option(help="Longest answer, in tokens [default: 128; 4096 for a model that thinks first].", min=1)
]
CompareMaxNewTokensOpt = Annotated[
    int | None,
    typer.Option("--max-new-tokens", help="Longest answer, in tokens [default: 64; 4096 for a model that thinks first].", min=1),
]
ThinkingOpt = Annotated[
    bool | None,
    typer.Option(
        "--thinking/--no-thinking",
        help="Qwen3.5: reason before answering (its chat template's enable_thinking); the reasoning goes to --json's reasoning field [default: off].",
        show_default=False,
    ),
]
DeviceOpt = Annotated[Device, typer.Option(help="Where to run: auto (GPU if there is one), cuda, cpu.")]
DTypeOpt = Annotated[DType, typer.Option(help="Weights dtype: auto = bfloat16 on GPU, float32 on CPU.")]
AttnOpt = Annotated[Attention, typer.Option(help="LLM attention kernel; flash_attention_2 needs the flash-attn package.")]
RetentionOpt = Annotated[
    float | None,
    typer.Option(
        "--retention",
        "-r",
        help="Retention ratio R in (0, 1]: share of video tokens kept [default: 0.1; Qwen models 0.27, the Qwen2.5-VL release's (not the paper's for Qwen3-VL/3.5)].",
    ),
]
COpt = Annotated[
    int | None, typer.Option("--c", help="DySeg: segments aimed for; the c-1 weakest transitions are cut [default: 8].")
]
TauOpt = Annotated[
    float | None,
    typer.Option(
        "--tau",
        help="DySeg: cut wherever consecutive frames' similarity < tau [default: 0.9; Qwen models 0.84, the Qwen2.5-VL release's].",
    ),
]
DOpt = Annotated[
    float | None,
    typer.Option("--d", help="Share of each frame's budget for DTM anchors; 0 = ATS only, 1 = DTM only [default: 0.4]."),
]
POpt = Annotated[int | None, typer.Option("--p", help="DTM: anchor frames every p-th frame from a segment's end [default: 4].")]
BetaOpt = Annotated[
    float | None, typer.Option("--beta", help="DTM: least weight an anchor keeps of itself when merged [default: 0.6].")
]
SplitTauOpt = Annotated[
    float | None,
    typer.Option(
        "--split-tau",
        help="Second threshold: anchor frames only at the ends of runs split where similarity < it [default: off; Qwen models 0.95, the Qwen2.5-VL release's].",
    ),
]
MaxSegmentOpt = Annotated[
    int | None,
    typer.Option(
        help="Not the paper's: split DySeg segments longer than this many frames (bounds DTM's time at hundreds of frames; 32 leaves 32-frame runs as they are) [default: off].",
        min=1,
    ),
]
SegmentationOpt = Annotated[
    str | None,
    typer.Option(help="FastVID segmentation: dyseg, or the ablations fixed (4 frames) and cluster (k-means) [default: dyseg]."),
]
VisionBatchOpt = Annotated[
    int | None,
    typer.Option(
        help="Frames per chunk of the streaming vision encode (peak memory grows with it) [default: 64 on a GPU, 16 on the CPU].",
        min=1,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of the answer and tables.")]


def _load(model: str, device: Device | str, dtype: DType, attn: Attention, layout: Layout = Layout.auto, settings=None):
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from .models import load_model

    device = device.value if isinstance(device, Device) else device
    return load_model(
        model, device=device, dtype=dtype.value, attn_implementation=attn.value, layout=layout.value, overrides=settings
    )


@contextmanager
def _user_input():
    """The library's checks of what the user gave raise ValueError: that is bad input (exit 2)."""
    try:
        yield
    except ValueError as err:
        raise InputError(str(err)) from None


def _settings(
    frames=None,
    fps=None,
    max_frames=None,
    system_prompt=None,
    video_pixels=None,
    pool_mode=None,
    repetition_penalty=None,
    thinking=None,
):
    """What the user changed of the paper's run settings (checked now)."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from .models.settings import SettingsOverrides

    with _user_input():
        return SettingsOverrides(
            frames=frames,
            fps=fps,
            max_frames=max_frames,
            system_prompt=system_prompt,
            video_pixels=video_pixels,
            pool_mode=pool_mode.value if pool_mode else None,
            repetition_penalty=repetition_penalty,
            thinking=thinking,
        )


def _fastvid_overrides(retention, c, tau, d, p, beta, split_tau=None, segmentation=None, max_segment=None) -> dict:
    """The FastVID settings the user gave (checked now); the model's defaults fill the rest after loading."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from .pruning import FastVIDConfig

    given = {
        "retention_ratio": retention,
        "c": c,
        "tau": tau,
        "d": d,
        "p": p,
        "beta": beta,
        "split_tau": split_tau,
        "segmentation": segmentation,
        "max_segment": max_segment,
    }
    overrides = {k: v for k, v in given.items() if v is not None}
    with _user_input():
        FastVIDConfig(**overrides)
    return overrides


def _check_early(
    video: Path | None = None, model: str | None = None, retentions: list[float | None] | None = None, status=None
) -> None:
    """Check what needs neither torch nor transformers, before they load (importing them takes seconds).

    R in (0, 1]; the video: a file whose header and first frame decord reads; the model: a tiny model's
    name, a checkpoint folder, or an alias or repo id whose files are cached (or download now: a bad
    repo id or a Hub out of reach is said at once).
    """
    # deferred: none of these loads torch or transformers; `fastvid --help` imports none of the library
    from .budget import check_retention
    from .models import resolve_model
    from .models.tiny_names import TINY_MODELS
    from .video import probe_video

    with _user_input():
        for r in retentions or []:
            if r is not None:
                check_retention(r)
    if video is not None:
        probe_video(video)
    if model is not None and model not in TINY_MODELS:
        if status is not None:
            status.update(f"finding {model}...")
        resolve_model(model)


def _read_then_load(status, video: Path, model: str, device, dtype: DType, attn: Attention, layout: Layout, settings):
    """Read the video first where the model's frame sampling is known without loading it, so bad
    input fails before a model loads; then load the model (else the other way round)."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from .models import planned_settings
    from .video import read_video

    planned = planned_settings(model, settings, layout.value)
    sampled = read_video(video, planned.sampling, decode=False) if planned else None  # frames: streamed later
    status.update(f"loading {model}...")
    adapter = _load(model, device, dtype, attn, layout, settings)
    if sampled is None:
        status.update(f"reading {video}...")
        sampled = read_video(video, adapter.settings.sampling, decode=False)
    return sampled, adapter


@app.command(no_args_is_help=True, cls=Command)
def ask(
    video: Annotated[Path, typer.Argument(help="Video file (anything FFmpeg/decord reads: mp4, mkv, webm, avi...).")],
    question: Annotated[
        list[str] | None,
        typer.Argument(
            help="Question(s) about the video; several share one decode, vision pass, pruning and video prefill.",
            show_default=False,
        ),
    ] = None,
    questions: Annotated[
        Path | None, typer.Option("--questions", help="More questions, one per line of this file (- for stdin).")
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    max_frames: MaxFramesOpt = None,
    retention: RetentionOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    attn_implementation: AttnOpt = Attention.sdpa,
    c: COpt = None,
    tau: TauOpt = None,
    d: DOpt = None,
    p: POpt = None,
    beta: BetaOpt = None,
    split_tau: SplitTauOpt = None,
    max_segment: MaxSegmentOpt = None,
    segmentation: SegmentationOpt = None,
    layout: LayoutOpt = Layout.auto,
    system_prompt: SystemPromptOpt = None,
    video_pixels: VideoPixelsOpt = None,
    pool_mode: PoolModeOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    thinking: ThinkingOpt = None,
    baseline: Annotated[
        bool | None,
        typer.Option(
            "--baseline/--no-baseline",
            help="Also time the vanilla prefill for the speedup [default: when the unpruned prompt fits the LLM's context window].",
            show_default=False,
        ),
    ] = None,
    vision_batch: VisionBatchOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer QUESTION(s) about VIDEO with FastVID-pruned video tokens.

    The answer goes to stdout (several questions: one line each, "k<TAB>answer"); tables of token counts, prefill FLOPs, measured prefill speedup, time breakdown and DySeg segments go to stderr. The video is decoded, encoded, pruned and prefilled once; each question then prefills only its own tokens.
    """
    asked = list(question or []) + _read_questions(questions)
    if not asked:
        raise InputError("give a question (or --questions FILE)")
    if any(not q.strip() for q in asked):
        raise InputError("a question is empty")
    settings = _settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    with err_console.status(f"reading {video}...") as status:
        _check_early(video, model, [retention], status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from .pipeline import AskOptions, ask_many
        from .pruning import method_for_family
        from .report import ask_tables, render_questions

        overrides = _fastvid_overrides(retention, c, tau, d, p, beta, split_tau, segmentation, max_segment)
        sampled, adapter = _read_then_load(status, video, model, device, dtype, attn_implementation, layout, settings)
        config = method_for_family(adapter.fastvid_defaults, overrides)
        options = AskOptions(config=config, max_new_tokens=max_new_tokens, baseline=baseline, vision_batch=vision_batch)
        results = ask_many(adapter, sampled, asked, options, on_stage=lambda s: status.update(f"{s}..."))
    if as_json:
        dicts = [r.to_dict() for r in results]
        print_json(dicts[0] if len(dicts) == 1 else dicts)
    elif len(results) == 1:
        print_answer(results[0].answer)
        print_tables(ask_tables(results[0]))
    else:
        for k, result in enumerate(results, 1):
            print_answer(f"{k}\t{' '.join(result.answer.split())}")
        print_tables(ask_tables(results[0]), render_questions(results))
    print_notes(dict.fromkeys(note for result in results for note in result.notes))


def _read_questions(path: Path | None) -> list[str]:
    """Questions from a file (or - for stdin), one per non-blank line."""
    if path is None:
        return []
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as err:
        raise InputError(f"cannot read the questions file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise InputError(f"the questions file {path} is not text") from None
    asked = [line.strip() for line in text.splitlines() if line.strip()]
    if not asked:
        raise InputError(f"the questions file {'(stdin)' if str(path) == '-' else path} holds no question (one per line)")
    return asked


@app.command(no_args_is_help=True, cls=MultiValueCommand)
def compare(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    question: Annotated[str, typer.Argument(help="Question about the video.")],
    retention: Annotated[
        list[float] | None, typer.Option("--retention", "-r", help="Retention ratios, space separated: --retention 0.1 0.25.")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            help="Methods, space separated: fastvid uniform visionzip dycoke; NAME:FIELD=VALUE for variants, e.g. fastvid:segmentation=fixed fastvid:d=0."
        ),
    ] = None,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    max_frames: MaxFramesOpt = None,
    max_new_tokens: CompareMaxNewTokensOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    attn_implementation: AttnOpt = Attention.sdpa,
    c: COpt = None,
    tau: TauOpt = None,
    d: DOpt = None,
    p: POpt = None,
    beta: BetaOpt = None,
    split_tau: SplitTauOpt = None,
    max_segment: MaxSegmentOpt = None,
    layout: LayoutOpt = Layout.auto,
    system_prompt: SystemPromptOpt = None,
    video_pixels: VideoPixelsOpt = None,
    pool_mode: PoolModeOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    thinking: ThinkingOpt = None,
    vision_batch: VisionBatchOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the rows as one JSON object on stdout instead of the table.")
    ] = False,
) -> None:
    """Run the vanilla model and every (method, retention) pair on one video, side by side.

    The model and the video are loaded and encoded once. One table (stderr): video tokens kept, prefill TFLOPs and ratio, pruning and prefill time, speedup over vanilla, and each answer, marked where it differs from the vanilla one.
    """
    methods = method or ["fastvid"]
    retentions = retention or [0.1, 0.25]
    if not question.strip():
        raise InputError("the question is empty")
    settings = _settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    with err_console.status(f"reading {video}...") as status:
        _check_early(video, model, list(retentions), status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from .compare import compare as run_compare
        from .pruning import make_method
        from .report import compare_table

        overrides = _fastvid_overrides(None, c, tau, d, p, beta, split_tau, max_segment=max_segment)
        with _user_input():  # validate before the model loads
            for spec in methods:
                for r in retentions:
                    make_method(spec, r, **overrides)
        sampled, adapter = _read_then_load(status, video, model, device, dtype, attn_implementation, layout, settings)
        result = run_compare(
            adapter,
            sampled,
            question,
            methods,
            retentions,
            max_new_tokens=max_new_tokens,
            method_overrides=overrides,
            on_stage=lambda s: status.update(f"{s}..."),
            vision_batch=vision_batch,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        print_tables(compare_table(result))
        for row in result.rows:  # the answers, whole, on stdout: one line each
            print_answer(f"{row.method}\t{row.retention:g}\t{' '.join(row.answer.split())}")
    print_notes(result.notes)


@app.command(cls=MultiValueCommand)
def flops(
    model: ModelOpt = DEFAULT_MODEL,
    frames: Annotated[
        int | None,
        typer.Option(
            help="Frames [default: the paper's: 32 LLaVA-OneVision, 64 LLaVA-Video; Qwen2.5-VL 32 at 448 px, or by --video].",
            min=1,
        ),
    ] = None,
    video: Annotated[
        Path | None,
        typer.Option(
            help="Count the tokens this video gets, as ask samples and sizes it (read from its header; Qwen2.5-VL's tokens depend on it)."
        ),
    ] = None,
    retention: Annotated[
        list[float] | None,
        typer.Option("--retention", "-r", help="Retention ratios, space separated (default 0.25 0.2 0.15 0.1)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as one JSON object.")] = False,
) -> None:
    """Analytic LLM prefill FLOPs, vanilla vs FastVID, from the model's config alone (no weights, offline for the supported models).

    Two conventions, each named: FastVID's Table 5 (multiply-accumulates of the LLM on the video tokens) and 2 x MACs of a causal prefill over the video slots; then both split by layer type (full attention, Gated DeltaNet, MLP / MoE, LM head) with each one's share of the saving.
    """
    # deferred: `fastvid --help` imports none of the library (see the module docstring); these load no torch
    from .flops import CONVENTIONS, flops_rows, flops_split_rows
    from .models.geometry import model_geometry, video_geometry
    from .models.registry import paper_settings
    from .video import probe_video

    retentions = retention or [0.25, 0.2, 0.15, 0.1]
    _check_early(retentions=list(retentions))
    info = probe_video(video) if video is not None else None
    geometry = model_geometry(model)  # a bad name or folder is said before the model's adapter loads torch
    if info is not None:
        with _user_input():
            settings = paper_settings(geometry.family).with_overrides(_settings(frames))
        geometry, frames = video_geometry(geometry, info, settings)
    # deferred: the tables' module loads torch (through the pipeline's result types)
    from .report import flops_rows_table, flops_split_table

    frames = frames or geometry.frames
    budget = (
        geometry.llm,
        geometry.tokens_per_frame,
        geometry.extra_slots,
        geometry.token_frames(frames),
        retentions,
        geometry.newlines_per_frame,
    )
    rows, split = flops_rows(*budget), flops_split_rows(*budget)
    if as_json:
        print_json(
            {
                "model": geometry.to_dict(),
                "frames": frames,
                "token_frames": geometry.token_frames(frames),
                "unit": "TFLOPs",
                "conventions": CONVENTIONS,
                "rows": [row.to_dict() for row in rows],
                "split": [row.to_dict() for row in split],
            }
        )
    else:
        print_tables(flops_rows_table(geometry, frames, rows), flops_split_table(geometry, split))


@app.command(cls=MultiValueCommand)
def bench(
    model: Annotated[
        str,
        typer.Option(
            help="Model whose geometry is benchmarked (random weights, no download); with --video, the model that is loaded."
        ),
    ] = DEFAULT_MODEL,
    layers: Annotated[
        int | None,
        typer.Option(
            help="Build only the first K decoder layers; prefill is also scaled to all layers. A hybrid model (Qwen3.5: 3 Gated DeltaNet layers, then 1 attention layer) runs K rounded up to whole periods of its pattern (a multiple of 4), so every layer type is timed.",
            min=1,
        ),
    ] = None,
    frames: Annotated[
        list[int] | None,
        typer.Option(
            help="Frames F (default: the model's). Several, space separated (--frames 32 128 512 1024): a pruning-only sweep, time and peak memory per frame count, no LLM.",
            min=1,
        ),
    ] = None,
    scene_frames: Annotated[
        int | None, typer.Option(help="Synthetic video: a scene every N frames (default: 4 scenes over the video).", min=1)
    ] = None,
    retention: Annotated[
        list[float] | None, typer.Option("--retention", "-r", help="Retention ratios, space separated (default 0.1 0.25).")
    ] = None,
    method: Annotated[
        list[str] | None, typer.Option(help="Methods to time, space separated (default: fastvid uniform visionzip dycoke).")
    ] = None,
    repeats: Annotated[int, typer.Option(help="Timed runs; the median is reported.", min=1)] = 3,
    warmup: Annotated[int, typer.Option(help="Untimed runs first.", min=0)] = 1,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    video: Annotated[
        Path | None,
        typer.Option(
            help="Also measure TTFT (file to first token) on this real video, vanilla vs FastVID, with the loaded --model, on ask's pipeline."
        ),
    ] = None,
    questions: Annotated[
        int,
        typer.Option(
            "--questions",
            help="Questions per video: the further ones prefill only their own tokens on the video's KV cache; their cost is timed against the first's (and with --video, their TTFT).",
            min=1,
        ),
    ] = 1,
    output: Annotated[
        Path | None, typer.Option(help="Where to write the JSON result (default: fastvid-bench-DEVICE.json).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON result on stdout instead of the tables.")] = False,
) -> None:
    """Benchmark pruning time of each method, LLM prefill vanilla vs pruned, peak memory, and (with --video) TTFT.

    The LLM is built from the model's geometry with random weights. Medians of --repeats runs after --warmup runs, CUDA events on a GPU. With several --frames, only the pruning, at each frame count. Writes a JSON result with the device, versions and settings.
    """
    retentions = retention or [0.1, 0.25]
    sweep = frames is not None and len(frames) > 1
    if sweep and video is not None:
        raise InputError("--video times one frame count: give --frames a single value")
    # deferred: `fastvid --help` imports none of the library (see the module docstring); this loads no torch
    from .models.geometry import model_geometry

    _check_early(video, model if video is not None else None, list(retentions))
    geometry = model_geometry(model)  # a bad name or folder is said before the model's adapter loads torch
    # deferred: torch and transformers load only once the input is known to be good
    from .bench import BenchSettings, layers_run, run_bench, run_pruning_sweep, ttft_on_video
    from .bench_device import device_slug
    from .bench_results import BenchResult, SweepResult, VideoTTFT
    from .models import resolve_device, resolve_dtype
    from .report import bench_tables, sweep_tables

    torch_device = resolve_device(device.value)
    settings = BenchSettings(
        layers=layers,
        frames=frames[0] if frames else None,
        scene_frames=scene_frames,
        retentions=retentions,
        methods=method or ["fastvid", "uniform", "visionzip", "dycoke"],
        repeats=repeats,
        warmup=warmup,
        device=torch_device,
        dtype=resolve_dtype(dtype.value, torch_device),
        questions=questions,
    )
    result: BenchResult | SweepResult
    with err_console.status("benchmarking...") as status:
        if sweep:
            result = run_pruning_sweep(geometry, settings, frames or [], on_stage=lambda s: status.update(f"{s}..."))
        else:
            result = run_bench(geometry, settings, on_stage=lambda s: status.update(f"{s}..."))
            if video is not None:
                status.update(f"loading {model} for TTFT on {video}...")
                adapter = _load(model, device, dtype, Attention.sdpa)
                result.ttft = VideoTTFT(
                    video=str(video),
                    model=model,
                    questions=questions,
                    rows=ttft_on_video(
                        adapter, str(video), "What happens in this video?", settings.frames, retentions, repeats, questions
                    ),
                )
    path = output or Path(f"fastvid-bench-{'frames-' if sweep else ''}{device_slug(torch_device)}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    path.write_text(json.dumps(data, indent=2) + "\n")
    if as_json:
        print_json(data)
    else:
        print_tables(*(sweep_tables(result) if isinstance(result, SweepResult) else bench_tables(result)))
    err_console.print(f"wrote {path}")
    if not sweep:
        print_notes([note for note in [layers_run(geometry, layers)[1]] if note])


@app.command(cls=Command)
def batch(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Video files, folders (recursed, video files only, sorted), or - to read paths from stdin."),
    ] = None,
    question: Annotated[str | None, typer.Option("--question", "-q", help="Question asked about every video of PATHS.")] = None,
    questions: Annotated[
        Path | None, typer.Option(help='JSON lines {"video": ..., "question": ..., "id": ...}: a question per video.')
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Results, one JSON line per (video, question), appended as each finishes; - for stdout."
        ),
    ] = Path("results.jsonl"),
    resume: Annotated[bool, typer.Option(help="Skip the items OUTPUT already holds and append the rest.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Start OUTPUT afresh if it exists.")] = False,
    prefetch: Annotated[int, typer.Option(help="Videos decoded and preprocessed ahead of the model (0 = none).", min=0)] = 2,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    model: ModelOpt = DEFAULT_MODEL,
    frames: FramesOpt = None,
    fps: FpsOpt = None,
    max_frames: MaxFramesOpt = None,
    retention: RetentionOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    attn_implementation: AttnOpt = Attention.sdpa,
    c: COpt = None,
    tau: TauOpt = None,
    d: DOpt = None,
    p: POpt = None,
    beta: BetaOpt = None,
    split_tau: SplitTauOpt = None,
    max_segment: MaxSegmentOpt = None,
    layout: LayoutOpt = Layout.auto,
    system_prompt: SystemPromptOpt = None,
    video_pixels: VideoPixelsOpt = None,
    pool_mode: PoolModeOpt = None,
    repetition_penalty: RepetitionPenaltyOpt = None,
    thinking: ThinkingOpt = None,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also time each vanilla prefill (doubles the LLM work).")
    ] = False,
    vision_batch: Annotated[
        int | None,
        typer.Option(
            help="Stream each video's frames through the vision encoder this many at a time (long videos: bounded memory; the prefetch then reads headers only) [default: off, whole videos prefetched].",
            min=1,
        ),
    ] = None,
) -> None:
    """Answer questions about many videos with one loaded model; one JSON line per item in OUTPUT.

    Each line has the fields of ask --json plus id and video, or an "error" for a video that failed (the batch goes on). The exit status is 1 if any item failed, 130 if stopped by Ctrl-C (finished items stay on disk; rerun with --resume). Under torchrun or accelerate launch each process takes its share of the videos, writes its own part file, and the main process merges the parts in input order at the end.
    """
    # deferred: `fastvid --help` imports none of the library (see the module docstring); this loads no torch
    from .batch import STDOUT, check_output, collect_items, pending, run_job

    settings = _settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    items = collect_items(paths or [], question, questions, sys.stdin if "-" in (paths or []) else ())
    check_output(output, resume, overwrite)
    work = bool(pending(items, output, resume))  # --resume with nothing left: no model, no torch
    _check_early(None, model if work else None, [retention])
    overrides = _fastvid_overrides(retention, c, tau, d, p, beta, split_tau, max_segment=max_segment) if work else {}
    progress = _batch_progress(quiet)
    task = progress.add_task(f"loading {model}...", total=None, failed=0)

    def on_start(count: int, rank: int, world: int) -> None:
        label = f" (rank 0 of {world}: its {count} items)" if world > 1 else ""
        progress.update(task, total=count, description=f"answering{label}", visible=rank == 0)

    def on_item(item, record) -> None:
        progress.update(task, advance=1, failed=progress.tasks[0].fields["failed"] + ("error" in record))

    def on_stop() -> None:
        err_console.print("stopping after the current item (Ctrl-C again to abort)", style="yellow")

    with progress:
        summary = run_job(
            items,
            output,
            model=model,
            device=device.value,
            dtype=dtype.value,
            attn_implementation=attn_implementation.value,
            layout=layout.value,
            settings=settings,
            fastvid=overrides,
            max_new_tokens=max_new_tokens,
            baseline=baseline,
            vision_batch=vision_batch,
            resume=resume,
            overwrite=overwrite,
            prefetch=prefetch,
            catch_sigint=True,
            on_start=on_start,
            on_item=on_item,
            on_stop=on_stop,
        )
    if summary.rank == 0:  # the whole batch's counts, once
        if summary.answered or summary.failed:
            # deferred: the report's tables import the pipeline (torch), loaded by now
            from .report import batch_table

            print_tables(batch_table(summary))
        for failure in summary.failures[:20]:
            err_console.print(f"failed: {failure}", style="red", soft_wrap=True)
        print_notes(summary.notes)
        processes = f" ({summary.processes} processes)" if summary.processes > 1 else ""
        state = " (interrupted: rerun with --resume)" if summary.interrupted else ""
        err_console.print(
            f"fastvid batch: {summary.answered} answered, {summary.failed} failed, {summary.skipped} skipped, "
            f"{summary.videos_per_second:.2f} videos/s{processes} -> {'stdout' if output == STDOUT else output}{state}",
            soft_wrap=True,
        )
    if summary.interrupted:
        raise typer.Exit(130)
    if summary.failed:
        raise typer.Exit(1)


@app.command(no_args_is_help=True, cls=Command)
def show(
    video: Annotated[Path, typer.Argument(help="Video file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")] = Path("kept.png"),
    model: ModelOpt = DEFAULT_MODEL,
    frames: Annotated[
        int, typer.Option(help="Frames sampled uniformly from the video (Qwen2.5-VL: frames before its 2-frame grouping).", min=1)
    ] = 16,
    retention: RetentionOpt = None,
    width: Annotated[int, typer.Option(help="Picture width in pixels.", min=400)] = 1600,
    columns: Annotated[int, typer.Option(help="Frames per row.", min=1)] = 8,
    device: DeviceOpt = Device.auto,
    dtype: DTypeOpt = DType.auto,
    c: COpt = None,
    tau: TauOpt = None,
    d: DOpt = None,
    p: POpt = None,
    beta: BetaOpt = None,
    split_tau: SplitTauOpt = None,
    max_segment: MaxSegmentOpt = None,
    layout: LayoutOpt = Layout.auto,
    video_pixels: VideoPixelsOpt = None,
    pool_mode: PoolModeOpt = None,
) -> None:
    """Draw what FastVID keeps of VIDEO: frames with their DySeg segments, salient and anchor tokens, merged regions, and the transition-similarity curve with tau and the cuts."""
    if out.suffix.lower() != ".png":
        raise InputError(f"--out must be a .png file, got {out}")
    with err_console.status(f"reading {video}...") as status:
        settings = _settings(frames, video_pixels=video_pixels, pool_mode=pool_mode)
        _check_early(video, model, [retention], status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from .pruning import method_for_family
        from .show import show as draw

        overrides = _fastvid_overrides(retention, c, tau, d, p, beta, split_tau, max_segment=max_segment)
        sampled, adapter = _read_then_load(status, video, model, device, dtype, Attention.sdpa, layout, settings)
        config = method_for_family(adapter.fastvid_defaults, overrides)
        status.update("encoding and pruning...")
        path, kept = draw(adapter, sampled, out, config, width=width, columns=columns)
    err_console.print(
        f"wrote {path}: {int(kept.indices.numel()):,} tokens kept, {len(kept.segment_lengths)} segments", soft_wrap=True
    )
    if sampled.short_note:
        print_notes([sampled.short_note])


def _batch_progress(quiet: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    class Rate(TextColumn):
        def __init__(self):
            super().__init__("")

        def render(self, task):
            from rich.text import Text

            speed = task.finished_speed or task.speed
            return Text(f"{speed:.2f} videos/s" if speed else "- videos/s")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed: {task.fields[failed]}"),
        Rate(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        disable=quiet or not sys.stderr.isatty(),
        transient=False,
    )


def _tiny_architectures() -> str:
    """``tiny-model --arch``'s choices for its help: each with the published checkpoint it is built from."""
    # deferred: read when this help is shown, not by `fastvid --help`
    from .models.tiny_names import TINY_ARCHITECTURES

    choices = [f"{arch} ({folder})" for arch, folder in TINY_ARCHITECTURES.items()]
    return f"{choices[0]} [default], " + ", ".join(choices[1:])


LAZY_HELP["{tiny_architectures}"] = _tiny_architectures


@app.command("tiny-model", no_args_is_help=True, cls=Command)
def tiny_model(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint to.")],
    arch: Annotated[
        str | None,
        typer.Option(
            help="Architecture, built from the published files fastvid ships of the checkpoint named: {tiny_architectures}."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Build from a real checkpoint's published files in this folder (config.json, processor/tokenizer configs, chat template, generation config) instead of --arch.",
        ),
    ] = None,
    full_size: Annotated[
        bool,
        typer.Option(
            "--full-size",
            help="With --config: keep the real widths, depths and vocabulary (benchmarks on a GPU; a 7B model writes about 15 GB).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a random-weight checkpoint (offline) to OUT_DIR; --model OUT_DIR loads it.

    It is built from a real checkpoint's published files (--arch: those fastvid ships; --config: a folder of them): every layout, prompt and decoding field is the real checkpoint's, so it has the real architecture and token geometry; only widths, depths and the vocabulary shrink to test size (none with --full-size). Its answers are noise.
    """
    if config is not None and arch is not None:
        raise InputError("--arch and --config exclude each other: --config takes the architecture from REAL_DIR/config.json")
    if config is None:
        if full_size:
            raise InputError("--full-size needs --config REAL_DIR (the real checkpoint's published files)")
        # deferred: `fastvid --help` imports none of the library (see the module docstring)
        from .models.tiny_names import TINY_ARCHITECTURES
        from .tiny import ARCHITECTURES

        arch = arch or next(iter(TINY_ARCHITECTURES))
        if arch not in ARCHITECTURES:
            raise InputError(f"unknown --arch {arch!r}: choose from {', '.join(ARCHITECTURES)}")
        config = ARCHITECTURES[arch]
    _tiny_from_config(out_dir, config, full_size, seed)


def _tiny_from_config(out_dir: Path, real_dir: Path, full_size: bool, seed: int) -> None:
    """Plan, say what stays and what shrinks, then write (see :mod:`fastvid_cli.tiny`)."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from .tiny.plan import plan_from_config, summary_lines
    from .tiny.write import default_device, write_plan

    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not empty")
    plan = plan_from_config(real_dir, full_size)
    for line in summary_lines(plan):
        err_console.print(line, markup=False, soft_wrap=True)
    if full_size:
        device = default_device(True)
        slow = "" if device.type == "cuda" else " (no GPU: on the CPU this is slow and needs that much memory and disk)"
        err_console.print(
            f"drawing {plan.weight_bytes() / 1e9:.1f} GB of random weights on {device}{slow}", markup=False, soft_wrap=True
        )
    with err_console.status(f"writing {out_dir}..."):
        write_plan(plan, out_dir, seed=seed)
    kind = "full-size" if full_size else "tiny"
    err_console.print(
        f"wrote {kind} random {plan.family} built from {real_dir} to {out_dir}; use it with --model {out_dir}",
        markup=False,
        soft_wrap=True,
    )


def option_of(setting: str) -> str:
    """The option of a setting named in a library error (``attn_implementation`` ->
    ``--attn-implementation``); the name itself where no command has such an option."""
    for command in getattr(typer.main.get_command(app), "commands", {}).values():  # the app is a group
        for param in command.params:
            if param.name == setting and param.param_type_name == "option":
                return str(next((opt for opt in param.opts if opt.startswith("--")), param.opts[0]))
    return setting


REPORTED_AS_IS = ("FastVIDError", "ClickException", "KeyboardInterrupt", "Abort")
"""Errors whose one line is the whole story; any other gets a traceback under FASTVID_DEBUG=1."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and an exit status (never a traceback),
    by the table of :mod:`fastvid_cli.errors`."""
    command = typer.main.get_command(app)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = command.main(args=argv, prog_name="fastvid", standalone_mode=False)
        if isinstance(status, int):  # a typer.Exit(code) raised inside a command comes back as its code
            return status
    except typer.Exit as done:
        return done.exit_code
    except BaseException as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            cast(Any, err).show()
            return 0
        if isinstance(err, (SystemExit, GeneratorExit)):
            raise
        as_is = any(c.__name__ in REPORTED_AS_IS for c in type(err).__mro__)
        if os.environ.get("FASTVID_DEBUG") and not as_is:
            raise
        failure = describe(err, option_of)
        hint = "" if as_is else " (set FASTVID_DEBUG=1 for the traceback)"
        err_console.print(f"fastvid: error: {failure.message}{hint}", style="red", soft_wrap=True)
        return failure.exit_code
    return 0


def main() -> None:
    """Console-script entry point: stdout carries only what the command prints; native libraries' own
    output goes to stderr (see :mod:`fastvid_cli.streams`)."""
    with native_output_to_stderr():
        status = run()
    sys.exit(status)
