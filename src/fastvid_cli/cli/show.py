"""``fastvid show``: a picture of what FastVID kept (drawn by :mod:`fastvid_cli.output.show`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..output.terminal import err_console, print_notes
from .app import (
    DEFAULT_MODEL,
    Attention,
    BetaOpt,
    COpt,
    Device,
    DeviceOpt,
    DOpt,
    DType,
    DTypeOpt,
    Layout,
    LayoutOpt,
    MaxSegmentOpt,
    ModelOpt,
    PoolModeOpt,
    POpt,
    RetentionOpt,
    SplitTauOpt,
    TauOpt,
    VideoPixelsOpt,
    app,
    check_early,
    fastvid_overrides,
    read_then_load,
    run_settings,
)
from .click_types import Command


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
        settings = run_settings(frames, video_pixels=video_pixels, pool_mode=pool_mode)
        check_early(video, model, [retention], status)
        status.update(f"loading {model}...")
        # deferred: torch and transformers load only once the input is known to be good
        from ..output.show import show as draw
        from ..pruning import method_for_family

        overrides = fastvid_overrides(retention, c, tau, d, p, beta, split_tau, max_segment=max_segment)
        sampled, adapter = read_then_load(status, video, model, device, dtype, Attention.sdpa, layout, settings)
        config = method_for_family(adapter.fastvid_defaults, overrides)
        status.update("encoding and pruning...")
        path, kept = draw(adapter, sampled, out, config, width=width, columns=columns)
    err_console.print(
        f"wrote {path}: {int(kept.indices.numel()):,} tokens kept, {len(kept.segment_lengths)} segments", soft_wrap=True
    )
    if sampled.short_note:
        print_notes([sampled.short_note])
