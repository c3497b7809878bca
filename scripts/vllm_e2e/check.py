"""fastvid's own pruning on the features vLLM's plugin pruned: do the kept tokens and rows agree?

Runs under the project's Python (its ``src/``, not the plugin's installed copy). For each video the plugin
traced (``$FASTVID_VLLM_TRACE/video-*.pt``: vLLM's embeddings, the saliency, vLLM's budget, FastVID's config,
and what the plugin kept), this runs ``fastvid_cli.pruning.fastvid_prune`` on the same features with the same
count, as ``fastvid ask`` prunes (main embeddings merged by DTM, DeepStack levels merged alike by
``PruneResult.gather``), and compares: the kept indices must be equal, the rows equal up to bfloat16
rounding. With ``--checkpoint DIR``, it also runs fastvid's own transformers path on the same pixels (the
family's adapter: transformers' vision tower, in float32, and the saliency ``fastvid ask`` computes) and
compares it with the plugin's, computed from vLLM's tower in bfloat16: the correlation of the saliency, and
the share of kept tokens FastVID keeps on both. Prints one JSON object per traced video on stdout.

    python check.py TRACE_DIR [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from fastvid_cli.pruning import FastVIDConfig, fastvid_prune


def check(path: Path, adapter: Any = None) -> dict:
    """Compare one traced video's kept indices and rows with fastvid's own pruning (and, given the family's
    ``adapter``, its saliency and kept tokens with those of fastvid's transformers path)."""
    saved = torch.load(path, weights_only=True)
    emb, width = saved["embeddings"], saved["main_width"]
    t, h, w = saved["grid_thw"]
    merge = saved["merge"]
    per_frame = (h // merge) * (w // merge)
    main = emb[:, :width].reshape(t, per_frame, width)
    config = FastVIDConfig(**saved["config"])
    own = fastvid_prune(main, main.float().mean(1), saved["saliency"], config, count=saved["count"])
    rows = own.tokens
    levels = emb.shape[1] // width - 1
    if levels:
        rows = torch.cat([rows, own.gather(emb[:, width:])], dim=1)
    same_indices = torch.equal(own.indices, saved["indices"])
    difference = float((rows.float() - saved["rows"].float()).abs().max()) if same_indices else float("inf")
    scale = float(rows.float().abs().max()) or 1.0
    out: dict[str, Any] = {}
    if adapter is not None and saved.get("pixels") is not None:
        features = adapter.encode({"pixel_values_videos": saved["pixels"], "video_grid_thw": torch.tensor([[t, h, w]])})
        theirs = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, config, count=saved["count"])
        pair = torch.stack([features.saliency.flatten().float(), saved["saliency"].flatten().float()])
        out["saliency_correlation_transformers"] = round(float(torch.corrcoef(pair)[0, 1]), 4)
        shared = torch.isin(theirs.indices, saved["indices"]).sum()
        out["kept_shared_with_transformers"] = round(float(shared) / saved["count"], 4)
    return {
        "features": path.name,
        "kept": int(own.indices.numel()),
        "budget": saved["count"],
        "deepstack_levels": levels,
        "same_indices": same_indices,
        "max_row_difference": difference,
        "kept_equal_fastvid": same_indices and difference <= 2**-7 * scale,  # bfloat16's step
    } | out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("--checkpoint", type=Path, help="the checkpoint vLLM ran, for the comparison with transformers")
    args = parser.parse_args()
    adapter = None
    if args.checkpoint is not None:
        from fastvid_cli.models.registry import adapter_class, detect_family

        family = detect_family(args.checkpoint)
        adapter = adapter_class(family).from_pretrained(args.checkpoint, model_id=str(args.checkpoint))
    for path in sorted(args.trace.glob("video-*.pt")):
        print(json.dumps(check(path, adapter)))


if __name__ == "__main__":
    main()
