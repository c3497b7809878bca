"""One JSON line for one vLLM run: what run.py saw, what the plugin traced, what check.py found.

    python report.py RUN_JSON TRACE_DIR CHECK_JSON_LINES REFERENCE_TRACE_DIR

``ok`` is true when the run answered, the video reached the LLM with exactly vLLM's budget of tokens,
fastvid's own pruning keeps the same tokens and rows, two identical requests gave the same tokens (a
served run also keeps the same tokens as the offline run at the same rate, in another process), and the
plugin's saliency (vLLM's tower, bf16) correlates with fastvid's transformers path (fp32) at
:data:`MIN_SALIENCY_CORRELATION` or more.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

MIN_SALIENCY_CORRELATION = 0.99
"""Least correlation of the two saliencies: only bfloat16 against float32 should separate them."""


def kept_indices(trace: Path) -> list[list[int]]:
    return [torch.load(p, weights_only=True)["indices"].tolist() for p in sorted(trace.glob("video-*.pt"))]


def main() -> None:
    run = json.loads(sys.argv[1] or "{}")
    trace = Path(sys.argv[2])
    checks = [json.loads(line) for line in sys.argv[3].splitlines() if line.strip()]
    reference = Path(sys.argv[4])
    records = (
        [json.loads(line) for line in (trace / "trace.jsonl").read_text().splitlines()]
        if (trace / "trace.jsonl").exists()
        else []
    )
    deterministic = bool(run.get("deterministic"))
    if run.get("mode") == "served" and reference != trace and reference.exists():
        deterministic = deterministic and kept_indices(trace) == kept_indices(reference)
    line = {
        "family": run.get("family"),
        "mode": run.get("mode"),
        "rate": run.get("rate"),
        "videos_pruned": len(records),  # one per request: each request's video is encoded and pruned anew
        "video_tokens_before": max((r["video_tokens_before"] for r in records), default=None),
        "video_tokens_after": max((r["video_tokens_after"] for r in records), default=None),
        "budget": max((r["budget"] for r in records), default=None),
        "kept_equal_fastvid": bool(checks) and all(c["kept_equal_fastvid"] for c in checks),
        "deterministic": deterministic,
        "pruning_ms": max((r["pruning_ms"] for r in records), default=None),  # the slower of the requests
        "saliency_correlation_transformers": min((c.get("saliency_correlation_transformers", 1.0) for c in checks), default=None),
        "kept_shared_with_transformers": min((c.get("kept_shared_with_transformers", 1.0) for c in checks), default=None),
        "answer_tokens": run.get("tokens", [None])[0],
        "prompt_tokens": run.get("prompt_tokens"),
        "seconds": run.get("seconds"),
    }
    correlation = line["saliency_correlation_transformers"]
    line["ok"] = bool(
        records
        and all(r["video_tokens_after"] == r["budget"] for r in records)
        and line["kept_equal_fastvid"]
        and line["deterministic"]
        and line["answer_tokens"]
        and (correlation is None or correlation >= MIN_SALIENCY_CORRELATION)
    )
    print(json.dumps(line))


if __name__ == "__main__":
    main()
