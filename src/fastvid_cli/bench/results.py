"""What ``fastvid bench`` reports: the result dataclasses (``to_dict()`` is the ``--json`` / result file) and the
targets read from them.

The measurements that fill them are :mod:`fastvid_cli.bench.runner`'s; where and on what they ran is
:mod:`fastvid_cli.bench.device`'s.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from ..models.geometry_base import ModelGeometry


def _plain(value: Any) -> Any:
    """JSON-ready form of a result field: objects by their ``to_dict()``, lists and dicts item by item."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class _Result:
    """``to_dict()`` for the result dataclasses: one key per field, in field order (the ``--json`` keys)."""

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


@dataclass
class Environment(_Result):
    """Where a benchmark ran, for the result file.

    Attributes
    ----------
    device : str
        The GPU's model, or the CPU's model and thread count (:func:`~fastvid_cli.bench.device.device_name`).
    device_type : str
        ``cuda`` or ``cpu``.
    dtype : str
        Compute dtype, e.g. ``float32``.
    fastvid, torch, transformers, python : str
        Versions.
    platform : str
    date : str
        UTC time of the run, ISO 8601.
    cuda : str or None
        CUDA version; in the JSON on a GPU only.
    """

    device: str
    device_type: str
    dtype: str
    fastvid: str
    torch: str
    transformers: str
    python: str
    platform: str
    date: str
    cuda: str | None = None

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.device_type != "cuda":
            del out["cuda"]
        return out


@dataclass
class PruningTiming(_Result):
    """One pruning method at one retention ratio on (F, N, D) tokens (:func:`~fastvid_cli.bench.runner.time_pruning`).

    Attributes
    ----------
    method : str
        The method's label (e.g. ``FastVID``).
    spec : str
        The method spec it was made from (e.g. ``fastvid``).
    retention : float
        Retention ratio R.
    shape : list of int
        (F, N, D) of the video tokens pruned.
    tokens_kept : int
    median_ms : float
        Median over the timed runs, in ms.
    runs_ms : list of float
        Every timed run, in ms.
    peak_mib : float
        Peak memory during the runs, in MiB (:func:`~fastvid_cli.bench.device.peak_memory_mib`; CPU: the whole process).
    baseline_mib : float or None
        Memory in use before the runs, in MiB (None where it cannot be read).
    segments : int
        Segments the method cut the video into.
    longest_segment : int
        Frames of the longest segment.
    """

    method: str
    spec: str
    retention: float
    shape: list[int]
    tokens_kept: int
    median_ms: float
    runs_ms: list[float]
    peak_mib: float
    baseline_mib: float | None
    segments: int
    longest_segment: int


@dataclass
class PrefillTiming(_Result):
    """The LLM's prefill of one prompt length (:func:`~fastvid_cli.bench.runner.run_bench`).

    Attributes
    ----------
    retention : float
        Retention ratio R of the video tokens (1 = vanilla, no pruning).
    video_tokens : int
    prompt_tokens : int
        Video tokens plus the newline and text slots around them.
    median_ms : float
        Median over the timed runs of the layers built, in ms.
    runs_ms : list of float
        Every timed run, in ms.
    full_model_ms : float
        ``median_ms`` scaled to all of the model's layers, in ms.
    peak_mib : float
        Peak memory during the runs, in MiB.
    speedup : float
        Vanilla's ``median_ms`` over this one's.
    tflops : float
        Analytic TFLOPs (2 x MACs) of this prefill on the whole model, causal, no LM head: what the
        timed forward computes, scaled to all layers (:func:`fastvid_cli.flops.prefill_macs`).
    tflops_by_layer_type : dict
        ``tflops`` split into ``full_attention``, ``linear_attention`` (Gated DeltaNet) and ``mlp``.
    """

    retention: float
    video_tokens: int
    prompt_tokens: int
    median_ms: float
    runs_ms: list[float]
    full_model_ms: float
    peak_mib: float
    speedup: float = 1.0
    tflops: float = 0.0
    tflops_by_layer_type: dict = field(default_factory=dict)


