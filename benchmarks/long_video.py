"""Long videos: ``fastvid ask`` at 32, 256 and 1024 frames on one long clip, side by side.

Builds a long clip from the sample clips (PyAV, H.264), then runs ``fastvid ask --json`` once per
(model, frame count) in its own process and reads, per run: video tokens before and after FastVID,
prefill TFLOPs (Table 5 convention) of the run's model and of LLaVA-OneVision-7B's geometry, the
time of each stage, the measured TTFT, and the process's peak resident memory (VmHWM). The vanilla baseline prefill is off (``--no-baseline``): its cost at 1024 frames is
what FastVID avoids; the vanilla model at 32 frames is the reference of the FLOPs target.

Models:
- ``tiny-random``: the test model (tiny widths, the real token geometry).
- ``ov-0.5b``: LLaVA-OneVision-0.5B's widths with random weights (SigLIP 1152 wide, Qwen2 896 wide,
  vocabulary 151,936) at a few layers (``--vision-layers``, ``--llm-layers``): memory per frame and
  per token is the real model's, the depth only scales the time.

Targets (issue 10): peak memory at 1024 frames <= 2 x that at 32 frames + the pooled tokens' own
size (1024 x 196 x D float32); at 256 frames and R = 0.1 the prefill TFLOPs below the vanilla
model's at 32 frames.

Usage::

    python benchmarks/long_video.py                      # both models, 32 256 1024 frames
    python benchmarks/long_video.py --models tiny-random --frames 32 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What happens in this video?"
OV_05B_TEXT = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "initializer_range": 0.02,
}
"""LLaVA-OneVision-0.5B's Qwen2 (llava-hf/llava-onevision-qwen2-0.5b-ov-hf, text_config)."""


