"""The tables of every command (``ask``, ``compare``, ``flops``, ``bench``, ``batch``), for stderr.

Each is a :class:`fastvid_cli.output.terminal.FitTable` built from a typed result; its numbers are formatted
by :mod:`fastvid_cli.output.terminal`'s ``fmt_*`` helpers and never cut, at any terminal width.
"""

from __future__ import annotations

from statistics import median

from rich.console import Group
from rich.text import Text

from ..bench.results import BenchResult, SweepResult, TTFTRow
from ..engine.batch import BatchSummary
from ..engine.compare import CompareResult
from ..engine.pipeline import STAGES, AskResult
from ..flops import CAUSAL_2MAC, PARTS, TABLE5, FlopsRow, FlopsSplit, FlopsSplitRow, LLMGeometry
from .terminal import (
    FitTable,
    fmt_count,
    fmt_mib,
    fmt_ms,
    fmt_percent,
    fmt_rate,
    fmt_retention,
    fmt_speedup,
    fmt_tflops,
)

STAGE_LABELS = {
    "decode": "decode (decord)",
    "preprocess": "preprocessing",
    "vision": "vision encoder",
    "pruning": "FastVID pruning",
    "prefill": "LLM prefill (pruned)",
    "generation": "generation",
}


def token_table(result: AskResult) -> FitTable:
    """Video tokens and whole-prompt tokens, before and after pruning."""
    t = result.tokens
    table = FitTable(title="Tokens")
    table.add_column("", "label")
    for name in ("before", "after", "kept"):
        table.add_column(name)
    if t.grid_thw:
        grid_t, grid_h, grid_w = t.grid_thw
        label = f"video tokens (patch grid t,h,w = {grid_t},{grid_h},{grid_w}: {grid_t} x {t.grid[0]}x{t.grid[1]} merged)"
    else:
        label = f"video tokens ({fmt_count(result.frames)} frames x {t.tokens_per_frame})"
    table.add_row(label, fmt_count(t.video_before), fmt_count(t.video_after), fmt_percent(t.video_after / t.video_before))
    table.add_row(
        "whole prompt (LLM input)",
        fmt_count(t.prompt_before),
        fmt_count(t.prompt_after),
        fmt_percent(t.prompt_after / t.prompt_before),
    )
    if t.newline_before:
        table.add_row(
            "video newline slots",
            fmt_count(t.newline_before),
            fmt_count(t.newline_after),
            fmt_percent(t.newline_after / t.newline_before),
        )
    if t.prefill_tokens != t.prompt_after:
        table.caption = f"this question prefilled {fmt_count(t.prefill_tokens)} tokens: the video's KV cache was reused"
    return table


def flops_table(result: AskResult) -> FitTable:
    """LLM prefill TFLOPs before and after, in both conventions."""
    f = result.flops
    table = FitTable(title="LLM prefill FLOPs (analytic, from the model config)")
    table.add_column("convention", "label")
    for name in ("before (TFLOPs)", "after (TFLOPs)", "after/before"):
        table.add_column(name)
    labels = {TABLE5: "FastVID Table 5: MACs, video tokens only", CAUSAL_2MAC: "2 x MACs, whole prompt, causal"}
    for key in (TABLE5, CAUSAL_2MAC):
        row = f.convention(key)
        table.add_row(labels[key], fmt_tflops(row.before), fmt_tflops(row.after), fmt_percent(row.ratio))
    table.caption = saving_by_layer_type(f.split, f.geometry)
    return table


PART_LABELS = {"full_attention": "full attention", "linear_attention": "Gated DeltaNet", "mlp": "MLP / MoE", "lm_head": "LM head"}


def split_parts(geometry: LLMGeometry) -> list[str]:
    """The layer types a table shows: :data:`fastvid_cli.flops.PARTS`, less linear attention for a model without it."""
    return [p for p in PARTS if p != "linear_attention" or geometry.linear_layers]


