"""FLOPs from each projection's real shape: Qwen3-VL (dense, MoE) and Qwen3.5 (hybrid Gated DeltaNet, dense, MoE).

Three kinds of check, each independent of the code under test:

- hand counts: the MACs of a prefill written out from the published configs' numbers (tests/realcfg);
- weight counts: each projection's per-token MACs equal the weights of that matrix in the transformers
  model built on the meta device from the published config (full widths, fewer layers), so a wrong shape fails;
- the split by layer type adds up to the totals, and the CLI prints it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fastvid_cli.flops import (
    PARTS,
    LLMGeometry,
    causal_prefill_tflops,
    delta_rule_macs,
    flops_report,
    flops_split_rows,
    prefill_macs,
    table5_tflops,
)

REALCFG = Path(__file__).parent / "realcfg"


def text_config(name: str) -> dict:
    return json.loads((REALCFG / name / "config.json").read_text())["text_config"]


def geometry(name: str) -> LLMGeometry:
    return LLMGeometry.from_config(json.loads((REALCFG / name / "config.json").read_text()))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# ---- hand counts from the published configs -------------------------------------------------------------------


def qwen3_vl_8b_by_hand(n: int) -> tuple[int, int]:
    """(Table 5 MACs, causal MACs) of Qwen3-VL-8B-Instruct: D 4096, 32 heads x 128, 8 KV heads, MLP 12288,
    36 layers, vocab 151936."""
    t = text_config("Qwen3-VL-8B-Instruct")
    assert (
        t["hidden_size"],
        t["num_attention_heads"],
        t["head_dim"],
        t["num_key_value_heads"],
        t["intermediate_size"],
        t["num_hidden_layers"],
        t["vocab_size"],
    ) == (4096, 32, 128, 8, 12288, 36, 151936)
    projections = 4096 * 4096 + 4096 * 1024 + 4096 * 1024 + 4096 * 4096  # q (32 x 128 = 4096), k, v (8 x 128), o
    mlp = 3 * 4096 * 12288
    table5 = 36 * (n * (projections + mlp) + 2 * n * n * 4096)
    causal = 36 * (n * (projections + mlp) + n * (n + 1) * 4096) + 4096 * 151936
    return table5, causal


def qwen3_vl_30b_a3b_by_hand(n: int) -> tuple[int, int]:
    """Qwen3-VL-30B-A3B-Instruct: D 2048, 32 heads x 128 (attention 4096, twice D), 4 KV heads, 48 layers, all MoE
    (mlp_only_layers [], decoder_sparse_step 1): router 2048 x 128, 8 active experts of width 768."""
    t = text_config("Qwen3-VL-30B-A3B-Instruct")
    assert (
        t["hidden_size"],
        t["num_attention_heads"],
        t["head_dim"],
        t["num_key_value_heads"],
        t["num_hidden_layers"],
        t["num_experts"],
        t["num_experts_per_tok"],
        t["moe_intermediate_size"],
        t["mlp_only_layers"],
        t["decoder_sparse_step"],
        t["vocab_size"],
    ) == (2048, 32, 128, 4, 48, 128, 8, 768, [], 1, 151936)
    projections = 2048 * 4096 + 2048 * 512 + 2048 * 512 + 4096 * 2048
    moe = 2048 * 128 + 8 * (3 * 2048 * 768)
    table5 = 48 * (n * (projections + moe) + 2 * n * n * 4096)
    causal = 48 * (n * (projections + moe) + n * (n + 1) * 4096) + 2048 * 151936
    return table5, causal


# One Gated DeltaNet chunk of 64 tokens, per value head, key and value head dims 128:
# k_beta @ k^T and q @ k^T, the two unitriangular solves, intra-chunk attn @ v_new, three state products.
DELTA_CHUNK_128 = 2 * 64 * 64 * 128 + (64 * 63 // 2) * (128 + 128) + 64 * 64 * 128 + 3 * 64 * 128 * 128


def qwen3_5_9b_by_hand(n: int) -> tuple[int, int]:
    """Qwen3.5-9B: D 4096, 32 layers = 8 full attention (16 heads x 256, q_proj doubled by the output gate, 4 KV
    heads) + 24 Gated DeltaNet (16 q/k heads x 128, 32 v heads x 128, conv 4), MLP 12288, vocab 248320."""
    t = text_config("Qwen3.5-9B")
    assert (
        t["hidden_size"],
        t["num_attention_heads"],
        t["head_dim"],
        t["num_key_value_heads"],
        t["attn_output_gate"],
        t["intermediate_size"],
        t["num_hidden_layers"],
        t["vocab_size"],
    ) == (4096, 16, 256, 4, True, 12288, 32, 248320)
    assert (
        t["linear_num_key_heads"],
        t["linear_key_head_dim"],
        t["linear_num_value_heads"],
        t["linear_value_head_dim"],
        t["linear_conv_kernel_dim"],
    ) == (16, 128, 32, 128, 4)
    assert t["layer_types"].count("full_attention") == 8 and t["layer_types"].count("linear_attention") == 24
    full_proj = 4096 * 8192 + 4096 * 1024 + 4096 * 1024 + 4096 * 4096  # q + gate (2 x 16 x 256), k, v (4 x 256), o
    linear_proj = (
        4096 * (2 * 2048 + 4096)  # in_proj_qkv: q, k (16 x 128 each), v (32 x 128)
        + 4096 * 4096  # in_proj_z
        + 4096 * 32
        + 4096 * 32  # in_proj_b, in_proj_a (one per value head)
        + 4096 * 4096  # out_proj
        + 8192 * 4
    )  # depthwise conv1d over the 8192 q/k/v channels, kernel 4
    delta = 32 * ceil_div(n, 64) * DELTA_CHUNK_128
    mlp = 3 * 4096 * 12288
    table5 = 8 * (n * full_proj + 2 * n * n * 4096) + 24 * (n * linear_proj + delta) + 32 * n * mlp
    causal = 8 * (n * full_proj + n * (n + 1) * 4096) + 24 * (n * linear_proj + delta) + 32 * n * mlp + 4096 * 248320
    return table5, causal


def qwen3_5_35b_a3b_by_hand(n: int) -> tuple[int, int]:
    """Qwen3.5-35B-A3B: D 2048, 40 layers = 10 full attention (16 heads x 256, gated, 2 KV heads) + 30 Gated
    DeltaNet (as the 9B's); every layer MoE: router 2048 x 256, 8 experts of 512, a shared expert of 512 and its
    2048 x 1 gate."""
    t = text_config("Qwen3.5-35B-A3B")
    assert (
        t["hidden_size"],
        t["num_attention_heads"],
        t["head_dim"],
        t["num_key_value_heads"],
        t["num_hidden_layers"],
        t["num_experts"],
        t["num_experts_per_tok"],
        t["moe_intermediate_size"],
        t["shared_expert_intermediate_size"],
        t["vocab_size"],
    ) == (2048, 16, 256, 2, 40, 256, 8, 512, 512, 248320)
    assert (
        t["linear_num_key_heads"],
        t["linear_key_head_dim"],
        t["linear_num_value_heads"],
        t["linear_value_head_dim"],
        t["linear_conv_kernel_dim"],
    ) == (16, 128, 32, 128, 4)
    assert t["layer_types"].count("full_attention") == 10 and t["layer_types"].count("linear_attention") == 30
    full_proj = 2048 * 8192 + 2048 * 512 + 2048 * 512 + 4096 * 2048
    linear_proj = 2048 * 8192 + 2048 * 4096 + 2048 * 32 + 2048 * 32 + 4096 * 2048 + 8192 * 4
    delta = 32 * ceil_div(n, 64) * DELTA_CHUNK_128
    moe = 2048 * 256 + 8 * (3 * 2048 * 512) + 3 * 2048 * 512 + 2048
    table5 = 10 * (n * full_proj + 2 * n * n * 4096) + 30 * (n * linear_proj + delta) + 40 * n * moe
    causal = 10 * (n * full_proj + n * (n + 1) * 4096) + 30 * (n * linear_proj + delta) + 40 * n * moe + 2048 * 248320
    return table5, causal


BY_HAND = {
    "Qwen3-VL-8B-Instruct": qwen3_vl_8b_by_hand,
    "Qwen3-VL-30B-A3B-Instruct": qwen3_vl_30b_a3b_by_hand,
    "Qwen3.5-9B": qwen3_5_9b_by_hand,
    "Qwen3.5-35B-A3B": qwen3_5_35b_a3b_by_hand,
}


@pytest.mark.parametrize("n", [1, 100, 608, 6272])
@pytest.mark.parametrize("name", list(BY_HAND))
def test_counts_equal_the_hand_count(name, n):
    table5, causal = BY_HAND[name](n)
    g = geometry(name)
    assert prefill_macs(n, g, causal=False).total == table5
    assert prefill_macs(n, g, causal=True).total == causal
    assert table5_tflops(n, g) == pytest.approx(table5 / 1e12, rel=1e-12)
    assert causal_prefill_tflops(n, g) == pytest.approx(2 * causal / 1e12, rel=1e-12)


# TFLOPs at the paper's 32 x 196 = 6272 video tokens and R = 0.1 (608), as docs/method.md gives them.
PUBLISHED = {
    "Qwen3-VL-8B-Instruct": (55.17, 4.33, 98.73, 8.56),
    "Qwen3-VL-30B-A3B-Instruct": (32.59, 1.81, 49.72, 3.47),
    "Qwen3.5-9B": (46.37, 4.27, 90.16, 8.52),
    "Qwen3.5-35B-A3B": (19.00, 1.56, 34.79, 3.10),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_figures_at_the_papers_token_counts(name):
    g = geometry(name)
    assert (
        tuple(
            round(x, 2)
            for x in (
                table5_tflops(6272, g),
                table5_tflops(608, g),
                causal_prefill_tflops(6272, g),
                causal_prefill_tflops(608, g),
            )
        )
        == PUBLISHED[name]
    )


def test_delta_rule_is_linear_in_chunks():
    g = geometry("Qwen3.5-9B")
    one = delta_rule_macs(64, g)
    assert one == 32 * DELTA_CHUNK_128
    assert delta_rule_macs(1, g) == one and delta_rule_macs(65, g) == 2 * one  # padded to whole chunks
    assert delta_rule_macs(6272, g) == 98 * one and delta_rule_macs(0, g) == 0
    assert delta_rule_macs(6272, LLMGeometry(hidden=8, kv_dim=8, intermediate=8, layers=1, vocab=8)) == 0


# ---- weight counts of the transformers models on the meta device ----------------------------------------------


def short_config(name: str, layers: int, **fields):
    """The published text config as transformers reads it, with its first ``layers`` layers only."""
    from transformers import AutoConfig

    text = AutoConfig.from_pretrained(REALCFG / name).text_config
    text.num_hidden_layers = layers
    if getattr(text, "layer_types", None):
        text.layer_types = text.layer_types[:layers]
    for key, value in fields.items():
        setattr(text, key, value)
    return text


def meta_model(cls_name: str, config):
    import torch
    import transformers

    with torch.device("meta"):
        return getattr(transformers, cls_name)(config)


def layer_weights(layer) -> dict[str, int]:
    """Weights of every matrix (2-D or more) of a decoder layer, the MoE's experts and shared expert summed each."""
    out: dict[str, int] = {}
    for name, p in layer.named_parameters():
        if p.dim() < 2:
            continue  # norms, dt_bias, A_log
        key = name
        if name.startswith("mlp.experts."):
            key = "mlp.experts"
        elif name.startswith("mlp.shared_expert."):
            key = "mlp.shared_expert"
        out[key] = out.get(key, 0) + p.numel()
    return out


def expected_weights(layer, g: LLMGeometry) -> dict[str, int]:
    """The same, from the geometry's per-token MACs of each matrix."""
    shapes = g.projection_macs()
    if hasattr(layer, "linear_attn"):
        out = {f"linear_attn.{k}.weight": v for k, v in shapes["linear_attention"].items()}
    else:
        out = {f"self_attn.{k}.weight": v for k, v in shapes["full_attention"].items()}
    if hasattr(layer.mlp, "experts"):
        moe = shapes["moe"]
        out["mlp.gate.weight"] = moe["router"]
        out["mlp.experts"] = g.experts * moe["expert"]  # every expert's weights; k of them run per token
        if "shared_expert" in moe:
            out["mlp.shared_expert"] = moe["shared_expert"]
            out["mlp.shared_expert_gate.weight"] = moe["shared_expert_gate"]
    else:
        out |= {f"mlp.{k}.weight": v for k, v in shapes["mlp"].items()}
    return out


@pytest.mark.parametrize(
    "name,cls_name,layers,fields",
    [
        ("Qwen3-VL-8B-Instruct", "Qwen3VLTextModel", 2, {}),
        ("Qwen3-VL-30B-A3B-Instruct", "Qwen3VLMoeTextModel", 2, {}),
        # mlp_only_layers and decoder_sparse_step pick the MoE layers: here layers 1 and 3 of 4
        ("Qwen3-VL-30B-A3B-Instruct", "Qwen3VLMoeTextModel", 4, {"mlp_only_layers": [0], "decoder_sparse_step": 2}),
        ("Qwen3.5-0.8B", "Qwen3_5TextModel", 4, {}),
        ("Qwen3.5-9B", "Qwen3_5TextModel", 4, {}),
        ("Qwen3.5-35B-A3B", "Qwen3_5MoeTextModel", 4, {}),
    ],
)
def test_projection_macs_equal_the_models_weights(name, cls_name, layers, fields):
    config = short_config(name, layers, **fields)
    g = LLMGeometry.from_config(config)
    model = meta_model(cls_name, config)
    assert len(model.layers) == g.layers == layers
    assert sum(hasattr(layer, "linear_attn") for layer in model.layers) == g.linear_layers
    assert sum(hasattr(layer.mlp, "experts") for layer in model.layers) == g.moe_layers
    for layer in model.layers:
        assert layer_weights(layer) == expected_weights(layer, g)
    assert model.embed_tokens.weight.numel() == g.projection_macs()["lm_head"]["lm_head"]  # the LM head's shape
    if fields:
        assert (g.moe_layers, g.dense_mlp_layers) == (2, 2)


def test_attention_width_differs_from_the_hidden_size():
    """Qwen3-VL-4B's shape (issue 17): 32 heads x 128 = 4096 against D 2560."""
    from transformers import Qwen3VLTextConfig

    config = Qwen3VLTextConfig(
        hidden_size=2560,
        num_attention_heads=32,
        head_dim=128,
        num_key_value_heads=8,
        intermediate_size=9728,
        num_hidden_layers=1,
        vocab_size=151936,
    )
    g = LLMGeometry.from_config(config)
    assert (g.q_dim, g.kv_dim, g.attn_output_gate) == (4096, 1024, False)
    model = meta_model("Qwen3VLTextModel", config)
    assert layer_weights(model.layers[0]) == expected_weights(model.layers[0], g)
    n = 10
    assert prefill_macs(n, g, causal=False).full_attention == n * (2560 * 4096 + 2 * 2560 * 1024 + 4096 * 2560) + 2 * n * n * 4096


# ---- reading configs -------------------------------------------------------------------------------------------


def test_every_config_layout_gives_the_same_geometry():
    from transformers import AutoConfig

    from fastvid_cli.models.geometry_base import KNOWN_CONFIGS, transformers_config

    for name in BY_HAND:
        published = json.loads((REALCFG / name / "config.json").read_text())
        from_dict = LLMGeometry.from_config(published)
        assert LLMGeometry.from_config(AutoConfig.from_pretrained(REALCFG / name)) == from_dict
        assert LLMGeometry.from_config(AutoConfig.from_pretrained(REALCFG / name).text_config) == from_dict
        text = dict(published["text_config"])
        text.pop("layer_types", None)  # rebuilt from full_attention_interval, as the config class does
        assert LLMGeometry.from_config({"model_type": published["model_type"], "text_config": text}) == from_dict
    # Qwen2.5-VL's flat legacy config.json, as a dict and through transformers
    flat = KNOWN_CONFIGS["Qwen/Qwen2.5-VL-7B-Instruct"]
    qwen25 = LLMGeometry(hidden=3584, kv_dim=512, intermediate=18944, layers=28, vocab=152064)
    assert LLMGeometry.from_config(flat) == LLMGeometry.from_config(transformers_config(flat)) == qwen25
    assert qwen25.q_dim == 3584 and not qwen25.linear_layers and not qwen25.moe_layers


def test_describe_names_the_shapes():
    assert geometry("Qwen3.5-9B").describe() == (
        "D 4096, attention width 4096, q_proj x2 (output gate), D_kv 1024, MLP 12288, 32 layers "
        "(8 full attention + 24 Gated DeltaNet: q/k 16 x 128, v 32 x 128, conv 4)"
    )
    assert (
        geometry("Qwen3.5-35B-A3B")
        .describe()
        .startswith(
            "D 2048, attention width 4096, q_proj x2 (output gate), D_kv 512, MoE 8 of 256 experts x 512 + shared expert 512, 40"
        )
    )


# ---- the split by layer type -----------------------------------------------------------------------------------

SPLIT_KEYS = ["before", "after", "ratio", "share_before", "share_after", "share_of_saving"]


@pytest.mark.parametrize("name", list(BY_HAND))
def test_split_adds_up_to_the_totals(name):
    g = geometry(name)
    report = flops_report(g, 6272, 608, 6320, 656)
    for key in ("table5", "causal_2mac"):
        split, total = report.split.convention(key), report.convention(key)
        parts = split.parts()
        assert list(parts) == list(PARTS)
        assert sum(p.before for p in parts.values()) == pytest.approx(total.before)
        assert sum(p.after for p in parts.values()) == pytest.approx(total.after)
        for share in ("share_before", "share_after", "share_of_saving"):
            assert sum(getattr(p, share) for p in parts.values()) == pytest.approx(1.0)
    assert report.split.table5.lm_head.before == 0
    assert (report.split.table5.linear_attention.before > 0) == (g.linear_layers > 0)


def test_split_of_a_hybrid_model_by_hand():
    """Qwen3.5-9B, 6272 -> 608 video tokens: each layer type's Table 5 MACs from the hand count's terms."""
    n0, n1 = 6272, 608
    full = lambda n: 8 * (n * (4096 * 8192 + 2 * 4096 * 1024 + 4096 * 4096) + 2 * n * n * 4096)
    linear = lambda n: (
        24 * (n * (4096 * 8192 + 4096 * 4096 + 2 * 4096 * 32 + 4096 * 4096 + 8192 * 4) + 32 * ceil_div(n, 64) * DELTA_CHUNK_128)
    )
    mlp = lambda n: 32 * n * 3 * 4096 * 12288
    split = flops_report(geometry("Qwen3.5-9B"), n0, n1, n0, n1).split.table5
    saved = sum(f(n0) - f(n1) for f in (full, linear, mlp))
    for part, f in (("full_attention", full), ("linear_attention", linear), ("mlp", mlp)):
        counts = getattr(split, part)
        assert counts.before == pytest.approx(f(n0) / 1e12) and counts.after == pytest.approx(f(n1) / 1e12)
        assert counts.share_of_saving == pytest.approx((f(n0) - f(n1)) / saved)
    # attention is quadratic, the Gated DeltaNet layers linear (up to the padding of the last chunk)
    assert split.full_attention.ratio < n1 / n0 < split.linear_attention.ratio < 10 / 98 + 1e-9


def test_split_json_keys_and_a_model_without_linear_layers():
    ov7b = LLMGeometry(hidden=3584, kv_dim=4 * 128, intermediate=18944, layers=28, vocab=152064)
    report = flops_report(ov7b, 6272, 608, 6320, 656).to_dict()
    assert list(report) == ["unit", "conventions", "table5", "causal_2mac", "geometry", "split"]
    assert list(report["split"]) == ["table5", "causal_2mac"]
    for key in ("table5", "causal_2mac"):
        assert list(report["split"][key]) == list(PARTS)
        assert all(list(part) == SPLIT_KEYS for part in report["split"][key].values())
        assert report["split"][key]["linear_attention"] == {
            "before": 0,
            "after": 0,
            "ratio": 1.0,
            "share_before": 0.0,
            "share_after": 0.0,
            "share_of_saving": 0.0,
        }
    rows = flops_split_rows(ov7b, 196, 1, 32, [0.1])
    assert [r.retention for r in rows] == [1.0, 0.1] and [r.video_tokens for r in rows] == [6272, 608]
    assert rows[0].split.table5.mlp.share_of_saving == 0.0  # vanilla against itself: nothing saved
    assert rows[1].split.table5 == flops_report(ov7b, 6272, 608, 6273, 609).split.table5
    assert list(rows[1].to_dict()) == ["retention", "video_tokens", "split"]


def test_flops_command_prints_the_split(capsys, monkeypatch):
    from fastvid_cli.cli import run
    from fastvid_cli.models import geometry as geometry_module
    from fastvid_cli.models.geometry_base import ModelGeometry

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert run(["flops", "-r", "0.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [row["retention"] for row in data["split"]] == [1.0, 0.1]
    assert list(data["split"][1]["split"]["table5"]) == list(PARTS)
    assert run(["flops", "-r", "0.1"]) == 0
    printed = capsys.readouterr()
    assert printed.out == "", "the tables go to stderr"
    assert "by layer type" in printed.err and "Gated DeltaNet" not in printed.err  # no linear-attention column for Qwen2

    config = short_config("Qwen3.5-9B", 32)
    hybrid = ModelGeometry.of_llm("Qwen3.5-9B", "qwen3_5", config, tokens_per_frame=196, frames=32, extra_slots=0)
    monkeypatch.setattr(geometry_module, "model_geometry", lambda name: hybrid)
    assert run(["flops", "-r", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "Gated DeltaNet" in err and "46.37" in err and "q_proj x2" in err


def test_ask_table_caption_gives_the_saving_by_layer_type():
    from fastvid_cli.output.report import saving_by_layer_type

    g = geometry("Qwen3.5-9B")
    line = saving_by_layer_type(flops_report(g, 6272, 608, 6272, 608).split, g)
    assert line == (
        "Saving by layer type: Table 5: full attention 12%, Gated DeltaNet 23%, MLP / MoE 65%; "
        "causal: full attention 10%, Gated DeltaNet 23%, MLP / MoE 67%"
    )
    ov7b = LLMGeometry(hidden=3584, kv_dim=512, intermediate=18944, layers=28, vocab=152064)
    assert "Gated DeltaNet" not in saving_by_layer_type(flops_report(ov7b, 6272, 608, 6320, 656).split, ov7b)


@pytest.mark.parametrize("name", list(BY_HAND))
def test_flops_command_on_the_published_config_equals_the_hand_count(capsys, name):
    """``fastvid flops --model REAL_DIR``: the family's adapter reads the config (16 temporal patches of
    (448 / 32)^2 = 196 tokens at 32 frames) and the counts are the hand count's."""
    from fastvid_cli.cli import run

    assert run(["flops", "--model", str(REALCFG / name), "-r", "0.1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    vanilla, pruned = data["rows"]
    assert (vanilla["video_tokens"], pruned["video_tokens"]) == (16 * 196, 16 * 19)
    assert vanilla["table5"] == pytest.approx(BY_HAND[name](16 * 196)[0] / 1e12, rel=1e-12)
    assert pruned["table5"] == pytest.approx(BY_HAND[name](16 * 19)[0] / 1e12, rel=1e-12)
