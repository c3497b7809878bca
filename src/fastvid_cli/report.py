"""Rich tables of an ``ask`` result, for stderr."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .bench_results import BenchResult, SweepResult, TTFTRow
from .compare import CompareResult
from .flops import CAUSAL_2MAC, PARTS, TABLE5, FlopsRow, FlopsSplit, FlopsSplitRow, LLMGeometry
from .pipeline import STAGES, AskResult

STAGE_LABELS = {
    "decode": "decode (decord)",
    "preprocess": "preprocessing",
    "vision": "vision encoder",
    "pruning": "FastVID pruning",
    "prefill": "LLM prefill (pruned)",
    "generation": "generation",
}


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def token_table(result: AskResult) -> Table:
    """Video tokens and whole-prompt tokens, before and after pruning."""
    t = result.tokens
    table = Table(title="Tokens", title_justify="left")
    table.add_column("")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("kept", justify="right")
    if t.grid_thw:
        grid_t, grid_h, grid_w = t.grid_thw
        label = f"video tokens (patch grid t,h,w = {grid_t},{grid_h},{grid_w}: {grid_t} x {t.grid[0]}x{t.grid[1]} merged)"
    else:
        label = f"video tokens ({result.frames} frames x {t.tokens_per_frame})"
    table.add_row(label, f"{t.video_before:,}", f"{t.video_after:,}", f"{t.video_after / t.video_before:.1%}")
    table.add_row(
        "whole prompt (LLM input)", f"{t.prompt_before:,}", f"{t.prompt_after:,}", f"{t.prompt_after / t.prompt_before:.1%}"
    )
    if t.newline_before:
        table.add_row(
            "video newline slots", f"{t.newline_before:,}", f"{t.newline_after:,}", f"{t.newline_after / t.newline_before:.1%}"
        )
    if t.prefill_tokens != t.prompt_after:
        table.caption = f"this question prefilled {t.prefill_tokens:,} tokens: the video's KV cache was reused"
    return table


def flops_table(result: AskResult) -> Table:
    """LLM prefill TFLOPs before and after, in both conventions."""
    f = result.flops
    table = Table(title="LLM prefill FLOPs (analytic, from the model config)", title_justify="left")
    table.add_column("convention")
    table.add_column("before (TFLOPs)", justify="right")
    table.add_column("after (TFLOPs)", justify="right")
    table.add_column("after/before", justify="right")
    labels = {TABLE5: "FastVID Table 5: MACs, video tokens only", CAUSAL_2MAC: "2 x MACs, whole prompt, causal"}
    for key in (TABLE5, CAUSAL_2MAC):
        row = f.convention(key)
        table.add_row(labels[key], format_tflops(row.before), format_tflops(row.after), f"{row.ratio:.1%}")
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
        return ", ".join(f"{PART_LABELS[p]} {parts[p].share_of_saving:.0%}" for p in split_parts(geometry) if p != "lm_head")

    return f"Saving by layer type: Table 5: {shares(TABLE5)}; causal: {shares(CAUSAL_2MAC)}"


def speed_table(result: AskResult) -> Table:
    """Measured prefill time, vanilla vs pruned."""
    t = result.timing
    table = Table(title=f"Measured prefill ({result.model.device}, {result.model.dtype})", title_justify="left")
    table.add_column("vanilla (ms)", justify="right")
    table.add_column("FastVID (ms)", justify="right")
    table.add_column("speedup", justify="right")
    speedup = "-" if t.prefill_speedup is None else f"{t.prefill_speedup:.2f}x"
    table.add_row(_fmt_ms(t.prefill_vanilla_ms), _fmt_ms(t.prefill_ms), speedup)
    if t.prefill_vanilla_ms is None:
        table.caption = "vanilla prefill not run (--no-baseline, or a further question)"
    else:
        table.caption = "the vanilla prefill ran only to measure the speedup (--no-baseline skips it)"
    return table


def timing_table(result: AskResult) -> Table:
    """Where the time went, per stage (the vanilla baseline excluded), and the measured TTFT."""
    t = result.timing
    table = Table(title="Time breakdown", title_justify="left")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for stage in STAGES:
        table.add_row(STAGE_LABELS[stage], _fmt_ms(getattr(t, f"{stage}_ms")))
    table.add_row("time to first token (measured)", _fmt_ms(t.ttft_ms), style="bold")
    return table


def segment_table(result: AskResult) -> Table:
    """DySeg segments as frame ranges."""
    table = Table(title=f"DySeg segments ({len(result.segments)})", title_justify="left")
    table.add_column("segment", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("length", justify="right")
    start = 0
    for i, length in enumerate(result.segments):
        table.add_row(str(i + 1), f"{start}-{start + length - 1}", str(length))
        start += length
    return table


def render_questions(results: list[AskResult]) -> Table:
    """Several questions on one video: what each one prefilled and waited for."""
    table = Table(
        title=f"Questions on one video ({len(results)}): video decoded, encoded, pruned and prefilled once", title_justify="left"
    )
    for name in ("#", "prefill tokens", "prefill ms", "TTFT ms", "generation ms"):
        table.add_column(name, justify="right")
    table.add_column("question", overflow="ellipsis", no_wrap=True, ratio=1, min_width=12)
    for k, r in enumerate(results, 1):
        table.add_row(
            str(k),
            f"{r.tokens.prefill_tokens:,}",
            _fmt_ms(r.timing.prefill_ms),
            _fmt_ms(r.timing.ttft_ms),
            _fmt_ms(r.timing.generation_ms),
            r.question,
        )
    table.caption = "question 1's TTFT counts from opening the file; a further question's from its own start"
    return table


def render_ask(result: AskResult, console: Console) -> None:
    """Print every table of an ``ask`` result to ``console`` (stderr in the CLI)."""
    console.print(
        Group(
            Text(f"Settings: {result.settings.describe()}", style="dim"),
            token_table(result),
            flops_table(result),
            speed_table(result),
            timing_table(result),
            segment_table(result),
        )
    )


def format_tflops(value: float) -> str:
    """TFLOPs with 4 significant digits; tiny models' values in scientific notation."""
    return f"{value:.4g}" if value >= 0.01 else f"{value:.2e}"