def saving_by_layer_type(split: FlopsSplit, geometry: LLMGeometry) -> str:
    """One line: each layer type's share of the saving, in both conventions (the LM head, one position, saves nothing)."""

    def shares(key: str) -> str:
        parts = split.convention(key).parts()
        return ", ".join(
            f"{PART_LABELS[p]} {fmt_percent(parts[p].share_of_saving, 0)}" for p in split_parts(geometry) if p != "lm_head"
        )

    return f"Saving by layer type: Table 5: {shares(TABLE5)}; causal: {shares(CAUSAL_2MAC)}"


def speed_table(result: AskResult) -> FitTable:
    """Measured prefill time, vanilla vs pruned."""
    t = result.timing
    table = FitTable(title=f"Measured prefill ({result.model.device}, {result.model.dtype})", keys=0)
    for name in ("vanilla (ms)", "FastVID (ms)", "speedup"):
        table.add_column(name)
    table.add_row(fmt_ms(t.prefill_vanilla_ms), fmt_ms(t.prefill_ms), fmt_speedup(t.prefill_speedup))
    if t.prefill_vanilla_ms is None:
        table.caption = "vanilla prefill not run (--no-baseline, or a further question)"
    else:
        table.caption = "the vanilla prefill ran only to measure the speedup (--no-baseline skips it)"
    return table


def timing_table(result: AskResult) -> FitTable:
    """Where the time went, per stage (the vanilla baseline excluded), and the measured TTFT."""
    t = result.timing
    table = FitTable(title="Time breakdown")
    table.add_column("stage", "label")
    table.add_column("ms")
    for stage in STAGES:
        table.add_row(STAGE_LABELS[stage], fmt_ms(getattr(t, f"{stage}_ms")))
    table.add_row("time to first token (measured)", fmt_ms(t.ttft_ms), style="bold")
    return table


def segment_table(result: AskResult) -> FitTable:
    """DySeg segments as frame ranges."""
    table = FitTable(title=f"DySeg segments ({len(result.segments)})")
    for name in ("segment", "frames", "length"):
        table.add_column(name)
    start = 0
    for i, length in enumerate(result.segments):
        table.add_row(str(i + 1), f"{start}-{start + length - 1}", fmt_count(length))
        start += length
    return table


def render_questions(results: list[AskResult]) -> FitTable:
    """Several questions on one video: what each one prefilled and waited for."""
    table = FitTable(title=f"Questions on one video ({len(results)}): video decoded, encoded, pruned and prefilled once")
    for name in ("#", "prefill tokens", "prefill ms", "TTFT ms", "generation ms"):
        table.add_column(name)
    table.add_column("question", "text")
    for k, r in enumerate(results, 1):
        table.add_row(
            str(k),
            fmt_count(r.tokens.prefill_tokens),
            fmt_ms(r.timing.prefill_ms),
            fmt_ms(r.timing.ttft_ms),
            fmt_ms(r.timing.generation_ms),
            r.question,
        )
    table.caption = "question 1's TTFT counts from opening the file; a further question's from its own start"
    return table


def settings_line(settings, frames: int, total_frames: int | None = None) -> Text:
    """The ``Settings:`` line above a run's tables: how the model ran, with the frames it used."""
    return Text(f"Settings: {settings.describe(frames, total_frames)}", style="dim")


def ask_tables(result: AskResult) -> Group:
    """The Settings line and every table of an ``ask`` result."""
    return Group(
        settings_line(result.settings, result.frames, result.video.total_frames),
        token_table(result),
        flops_table(result),
        speed_table(result),
        timing_table(result),
        segment_table(result),
    )


