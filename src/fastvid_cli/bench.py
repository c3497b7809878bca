"""Benchmarks: pruning time of each method, LLM prefill vanilla vs pruned, peak memory, and TTFT.

The LLM is built with random weights from a model's geometry (no download); ``layers`` runs only
its first K decoder layers, and prefill times are then also scaled by L / K to the full model
(said so in the result). Each figure is the median of ``repeats`` runs after ``warmup`` runs,
timed with CUDA events on a GPU and ``perf_counter`` on the CPU. :func:`run_pruning_sweep` times
the pruning alone at several frame counts (no LLM).
"""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import __version__
from .errors import InputError
from .models.geometry import ModelGeometry
from .pruning import make_method, method_label, tokens_per_frame_kept

TEXT_TOKENS = 24
"""Text tokens around the video in the benchmark prompt (LLaVA-OneVision's chat template and a short question)."""
FRAME_FEATURE_DIM = 1152
"""Width of the frame features given to the pruning methods (SigLIP so400m)."""
SCENES = 4
"""Scenes in the synthetic frame features, so that DySeg finds scene cuts as on a real video."""
QUESTION_TOKENS = 16
"""Tokens of one question and the assistant turn after the video (the part a further question prefills)."""


@dataclass
class BenchSettings:
    """What to measure.

    Attributes
    ----------
    layers : int or None
        Decoder layers built (None: all of the model's).
    frames : int or None
        F (None: the model's default).
    scene_frames : int or None
        Frames per scene of the synthetic video (None: :data:`SCENES` scenes over the whole video).
    retentions : list of float
    methods : list of str
        Method specs for the pruning timings.
    repeats, warmup : int
    device : torch.device
    dtype : torch.dtype
    questions : int
        Questions per video: with more than one, the further questions' prefill on the video's KV
        cache is timed against the first question's.
    """

    layers: int | None = None
    frames: int | None = None
    scene_frames: int | None = None
    retentions: list[float] = field(default_factory=lambda: [0.1, 0.25])
    methods: list[str] = field(default_factory=lambda: ["fastvid", "uniform", "visionzip", "dycoke"])
    repeats: int = 3
    warmup: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: torch.dtype = torch.float32
    questions: int = 1

    def __post_init__(self) -> None:
        if self.layers is not None and self.layers < 1:
            raise InputError(f"`layers` must be at least 1, got {self.layers}")
        if self.repeats < 1 or self.warmup < 0:
            raise InputError("`repeats` must be >= 1 and `warmup` >= 0")
        if self.scene_frames is not None and self.scene_frames < 1:
            raise InputError(f"`scene_frames` must be at least 1, got {self.scene_frames}")


