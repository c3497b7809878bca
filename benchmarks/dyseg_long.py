"""DySeg on long videos: what c and tau do at 32 to 1024 frames of one long clip.

For each frame count F, frames are sampled uniformly (as ``fastvid ask --frames F``) from the long
clip of ``long_video.py`` (the sample clips cycled: a scene cut every 4 to 10 s), and DySeg runs on
their frame features with the paper's c = 8, tau = 0.9 and with c scaled to the frame count. Per
setting: segments, their lengths (min / median / max frames), the cuts placed by tau and by the
top-(c - 1) rule, how many of the clip's real scene cuts became segment boundaries (a sampled
frame on each side), and DTM anchors per segment at R = 0.1 (d = 0.4). FastVID's pruning time
per frame count is ``fastvid bench --frames``'s.

Frame features: no pretrained SigLIP can be downloaded here, so g_i is a stand-in computed from the
pixels (:func:`histograms`). Its cosine similarity follows scene content the way SigLIP's does in
kind (high within a shot, low across a cut), not in value; with the real model, ``fastvid ask
--json`` gives the segments it made (``segments``).

Usage::

    python benchmarks/dyseg_long.py [--frames 32 64 128 256 512 1024] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from long_video import make_long_clip

CLIP_LENGTHS = (250, 132, 120)
"""Frames of bikes, big_buck_bunny and carphone, in the order the long clip cycles them."""


def true_cuts(total: int) -> list[int]:
    """Frame numbers where a new clip starts in the long clip."""
    cuts, at, k = [], 0, 0
    while True:
        at += CLIP_LENGTHS[k % len(CLIP_LENGTHS)]
        if at >= total:
            return cuts
        cuts.append(at)
        k += 1


def histograms(clip: Path, frames: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(F, 256) frame features of ``frames`` uniformly sampled frames, their frame numbers, and the clip's length.

    A frame's feature: the square roots of its 4 x 4 x 4-bin RGB histograms over the 2 x 2 quadrants
    of the frame, normalized (cosine similarity = the Bhattacharyya coefficient, a classic shot
    boundary measure): high within a shot whatever moves in it, low across a cut.
    """
    import decord
    import numpy as np

    reader = decord.VideoReader(str(clip))
    total = len(reader)
    indices = np.linspace(0, total - 1, frames, dtype=int)  # floor, as the LLaVA scripts and fastvid
    parts = []
    for start in range(0, frames, 64):
        x = torch.from_numpy(reader.get_batch(indices[start : start + 64].tolist()).asnumpy()).long()
        k, h, w, _ = x.shape
        bins = (x // 64) @ torch.tensor([16, 4, 1])  # (k, h, w) joint RGB bin 0..63
        quadrant = (torch.arange(h)[:, None] * 2 // h) * 2 + (torch.arange(w)[None, :] * 2 // w)  # (h, w) 0..3
        index = (quadrant * 64 + bins).flatten(1)  # (k, h*w) bin 0..255
        hist = torch.zeros(k, 256).scatter_add_(1, index, torch.ones_like(index, dtype=torch.float))
        parts.append(hist.sqrt())
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1), torch.from_numpy(indices), total


def study(clip: Path, frames: int, c: int, tau: float) -> dict:
    from fastvid_cli.pruning import FastVIDConfig, FrameBudget
    from fastvid_cli.pruning.segmentation import dyseg

    g, indices, total = histograms(clip, frames)
    seg = dyseg(g, c=c, tau=tau)
    lengths = seg.lengths.tolist()
    by_tau = int((seg.transition_similarity < tau).sum())
    boundaries = set()  # real cuts with a sampled frame on each side that DySeg separated
    cut_after = set(seg.cuts.tolist())
    real = true_cuts(total)
    seen = 0
    for cut in real:
        before = int((indices < cut).sum()) - 1
        if 0 <= before < frames - 1:
            seen += 1
            if any(i in cut_after for i in range(before, before + 1)):
                boundaries.add(cut)
    budget = FrameBudget.from_config(196, FastVIDConfig(retention_ratio=0.1, c=c, tau=tau))
    anchors = [budget.context * n for n in lengths]
    return {
        "frames": frames,
        "c": c,
        "tau": tau,
        "segments": len(lengths),
        "min_len": min(lengths),
        "median_len": statistics.median(lengths),
        "max_len": max(lengths),
        "cuts_by_tau": by_tau,
        "cuts": len(seg.cuts),
        "real_cuts_seen": seen,
        "real_cuts_found": len(boundaries),
        "anchors_per_segment_median": statistics.median(anchors),
        "anchors_per_segment_max": max(anchors),
        "similarity_median": float(seg.transition_similarity.median()) if frames > 1 else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", nargs="+", type=int, default=[32, 64, 128, 256, 512, 1024])
    ap.add_argument("--tau", type=float, default=0.9)
    ap.add_argument("--work", type=Path, default=Path("/tmp/fastvid-long-video"))
    ap.add_argument("--output", type=Path, default=Path(__file__).resolve().parent / "results" / "dyseg-long-cpu.json")
    args = ap.parse_args(argv)
    clip = make_long_clip(args.work / "long_clip.mp4", frames=2400)
    rows = []
    for frames in args.frames:
        for c in sorted({8, max(8, frames // 4)}):
            rows.append(study(clip, frames, c, args.tau))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {"features": "sqrt of 4x4x4-bin RGB histograms of the frame's 2x2 quadrants, normalized", "rows": rows}, indent=1
        )
        + "\n"
    )
    print(
        "| frames | c | segments | frames per segment (min / median / max) | cuts by tau | real scene cuts found | anchors per segment (median / max) | median similarity |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['frames']} | {r['c']} | {r['segments']} | {r['min_len']} / {r['median_len']:g} / {r['max_len']} | {r['cuts_by_tau']} | "
            f"{r['real_cuts_found']} of {r['real_cuts_seen']} | {r['anchors_per_segment_median']:g} / {r['anchors_per_segment_max']} | {r['similarity_median']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
