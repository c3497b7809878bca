"""The main job: answer a question about a video with FastVID-pruned video tokens.

>>> from fastvid_cli.models import load_model
>>> from fastvid_cli.pipeline import AskOptions, ask
>>> model = load_model("tiny-random", device="cpu")
>>> result = ask(model, "clip.mp4", "What happens?", AskOptions(frames=8))
>>> result.answer, result.tokens["video_after"]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from .errors import InputError
from .flops import flops_report
from .models.base import LLMInputs, ModelAdapter, VideoFeatures
from .pruning import FastVIDConfig, fastvid_prune
from .timing import StageTimer, timed
from .tiny import TINY_NOTE
from .video import SampledVideo, read_video

STAGES = ("decode", "preprocess", "vision", "pruning", "prefill", "generation")
"""Stages of the time breakdown, in order (milliseconds)."""


@dataclass
class AskOptions:
    """Settings of one ``ask``.

    Attributes
    ----------
    frames : int or None
        Frames sampled uniformly from the video; None (default) samples as the model's settings say
        (the paper's: 32 frames for LLaVA-OneVision, 64 for LLaVA-Video, 2 fps for Qwen2.5-VL).
    config : FastVIDConfig
        Retention ratio and FastVID hyperparameters.
    max_new_tokens : int
        Longest answer, in tokens.
    baseline : bool
        Also time the vanilla (unpruned) prefill, for the speedup. It runs only for the table.
    """

    frames: int | None = None
    config: FastVIDConfig = field(default_factory=FastVIDConfig)
    max_new_tokens: int = 128
    baseline: bool = True

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 1:
            raise InputError(f"--frames must be at least 1, got {self.frames}")
        if self.max_new_tokens < 1:
            raise InputError(f"--max-new-tokens must be at least 1, got {self.max_new_tokens}")


@dataclass
class AskResult:
    """Everything ``fastvid ask`` reports; ``to_dict()`` is the ``--json`` object.

    Attributes
    ----------
    answer : str
    model : dict
        id, family, device, dtype, tiny_random.
    video : dict
        path, total_frames, fps, duration_s, sampled frame indices.
    frames : int
        Frames sampled (F).
    retention : float
        R.
    config : dict
        FastVID hyperparameters.
    settings : dict
        How the model ran: frame sampling, pixel budget, pooling, newlines, system prompt, decoding
        (:meth:`fastvid_cli.models.settings.RunSettings.to_dict`).
    tokens : dict
        video_before / video_after (the tokens pruning works on), newline_before / newline_after
        (newline slots of the video, not counted in video_*), prompt_before / prompt_after (whole
        LLM input), tokens_per_frame, grid (tokens per frame as rows x columns), grid_thw
        (Qwen2.5-VL's patch grid t, h, w; None for the LLaVA models).
    flops : dict
        See :func:`fastvid_cli.flops.flops_report` (TFLOPs).
    timing : dict
        Milliseconds per stage (``decode_ms`` ...), ``prefill_vanilla_ms`` (None with no baseline),
        ``prefill_speedup``, ``ttft_ms`` (decode to end of prefill) and ``total_ms``.
    segments : list of int
        DySeg segment lengths in frames.
    notes : list of str
        One-line remarks (short video, tiny-random answers are noise).
    """

    answer: str
    model: dict
    video: dict
    frames: int
    retention: float
    config: dict
    settings: dict
    tokens: dict
    flops: dict
    timing: dict
    segments: list[int]
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def ask(
    model: ModelAdapter,
    video: str | SampledVideo | PreparedVideo,
    question: str,
    options: AskOptions | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> AskResult:
    """Read a video, prune its tokens with FastVID, and answer ``question`` about it.

    Parameters
    ----------
    model : ModelAdapter
        From :func:`fastvid_cli.models.load_model`.
    video : str, SampledVideo or PreparedVideo
        A video file decord can read, frames already read with :func:`fastvid_cli.video.read_video`,
        or a video already preprocessed with :func:`prepare_video` (their measured decode and
        preprocessing times are reported).
    question : str
        Non-empty question.
    options : AskOptions, optional
    on_stage : callable, optional
        Called with each stage's name as it starts (for progress display).

    Returns
    -------
    AskResult

    Raises
    ------
    InputError
        Empty question, or a missing, non-video, truncated or corrupt file.
    """
    options = options or AskOptions()
    notify = on_stage or (lambda stage: None)
    timer = StageTimer(model.device)
    encoded = encode_video(model, video, question, options.frames, timer, notify)
    video, inputs, features, full_inputs = encoded.video, encoded.inputs, encoded.features, encoded.full_inputs
    notes = [*model.settings.notes, *encoded.notes]
    notify("pruning")
    with timer("pruning"):
        kept = fastvid_prune(features.video_tokens, features.frame_features, features.saliency, options.config)
    pruned_inputs = model.build_inputs(inputs, features, kept)

    notify("prefill")
    model.prefill(pruned_inputs)  # warm-up, so neither timed prefill pays one-off start-up costs
    with timer("prefill"):
        model.prefill(pruned_inputs)
    if options.baseline:
        notify("prefill (vanilla baseline)")
        with timer("prefill_vanilla"):
            model.prefill(full_inputs)
    notify("generation")
    with timer("generation"):
        answer = model.decode(model.generate(pruned_inputs, options.max_new_tokens))
    if model.tiny_random:
        notes.append(TINY_NOTE)

    video_before = features.num_frames * features.tokens_per_frame
    video_after = int(kept.indices.numel())
    tokens = {
        "video_before": video_before,
        "video_after": video_after,
        "video_kept_ratio": video_after / video_before,
        "newline_before": full_inputs.video_slots - video_before,
        "newline_after": pruned_inputs.video_slots - video_after,
        "tokens_per_frame": features.tokens_per_frame,
        "grid": list(features.grid),
        "grid_thw": list(features.state["grid_thw"]) if "grid_thw" in features.state else None,
        "prompt_before": full_inputs.length,
        "prompt_after": pruned_inputs.length,
    }
    flops = flops_report(
        model.llm_geometry(), video_before, video_after, full_inputs.length, pruned_inputs.length
    )
    ms = timer.ms
    vanilla = ms.get("prefill_vanilla")
    timing = {f"{stage}_ms": ms[stage] for stage in STAGES}
    timing |= {
        "prefill_vanilla_ms": vanilla,
        "prefill_speedup": vanilla / ms["prefill"] if vanilla else None,
        "ttft_ms": sum(ms[s] for s in ("decode", "preprocess", "vision", "pruning", "prefill")),
        "total_ms": sum(ms.values()),
    }
    return AskResult(
        answer=answer,
        model=model_info(model),
        video=video_info(video),
        frames=video.num_frames,
        retention=options.config.retention_ratio,
        config=options.config.to_dict(),
        settings=model.settings.to_dict(),
        tokens=tokens,
        flops=flops,
        timing=timing,
        segments=kept.segment_lengths,
        notes=notes,
    )


@dataclass
class EncodedVideo:
    """A video read, processed and encoded once, ready for any number of pruned prefills.

    Attributes
    ----------
    video : SampledVideo
    inputs : dict
        Processor output on the model's device (``input_ids`` (1, L) ...).
    features : VideoFeatures
        Tokens (F, N, D), frame features and saliency to prune.
    full_inputs : LLMInputs
        The unpruned prompt (the vanilla model).
    notes : list of str
    """

    video: SampledVideo
    inputs: dict
    features: VideoFeatures
    full_inputs: LLMInputs
    notes: list[str]


@dataclass
class PreparedVideo:
    """A video decoded and preprocessed for one question, ahead of the model work (batch prefetch).

    Attributes
    ----------
    video : SampledVideo
    question : str
    inputs : dict
        The model's processor output.
    preprocess_ms : float
    """

    video: SampledVideo
    question: str
    inputs: dict
    preprocess_ms: float


def prepare_video(model: ModelAdapter, video: str | SampledVideo, question: str, frames: int | None = None) -> PreparedVideo:
    """Decode (unless already decoded) and preprocess: the CPU-side work that can run ahead.

    ``frames`` None samples as ``model.settings`` says; a count samples that many uniformly.

    Raises
    ------
    InputError
        Empty question, or a missing, non-video, truncated or corrupt file.
    """
    if not question.strip():
        raise InputError("the question is empty")
    if not isinstance(video, SampledVideo):
        sampling = model.settings.sampling
        video = read_video(video, sampling if frames is None else sampling.with_frames(frames))
    inputs, preprocess_ms = timed(lambda: model.prepare(video, question), model.device)
    return PreparedVideo(video, question, inputs, preprocess_ms)


def encode_video(
    model: ModelAdapter,
    video: str | SampledVideo | PreparedVideo,
    question: str,
    frames: int | None,
    timer: StageTimer,
    notify: Callable[[str], None],
) -> EncodedVideo:
    """Decode, preprocess (unless done already) and run the vision encoder, timing each stage.

    Raises
    ------
    InputError
        Empty question, or a missing, non-video, truncated or corrupt file.
    """
    if not isinstance(video, PreparedVideo):
        notify("decode" if not isinstance(video, SampledVideo) else "preprocess")
        video = prepare_video(model, video, question, frames)
    elif video.question != question:
        raise ValueError("the prepared video was prepared for another question")
    timer.ms["decode"] = video.video.decode_ms
    timer.ms["preprocess"] = video.preprocess_ms
    inputs, video = video.inputs, video.video
    notify("vision")
    with timer("vision"):
        features = model.encode(inputs)
    full_inputs = model.build_inputs(inputs, features, None)
    notes = [video.short_note] if video.short_note else []
    return EncodedVideo(video, inputs, features, full_inputs, notes)


def model_info(model: ModelAdapter) -> dict:
    """id, family, device, dtype and tiny_random of a loaded model (for reports)."""
    return {
        "id": model.model_id,
        "family": model.family,
        "device": str(model.device),
        "dtype": str(model.dtype).removeprefix("torch."),
        "tiny_random": model.tiny_random,
    }


def video_info(video: SampledVideo) -> dict:
    """path, total_frames, fps, duration_s and the sampled frame indices (for reports)."""
    return {
        "path": video.path,
        "total_frames": video.total_frames,
        "fps": video.fps,
        "duration_s": video.duration_s,
        "frame_indices": video.indices.tolist(),
    }