def compare_table(result: CompareResult) -> Group:
    """The Settings line, then one row per (method, retention), vanilla first; answers that differ
    from vanilla's are marked (each answer is cut to the table's width: whole on stdout and in --json)."""
    title = f"{result.model.id} on {result.video.path} ({fmt_count(result.frames)} frames, {result.model.device})"
    table = FitTable(title=title, keys=2)
    table.add_column("method", "label")
    for name in ("R", "tokens", "TFLOPs", "ratio", "prune ms", "prefill ms", "speedup"):
        table.add_column(name)
    table.add_column("answer", "text")
    for row in result.rows:
        mark = "" if row.same_as_vanilla or row.method == "vanilla" else "\u2260 "
        table.add_row(
            row.method + (" *" if row.note else ""),
            fmt_retention(row.retention),
            fmt_count(row.video_tokens),
            fmt_tflops(row.tflops),
            fmt_percent(row.tflops_ratio),
            fmt_ms(row.pruning_ms) if row.method != "vanilla" else "-",
            fmt_ms(row.prefill_ms),
            fmt_speedup(row.speedup),
            mark + " ".join(row.answer.split()),
        )
    table.caption = (
        "TFLOPs: FastVID Table 5 convention (MACs of the LLM on the video tokens). "
        "\u2260: answer differs from vanilla's. *: the method could not keep the budget asked (see note). "
        "Whole answers: stdout."
    )
    return Group(settings_line(result.settings, result.frames, result.video.total_frames), table)


def flops_rows_table(geometry, frames: int, rows: list[FlopsRow]) -> FitTable:
    """The ``fastvid flops`` table: one row per retention ratio, vanilla first."""
    llm = geometry.llm
    token_frames = geometry.token_frames(frames)
    shape = f"{fmt_count(frames)} frames x {geometry.tokens_per_frame} tokens"
    if geometry.frames_per_group > 1:
        shape = (
            f"{fmt_count(frames)} frames = {fmt_count(token_frames)} groups of {geometry.frames_per_group} x "
            f"{geometry.tokens_per_frame} tokens (448 x 448 px)"
        )
    elif geometry.newlines_per_frame:
        shape += f" (+ {geometry.newlines_per_frame} row newlines per frame)"
    table = FitTable(title=f"{geometry.name}: LLM prefill FLOPs, {shape}")
    for name in (
        "R",
        "video tokens",
        "Table 5 TFLOPs\n(MACs, video tokens)",
        "% of vanilla",
        "2 x MACs TFLOPs\n(causal, video slots)",
        "% of vanilla",
    ):
        table.add_column(name)
    for row in rows:
        table.add_row(
            "vanilla" if row.retention == 1.0 and row is rows[0] else fmt_retention(row.retention),
            fmt_count(row.video_tokens),
            fmt_tflops(row.table5),
            fmt_percent(row.table5_ratio),
            fmt_tflops(row.causal_2mac),
            fmt_percent(row.causal_2mac_ratio),
        )
    table.caption = (
        f"LLM: {llm.describe()}. Table 5: per layer 2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm for Qwen2 (FastVID, "
        "arXiv 2503.11187), each projection from its real shape otherwise (see fastvid_cli.flops). "
        "Kept tokens: F * max(1, floor(N * R))."
    )
    return table


def flops_split_table(geometry, rows: list[FlopsSplitRow]) -> FitTable:
    """The ``fastvid flops`` split: per retention ratio and convention, TFLOPs of each layer type and its share."""
    parts = split_parts(geometry.llm)
    table = FitTable(title=f"{geometry.name}: prefill FLOPs by layer type", keys=2)
    table.add_column("R")
    table.add_column("convention", "label")
    for part in parts:
        table.add_column(f"{PART_LABELS[part]}\nTFLOPs (share)")
    for row in rows:
        vanilla = row.retention == 1.0 and row is rows[0]
        for key, label in ((TABLE5, "Table 5"), (CAUSAL_2MAC, "2 x MACs, causal")):
            counts = row.split.convention(key).parts()
            cells = []
            for part in parts:
                c = counts[part]
                if key == TABLE5 and part == "lm_head":
                    cells.append("-")
                    continue
                value = c.before if vanilla else c.after
                share = c.share_before if vanilla else c.share_of_saving
                cells.append(f"{fmt_tflops(value)} ({fmt_percent(share, 0)})")
            first = key == TABLE5
            ratio = "vanilla" if vanilla else fmt_retention(row.retention)
            table.add_row(ratio if first else "", label, *cells, end_section=not first)
    table.caption = (
        "share: of vanilla's FLOPs on the vanilla rows, of the saving against vanilla on the others. "
        "MLP / MoE: every layer's MLP, or its router, active experts and shared expert. "
        + (
            "Gated DeltaNet: projections, conv1d and the chunked delta rule (chunks of 64), linear in n."
            if geometry.llm.linear_layers
            else "No linear-attention layers."
        )
    )
    return table