@dataclass
class QuestionTiming(_Result):
    """First question against further ones on one video, at one retention ratio (:func:`~fastvid_cli.bench.runner._questions`).

    Attributes
    ----------
    retention : float
        1 = vanilla.
    prefix_tokens : int
        Tokens of the prefix that ends with the video (prefilled once).
    question_tokens : int
        Tokens of one question (what a further question prefills).
    first_ms : float
        Prefix and question prefill, median, scaled to all layers, in ms.
    further_ms : float
        The question alone on the prefix's KV cache, median, scaled to all layers, in ms.
    further_share : float
        ``further_ms / first_ttft_ms``: what a further question costs against the first question's
        time to first token.
    further_runs_ms : list of float
        Every further question's prefill, scaled to all layers, in ms.
    vision_ms : float or None
        The vision encoder on the video's frames (SigLIP-so400m, random weights, its layers scaled
        like the LLM's), median, in ms; None for a family whose encoder is not built here (Qwen2.5-VL).
    pruning_ms : float
        The method's pruning at this retention (0 for vanilla), median, in ms.
    first_ttft_ms : float
        The first question's time to first token without decoding and preprocessing (no file is
        read): ``vision_ms + pruning_ms + first_ms``, in ms.
    """

    retention: float
    prefix_tokens: int
    question_tokens: int
    first_ms: float
    further_ms: float
    further_share: float
    further_runs_ms: list[float]
    vision_ms: float | None = None
    pruning_ms: float = 0.0
    first_ttft_ms: float = 0.0


@dataclass
class Target(_Result):
    """One of the issue's targets, read from a run.

    Attributes
    ----------
    value : float
        What the run measured (a share, a ratio, ms or a speedup; see ``how``).
    target : float
        The goal it is held against.
    met : bool
    retention : float or None
        The retention ratio it was read at, where the row does not say (sweep); not in the JSON when None.
    how : str or None
        How ``value`` was computed; not in the JSON when None.
    """

    value: float
    target: float
    met: bool
    retention: float | None = None
    how: str | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in super().to_dict().items() if v is not None or k not in ("retention", "how")}


@dataclass
class Targets:
    """The targets of a run by name (e.g. ``fastvid_pruning_share_of_pruned_prefill``), or why there are none.

    Attributes
    ----------
    checks : dict of str to Target
    note : str or None
        Why the run could not read its targets (then ``checks`` is empty and the JSON is ``{"note": ...}``).
    """

    checks: dict[str, Target] = field(default_factory=dict)
    note: str | None = None

    def to_dict(self) -> dict:
        if self.note is not None:
            return {"note": self.note}
        return {name: t.to_dict() for name, t in self.checks.items()}


@dataclass
class BenchRunSettings(_Result):
    """What a :func:`~fastvid_cli.bench.runner.run_bench` run measured, as written in its result.

    Attributes
    ----------
    model : str
    geometry : ModelGeometry
        In the JSON as its ``to_dict()``.
    token_frames : int
        Frames of the synthetic video, in token frames (Qwen2.5-VL: 2 sampled frames each).
    layers_run, layers_full : int
        Decoder layers built, and the model's.
    prefill_scaled_by : float
        ``layers_full / layers_run``.
    text_tokens : int
        Text tokens around the video (:data:`~fastvid_cli.bench.runner.TEXT_TOKENS`).
    retentions : list of float
    methods : list of str
    repeats, warmup : int
    questions : int
        Questions per video.
    weights, inputs : str
        How the weights and the synthetic inputs were made.
    """

    model: str
    geometry: ModelGeometry
    token_frames: int
    layers_run: int
    layers_full: int
    prefill_scaled_by: float
    text_tokens: int
    retentions: list[float]
    methods: list[str]
    repeats: int
    warmup: int
    questions: int
    weights: str
    inputs: str