def compare_table(result: CompareResult) -> Table:
    """One row per (method, retention), vanilla first; answers that differ from vanilla's are marked."""
    title = (
        f"{result.model.id} on {result.video.path} ({result.frames} frames, {result.model.device}; {result.settings.describe()})"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("method", no_wrap=True)
    for name in ("R", "tokens", "TFLOPs", "ratio", "prune ms", "prefill ms", "speedup"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("answer", no_wrap=True, overflow="ellipsis", ratio=1, min_width=12)
    for row in result.rows:
        mark = "" if row.same_as_vanilla or row.method == "vanilla" else "\u2260 "
        table.add_row(
            row.method + (" *" if row.note else ""),
            f"{row.retention:g}",
            f"{row.video_tokens:,}",
            format_tflops(row.tflops),
            f"{row.tflops_ratio:.1%}",
            f"{row.pruning_ms:.1f}" if row.method != "vanilla" else "-",
            f"{row.prefill_ms:,.1f}",
            f"{row.speedup:.2f}x",
            mark + " ".join(row.answer.split()),
        )
    table.caption = (
        "TFLOPs: FastVID Table 5 convention (MACs of the LLM on the video tokens). "
        "\u2260: answer differs from vanilla's. *: the method could not keep the budget asked (see note)."
    )
    return table


def flops_rows_table(geometry, frames: int, rows: list[FlopsRow]) -> Table:
    """The ``fastvid flops`` table: one row per retention ratio, vanilla first."""
    llm = geometry.llm
    token_frames = geometry.token_frames(frames)
    shape = f"{frames} frames x {geometry.tokens_per_frame} tokens"
    if geometry.frames_per_group > 1:
        shape = f"{frames} frames = {token_frames} groups of {geometry.frames_per_group} x {geometry.tokens_per_frame} tokens (448 x 448 px)"
    elif geometry.newlines_per_frame:
        shape += f" (+ {geometry.newlines_per_frame} row newlines per frame)"
    table = Table(title=f"{geometry.name}: LLM prefill FLOPs, {shape}", title_justify="left")
    table.add_column("R", justify="right")
    table.add_column("video tokens", justify="right")
    table.add_column("Table 5 TFLOPs\n(MACs, video tokens)", justify="right")
    table.add_column("% of vanilla", justify="right")
    table.add_column("2 x MACs TFLOPs\n(causal, video slots)", justify="right")
    table.add_column("% of vanilla", justify="right")
    for row in rows:
        table.add_row(
            "vanilla" if row.retention == 1.0 and row is rows[0] else f"{row.retention:g}",
            f"{row.video_tokens:,}",
            format_tflops(row.table5),
            f"{row.table5_ratio:.1%}",
            format_tflops(row.causal_2mac),
            f"{row.causal_2mac_ratio:.1%}",
        )
    table.caption = (
        f"LLM: {llm.describe()}. Table 5: per layer 2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm for Qwen2 (FastVID, "
        "arXiv 2503.11187), each projection from its real shape otherwise (see fastvid_cli.flops). "
        "Kept tokens: F * max(1, floor(N * R))."
    )
    return table


def flops_split_table(geometry, rows: list[FlopsSplitRow]) -> Table:
    """The ``fastvid flops`` split: per retention ratio and convention, TFLOPs of each layer type and its share."""
    parts = split_parts(geometry.llm)
    table = Table(title=f"{geometry.name}: prefill FLOPs by layer type", title_justify="left")
    table.add_column("R", justify="right")
    table.add_column("convention")
    for part in parts:
        table.add_column(f"{PART_LABELS[part]}\nTFLOPs (share)", justify="right")
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
                cells.append(f"{format_tflops(value)} ({share:.0%})")
            first = key == TABLE5
            table.add_row(("vanilla" if vanilla else f"{row.retention:g}") if first else "", label, *cells, end_section=not first)
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


def sweep_tables(result: SweepResult) -> list[Table]:
    """Tables of a ``fastvid bench --frames F1 F2 ...`` result: pruning time and memory per frame count."""
    env, settings = result.environment, result.settings
    rows = result.sweep
    width = f"N = {rows[0].timing.shape[1]}, D = {rows[0].timing.shape[2]}" if rows else ""
    table = Table(
        title=f"Pruning time by frame count ({env.device}, {env.dtype}; {width}; {settings.inputs})", title_justify="left"
    )
    for name in ("frames", "method", "R", "kept", "segments (longest)", "median ms", "ms per frame", "peak MiB", "before MiB"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for row in rows:
        t = row.timing
        table.add_row(
            f"{row.frames:,}",
            t.method,
            f"{t.retention:g}",
            f"{t.tokens_kept:,}",
            f"{t.segments} ({t.longest_segment})",
            f"{t.median_ms:,.1f}",
            f"{t.median_ms / row.frames:.2f}",
            f"{t.peak_mib:,.0f}",
            "-" if t.baseline_mib is None else f"{t.baseline_mib:,.0f}",
        )
    table.caption = "peak MiB: " + settings.peak_memory + "; before MiB: memory in use before the method ran"
    tables = [table]
    target = result.targets.checks.get("fastvid_time_linear_in_frames")
    if target:
        targets = Table(title="Target (from this run)", title_justify="left")
        for name in ("target", "value", "goal", "met"):
            targets.add_column(name)
        targets.add_row(
            "fastvid time, most / fewest frames", f"{target.value:.1f}x", f"<= {target.target:g}x", "yes" if target.met else "NO"
        )
        tables.append(targets)
    return tables


def bench_tables(result: BenchResult) -> list[Table]:
    """Tables of a ``fastvid bench`` result: pruning, prefill, targets, and TTFT when measured."""
    env, settings = result.environment, result.settings
    where = f"{env.device}, {env.dtype}"
    pruning = Table(
        title=f"Pruning time ({where}; tokens {' x '.join(map(str, result.pruning[0].shape))})" if result.pruning else "Pruning",
        title_justify="left",
    )
    for name in ("method", "R", "kept", "median ms", "peak MiB"):
        pruning.add_column(name, justify="left" if name == "method" else "right")
    for timing in result.pruning:
        pruning.add_row(
            timing.method,
            f"{timing.retention:g}",
            f"{timing.tokens_kept:,}",
            f"{timing.median_ms:.2f}",
            f"{timing.peak_mib:,.0f}",
        )
    layers = f"{settings.layers_run} of {settings.layers_full} layers"
    prefill = Table(title=f"LLM prefill, {settings.model} geometry, random weights, {layers} ({where})", title_justify="left")
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
        prefill.add_column(name, justify="right")
    for step in result.prefill:
        split = step.tflops_by_layer_type
        shares = (
            " / ".join(f"{split[k] / step.tflops:.0%}" for k in ("full_attention", "linear_attention", "mlp"))
            if step.tflops
            else "-"
        )
        prefill.add_row(
            "vanilla" if step is result.prefill[0] else f"R = {step.retention:g}",
            f"{step.prompt_tokens:,}",
            f"{step.median_ms:,.1f}",
            f"{step.full_model_ms:,.1f}",
            f"{step.speedup:.2f}x",
            format_tflops(step.tflops),
            shares,
            f"{step.peak_mib:,.0f}",
        )
    if settings.prefill_scaled_by != 1:
        prefill.caption = f"scaled = measured x {settings.prefill_scaled_by:g} (layer count); embeddings and LM head not included"
    tables = [pruning, prefill]
    targets = Table(title="Targets (from this run)", title_justify="left", caption=result.targets.note)
    for name in ("target", "value", "goal", "met"):
        targets.add_column(name)
    goals = {
        "fastvid_pruning_share_of_pruned_prefill": ("{:.2%}", "<= {:.0%}"),
        "fastvid_pruning_ms": ("{:.2f} ms", "< {:g} ms"),
        "prefill_speedup_at_0.1": ("{:.2f}x", ">= {:g}x"),
        "further_question_share": ("{:.2%}", "<= {:.0%}"),
    }
    for key, t in result.targets.checks.items():
        value_fmt, goal_fmt = goals[key]
        targets.add_row(key.replace("_", " "), value_fmt.format(t.value), goal_fmt.format(t.target), "yes" if t.met else "NO")
    tables.append(targets)
    if result.questions:
        qt = Table(
            title=f"Questions on one video ({settings.questions} per video): the first question's TTFT vs a further "
            "question's prefill, scaled to all layers",
            title_justify="left",
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
            qt.add_column(name, justify="right")
        for q in result.questions:
            qt.add_row(
                "vanilla" if q.retention == 1.0 else f"R = {q.retention:g}",
                f"{q.prefix_tokens:,}",
                _fmt_ms(q.vision_ms) if q.vision_ms is not None else "-",
                _fmt_ms(q.pruning_ms),
                _fmt_ms(q.first_ms),
                _fmt_ms(q.first_ttft_ms),
                _fmt_ms(q.further_ms),
                f"{q.further_share:.1%}",
            )
        qt.caption = (
            "first TTFT = vision + pruning + prefill (no file decoded); the vision encoder is SigLIP-so400m, random weights"
        )
        tables.append(qt)
    if result.ttft is not None:
        ttft = Table(title=f"Time to first token on {result.ttft.video} ({result.ttft.model})", title_justify="left")
        columns = [*TTFTRow.STAGES, "ttft", "further_ttft"]
        ttft.add_column("")
        for name in columns:
            ttft.add_column(name.replace("ttft", "TTFT") + " ms", justify="right")
        for ttft_row in result.ttft.rows:
            ttft.add_row(
                "vanilla" if ttft_row.retention == 1.0 else f"R = {ttft_row.retention:g}",
                *(_fmt_ms(getattr(ttft_row, f"{name}_ms")) for name in columns),
            )
        tables.append(ttft)
    return tables
