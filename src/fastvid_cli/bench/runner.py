"""Benchmarks, the measurements: pruning time of each method, LLM prefill vanilla vs pruned, peak memory, and TTFT.

The LLM is built with random weights from a model's geometry (no download); ``layers`` runs only
its first K decoder layers, and prefill times are then also scaled by L / K to the full model
(said so in the result). A hybrid model's K is rounded up to whole periods of its layer pattern
(Qwen3.5: 3 Gated DeltaNet layers, then 1 attention layer), so the layers run are of every type in the
model's proportion (:func:`layers_run`). Each figure is the median of ``repeats`` runs after ``warmup`` runs,
timed with CUDA events on a GPU and ``perf_counter`` on the CPU. :func:`run_pruning_sweep` times
the pruning alone at several frame counts (no LLM).

What a run reports is :mod:`fastvid_cli.bench.results`' (its dataclasses and targets); the device's
name and memory are :mod:`fastvid_cli.bench.device`'s.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from ..engine.pipeline import VideoSession
from ..engine.timing import measure_ms
from ..errors import InputError
from ..flops import prefill_macs
from ..models.geometry_base import ModelGeometry
from ..models.registry import adapter_class
from ..pruning import make_method, method_for_family, method_label, tokens_per_frame_kept
from .device import environment, memory_in_use_mib, peak_memory_mib, reset_peak
from .results import (
    BenchResult,
    BenchRunSettings,
    FrameCountTiming,
    PrefillTiming,
    PruningTiming,
    QuestionTiming,
    SweepResult,
    SweepRunSettings,
    TTFTRow,
    sweep_targets,
    targets,
)

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
        cache is timed against the first question's TTFT (vision encoder, pruning, prefill).
    vision_layers : int or None
        SigLIP layers run for that TTFT (None: the share of its 26 the LLM runs of its own).
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
    vision_layers: int | None = None

    def __post_init__(self) -> None:
        if self.layers is not None and self.layers < 1:
            raise InputError(f"`layers` must be at least 1, got {self.layers}")
        if self.repeats < 1 or self.warmup < 0:
            raise InputError("`repeats` must be >= 1 and `warmup` >= 0")
        if self.scene_frames is not None and self.scene_frames < 1:
            raise InputError(f"`scene_frames` must be at least 1, got {self.scene_frames}")


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


def layer_pattern(geometry: ModelGeometry) -> list[str]:
    """The type of each decoder layer (``linear_attention``, ``full_attention``), from the LLM config's
    ``layer_types``; empty for a model that does not list them (every layer the same)."""
    types = (geometry.text_config or {}).get("layer_types") or []
    return [str(t) for t in types]


def layers_run(geometry: ModelGeometry, asked: int | None) -> tuple[int, str | None]:
    """The decoder layers a benchmark builds for ``--layers asked``, and a note when that is not ``asked``.

    A model whose layers are all of one type runs ``asked`` (None: all of them). A hybrid one (Qwen3.5:
    ``layer_types`` repeats 3 ``linear_attention``, 1 ``full_attention``) runs ``asked`` rounded up to whole
    periods of its pattern, at most all its layers: every type is timed, in the model's proportion, so the
    prefill scaled by L / K is the whole model's (a prefix of Gated DeltaNet layers alone is not, and
    transformers' cache cannot run one: it needs an attention layer).

    Returns
    -------
    layers : int
        K, the layers built and timed.
    note : str or None
        Says K and why, when it differs from ``asked``.
    """
    total = geometry.llm.layers
    if asked is None:
        return total, None
    types = layer_pattern(geometry)
    if len(set(types)) < 2:
        return min(asked, total), None
    period = next(p for p in range(1, len(types) + 1) if all(t == types[i % p] for i, t in enumerate(types)))
    layers = min(-(-asked // period) * period, total)
    if layers == asked:
        return layers, None
    kinds = " + ".join(f"{types[:period].count(t)} {t}" for t in dict.fromkeys(types[:period]))
    return layers, (
        f"{geometry.name} is hybrid (its layers repeat {kinds}): {layers} layers run, not {asked}, "
        f"whole periods so that every layer type is timed; the prefill is scaled to its {total}"
    )


def build_llm(geometry: ModelGeometry, layers: int, device, dtype):
    """A random-weight decoder of the model's LLM with ``layers`` layers (no embeddings needed).

    transformers' own text model of the geometry's LLM config (``AutoModel`` of its ``model_type``:
    Qwen2, Qwen2.5-VL's, Qwen3-VL's dense or MoE ...), so head_dim, q/k norms and experts are the
    real ones; a geometry known only by its shape gets a Qwen2 decoder of that shape.
    """
    from transformers import AutoConfig, AutoModel, Qwen2Config

    llm = geometry.llm
    if geometry.text_config is not None:
        fields = dict(geometry.text_config) | {"num_hidden_layers": layers, "vocab_size": 16}
        if fields.get("layer_types"):
            fields["layer_types"] = fields["layer_types"][:layers]
        for key in ("architectures", "transformers_version", "dtype", "torch_dtype"):
            fields.pop(key, None)
        fields |= {key: None for key in fields if key.endswith("_token_id")}  # ids of the real vocabulary
        config = AutoConfig.for_model(fields.pop("model_type"), **fields)
    else:
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
        model = AutoModel.from_config(config).to(dtype).eval()
    return model


def time_vision(geometry: ModelGeometry, frames: int, scale: float, settings: BenchSettings, notify) -> float | None:
    """Median ms of the model's vision tower (random weights, the family's ``vision_benchmark``) on
    ``frames`` frames, scaled to its full depth.

    It runs its depth / ``scale`` layers (at least one), the share of the LLM's layers the benchmark
    runs, and scales the time back by the same factor. None for a family that builds no tower here.
    """
    device, dtype = settings.device, settings.dtype
    tower = adapter_class(geometry.family).vision_benchmark(frames, settings.vision_layers, scale, device, dtype)
    if tower is None:
        return None
    notify(f"vision encoder: {tower.description}")
    with torch.inference_mode():
        times = measure_ms(tower.run, device, settings.repeats, settings.warmup)
    return statistics.median(times) * tower.total_layers / tower.layers


def run_bench(
    geometry: ModelGeometry,
    settings: BenchSettings,
    on_stage: Callable[[str], None] | None = None,
    build: Callable[..., Any] | None = None,
) -> BenchResult:
    """Measure pruning and prefill on the model's geometry with random weights.

    ``build(geometry, layers, device, dtype)`` makes the LLM whose prefill is timed (default
    :func:`build_llm`, a Qwen2 decoder): a module taking ``inputs_embeds`` (1, L, D),
    ``attention_mask`` (1, L) and ``use_cache`` (``benchmarks/gpu_suite.py`` passes Qwen3-VL's and
    Qwen3.5's text models, and FlashAttention-2).

    Returns
    -------
    BenchResult
        The environment, the settings, a :class:`PruningTiming` per (method, retention), a
        :class:`PrefillTiming` per prompt length (vanilla first), the :class:`QuestionTiming` rows
        (with ``settings.questions`` > 1), and the targets; no TTFT (see :func:`ttft_on_video`).
    """
    notify = on_stage or (lambda stage: None)
    device, dtype = settings.device, settings.dtype
    frames = geometry.token_frames(settings.frames or geometry.frames)  # Qwen2.5-VL: 2 sampled frames per token frame
    layers, _ = layers_run(geometry, settings.layers)
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
    llm = (build or build_llm)(geometry, layers, device, dtype)
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
            times = measure_ms(
                partial(llm, inputs_embeds=embeds, attention_mask=mask, use_cache=True), device, settings.repeats, 0
            )
            median = statistics.median(times)
            macs = prefill_macs(length, geometry.llm, causal=True)
            by_type = {"full_attention": macs.full_attention, "linear_attention": macs.linear_attention, "mlp": macs.mlp}
            prefill.append(
                PrefillTiming(
                    retention=retention,
                    video_tokens=video_tokens,
                    prompt_tokens=length,
                    median_ms=median,
                    runs_ms=times,
                    full_model_ms=median * scale,
                    peak_mib=peak_memory_mib(device),
                    tflops=2 * sum(by_type.values()) / 1e12,
                    tflops_by_layer_type={name: 2 * value / 1e12 for name, value in by_type.items()},
                )
            )
        questions = _questions(llm, lengths, extra, geometry, settings, scale, notify) if settings.questions > 1 else []
    if questions:
        del llm
        vision_ms = time_vision(geometry, settings.frames or geometry.frames, scale, settings, notify)
        fastvid_ms = {p.retention: p.median_ms for p in pruning if p.spec == "fastvid"}
        for row in questions:
            row.vision_ms = vision_ms
            row.pruning_ms = 0.0 if row.retention == 1.0 else fastvid_ms.get(row.retention, 0.0)
            row.first_ttft_ms = (vision_ms or 0.0) + row.pruning_ms + row.first_ms
            row.further_share = row.further_ms / row.first_ttft_ms
    vanilla = prefill[0].median_ms
    for step in prefill:
        step.speedup = vanilla / step.median_ms
    return BenchResult(
        environment=environment(device, dtype),
        settings=BenchRunSettings(
            model=geometry.name,
            geometry=geometry,
            token_frames=frames,
            layers_run=layers,
            layers_full=geometry.llm.layers,
            prefill_scaled_by=scale,
            text_tokens=TEXT_TOKENS,
            retentions=settings.retentions,
            methods=settings.methods,
            repeats=settings.repeats,
            warmup=settings.warmup,
            questions=settings.questions,
            weights="random (from the geometry), no download",
            inputs=synthetic_inputs(settings.scene_frames),
        ),
        pruning=pruning,
        prefill=prefill,
        questions=questions,
        targets=targets(device, pruning, prefill, questions),
    )


def _questions(
    llm, lengths, extra: int, geometry: ModelGeometry, settings: BenchSettings, scale: float, notify
) -> list[QuestionTiming]:
    """First question (prefix and question prefill) against further ones (the question on the prefix's cache).

    Returns
    -------
    list of QuestionTiming
        Per prompt length of ``lengths`` (vanilla first).
    """
    recurrent = "linear_attention" in layer_pattern(geometry)  # Gated DeltaNet: its states cannot be cropped
    rows = []
    for retention, video_tokens in lengths:
        notify(f"questions: {'vanilla' if retention == 1.0 else f'R = {retention:g}'}, {settings.questions} questions")
        prefix = video_tokens + extra - QUESTION_TOKENS
        rows.append(_question_timing(llm, retention, prefix, geometry.llm.hidden, settings, scale, recurrent))
    return rows


def _question_timing(
    llm, retention: float, prefix_length: int, hidden: int, settings: BenchSettings, scale: float, recurrent: bool = False
) -> QuestionTiming:
    """The first and the further questions on one prompt of ``prefix_length`` tokens before the question (see :func:`_questions`).

    Each question runs on the prefix's cache as ``ask`` runs it (``ModelAdapter.question_cache``): the KV
    cache cropped back afterwards, or, for a model with ``recurrent`` layers (Gated DeltaNet: its states
    cannot be cropped), an exact copy of the prefix's cache per question, the copy timed with it.
    """
    device, dtype = settings.device, settings.dtype
    prefix = torch.randn(1, prefix_length, hidden, device=device, dtype=dtype)
    question = torch.randn(1, QUESTION_TOKENS, hidden, device=device, dtype=dtype)
    whole_mask = torch.ones(1, prefix_length + QUESTION_TOKENS, dtype=torch.long, device=device)

    def ask_on(cache) -> None:
        own = copy.deepcopy(cache) if recurrent else cache
        llm(inputs_embeds=question, attention_mask=whole_mask, cache=own, use_cache=True)
        if not recurrent:
            cache.crop(-QUESTION_TOKENS)

    def first():
        out = llm(inputs_embeds=prefix, attention_mask=whole_mask[:, :prefix_length], use_cache=True)
        ask_on(out.cache)
        return out.cache

    first_ms = measure_ms(first, device, settings.repeats, 0)
    cache = first()

    def further():
        ask_on(cache)

    further_ms = measure_ms(further, device, settings.questions - 1, 0)
    first_med, further_med = statistics.median(first_ms) * scale, statistics.median(further_ms) * scale
    return QuestionTiming(
        retention=retention,
        prefix_tokens=prefix_length,
        question_tokens=QUESTION_TOKENS,
        first_ms=first_med,
        further_ms=further_med,
        further_share=further_med / first_med,
        further_runs_ms=[t * scale for t in further_ms],
    )


def synthetic_inputs(scene_frames: int | None) -> str:
    """How :func:`synthetic_video` made the inputs, for the result file."""
    scenes = f"{SCENES} synthetic scenes" if scene_frames is None else f"a synthetic scene every {scene_frames} frames"
    return f"random tokens; frame features with {scenes}; softmax saliency"


def time_pruning(
    spec: str, config, tokens: torch.Tensor, features: torch.Tensor, saliency: torch.Tensor, settings: BenchSettings
) -> PruningTiming:
    """Time one configured method on (F, N, D) tokens: one untimed run, then :func:`measure_ms`.

    Peak MiB during the runs and MiB in use before them: see :func:`peak_memory_mib` (CPU: the
    whole process, inputs included).
    """
    device = settings.device
    baseline = memory_in_use_mib(device)
    reset_peak(device)
    kept = config(tokens, features, saliency)
    times = measure_ms(lambda: config(tokens, features, saliency), device, settings.repeats, settings.warmup)
    return PruningTiming(
        method=method_label(config),
        spec=spec,
        retention=config.retention_ratio,
        shape=list(tokens.shape),
        tokens_kept=int(kept.indices.numel()),
        median_ms=statistics.median(times),
        runs_ms=times,
        peak_mib=peak_memory_mib(device),
        baseline_mib=baseline,
        segments=len(kept.segment_lengths),
        longest_segment=max(kept.segment_lengths),
    )


def run_pruning_sweep(
    geometry: ModelGeometry,
    settings: BenchSettings,
    frame_counts: list[int],
    on_stage: Callable[[str], None] | None = None,
) -> SweepResult:
    """Pruning time and peak memory of each method at several frame counts (no LLM).

    For every F of ``frame_counts`` (token frames for Qwen2.5-VL, as in :func:`run_bench`) the
    synthetic video is made afresh and every (method, retention) pair is timed with
    :func:`time_pruning`.

    Returns
    -------
    SweepResult
        The environment, the settings, a :class:`FrameCountTiming` per (frame count, method,
        retention), and the targets: FastVID's time at the most frames over its time at the
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
            rows.append(FrameCountTiming(count, frames, time_pruning(spec, config, tokens, features, saliency, settings)))
        del tokens, features, saliency
    return SweepResult(
        environment=environment(device, dtype),
        settings=SweepRunSettings(
            model=geometry.name,
            geometry=geometry,
            frames=frame_counts,
            retentions=settings.retentions,
            methods=settings.methods,
            repeats=settings.repeats,
            warmup=settings.warmup,
            scene_frames=settings.scene_frames,
            inputs=synthetic_inputs(settings.scene_frames),
            peak_memory="GPU: torch.cuda.max_memory_allocated; CPU: peak resident set of the process (inputs included), reset before each method",
        ),
        sweep=rows,
        targets=sweep_targets(rows),
    )


def ttft_on_video(
    model, video_path: str, question: str, frames: int | None, retentions: list[float], repeats: int, questions: int = 1
) -> list[TTFTRow]:
    """Time to first token on a real video, vanilla and FastVID at each retention (median of ``repeats``),
    on the pipeline ``ask`` uses.

    Each run opens the video (decode, preprocessing, vision), prunes (not for vanilla), prefills
    the prefix and answers ``question`` up to its first token; with ``questions`` > 1 the same
    session then answers ``questions - 1`` more (the same question), each timed from its start.
    FastVID uses the model's release defaults besides R (Qwen2.5-VL: tau 0.84, split_tau 0.95).

    Returns
    -------
    list of TTFTRow
        Vanilla first, then per retention: median ms of each stage, ``ttft_ms`` (measured, first
        question) and ``further_ttft_ms`` (median over the further questions; None with one question).
    """
    rows = []
    for retention in [1.0, *retentions]:
        method = None if retention >= 1.0 else method_for_family(model.fastvid_defaults, retention_ratio=retention)
        runs = []
        for i in range(repeats + 1):  # the first run warms up
            session = VideoSession.open(model, video_path, frames)
            pruned = session.prune(method)
            pruned.prefill()
            answers = [pruned.answer(question, 1) for _ in range(questions)]
            if i:
                runs.append(
                    TTFTRow(
                        retention=retention,
                        decode_ms=session.ms["decode"],
                        preprocess_ms=session.ms["preprocess"],
                        vision_ms=session.ms["vision"],
                        pruning_ms=pruned.pruning_ms,
                        prefill_ms=pruned.prefill_ms + answers[0].prefill_ms,
                        ttft_ms=session.ttft_ms(answers[0].first_token_at),
                        further_ttft_ms=statistics.median(a.prefill_ms for a in answers[1:]) if questions > 1 else None,
                    )
                )
        rows.append(TTFTRow.median(runs))
    return rows


__all__ = [
    "FRAME_FEATURE_DIM",
    "QUESTION_TOKENS",
    "SCENES",
    "TEXT_TOKENS",
    "BenchSettings",
    "build_llm",
    "run_bench",
    "run_pruning_sweep",
    "synthetic_inputs",
    "synthetic_video",
    "time_pruning",
    "time_vision",
    "ttft_on_video",
]
