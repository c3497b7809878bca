"""What a run of the pipeline gives back: :class:`AskResult` and its parts, typed (``to_dict()`` is ``--json``).

:mod:`.pipeline` fills them; the reports (:mod:`fastvid_cli.output.report`), ``compare``, ``batch`` and the
lmms-eval plugin read them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..flops import FlopsReport
from ..models.base import ModelAdapter
from ..models.settings import RunSettings
from ..video import SampledVideo


@dataclass
class TokenCounts:
    """Token counts of one answer (JSON: ``tokens``).

    Attributes
    ----------
    video_before, video_after : int
        Video tokens pruning works on, before and after.
    video_kept_ratio : float
    newline_before, newline_after : int
        Newline slots of the video (not counted in ``video_*``).
    tokens_per_frame : int
    grid : list of int
        Tokens per frame as rows x columns.
    grid_thw : list of int or None
        The Qwen models' patch grid (t, h, w); None for the LLaVA ones.
    prompt_before, prompt_after : int
        The whole LLM input of this question, unpruned and pruned.
    prefill_tokens : int
        Tokens this answer prefilled: the pruned prompt for the first question, only its own
        tokens (question and assistant turn) for the next ones, which reuse the video's KV cache.
    """

    video_before: int
    video_after: int
    video_kept_ratio: float
    newline_before: int
    newline_after: int
    tokens_per_frame: int
    grid: list[int]
    grid_thw: list[int] | None
    prompt_before: int
    prompt_after: int
    prefill_tokens: int


@dataclass
class Timing:
    """Where one answer's time went, in milliseconds (JSON: ``timing``).

    Stages shared by the questions of one video (decode, preprocessing, vision, pruning) count for
    the first question and are 0 for the next ones.

    Attributes
    ----------
    decode_ms, preprocess_ms, vision_ms, pruning_ms : float
    prefill_ms : float
        The pruned prefill up to the first token: prefix (video) and question for the first
        question; the question's own tokens for the next ones.
    generation_ms : float
        From the first token to the last.
    prefill_vanilla_ms : float or None
        The unpruned prefill of the first question (None when not measured).
    prefill_speedup : float or None
    ttft_ms : float
        Measured time to first token: wall time from opening the file to the first generated
        token (model loading excluded); for a further question, from its start.
    total_ms : float
        Every stage, the vanilla baseline included.
    """

    decode_ms: float
    preprocess_ms: float
    vision_ms: float
    pruning_ms: float
    prefill_ms: float
    generation_ms: float
    prefill_vanilla_ms: float | None
    prefill_speedup: float | None
    ttft_ms: float
    total_ms: float


@dataclass
class ModelInfo:
    """The model that answered (JSON: ``model``).

    Attributes
    ----------
    id : str
        As the user named it (``--model``).
    family : str
        ``llava_onevision``, ``llava_video``, ``qwen2_5_vl``, ``qwen3_vl`` or ``qwen3_5``.
    device, dtype : str
        Where and in what precision the weights ran, e.g. ``cuda:0``, ``bfloat16``.
    tiny_random : bool
        A tiny random-weight test model (its answers are noise).
    """

    id: str
    family: str
    device: str
    dtype: str
    tiny_random: bool


@dataclass
class VideoSource:
    """The video file and the frames sampled from it (JSON: ``video``).

    Attributes
    ----------
    path : str
    total_frames : int
        Frames in the file.
    fps : float
        Its average frame rate (0 when unknown).
    duration_s : float
        Its length in seconds.
    frame_indices : list of int
        The sampled frames' numbers in the file.
    """

    path: str
    total_frames: int
    fps: float
    duration_s: float
    frame_indices: list[int]


@dataclass
class AskResult:
    """One answer and everything ``fastvid ask`` reports about it; ``to_dict()`` is its ``--json`` object.

    Attributes
    ----------
    answer, question : str
    reasoning : str or None
        What a Thinking checkpoint reasoned before its answer (None for the others).
    model : ModelInfo
    video : VideoSource
    frames : int
        Frames sampled (F).
    retention : float
    config : dict
        FastVID hyperparameters.
    settings : RunSettings
        How the model ran (JSON: :meth:`fastvid_cli.models.settings.RunSettings.to_dict`).
    tokens : TokenCounts
    flops : FlopsReport
        Analytic prefill TFLOPs before and after pruning (:func:`fastvid_cli.flops.flops_report`).
    timing : Timing
    segments : list of int
        DySeg segment lengths in frames.
    notes : list of str
    """

    answer: str
    question: str
    reasoning: str | None
    model: ModelInfo
    video: VideoSource
    frames: int
    retention: float
    config: dict
    settings: RunSettings
    tokens: TokenCounts
    flops: FlopsReport
    timing: Timing
    segments: list[int]
    notes: list[str]

    def to_dict(self) -> dict:
        return {**asdict(self), "settings": self.settings.to_dict()}


def model_info(model: ModelAdapter) -> ModelInfo:
    """The :class:`ModelInfo` of a loaded model (for reports)."""
    return ModelInfo(
        id=model.model_id,
        family=model.family,
        device=str(model.device),
        dtype=str(model.dtype).removeprefix("torch."),
        tiny_random=model.tiny_random,
    )


def video_info(video: SampledVideo) -> VideoSource:
    """The :class:`VideoSource` of a sampled video (for reports)."""
    return VideoSource(
        path=video.path,
        total_frames=video.total_frames,
        fps=video.fps,
        duration_s=video.duration_s,
        frame_indices=video.indices.tolist(),
    )
