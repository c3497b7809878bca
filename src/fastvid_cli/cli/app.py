"""The Typer app of the ``fastvid`` command line, the options its commands share, and the early checks.

The answer (or ``--json``) goes to stdout; tables, notes, progress and errors go to stderr, for
every command: everything is printed through :mod:`fastvid_cli.output.terminal`, the one output sink.
Exit status: 0 success, 1 runtime failure, 2 bad usage or input.

The library (torch, transformers, the models) is imported inside each command, never at module
level: ``fastvid --help`` and a usage error load only typer, rich and :mod:`fastvid_cli.errors` (about 0.2 s).
Each such import says so (``# deferred``); ``tests/test_import_rules.py`` holds every other
function-level import of the package to the same rule.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .. import __version__
from ..errors import InputError
from .click_types import LAZY_HELP, Group

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
    if "huggingface_hub" in sys.modules:  # its submodules load lazily: name the one used
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()


def _model_names() -> str:
    """``--model``'s help: the aliases (sizes of one model grouped: ``qwen2.5-vl-3b/7b``, MoE sizes apart) and
    the tiny models."""
    # deferred: read when this help is shown, not by `fastvid --help`
    from ..models import ALIASES, TINY_MODELS

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


def load_adapter(model: str, device: Device | str, dtype: DType, attn: Attention, layout: Layout = Layout.auto, settings=None):
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from ..models import load_model

    device = device.value if isinstance(device, Device) else device
    return load_model(
        model, device=device, dtype=dtype.value, attn_implementation=attn.value, layout=layout.value, overrides=settings
    )


@contextmanager
def user_input():
    """The library's checks of what the user gave raise ValueError: that is bad input (exit 2)."""
    try:
        yield
    except ValueError as err:
        raise InputError(str(err)) from None


def run_settings(
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
    from ..models.settings import SettingsOverrides

    with user_input():
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


def fastvid_overrides(retention, c, tau, d, p, beta, split_tau=None, segmentation=None, max_segment=None) -> dict:
    """The FastVID settings the user gave (checked now); the model's defaults fill the rest after loading."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from ..pruning import FastVIDConfig

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
    with user_input():
        FastVIDConfig(**overrides)
    return overrides


def check_early(
    video: Path | None = None, model: str | None = None, retentions: list[float | None] | None = None, status=None
) -> None:
    """Check what needs neither torch nor transformers, before they load (importing them takes seconds).

    R in (0, 1]; the video: a file whose header and first frame decord reads; the model: a tiny model's
    name, a checkpoint folder, or an alias or repo id whose files are cached (or download now: a bad
    repo id or a Hub out of reach is said at once).
    """
    # deferred: none of these loads torch or transformers; `fastvid --help` imports none of the library
    from ..budget import check_retention
    from ..models import resolve_model
    from ..models.tiny_names import TINY_MODELS
    from ..video import probe_video

    with user_input():
        for r in retentions or []:
            if r is not None:
                check_retention(r)
    if video is not None:
        probe_video(video)
    if model is not None and model not in TINY_MODELS:
        if status is not None:
            status.update(f"finding {model}...")
        resolve_model(model)


def read_then_load(status, video: Path, model: str, device, dtype: DType, attn: Attention, layout: Layout, settings):
    """Read the video first where the model's frame sampling is known without loading it, so bad
    input fails before a model loads; then load the model (else the other way round)."""
    # deferred: `fastvid --help` imports none of the library (see the module docstring)
    from ..models import planned_settings
    from ..video import read_video

    planned = planned_settings(model, settings, layout.value)
    sampled = read_video(video, planned.sampling, decode=False) if planned else None  # frames: streamed later
    status.update(f"loading {model}...")
    adapter = load_adapter(model, device, dtype, attn, layout, settings)
    if sampled is None:
        status.update(f"reading {video}...")
        sampled = read_video(video, adapter.settings.sampling, decode=False)
    return sampled, adapter