def make_long_clip(path: Path, frames: int = 2400, size: tuple[int, int] = (360, 640), fps: int = 25) -> Path:
    """Write ``frames`` frames (H.264, ``fps``) cycling through the sample clips, each resized to ``size``.

    The clips follow each other (bikes, big_buck_bunny, carphone, bikes, ...), so the long clip has
    a scene cut every 4 to 10 seconds, as edited video does.
    """
    import av
    import decord
    import torch
    import torch.nn.functional as F

    if path.exists():
        return path
    clips = []
    for name in ("bikes.mp4", "big_buck_bunny.mp4", "carphone.mp4"):
        reader = decord.VideoReader(str(ROOT / "sample_videos" / name))
        x = torch.from_numpy(reader.get_batch(list(range(len(reader)))).asnumpy()).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        clips.append(x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        written, k = 0, 0
        while written < frames:
            clip = clips[k % len(clips)][: frames - written]
            for frame in clip:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    container.mux(packet)
            written += len(clip)
            k += 1
        for packet in stream.encode():
            container.mux(packet)
    return path


def build_ov_05b(out: Path, vision_layers: int, llm_layers: int) -> Path:
    """LLaVA-OneVision-0.5B's widths, random weights, ``vision_layers`` SigLIP and ``llm_layers`` Qwen2 layers.

    Built by fastvid's one builder at full size from the published LLaVA-OneVision files it ships, with the
    0.5B's LLM widths and the depths asked for written into a copy of the config (float32, for the CPU).
    """
    import shutil
    import tempfile

    from fastvid_cli.tiny import ARCHITECTURES
    from fastvid_cli.tiny.write import build_from_config

    if not (out / "config.json").exists():
        with tempfile.TemporaryDirectory() as tmp:
            real = Path(tmp) / "published"
            shutil.copytree(ARCHITECTURES["llava-onevision"], real)
            config = json.loads((real / "config.json").read_text())
            text = {"num_hidden_layers": llm_layers, "torch_dtype": "float32", "tie_word_embeddings": True}
            config["text_config"] |= OV_05B_TEXT | text  # Qwen2-0.5B ties its LM head to the embeddings
            config["vision_config"] |= {"num_hidden_layers": vision_layers}
            config |= {"torch_dtype": "float32", "tie_word_embeddings": True}
            (real / "config.json").write_text(json.dumps(config))
            build_from_config(real, out, full_size=True, device="cpu")
    return out


PEAK_WRAPPER = """
import atexit, os, re, runpy, sys
def _peak():
    with open("/proc/self/status") as f:
        kib = int(re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1))
    with open(os.environ["FASTVID_PEAK_FILE"], "w") as out:
        out.write(str(kib))
atexit.register(_peak)
sys.argv = ["fastvid", *sys.argv[1:]]
runpy.run_module("fastvid_cli", run_name="__main__")
"""
"""Runs ``fastvid`` and writes the process's peak resident set (VmHWM, KiB) at exit. VmHWM starts
afresh at exec, unlike ``ru_maxrss``, which keeps the parent's size at fork."""


def measure(model: str, clip: Path, frames: int, retention: float, vision_batch: int | None) -> dict:
    """One ``fastvid ask --json`` in its own process: its JSON, wall time (s) and peak RSS (MiB, VmHWM)."""
    args = [
        "ask",
        str(clip),
        QUESTION,
        "--model",
        model,
        "--frames",
        str(frames),
        "--retention",
        str(retention),
        "--device",
        "cpu",
        "--no-baseline",
        "--max-new-tokens",
        "8",
        "--json",
    ]
    if vision_batch:
        args += ["--vision-batch", str(vision_batch)]
    peak_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"fastvid-peak-{os.getpid()}"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_WRAPPER, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FASTVID_PEAK_FILE": str(peak_file)},
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise SystemExit(f"fastvid ask failed ({model}, {frames} frames): {last}")
    peak = int(peak_file.read_text()) / 1024
    peak_file.unlink()
    return {"result": json.loads(proc.stdout), "wall_s": wall, "peak_rss_mib": peak}


def tflops_7b(video_tokens: int) -> float:
    """Table 5 prefill TFLOPs of ``video_tokens`` video tokens on LLaVA-OneVision-7B's LLM."""
    from fastvid_cli.flops import table5_tflops
    from fastvid_cli.models.geometry import known_geometry

    return table5_tflops(video_tokens, known_geometry("llava-hf/llava-onevision-qwen2-7b-ov-hf").llm)


def row_of(model: str, frames: int, run: dict) -> dict:
    r = run["result"]
    t, tok = r["timing"], r["tokens"]
    return {
        "model": model,
        "frames": frames,
        "video_tokens_before": tok["video_before"],
        "video_tokens_after": tok["video_after"],
        "segments": len(r["segments"]),
        "tflops_run_model": r["flops"]["table5"]["after"],
        "tflops_7b": tflops_7b(tok["video_after"]),
        "vanilla_tflops_7b": tflops_7b(tok["video_before"]),
        "peak_rss_mib": run["peak_rss_mib"],
        "wall_s": run["wall_s"],
        **{k: t[k] for k in ("decode_ms", "preprocess_ms", "vision_ms", "pruning_ms", "prefill_ms", "ttft_ms")},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--models",
        nargs="+",
        default=["tiny-random", "ov-0.5b"],
        choices=["tiny-random", "ov-0.5b", "tiny-random-qwen3-vl", "tiny-random-qwen3.5"],
    )
    ap.add_argument("--frames", nargs="+", type=int, default=[32, 256, 1024])
    ap.add_argument("--retention", type=float, default=0.1)
    ap.add_argument("--vision-batch", type=int, default=None, help="frames per chunk of the streaming encode [fastvid's default]")
    ap.add_argument("--vision-layers", type=int, default=1)
    ap.add_argument("--llm-layers", type=int, default=2)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "fastvid-long-video")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "long-video-cpu.json")
    args = ap.parse_args(argv)

    clip = make_long_clip(args.work / "long_clip.mp4", frames=max(2400, max(args.frames)))
    rows, targets = [], []
    for name in args.models:
        model = (
            name
            if name.startswith("tiny-random")
            else str(
                build_ov_05b(args.work / f"ov-0.5b-{args.vision_layers}v{args.llm_layers}l", args.vision_layers, args.llm_layers)
            )
        )
        runs = {}
        for frames in args.frames:
            print(f"{name}: ask at {frames} frames...", file=sys.stderr, flush=True)
            runs[frames] = measure(model, clip, frames, args.retention, args.vision_batch)
            rows.append(row_of(name, frames, runs[frames]))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        low, high = min(runs), max(runs)
        if high > low:
            dim = runs[high]["result"]["flops"]["geometry"]["hidden"]
            per_token = runs[high]["result"]["tokens"]["tokens_per_frame"]
            pooled_mib = high * per_token * dim * 4 / 2**20
            limit = 2 * runs[low]["peak_rss_mib"] + pooled_mib
            targets.append(
                {
                    "model": name,
                    "target": f"peak RSS at {high} frames <= 2 x at {low} + pooled tokens ({pooled_mib:.0f} MiB)",
                    "measured_mib": runs[high]["peak_rss_mib"],
                    "limit_mib": limit,
                    "met": runs[high]["peak_rss_mib"] <= limit,
                }
            )
    by_frames = {r["frames"]: r for r in rows}
    if 32 in by_frames and 256 in by_frames:
        after, vanilla = by_frames[256]["tflops_7b"], by_frames[32]["vanilla_tflops_7b"]
        targets.append(
            {
                "model": "LLaVA-OneVision-7B geometry",
                "target": f"TFLOPs at 256 frames, R {args.retention:g} < vanilla at 32",
                "measured": after,
                "limit": vanilla,
                "met": after < vanilla,
            }
        )
    report = {
        "device": "cpu",
        "threads": int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1)),
        "machine": platform.processor() or platform.machine(),
        "clip": {"frames": max(2400, max(args.frames)), "fps": 25, "size": "640x360", "from": "the sample clips, cycled"},
        "retention": args.retention,
        "vision_batch": args.vision_batch,
        "vision_layers": args.vision_layers,
        "llm_layers": args.llm_layers,
        "rows": rows,
        "targets": targets,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown(report))
    return 0 if all(t["met"] for t in targets) else 1


def markdown(report: dict) -> str:
    """The long-video table of docs/long-videos.md."""
    lines = [
        "| model | frames | video tokens (kept / all) | TFLOPs, this model | TFLOPs, 7B geometry (vanilla) | peak RSS | decode | preprocess | vision | pruning | prefill | TTFT |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['model']} | {r['frames']} | {r['video_tokens_after']:,} / {r['video_tokens_before']:,} | {r['tflops_run_model']:.3f} | "
            f"{r['tflops_7b']:.1f} ({r['vanilla_tflops_7b']:.1f}) | {r['peak_rss_mib']:,.0f} MiB | {r['decode_ms'] / 1e3:.1f} s | "
            f"{r['preprocess_ms'] / 1e3:.1f} s | {r['vision_ms'] / 1e3:.1f} s | {r['pruning_ms']:.0f} ms | {r['prefill_ms'] / 1e3:.2f} s | {r['ttft_ms'] / 1e3:.1f} s |"
        )
    lines.append("")
    for t in report["targets"]:
        lines.append(
            f"- {t['model']}: {t['target']}: {'met' if t['met'] else 'NOT met'} "
            f"({', '.join(f'{k} {v:,.2f}' for k, v in t.items() if isinstance(v, float))})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
