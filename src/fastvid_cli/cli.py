"""The ``fastvid`` command line: parses options, calls the library, prints.

The answer (or ``--json``) goes to stdout; tables, notes, progress and errors go to stderr.
Exit status: 0 success, 1 runtime failure, 2 bad usage or input.
"""

from __future__ import annotations

import json
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import FastVIDError, InputError

app = typer.Typer(
    name="fastvid",
    help="Ask Video LLMs about videos, several times cheaper with FastVID token pruning (NeurIPS 2025).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True, highlight=False)


class Device(str, Enum):
    auto = "auto"
    cuda = "cuda"
    cpu = "cpu"


class DType(str, Enum):
    auto = "auto"
    bfloat16 = "bfloat16"
    float16 = "float16"
    float32 = "float32"


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
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Ask Video LLMs about videos, several times cheaper with FastVID token pruning (NeurIPS 2025)."""


def _quiet_libraries() -> None:
    """Keep library chatter off a non-terminal stderr (progress bars, load reports)."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    if not sys.stderr.isatty():
        transformers.utils.logging.disable_progress_bar()


@app.command(no_args_is_help=True)
def ask(
    video: Annotated[Path, typer.Argument(help="Video file (anything FFmpeg/decord reads: mp4, mkv, webm, avi...).")],
    question: Annotated[str, typer.Argument(help="Question about the video.")],
    model: Annotated[
        str,
        typer.Option(help="Hub repo id, alias (llava-ov-0.5b/7b/72b), local checkpoint folder, or tiny-random (offline, noise)."),
    ] = "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    frames: Annotated[int, typer.Option(help="Frames sampled uniformly from the video.", min=1)] = 32,
    retention: Annotated[float, typer.Option("--retention", "-r", help="Retention ratio R in (0, 1]: share of video tokens kept.")] = 0.1,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.", min=1)] = 128,
    device: Annotated[Device, typer.Option(help="Where to run: auto (GPU if there is one), cuda, cpu.")] = Device.auto,
    dtype: Annotated[DType, typer.Option(help="Weights dtype: auto = bfloat16 on GPU, float32 on CPU.")] = DType.auto,
    attn_implementation: Annotated[
        Attention, typer.Option(help="LLM attention kernel; flash_attention_2 needs the flash-attn package.")
    ] = Attention.sdpa,
    c: Annotated[int, typer.Option("--c", help="DySeg: segments aimed for (the c-1 weakest transitions are cut).")] = 8,
    tau: Annotated[float, typer.Option("--tau", help="DySeg: cut wherever consecutive frames' similarity < tau.")] = 0.9,
    d: Annotated[float, typer.Option("--d", help="Share of each frame's budget for DTM anchors (0 = ATS only, 1 = DTM only).")] = 0.4,
    p: Annotated[int, typer.Option("--p", help="DTM: anchor frames every p-th frame from a segment's end.")] = 4,
    beta: Annotated[float, typer.Option("--beta", help="DTM: least weight an anchor keeps of itself when merged.")] = 0.6,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also time the vanilla prefill for the speedup.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of the answer and tables.")] = False,
) -> None:
    """Answer QUESTION about VIDEO with FastVID-pruned video tokens.

    The answer goes to stdout; tables of token counts, prefill FLOPs, measured prefill speedup, time breakdown and DySeg segments go to stderr.
    """
    from .models import load_model
    from .pipeline import AskOptions
    from .pipeline import ask as run_ask
    from .pruning import FastVIDConfig
    from .report import render_ask
    from .video import read_video

    try:
        config = FastVIDConfig(retention_ratio=retention, c=c, tau=tau, d=d, p=p, beta=beta)
    except ValueError as err:
        raise InputError(str(err)) from None
    options = AskOptions(frames=frames, config=config, max_new_tokens=max_new_tokens, baseline=baseline)
    if not question.strip():
        raise InputError("the question is empty")
    _quiet_libraries()
    with err_console.status(f"reading {video}...") as status:
        sampled = read_video(video, frames)  # bad input fails here, before a model is loaded
        status.update(f"loading {model}...")
        adapter = load_model(model, device=device.value, dtype=dtype.value, attn_implementation=attn_implementation.value)
        result = run_ask(adapter, sampled, question, options, on_stage=lambda s: status.update(f"{s}..."))
    if as_json:
        print(json.dumps(result.to_dict()))
    else:
        print(result.answer, flush=True)
        render_ask(result, err_console)
    for note in result.notes:
        err_console.print(f"note: {note}", style="yellow")


@app.command("tiny-model", no_args_is_help=True)
def tiny_model(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint to.")],
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write the tiny random-weight LLaVA-OneVision checkpoint (offline) to OUT_DIR.

    It has the real architecture and token geometry (384 px, 27x27 patches, 196 tokens per frame, newline, SigLIP head) and loads with --model OUT_DIR. Its answers are noise.
    """
    from .tiny import build_llava_onevision

    if out_dir.exists() and any(out_dir.iterdir()):
        raise InputError(f"{out_dir} exists and is not empty")
    _quiet_libraries()
    build_llava_onevision(out_dir, seed=seed)
    err_console.print(f"wrote tiny random LLaVA-OneVision to {out_dir}; use it with --model {out_dir}")


def _fail(message: str, code: int) -> int:
    err_console.print(f"fastvid: error: {message}", style="red", soft_wrap=True)
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and an exit status (never a traceback)."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="fastvid", standalone_mode=False)
    except FastVIDError as err:
        return _fail(str(err), err.exit_code)
    except typer.Exit as done:
        return done.exit_code
    except typer.TyperException as err:  # usage errors: bad option values, unknown options, missing arguments
        if type(err).__name__ == "NoArgsIsHelpError":
            err.show()
            return 0
        return _fail(" ".join(err.format_message().split()), err.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", 130)
    except MemoryError:
        return _fail("out of memory: try fewer --frames, a lower --retention or a smaller model", 1)
    except Exception as err:  # a bug or a library failure: still one line, traceback on request
        if os.environ.get("FASTVID_DEBUG"):
            raise
        first = (str(err).strip().splitlines() or [""])[0][:300]
        return _fail(f"{type(err).__name__}: {first} (set FASTVID_DEBUG=1 for the traceback)", 1)
    return 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
