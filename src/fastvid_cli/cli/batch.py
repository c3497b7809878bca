"""``fastvid batch``: many videos and questions with one loaded model (the work: :mod:`fastvid_cli.engine.batch`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..output.terminal import err_console, print_notes, print_tables
from .app import (
    DEFAULT_MODEL,
    Attention,
    AttnOpt,
    BetaOpt,
    COpt,
    Device,
    DeviceOpt,
    DOpt,
    DType,
    DTypeOpt,
    FpsOpt,
    FramesOpt,
    Layout,
    LayoutOpt,
    MaxFramesOpt,
    MaxNewTokensOpt,
    MaxSegmentOpt,
    ModelOpt,
    PoolModeOpt,
    POpt,
    RepetitionPenaltyOpt,
    RetentionOpt,
    SplitTauOpt,
    SystemPromptOpt,
    TauOpt,
    ThinkingOpt,
    VideoPixelsOpt,
    app,
    check_early,
    fastvid_overrides,
    run_settings,
)
from .click_types import Command


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
    # deferred: `fastvid --help` imports none of the library (see the docstring of cli/app.py); this loads no torch
    from ..engine.batch import STDOUT, check_output, collect_items, pending, run_job

    settings = run_settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    items = collect_items(paths or [], question, questions, sys.stdin if "-" in (paths or []) else ())
    check_output(output, resume, overwrite)
    work = bool(pending(items, output, resume))  # --resume with nothing left: no model, no torch
    check_early(None, model if work else None, [retention])
    overrides = fastvid_overrides(retention, c, tau, d, p, beta, split_tau, max_segment=max_segment) if work else {}
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
            from ..output.report import batch_table

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