def device_name(device: torch.device) -> str:
    """Human name of the device: the GPU's model, or the CPU's model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} ({torch.get_num_threads()} threads)"


def device_slug(device: torch.device) -> str:
    """File-name form of :func:`device_name`, e.g. ``nvidia-h100-80gb-hbm3`` or ``cpu-2-threads``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu-{torch.get_num_threads()}-threads"
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-").replace("--", "-")


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak`, in MiB.

    GPU: ``torch.cuda.max_memory_allocated``. CPU: the process's peak resident set (Linux: VmHWM,
    which :func:`reset_peak` resets to the current RSS; elsewhere the lifetime peak, which only grows).
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def memory_in_use_mib(device: torch.device) -> float | None:
    """Memory held now, in MiB: ``torch.cuda.memory_allocated`` on a GPU, the resident set on a CPU (Linux; else None)."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    rss = _proc_status_kib("VmRSS")
    return None if rss is None else rss / 2**10


def reset_peak(device: torch.device) -> None:
    """Start a new peak for :func:`peak_memory_mib` (CPU: Linux only, writes 5 to /proc/self/clear_refs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field_name + ":"))
    except (OSError, StopIteration, ValueError):
        return None


def measure_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; milliseconds of each timed run."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def synthetic_video(geometry: ModelGeometry, frames: int, device, dtype, seed: int = 0, scene_frames: int | None = None):
    """Random (F, N, D) tokens, (F, 1152) frame features, (F, N) saliency.

    The frame features have :data:`SCENES` scenes over the video, or, with ``scene_frames``, a
    scene every ``scene_frames`` frames (so that DySeg's segments keep their length as F grows).
    """
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randn(frames, geometry.tokens_per_frame, geometry.llm.hidden, generator=gen)
    num_scenes = SCENES if scene_frames is None else -(-frames // scene_frames)
    scenes = torch.randn(num_scenes, FRAME_FEATURE_DIM, generator=gen)
    scene_of_frame = torch.arange(frames) * SCENES // frames if scene_frames is None else torch.arange(frames) // scene_frames
    features = scenes[scene_of_frame] + 0.2 * torch.randn(frames, FRAME_FEATURE_DIM, generator=gen)
    saliency = torch.randn(frames, geometry.tokens_per_frame, generator=gen).softmax(-1)
    return tokens.to(device, dtype), features.to(device, dtype), saliency.to(device)


def build_llm(geometry: ModelGeometry, layers: int, device, dtype):
    """A Qwen2 decoder of the model's geometry with random weights and ``layers`` layers (no embeddings needed)."""
    from transformers import Qwen2Config, Qwen2Model

    llm = geometry.llm
    config = Qwen2Config(
        hidden_size=llm.hidden,
        intermediate_size=llm.intermediate,
        num_hidden_layers=layers,
        num_attention_heads=geometry.heads,
        num_key_value_heads=llm.kv_dim // (llm.hidden // geometry.heads),
        vocab_size=16,
        max_position_embeddings=32768,
    )
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2Model(config).to(dtype).eval()
    return model


def run_bench(
    geometry: ModelGeometry, settings: BenchSettings, on_stage: Callable[[str], None] | None = None
) -> dict:
    """Measure pruning and prefill on the model's geometry with random weights.

    Returns
    -------
    dict
        ``environment`` (device, versions), ``settings``, ``pruning`` rows (method, retention,
        tokens kept, median ms, all runs, peak MiB), ``prefill`` rows (retention 1 = vanilla;
        tokens, median ms measured, ms scaled to all layers, speedup, peak MiB), and ``targets``.
    """
    notify = on_stage or (lambda stage: None)
    device, dtype = settings.device, settings.dtype
    frames = geometry.token_frames(settings.frames or geometry.frames)  # Qwen2.5-VL: 2 sampled frames per token frame
    layers = settings.layers or geometry.llm.layers
    scale = geometry.llm.layers / layers
    try:
        configs = [(spec, make_method(spec, r)) for spec in settings.methods for r in settings.retentions]
    except ValueError as err:
        raise InputError(str(err)) from None
    tokens, features, saliency = synthetic_video(geometry, frames, device, dtype, scene_frames=settings.scene_frames)

    pruning = []
    for spec, config in configs:
        notify(f"pruning: {method_label(config)}, R = {config.retention_ratio:g}")
        pruning.append(time_pruning(spec, config, tokens, features, saliency, settings))

    notify(f"building a random {layers}-layer LLM of {geometry.name}")
    llm = build_llm(geometry, layers, device, dtype)
    prefill = []
    lengths = [(1.0, frames * geometry.tokens_per_frame)] + [
        (r, frames * tokens_per_frame_kept(geometry.tokens_per_frame, r)) for r in settings.retentions
    ]
    extra = geometry.extra_slots + frames * geometry.newlines_per_frame + TEXT_TOKENS  # newlines: as if every row kept one
    shortest = min(n for _, n in lengths) + extra
    warm = torch.randn(1, shortest, geometry.llm.hidden, device=device, dtype=dtype)
    with torch.inference_mode():
        for _ in range(settings.warmup):  # one-off costs once, on the cheapest prompt
            llm(inputs_embeds=warm, attention_mask=torch.ones(1, shortest, dtype=torch.long, device=device), use_cache=True)
        for retention, video_tokens in lengths:
            notify(f"prefill: {'vanilla' if retention == 1.0 else f'R = {retention:g}'} ({video_tokens + extra} tokens)")
            length = video_tokens + extra
            embeds = torch.randn(1, length, geometry.llm.hidden, device=device, dtype=dtype)
            mask = torch.ones(1, length, dtype=torch.long, device=device)
            reset_peak(device)
            times = measure_ms(lambda: llm(inputs_embeds=embeds, attention_mask=mask, use_cache=True), device,
                               settings.repeats, 0)
            median = statistics.median(times)
            prefill.append({
                "retention": retention, "video_tokens": video_tokens, "prompt_tokens": length,
                "median_ms": median, "runs_ms": times, "full_model_ms": median * scale, "peak_mib": peak_memory_mib(device),
            })
        questions = _questions(llm, lengths, extra, geometry, settings, scale, notify) if settings.questions > 1 else []
    vanilla = prefill[0]["median_ms"]
    for row in prefill:
        row["speedup"] = vanilla / row["median_ms"]
    return {
        "environment": environment(device, dtype),
        "settings": {
            "model": geometry.name, "geometry": geometry.to_dict(), "token_frames": frames, "layers_run": layers,
            "layers_full": geometry.llm.layers, "prefill_scaled_by": scale, "text_tokens": TEXT_TOKENS,
            "retentions": settings.retentions, "methods": settings.methods, "repeats": settings.repeats,
            "warmup": settings.warmup, "questions": settings.questions, "weights": "random (from the geometry), no download",
            "inputs": synthetic_inputs(settings.scene_frames),
        },
        "pruning": pruning,
        "prefill": prefill,
        "questions": questions,
        "targets": targets(device, pruning, prefill, questions),
    }


def _questions(llm, lengths, extra: int, geometry: ModelGeometry, settings: BenchSettings, scale: float, notify) -> list[dict]:
    """First question (prefix and question prefill) against further ones (the question on the prefix's cache).

    Returns
    -------
    list of dict
        Per retention: ``first_ms`` and ``further_ms`` (medians, scaled to all layers), their ratio,
        and the token counts.
    """
    device, dtype, hidden = settings.device, settings.dtype, geometry.llm.hidden
    rows = []
    for retention, video_tokens in lengths:
        notify(f"questions: {'vanilla' if retention == 1.0 else f'R = {retention:g}'}, {settings.questions} questions")
        prefix_length = video_tokens + extra - QUESTION_TOKENS
        prefix = torch.randn(1, prefix_length, hidden, device=device, dtype=dtype)
        question = torch.randn(1, QUESTION_TOKENS, hidden, device=device, dtype=dtype)
        whole_mask = torch.ones(1, prefix_length + QUESTION_TOKENS, dtype=torch.long, device=device)

        def first():
            out = llm(inputs_embeds=prefix, attention_mask=whole_mask[:, :prefix_length], use_cache=True)
            llm(inputs_embeds=question, attention_mask=whole_mask, past_key_values=out.past_key_values, use_cache=True)
            out.past_key_values.crop(-QUESTION_TOKENS)
            return out.past_key_values

        first_ms = measure_ms(first, device, settings.repeats, 0)
        cache = first()

        def further():
            llm(inputs_embeds=question, attention_mask=whole_mask, past_key_values=cache, use_cache=True)
            cache.crop(-QUESTION_TOKENS)

        further_ms = measure_ms(further, device, settings.questions - 1, 0)
        first_med, further_med = statistics.median(first_ms) * scale, statistics.median(further_ms) * scale
        rows.append({
            "retention": retention, "prefix_tokens": prefix_length, "question_tokens": QUESTION_TOKENS,
            "first_ms": first_med, "further_ms": further_med, "further_share": further_med / first_med,
            "further_runs_ms": [t * scale for t in further_ms],
        })
    return rows


def synthetic_inputs(scene_frames: int | None) -> str:
    """How :func:`synthetic_video` made the inputs, for the result file."""
    scenes = f"{SCENES} synthetic scenes" if scene_frames is None else f"a synthetic scene every {scene_frames} frames"
    return f"random tokens; frame features with {scenes}; softmax saliency"


def time_pruning(spec: str, config, tokens: torch.Tensor, features: torch.Tensor, saliency: torch.Tensor,
                 settings: BenchSettings) -> dict:
    """Time one configured method on (F, N, D) tokens: one untimed run, then :func:`measure_ms`.

    Returns
    -------
    dict
        method, spec, retention, shape, tokens kept, median and all runs (ms), segments and the
        longest one (frames), peak MiB during the runs and MiB in use before them (see
        :func:`peak_memory_mib`; CPU: the whole process, inputs included).
    """
    device = settings.device
    baseline = memory_in_use_mib(device)
    reset_peak(device)
    kept = config(tokens, features, saliency)
    times = measure_ms(lambda: config(tokens, features, saliency), device, settings.repeats, settings.warmup)
    return {
        "method": method_label(config), "spec": spec, "retention": config.retention_ratio, "shape": list(tokens.shape),
        "tokens_kept": int(kept.indices.numel()), "median_ms": statistics.median(times), "runs_ms": times,
        "peak_mib": peak_memory_mib(device), "baseline_mib": baseline, "segments": len(kept.segment_lengths),
        "longest_segment": max(kept.segment_lengths),
    }


def run_pruning_sweep(
    geometry: ModelGeometry, settings: BenchSettings, frame_counts: list[int],
    on_stage: Callable[[str], None] | None = None,
) -> dict:
    """Pruning time and peak memory of each method at several frame counts (no LLM).

    For every F of ``frame_counts`` (token frames for Qwen2.5-VL, as in :func:`run_bench`) the
    synthetic video is made afresh and every (method, retention) pair is timed with
    :func:`time_pruning`.

    Returns
    -------
    dict
        ``environment``, ``settings``, ``sweep`` rows (those of :func:`time_pruning` plus
        ``frames`` and ``token_frames``), and ``targets``: FastVID's time at the most frames over its time at the
        fewest, against 1.25 x the ratio of frame counts (40x for 1024 vs 32 frames).

    Raises
    ------
    InputError
        A frame count below 1, or a bad method spec.
    """
    notify = on_stage or (lambda stage: None)
    if not frame_counts or min(frame_counts) < 1:
        raise InputError(f"`frames` must all be at least 1, got {frame_counts}")
    try:
        configs = [(spec, make_method(spec, r)) for spec in settings.methods for r in settings.retentions]
    except ValueError as err:
        raise InputError(str(err)) from None
    device, dtype = settings.device, settings.dtype
    rows = []
    for count in frame_counts:
        frames = geometry.token_frames(count)
        notify(f"making a synthetic video of {frames} frames")
        tokens, features, saliency = synthetic_video(geometry, frames, device, dtype, scene_frames=settings.scene_frames)
        for spec, config in configs:
            notify(f"{frames} frames: {method_label(config)}, R = {config.retention_ratio:g}")
            rows.append({"frames": count, "token_frames": frames, **time_pruning(spec, config, tokens, features, saliency, settings)})
        del tokens, features, saliency
    return {
        "environment": environment(device, dtype),
        "settings": {
            "model": geometry.name, "geometry": geometry.to_dict(), "frames": frame_counts,
            "retentions": settings.retentions, "methods": settings.methods, "repeats": settings.repeats,
            "warmup": settings.warmup, "scene_frames": settings.scene_frames, "inputs": synthetic_inputs(settings.scene_frames),
            "peak_memory": "GPU: torch.cuda.max_memory_allocated; CPU: peak resident set of the process (inputs included), reset before each method",
        },
        "sweep": rows,
        "targets": sweep_targets(rows),
    }


def sweep_targets(rows: list[dict]) -> dict:
    """FastVID's pruning time linear in frames: time at the most frames / time at the fewest <= 1.25 x their ratio."""
    fastvid = [r for r in rows if r["spec"] == "fastvid"]
    if not fastvid:
        return {"note": "the linearity target needs fastvid among the methods"}
    retention = fastvid[0]["retention"]
    fastvid = [r for r in fastvid if r["retention"] == retention]
    low, high = min(fastvid, key=lambda r: r["frames"]), max(fastvid, key=lambda r: r["frames"])
    if low["frames"] == high["frames"]:
        return {"note": "the linearity target needs two frame counts"}
    ratio, allowed = high["median_ms"] / low["median_ms"], 1.25 * high["frames"] / low["frames"]
    return {"fastvid_time_linear_in_frames": {
        "value": ratio, "target": allowed, "met": ratio <= allowed, "retention": retention,
        "how": f"FastVID pruning median at {high['frames']} frames / at {low['frames']} frames, at most 1.25 x {high['frames']}/{low['frames']}",
    }}


def targets(device: torch.device, pruning: list[dict], prefill: list[dict], questions: list[dict] | None = None) -> dict:
    """The issue's targets, read from this run: CPU pruning share, GPU pruning ms and speedup at R = 0.1,
    and a further question's cost (at most 5 % of the first question's prefill at R = 0.1)."""
    fastvid = next((p for p in pruning if p["spec"] == "fastvid" and p["retention"] == 0.1), None)
    pruned = next((p for p in prefill if p["retention"] == 0.1), None)
    out: dict = {}
    if fastvid is None or pruned is None:
        return {"note": "targets need fastvid at R = 0.1 among the methods and retentions"}
    share = fastvid["median_ms"] / pruned["full_model_ms"]
    out["fastvid_pruning_share_of_pruned_prefill"] = {
        "value": share, "target": 0.03, "met": share <= 0.03,
        "how": "FastVID pruning median / pruned prefill at R = 0.1 scaled to all layers",
    }
    further = next((q for q in questions or [] if q["retention"] == 0.1), None)
    if further is not None:
        out["further_question_share"] = {
            "value": further["further_share"], "target": 0.05, "met": further["further_share"] <= 0.05,
            "how": "a further question's prefill on the video's KV cache / the first question's prefill, R = 0.1",
        }
    if device.type == "cuda":
        out["fastvid_pruning_ms"] = {"value": fastvid["median_ms"], "target": 2.0, "met": fastvid["median_ms"] < 2.0}
        out["prefill_speedup_at_0.1"] = {"value": pruned["speedup"], "target": 8.0, "met": pruned["speedup"] >= 8.0}
    return out


def environment(device: torch.device, dtype: torch.dtype) -> dict:
    """Device, dtype and versions, for the result file."""
    import transformers

    env = {
        "device": device_name(device), "device_type": device.type, "dtype": str(dtype).removeprefix("torch."),
        "fastvid": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if device.type == "cuda":
        env["cuda"] = torch.version.cuda
    return env


def ttft_on_video(model, video_path: str, question: str, frames: int | None, retentions: list[float], repeats: int,
                  questions: int = 1) -> list[dict]:
    """Time to first token on a real video, vanilla and FastVID at each retention (median of ``repeats``),
    on the pipeline ``ask`` uses.

    Each run opens the video (decode, preprocessing, vision), prunes (not for vanilla), prefills
    the prefix and answers ``question`` up to its first token; with ``questions`` > 1 the same
    session then answers ``questions - 1`` more (the same question), each timed from its start.
    FastVID uses the model's release defaults besides R (Qwen2.5-VL: tau 0.84, split_tau 0.95).

    Returns
    -------
    list of dict
        ``retention`` (1 = vanilla), median ms of each stage, ``ttft_ms`` (measured, first question)
        and ``further_ttft_ms`` (median over the further questions; None with one question).
    """
    from .pipeline import VideoSession
    from .pruning import FastVIDConfig

    rows = []
    for retention in [1.0, *retentions]:
        method = None if retention >= 1.0 else FastVIDConfig(**{**model.fastvid_defaults, "retention_ratio": retention})
        runs = []
        for i in range(repeats + 1):  # the first run warms up
            session = VideoSession.open(model, video_path, frames)
            pruned = session.prune(method)
            pruned.prefill()
            answers = [pruned.answer(question, 1) for _ in range(questions)]
            if i:
                runs.append({**{f"{k}_ms": v for k, v in session.ms.items()}, "pruning_ms": pruned.pruning_ms,
                             "prefill_ms": pruned.prefill_ms + answers[0].prefill_ms,
                             "ttft_ms": session.ttft_ms(answers[0].first_token_at),
                             "further_ttft_ms": statistics.median(a.prefill_ms for a in answers[1:]) if questions > 1 else None})
        row = {"retention": retention}
        for key in runs[0]:
            values = [r[key] for r in runs if r[key] is not None]
            row[key] = statistics.median(values) if values else None
        rows.append(row)
    return rows


__all__ = ["BenchSettings", "device_name", "device_slug", "run_bench", "run_pruning_sweep", "ttft_on_video"]
