"""FastVID pruning: ``fastvid_prune`` against the authors' release, side by side on the same inputs.

The release's FastVID block (LunarShen/FastVID, MIT, the part marked ``FastVID`` in
``fastvid_llavaonevision/LLaVA-NeXT/llava/model/language_model/modeling_qwen2.py``) is read at run
time from a clone you point to, and run on the same synthetic video tokens as ``fastvid_prune``;
nothing of it is copied into this project. Both are timed in one process, runs interleaved after
warm-up, and the kept token indices are compared (they must be identical).

Inputs: 32 x 196 x 3584 tokens (LLaVA-OneVision-7B), R = 0.1, tau = 0.9, d = 0.4, p = 4,
beta = 0.6, frame features of equal-length scenes: one scene cut with c = 2 (issue 10's case, two
segments of 16 frames), and 8 scenes with the paper's c = 8 (segments of 4 frames).

Both must keep the same tokens where their rules agree: when each segment's anchor budget divides
evenly over its anchor frames, as in both cases here. Elsewhere the release drops the remainder
(``seg_context_num // temp_num``) and fastvid keeps it (a project rule: no token of the budget is
lost), so fastvid keeps a superset; the ``release_subset_of_fastvid`` field checks that.

Usage::

    git clone https://github.com/LunarShen/FastVID /path/to/FastVID
    python benchmarks/vs_release.py --release /path/to/FastVID [--threads 2] [--dtype float32 bfloat16] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import torch

RELEASE_FILE = "fastvid_llavaonevision/LLaVA-NeXT/llava/model/language_model/modeling_qwen2.py"


def load_release_block(clone: Path):
    """The release's FastVID block as a function ``(self, hidden_states, seq_length) -> (hidden, keep)``.

    Raises
    ------
    SystemExit
        When ``clone`` has no such file or the block's markers moved.
    """
    path = clone / RELEASE_FILE
    if path.exists():
        source = path.read_text()
    else:  # a bare mirror: read the file from git
        proc = subprocess.run(
            ["git", "-C", str(clone), "show", f"HEAD:{RELEASE_FILE}"], capture_output=True, text=True, check=False
        )
        if proc.returncode:
            raise SystemExit(f"no {RELEASE_FILE} in {clone}: pass a clone of LunarShen/FastVID")
        source = proc.stdout
    lines = source.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if "#### FastVID ####" in line)
        end = next(i for i in range(start, len(lines)) if "keep_indexs = keep_indexs[sorted_indexs]" in lines[i])
    except StopIteration:
        raise SystemExit("the release's FastVID block markers were not found; has the file changed?") from None
    body = textwrap.dedent("\n".join(lines[start + 1 : end + 1]))
    code = (
        "def release_block(self, hidden_states, seq_length):\n"
        + textwrap.indent(body, "    ")
        + "\n    return hidden_states, keep_indexs\n"
    )
    namespace = {"torch": torch, "F": torch.nn.functional}
    exec(compile(code, str(path), "exec"), namespace)  # noqa: S102 - the authors' release code, run as they wrote it
    return namespace["release_block"]


def release_prune(block, tokens, features, saliency, R=0.1, c=8, tau=0.9, d=0.4, p=4, beta=0.6):
    """(F, N, D) tokens -> (kept (K, D), kept flat indices (K,)) by the release's block."""
    frames, per_frame, dim = tokens.shape
    self = types.SimpleNamespace(
        video_start_idx=0,
        video_token_len=frames * per_frame,
        frame_num=frames,
        frame_attn_weights=saliency,
        frame_global_features=features,
        fastvid_retention_ratio=R,
        fastvid_DySeg_c=c,
        fastvid_DySeg_tau=tau,
        fastvid_STPrune_d=d,
        fastvid_DTM_p=p,
        fastvid_DTM_beta=beta,
    )
    hidden, keep = block(self, tokens.reshape(1, frames * per_frame, dim), frames * per_frame)
    return hidden[0], keep


def inputs(frames: int, dim: int, scenes: int, dtype, device, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(frames, 196, dim, generator=gen)
    centres = torch.randn(scenes, 1152, generator=gen)
    features = centres[torch.arange(frames) * scenes // frames] + 0.05 * torch.randn(frames, 1152, generator=gen)
    saliency = torch.randn(frames, 196, generator=gen).softmax(-1)
    return (
        tokens.to(device, dtype),
        features.to(device),
        saliency.to(device),
    )  # the model's dtype is the tokens'; features and saliency float32


def timed_ms(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1e3


def compare(block, frames, dim, scenes, dtype, device, repeats, c=8) -> dict:
    from fastvid_cli.pruning import FastVIDConfig, fastvid_prune

    x, g, s = inputs(frames, dim, scenes, dtype, device)
    config = FastVIDConfig(retention_ratio=0.1, c=c, tau=0.9)
    fns = {"release": lambda: release_prune(block, x, g, s, c=c), "fastvid": lambda: fastvid_prune(x, g, s, config)}
    out = {k: fn() for k, fn in fns.items()}
    for _ in range(2):
        for fn in fns.values():
            fn()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():  # interleaved: both see the same machine
            times[k].append(timed_ms(fn, device))
    ours, theirs = out["fastvid"], out["release"]
    same = torch.equal(ours.indices.cpu(), theirs[1].cpu())
    subset = set(theirs[1].tolist()) <= set(ours.indices.tolist())
    median = {k: statistics.median(v) for k, v in times.items()}
    return {
        "frames": frames,
        "dim": dim,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "c": c,
        "segments": ours.segment_lengths,
        "kept": int(ours.indices.numel()),
        "kept_release": int(theirs[1].numel()),
        "kept_indices_identical": same,
        "release_subset_of_fastvid": subset,
        "scenes": scenes,
        "max_abs_diff_kept_tokens": float((ours.tokens.float() - theirs[0].float()).abs().max()) if same else None,
        "release_ms": median["release"],
        "fastvid_ms": median["fastvid"],
        "ratio": median["fastvid"] / median["release"],
        "runs_ms": times,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--release", type=Path, required=True, help="a clone of https://github.com/LunarShen/FastVID")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--dim", type=int, default=3584)
    ap.add_argument(
        "--cases", nargs="+", default=["2:2", "8:8"], help="c:scenes pairs [one scene cut with c 2; 8 scenes with c 8]"
    )
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    block = load_release_block(args.release)
    device = torch.device(args.device)
    rows = []
    cases = [tuple(int(v) for v in case.split(":")) for case in args.cases]
    for (c, scenes), name in ((case, name) for case in cases for name in args.dtype):
        row = compare(block, args.frames, args.dim, scenes, getattr(torch, name), device, args.repeats, c=c)
        rows.append(row)
        print(
            f"c {c}, {scenes} scenes, segments {row['segments']}, {row['dtype']}, {row['device']}: release {row['release_ms']:.1f} ms, "
            f"fastvid_prune {row['fastvid_ms']:.1f} ms ({row['ratio']:.2f}x the release's time); kept {row['kept']} "
            f"(release {row['kept_release']}), indices identical: {row['kept_indices_identical']}, "
            f"max |diff| of kept tokens {row['max_abs_diff_kept_tokens']}",
            flush=True,
        )
    report = {
        "threads": args.threads,
        "torch": torch.__version__,
        "rows": rows,
        "target": "fastvid_prune at most half the release's time, same kept indices",
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")
    met = all(r["ratio"] <= 0.5 and r["kept_indices_identical"] for r in rows)
    print("target met" if met else "target NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
