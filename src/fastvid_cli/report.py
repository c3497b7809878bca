"""Rich tables of an ``ask`` result, for stderr."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table

from .flops import CAUSAL_2MAC, TABLE5
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
    table.add_row(
        f"video tokens ({result.frames} frames x {t['tokens_per_frame']})",
        f"{t['video_before']:,}",
        f"{t['video_after']:,}",
        f"{t['video_after'] / t['video_before']:.1%}",
    )
    table.add_row(
        "whole prompt (LLM input)",
        f"{t['prompt_before']:,}",
        f"{t['prompt_after']:,}",
        f"{t['prompt_after'] / t['prompt_before']:.1%}",
    )
    table.caption = f"the prompt also holds {t['newline']} newline slot(s) after the video, never pruned"
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
        row = f[key]
        table.add_row(labels[key], f"{row['before']:.4g}", f"{row['after']:.4g}", f"{row['ratio']:.1%}")
    return table


def speed_table(result: AskResult) -> Table:
    """Measured prefill time, vanilla vs pruned."""
    t = result.timing
    table = Table(title=f"Measured prefill ({result.model['device']}, {result.model['dtype']})", title_justify="left")
    table.add_column("vanilla (ms)", justify="right")
    table.add_column("FastVID (ms)", justify="right")
    table.add_column("speedup", justify="right")
    speedup = "-" if t["prefill_speedup"] is None else f"{t['prefill_speedup']:.2f}x"
    table.add_row(_fmt_ms(t["prefill_vanilla_ms"]), _fmt_ms(t["prefill_ms"]), speedup)
    if t["prefill_vanilla_ms"] is None:
        table.caption = "vanilla prefill skipped (--no-baseline)"
    return table


def timing_table(result: AskResult) -> Table:
    """Where the time went, per stage (the vanilla baseline excluded)."""
    t = result.timing
    table = Table(title="Time breakdown", title_justify="left")
    table.add_column("stage")
    table.add_column("ms", justify="right")
    for stage in STAGES:
        table.add_row(STAGE_LABELS[stage], _fmt_ms(t[f"{stage}_ms"]))
    table.add_row("time to first token", _fmt_ms(t["ttft_ms"]), style="bold")
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


def render_ask(result: AskResult, console: Console) -> None:
    """Print every table of an ``ask`` result to ``console`` (stderr in the CLI)."""
    console.print(
        Group(
            token_table(result),
            flops_table(result),
            speed_table(result),
            timing_table(result),
            segment_table(result),
        )
    )