@dataclass
class TTFTRow(_Result):
    """Time to first token on a real video at one retention ratio, medians over the runs, in ms (:func:`~fastvid_cli.bench.runner.ttft_on_video`).

    Attributes
    ----------
    retention : float
        1 = vanilla.
    decode_ms, preprocess_ms, vision_ms, pruning_ms, prefill_ms : float
        Stages of the first question (prefill: the prefix and the question; pruning 0 for vanilla).
    ttft_ms : float
        Measured: opening the file to the first question's first token.
    further_ttft_ms : float or None
        A further question's time to its first token (None with one question per video).
    """

    STAGES: ClassVar[tuple[str, ...]] = ("decode", "preprocess", "vision", "pruning", "prefill")

    retention: float
    decode_ms: float
    preprocess_ms: float
    vision_ms: float
    pruning_ms: float
    prefill_ms: float
    ttft_ms: float
    further_ttft_ms: float | None = None

    @classmethod
    def median(cls, runs: list[TTFTRow]) -> TTFTRow:
        """Field by field median of the ms of ``runs`` at one retention (None where every run has None)."""

        def med(name: str) -> float | None:
            values = [getattr(r, name) for r in runs if getattr(r, name) is not None]
            return statistics.median(values) if values else None

        stages: dict[str, Any] = {f.name: med(f.name) for f in fields(cls) if f.name != "retention"}  # every run has its stages
        return cls(retention=runs[0].retention, **stages)


@dataclass
class VideoTTFT(_Result):
    """TTFT on a real video, vanilla and FastVID at each retention ratio (``fastvid bench --video``).

    Attributes
    ----------
    video : str
        Path of the video.
    model : str
        The model loaded.
    questions : int
        Questions per video.
    rows : list of TTFTRow
        Vanilla first.
    """

    video: str
    model: str
    questions: int
    rows: list[TTFTRow]


@dataclass
class BenchResult(_Result):
    """Everything ``fastvid bench`` reports (one frame count); ``to_dict()`` is its JSON.

    Attributes
    ----------
    environment : Environment
    settings : BenchRunSettings
    pruning : list of PruningTiming
        Per (method, retention), in the order of the methods.
    prefill : list of PrefillTiming
        Vanilla first, then per retention.
    questions : list of QuestionTiming
        Per retention, vanilla first (empty with one question per video).
    targets : Targets
    ttft : VideoTTFT or None
        With ``--video``; not in the JSON when None.
    """

    environment: Environment
    settings: BenchRunSettings
    pruning: list[PruningTiming]
    prefill: list[PrefillTiming]
    questions: list[QuestionTiming]
    targets: Targets
    ttft: VideoTTFT | None = None

    def to_dict(self) -> dict:
        out = super().to_dict()
        if self.ttft is None:
            del out["ttft"]
        return out


@dataclass
class FrameCountTiming:
    """A :class:`PruningTiming` at one frame count of a sweep.

    Attributes
    ----------
    frames : int
        Frames asked for.
    token_frames : int
        Token frames made of them (Qwen2.5-VL: 2 sampled frames each).
    timing : PruningTiming
        In the JSON, its keys are those of this row (flat).
    """

    frames: int
    token_frames: int
    timing: PruningTiming

    def to_dict(self) -> dict:
        return {"frames": self.frames, "token_frames": self.token_frames, **self.timing.to_dict()}


@dataclass
class SweepRunSettings(_Result):
    """What a :func:`~fastvid_cli.bench.runner.run_pruning_sweep` run measured, as written in its result.

    Attributes
    ----------
    model : str
    geometry : ModelGeometry
        In the JSON as its ``to_dict()``.
    frames : list of int
        The frame counts.
    retentions : list of float
    methods : list of str
    repeats, warmup : int
    scene_frames : int or None
        Frames per synthetic scene (None: :data:`~fastvid_cli.bench.runner.SCENES` over the video).
    inputs : str
        How the synthetic inputs were made.
    peak_memory : str
        How peak memory (MiB) was read.
    """

    model: str
    geometry: ModelGeometry
    frames: list[int]
    retentions: list[float]
    methods: list[str]
    repeats: int
    warmup: int
    scene_frames: int | None
    inputs: str
    peak_memory: str