def sweep_tables(result: SweepResult) -> list[FitTable]:
    """Tables of a ``fastvid bench --frames F1 F2 ...`` result: pruning time and memory per frame count."""
    env, settings = result.environment, result.settings
    rows = result.sweep
    width = f"N = {rows[0].timing.shape[1]}, D = {rows[0].timing.shape[2]}" if rows else ""
    table = FitTable(title=f"Pruning time by frame count ({env.device}, {env.dtype}; {width}; {settings.inputs})", keys=2)
    for name in ("frames", "method", "R", "kept", "segments (longest)", "median ms", "ms per frame", "peak MiB", "before MiB"):
        table.add_column(name, "label" if name == "method" else "number")
    for row in rows:
        t = row.timing
        table.add_row(
            fmt_count(row.frames),
            t.method,
            fmt_retention(t.retention),
            fmt_count(t.tokens_kept),
            f"{fmt_count(t.segments)} ({fmt_count(t.longest_segment)})",
            fmt_ms(t.median_ms),
            fmt_ms(t.median_ms / row.frames),
            fmt_mib(t.peak_mib),
            fmt_mib(t.baseline_mib),
        )
    table.caption = "peak MiB: " + settings.peak_memory + "; before MiB: memory in use before the method ran"
    tables = [table]
    target = result.targets.checks.get("fastvid_time_linear_in_frames")
    if target:
        targets = FitTable(title="Target (from this run)")
        targets.add_column("target", "label")
        for name in ("value", "goal", "met"):
            targets.add_column(name)
        targets.add_row(
            "fastvid time, most / fewest frames",
            fmt_speedup(target.value),
            f"<= {target.target:g}x",
            "yes" if target.met else "NO",
        )
        tables.append(targets)
    return tables


TARGET_FORMATS = {
    "fastvid_pruning_share_of_pruned_prefill": (lambda v: fmt_percent(v, 2), "<= {:.0%}"),
    "fastvid_pruning_ms": (lambda v: f"{fmt_ms(v)} ms", "< {:g} ms"),
    "prefill_speedup_at_0.1": (fmt_speedup, ">= {:g}x"),
    "further_question_share": (lambda v: fmt_percent(v, 2), "<= {:.0%}"),
}
"""How ``bench``'s targets table writes each target's value and goal."""


