"""``fastvid flops`` and ``fastvid bench``: the analytic prefill FLOPs, and the measured times and memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..output.terminal import err_console, print_json, print_notes, print_tables
from .app import (
    DEFAULT_MODEL,
    Attention,
    Device,
    DeviceOpt,
    DType,
    DTypeOpt,
    ModelOpt,
    app,
    check_early,
    load_adapter,
    run_settings,
    user_input,
)
from .click_types import MultiValueCommand


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
    # deferred: `fastvid --help` imports none of the library (see the docstring of cli/app.py); these load no torch
    from ..flops import CONVENTIONS, flops_rows, flops_split_rows
    from ..models.geometry import model_geometry, video_geometry
    from ..models.registry import paper_settings
    from ..video import probe_video

    retentions = retention or [0.25, 0.2, 0.15, 0.1]
    check_early(retentions=list(retentions))
    info = probe_video(video) if video is not None else None
    geometry = model_geometry(model)  # a bad name or folder is said before the model's adapter loads torch
    if info is not None:
        with user_input():
            settings = paper_settings(geometry.family).with_overrides(run_settings(frames))
        geometry, frames = video_geometry(geometry, info, settings)
    # deferred: the tables' module loads torch (through the pipeline's result types)
    from ..output.report import flops_rows_table, flops_split_table

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
    # deferred: `fastvid --help` imports none of the library (see the docstring of cli/app.py); this loads no torch
    from ..models.geometry import model_geometry

    check_early(video, model if video is not None else None, list(retentions))
    geometry = model_geometry(model)  # a bad name or folder is said before the model's adapter loads torch
    # deferred: torch and transformers load only once the input is known to be good
    from ..bench.device import device_slug
    from ..bench.results import BenchResult, SweepResult, VideoTTFT
    from ..bench.runner import BenchSettings, layers_run, run_bench, run_pruning_sweep, ttft_on_video
    from ..models import resolve_device, resolve_dtype
    from ..output.report import bench_tables, sweep_tables

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
                adapter = load_adapter(model, device, dtype, Attention.sdpa)
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