@dataclass
class SweepResult(_Result):
    """Everything ``fastvid bench --frames F1 F2 ...`` reports; ``to_dict()`` is its JSON.

    Attributes
    ----------
    environment : Environment
    settings : SweepRunSettings
    sweep : list of FrameCountTiming
        Per frame count, then per (method, retention).
    targets : Targets
    """

    environment: Environment
    settings: SweepRunSettings
    sweep: list[FrameCountTiming]
    targets: Targets


def sweep_targets(rows: list[FrameCountTiming]) -> Targets:
    """FastVID's pruning time linear in frames: time at the most frames / time at the fewest <= 1.25 x their ratio."""
    fastvid = [r for r in rows if r.timing.spec == "fastvid"]
    if not fastvid:
        return Targets(note="the linearity target needs fastvid among the methods")
    retention = fastvid[0].timing.retention
    fastvid = [r for r in fastvid if r.timing.retention == retention]
    low, high = min(fastvid, key=lambda r: r.frames), max(fastvid, key=lambda r: r.frames)
    if low.frames == high.frames:
        return Targets(note="the linearity target needs two frame counts")
    ratio, allowed = high.timing.median_ms / low.timing.median_ms, 1.25 * high.frames / low.frames
    return Targets(
        {
            "fastvid_time_linear_in_frames": Target(
                value=ratio,
                target=allowed,
                met=ratio <= allowed,
                retention=retention,
                how=f"FastVID pruning median at {high.frames} frames / at {low.frames} frames, at most 1.25 x {high.frames}/{low.frames}",
            )
        }
    )


def targets(
    device: torch.device,
    pruning: list[PruningTiming],
    prefill: list[PrefillTiming],
    questions: list[QuestionTiming] | None = None,
) -> Targets:
    """The issue's targets, read from this run: CPU pruning share, GPU pruning ms and speedup at R = 0.1,
    and a further question's cost (at most 5 % of the first question's prefill at R = 0.1)."""
    fastvid = next((p for p in pruning if p.spec == "fastvid" and p.retention == 0.1), None)
    pruned = next((p for p in prefill if p.retention == 0.1), None)
    if fastvid is None or pruned is None:
        return Targets(note="targets need fastvid at R = 0.1 among the methods and retentions")
    out = Targets()
    share = fastvid.median_ms / pruned.full_model_ms
    out.checks["fastvid_pruning_share_of_pruned_prefill"] = Target(
        value=share,
        target=0.03,
        met=share <= 0.03,
        how="FastVID pruning median / pruned prefill at R = 0.1 scaled to all layers",
    )
    further = next((q for q in questions or [] if q.retention == 0.1), None)
    if further is not None:
        out.checks["further_question_share"] = Target(
            value=further.further_share,
            target=0.05,
            met=further.further_share <= 0.05,
            how="a further question's prefill on the video's KV cache / the first question's TTFT (vision, pruning, "
            "prefill; no decoding), R = 0.1",
        )
    if device.type == "cuda":
        out.checks["fastvid_pruning_ms"] = Target(value=fastvid.median_ms, target=2.0, met=fastvid.median_ms < 2.0)
        out.checks["prefill_speedup_at_0.1"] = Target(value=pruned.speedup, target=8.0, met=pruned.speedup >= 8.0)
    return out


__all__ = [
    "BenchResult",
    "BenchRunSettings",
    "Environment",
    "FrameCountTiming",
    "PrefillTiming",
    "PruningTiming",
    "QuestionTiming",
    "SweepResult",
    "SweepRunSettings",
    "TTFTRow",
    "Target",
    "Targets",
    "VideoTTFT",
    "sweep_targets",
    "targets",
]