def bench_tables(result: BenchResult) -> list[FitTable]:
    """Tables of a ``fastvid bench`` result: pruning, prefill, targets, and TTFT when measured."""
    env, settings = result.environment, result.settings
    where = f"{env.device}, {env.dtype}"
    pruning = FitTable(
        title=f"Pruning time ({where}; tokens {' x '.join(map(str, result.pruning[0].shape))})" if result.pruning else "Pruning",
        keys=2,
    )
    for name in ("method", "R", "kept", "median ms", "peak MiB"):
        pruning.add_column(name, "label" if name == "method" else "number")
    for timing in result.pruning:
        pruning.add_row(
            timing.method,
            fmt_retention(timing.retention),
            fmt_count(timing.tokens_kept),
            fmt_ms(timing.median_ms),
            fmt_mib(timing.peak_mib),
        )
    layers = f"{settings.layers_run} of {settings.layers_full} layers"
    prefill = FitTable(title=f"LLM prefill, {settings.model} geometry, random weights, {layers} ({where})")
    for name in (
        "",
        "prompt tokens",
        f"measured ms ({settings.layers_run} layers)",
        f"scaled to {settings.layers_full} layers",
        "speedup",
        "TFLOPs (all layers)",
        "attention / DeltaNet / MLP",
        "peak MiB",
    ):
        prefill.add_column(name)
    for step in result.prefill:
        split = step.tflops_by_layer_type
        shares = (
            " / ".join(fmt_percent(split[k] / step.tflops, 0) for k in ("full_attention", "linear_attention", "mlp"))
            if step.tflops
            else "-"
        )
        prefill.add_row(
            "vanilla" if step is result.prefill[0] else f"R = {fmt_retention(step.retention)}",
            fmt_count(step.prompt_tokens),
            fmt_ms(step.median_ms),
            fmt_ms(step.full_model_ms),
            fmt_speedup(step.speedup),
            fmt_tflops(step.tflops),
            shares,
            fmt_mib(step.peak_mib),
        )
    if settings.prefill_scaled_by != 1:
        prefill.caption = f"scaled = measured x {settings.prefill_scaled_by:g} (layer count); embeddings and LM head not included"
    tables = [pruning, prefill]
    targets = FitTable(title="Targets (from this run)", caption=result.targets.note)
    targets.add_column("target", "label")
    for name in ("value", "goal", "met"):
        targets.add_column(name)
    for key, t in result.targets.checks.items():
        value_fmt, goal_fmt = TARGET_FORMATS[key]
        targets.add_row(key.replace("_", " "), value_fmt(t.value), goal_fmt.format(t.target), "yes" if t.met else "NO")
    tables.append(targets)
    if result.questions:
        qt = FitTable(
            title=f"Questions on one video ({settings.questions} per video): the first question's TTFT vs a further "
            "question's prefill, scaled to all layers",
        )
        for name in (
            "",
            "prefix tokens",
            "vision ms",
            "pruning ms",
            "first prefill ms",
            "first TTFT ms",
            "further question ms",
            "further / first TTFT",
        ):
            qt.add_column(name)
        for q in result.questions:
            qt.add_row(
                "vanilla" if q.retention == 1.0 else f"R = {fmt_retention(q.retention)}",
                fmt_count(q.prefix_tokens),
                fmt_ms(q.vision_ms),
                fmt_ms(q.pruning_ms),
                fmt_ms(q.first_ms),
                fmt_ms(q.first_ttft_ms),
                fmt_ms(q.further_ms),
                fmt_percent(q.further_share),
            )
        qt.caption = (
            "first TTFT = vision + pruning + prefill (no file decoded); the vision encoder is SigLIP-so400m, random weights"
        )
        tables.append(qt)
    if result.ttft is not None:
        ttft = FitTable(title=f"Time to first token on {result.ttft.video} ({result.ttft.model})")
        columns = [*TTFTRow.STAGES, "ttft", "further_ttft"]
        ttft.add_column("")
        for name in columns:
            ttft.add_column(name.replace("ttft", "TTFT") + " ms")
        for ttft_row in result.ttft.rows:
            ttft.add_row(
                "vanilla" if ttft_row.retention == 1.0 else f"R = {fmt_retention(ttft_row.retention)}",
                *(fmt_ms(getattr(ttft_row, f"{name}_ms")) for name in columns),
            )
        tables.append(ttft)
    return tables


def batch_table(summary: BatchSummary) -> FitTable:
    """The ``fastvid batch`` summary: items answered, failed and skipped, throughput, and over the
    answered items the video tokens kept and the median prefill and time to first token."""
    table = FitTable(title=f"Batch -> {'stdout' if summary.output == '-' else summary.output}", show_header=False)
    table.add_column("", "label")
    table.add_column("")
    table.add_row("answered", fmt_count(summary.answered))
    table.add_row("failed", fmt_count(summary.failed))
    table.add_row("skipped (already in the output)", fmt_count(summary.skipped))
    table.add_row("videos per second", fmt_rate(summary.videos_per_second))
    if summary.answered:
        before, after = summary.video_tokens_before, summary.video_tokens_after
        table.add_row("video tokens before pruning", fmt_count(before))
        table.add_row("video tokens after pruning", fmt_count(after))
        table.add_row("kept", fmt_percent(after / before if before else 0.0))
        table.add_row("LLM prefill, median ms", fmt_ms(median(summary.prefill_ms)))
        table.add_row("time to first token, median ms", fmt_ms(median(summary.ttft_ms)))
    parts = ([f"{summary.processes} processes"] if summary.processes > 1 else []) + (
        ["interrupted: rerun with --resume"] if summary.interrupted else []
    )
    table.caption = "; ".join(parts) or None
    return table
