"""Analytic FLOPs: FastVID's Table 5 convention and the causal 2 x MAC count."""

import pytest

from fastvid_cli.flops import CONVENTIONS, LLMGeometry, causal_prefill_tflops, flops_report, table5_tflops

# LLaVA-OneVision-7B's Qwen2-7B: D 3584, MLP 18944, 28 layers, 28 heads, 4 KV heads (head dim 128).
OV7B = LLMGeometry(hidden=3584, kv_dim=4 * 128, intermediate=18944, layers=28, vocab=152064)


def test_table5_pins_the_paper():
    assert round(table5_tflops(6272, OV7B), 2) == 48.82
    assert round(table5_tflops(608, OV7B), 2) == 4.04
    assert round(table5_tflops(608, OV7B) / table5_tflops(6272, OV7B), 3) == 0.083


def test_geometry_from_transformers_config():
    from transformers import LlavaOnevisionConfig, Qwen2Config

    text = Qwen2Config(
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        vocab_size=152064,
    )
    assert LLMGeometry.from_config(LlavaOnevisionConfig(text_config=text.to_dict())) == OV7B


def test_causal_count_by_hand():
    g = LLMGeometry(hidden=4, kv_dim=2, intermediate=8, layers=3, vocab=10)
    n = 5
    macs_per_layer = 2 * n * 16 + 2 * n * 4 * 2 + n * (n + 1) * 4 + 3 * n * 4 * 8
    assert causal_prefill_tflops(n, g) == pytest.approx((2 * macs_per_layer * 3 + 2 * 4 * 10) / 1e12)
    # attention grows quadratically: doubling the prompt more than doubles the FLOPs
    assert causal_prefill_tflops(2000, OV7B) > 2 * causal_prefill_tflops(1000, OV7B)


def test_report_ratios_and_conventions():
    report = flops_report(OV7B, 6272, 608, 6320, 656)
    assert report.unit == "TFLOPs"
    assert report.table5.ratio == pytest.approx(report.table5.after / report.table5.before)
    assert 0.08 < report.table5.ratio < 0.085
    assert report.causal_2mac.before > 2 * report.table5.before * 0.9
    assert set(report.conventions) == {"table5", "causal_2mac"}
    assert report.convention("table5") is report.table5


def test_report_json_keeps_its_keys():
    """``--json``'s ``flops`` object: the keys (and their order) of the dict it replaced."""
    report = flops_report(OV7B, 6272, 608, 6320, 656).to_dict()
    assert list(report) == ["unit", "conventions", "table5", "causal_2mac", "geometry", "split"]  # split: appended
    for key in ("table5", "causal_2mac"):
        assert list(report[key]) == ["before", "after", "ratio"]
    assert report["geometry"] == OV7B.to_dict() and report["conventions"] == CONVENTIONS
    assert flops_report(OV7B, 0, 0, 0, 0).table5.ratio == 1.0


def test_rows_are_typed_and_keep_their_json_keys():
    from fastvid_cli.flops import FlopsRow, flops_rows

    vanilla, pruned = flops_rows(OV7B, 196, 1, 32, [0.1])
    assert isinstance(pruned, FlopsRow) and vanilla.retention == 1.0 and vanilla.table5_ratio == 1.0
    assert (vanilla.video_tokens, pruned.video_tokens) == (6272, 608)
    assert list(pruned.to_dict()) == ["retention", "video_tokens", "table5", "table5_ratio", "causal_2mac", "causal_2mac_ratio"]
