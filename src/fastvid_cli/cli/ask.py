"""``fastvid ask`` and ``fastvid compare``: questions about one video, pruned one way or several side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..output.terminal import err_console, print_answer, print_json, print_notes, print_tables
from .app import (
    DEFAULT_MODEL,
    Attention,
    AttnOpt,
    BetaOpt,
    CompareMaxNewTokensOpt,
    COpt,
    Device,
    DeviceOpt,
    DOpt,
    DType,
    DTypeOpt,
    FpsOpt,
    FramesOpt,
    JsonOpt,
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
    SegmentationOpt,
    SplitTauOpt,
    SystemPromptOpt,
    TauOpt,
    ThinkingOpt,
    VideoPixelsOpt,
    VisionBatchOpt,
    app,
    check_early,
    fastvid_overrides,
    read_then_load,
    run_settings,
    user_input,
)
from .click_types import Command, MultiValueCommand


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
    settings = run_settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    with err_console.status(f"reading {video}...") as status:
        check_early(video, model, [retention], status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from ..engine.pipeline import AskOptions, ask_many
        from ..output.report import ask_tables, render_questions
        from ..pruning import method_for_family

        overrides = fastvid_overrides(retention, c, tau, d, p, beta, split_tau, segmentation, max_segment)
        sampled, adapter = read_then_load(status, video, model, device, dtype, attn_implementation, layout, settings)
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
    settings = run_settings(frames, fps, max_frames, system_prompt, video_pixels, pool_mode, repetition_penalty, thinking)
    with err_console.status(f"reading {video}...") as status:
        check_early(video, model, list(retentions), status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from ..engine.compare import compare as run_compare
        from ..output.report import compare_table
        from ..pruning import make_method

        overrides = fastvid_overrides(None, c, tau, d, p, beta, split_tau, max_segment=max_segment)
        with user_input():  # validate before the model loads
            for spec in methods:
                for r in retentions:
                    make_method(spec, r, **overrides)
        sampled, adapter = read_then_load(status, video, model, device, dtype, attn_implementation, layout, settings)
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
