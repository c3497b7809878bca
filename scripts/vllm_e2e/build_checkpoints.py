"""Tiny random-weight checkpoints that vLLM's CPU attention accepts, built from the published configs.

fastvid's own tiny Qwen checkpoints use a head width of 16; vLLM's CPU attention needs 32 or more. This
builds each family's checkpoint through fastvid's own builder (``fastvid tiny-model --config``'s plan, the
published config, processor files and chat template), with the attention head widened to 32 and M-RoPE's
sections rescaled to it: every layout field stays the published one. Run with the project's Python:

    python scripts/vllm_e2e/build_checkpoints.py OUT_DIR [SHARED_REALCFG]

Writes OUT_DIR/qwen2_5_vl, qwen3_vl, qwen3_5, qwen3_vl_moe and qwen3_5_moe (an existing one is kept; FAMILIES,
space-separated, builds some of them).
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

from fastvid_cli.models.recipe import scale_sections
from fastvid_cli.tiny.plan import plan_from_config
from fastvid_cli.tiny.write import write_plan

HEAD_DIM = 32
"""vLLM's CPU attention takes head sizes of 32 and up."""
LINEAR_HEAD_DIM = 128
"""vLLM's CPU Gated DeltaNet kernel (``chunk_gated_delta_rule_cpu``) rejects 16 and 32; 128 is the published width."""
PUBLISHED = {
    "qwen2_5_vl": "Qwen2.5-VL-7B-Instruct",
    "qwen3_vl": "Qwen3-VL-8B-Instruct",
    "qwen3_5": "Qwen3.5-0.8B",
    "qwen3_vl_moe": "Qwen3-VL-30B-A3B-Instruct",
    "qwen3_5_moe": "Qwen3.5-35B-A3B",
}
"""Family -> the folder of published files it is built from (../shared/realcfg, or the package's copies)."""


def widen_heads(config: dict) -> dict:
    """The tiny config with attention heads of :data:`HEAD_DIM` (fewer heads, same width), M-RoPE rescaled, and
    Gated DeltaNet heads of :data:`LINEAR_HEAD_DIM`."""
    config = copy.deepcopy(config)
    text = config.get("text_config", config)
    for key in ("linear_key_head_dim", "linear_value_head_dim"):  # Qwen3.5's Gated DeltaNet: vLLM's CPU kernel
        if key in text:
            text[key] = LINEAR_HEAD_DIM
    width = text["hidden_size"]
    if text.get("head_dim", width // text["num_attention_heads"]) >= HEAD_DIM:
        return config
    heads = max(1, width // HEAD_DIM)
    text["num_attention_heads"] = heads
    text["num_key_value_heads"] = min(text.get("num_key_value_heads", heads), heads)
    if "head_dim" in text:
        text["head_dim"] = HEAD_DIM
    for holder in (text, config):
        for key in ("rope_scaling", "rope_parameters"):
            rope = holder.get(key) or {}
            if "mrope_section" in rope:
                factor = rope.get("partial_rotary_factor", text.get("partial_rotary_factor", 1.0))
                rope["mrope_section"] = scale_sections(rope["mrope_section"], int(HEAD_DIM * factor) // 2)
    return config


def build(out: Path, realcfg: Path) -> dict[str, Path]:
    """Build (or keep) each family's checkpoint under ``out``; returns family -> folder."""
    import transformers

    folders = {}
    wanted = os.environ.get("FAMILIES", "").split() or list(PUBLISHED)
    for family, name in PUBLISHED.items():
        if family not in wanted:
            continue
        folder = out / family
        folders[family] = folder
        if (folder / "config.json").exists():
            continue
        plan = plan_from_config(realcfg / name)
        plan.files["config.json"] = widen_heads(plan.config)
        config_class = transformers.CONFIG_MAPPING[plan.config["model_type"]]
        plan.model_config = config_class.from_dict(copy.deepcopy(plan.config))
        write_plan(plan, folder, seed=0)  # in the published tensor layout (Qwen3-VL MoE's fused experts included)
        print(f"built {family} from {name} at {folder}", file=sys.stderr)
    return folders


if __name__ == "__main__":
    here = Path(__file__).resolve().parents[2]
    build(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else here.parent / "shared" / "realcfg")
