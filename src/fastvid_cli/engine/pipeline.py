"""The one flow of ``fastvid``: a video is decoded, preprocessed, encoded and pruned once, its prompt
prefix (system turn and video) is prefilled once, and any number of questions are answered on that
prefix's KV cache, each prefilling only its own tokens.

Every command is a use of it: ``ask`` (one or several questions), ``compare`` (one prune and prefix
per method), ``bench --video`` (TTFT), ``batch`` (the questions of a video share one session) and
``show`` (pruning only).

>>> from fastvid_cli.models import load_model
>>> from fastvid_cli.engine.pipeline import AskOptions, ask_many
>>> model = load_model("tiny-random", device="cpu")
>>> results = ask_many(model, "clip.mp4", ["What happens?", "Who is there?"], AskOptions())
>>> [r.answer for r in results], results[1].tokens.prefill_tokens   # question 2 prefills its own tokens only
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch

from ..errors import InputError
from ..flops import flops_report
from ..models.base import ModelAdapter
from ..models.features import LLMInputs, VideoFeatures
from ..models.tiny_names import TINY_NOTE
from ..pruning import FastVIDConfig, PruneResult
from ..video import SampledVideo, read_video
from .results import AskResult, ModelInfo, Timing, TokenCounts, VideoSource, model_info, video_info
from .timing import synchronize, timed

STAGES = ("decode", "preprocess", "vision", "pruning", "prefill", "generation")
"""Stages of the time breakdown, in order (milliseconds)."""
BASELINE_NOTE = "the vanilla prefill ran only to measure the speedup; its result was dropped"
REASONING_EXCERPT = 300
"""Characters of a cut-off reasoning that its note shows."""


@dataclass
class AskOptions:
    """Settings of one ``ask``.

    Attributes
    ----------
    frames : int or None
        Frames sampled uniformly from the video; None (default) samples as the model's settings say
        (the paper's: 32 frames for LLaVA-OneVision, 64 for LLaVA-Video, 2 fps for Qwen2.5-VL; 2 fps for Qwen3-VL and Qwen3.5, their processor's).
    config : FastVIDConfig
        Retention ratio and FastVID hyperparameters.
    max_new_tokens : int or None
        Longest answer, in tokens; None: the model's default (128; a Thinking checkpoint's reasoning needs more).
    baseline : bool or None
        Also time the vanilla (unpruned) prefill of the first question, for the speedup. It runs
        only to measure; generation continues from the pruned prefill. None (default): only when
        the unpruned prompt fits the LLM's context window (``max_position_embeddings``); a longer
        one (hundreds of frames) is skipped with a note, as the model was never trained on it.
    vision_batch : int or None
        Frames per chunk of the streaming encode; None: the device's default (see :func:`default_vision_batch`).

    Raises
    ------
    InputError
        ``frames``, ``max_new_tokens`` or ``vision_batch`` below 1.
    """

    frames: int | None = None
    config: FastVIDConfig = field(default_factory=FastVIDConfig)
    max_new_tokens: int | None = None
    baseline: bool | None = None
    vision_batch: int | None = None

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 1:
            raise InputError(f"frames must be at least 1, got {self.frames}")
        if self.vision_batch is not None and self.vision_batch < 1:
            raise InputError(f"the vision batch must be at least 1 frame, got {self.vision_batch}")
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise InputError(f"the answer length must be at least 1 token, got {self.max_new_tokens}")


@dataclass
class PreparedVideo:
    """A video decoded and preprocessed, ahead of the model work (a batch prefetches these).

    Attributes
    ----------
    video : SampledVideo
    inputs : dict
        The processor's output for the prompt prefix (system turn and video).
    preprocess_ms : float
    """

    video: SampledVideo
    inputs: dict
    preprocess_ms: float


def read_for(model: ModelAdapter, path: str | os.PathLike, frames: int | None = None, decode: bool = True) -> SampledVideo:
    """Read ``path`` as ``model`` samples videos (``model.settings.sampling``), or ``frames`` uniformly
    when given; ``decode=False`` reads the header only (see :func:`fastvid_cli.video.read_video`).

    Raises
    ------
    InputError
        A missing, non-video, truncated or corrupt file.
    """
    sampling = model.settings.sampling
    return read_video(path, sampling if frames is None else sampling.with_frames(frames), decode=decode)


def prepare_video(model: ModelAdapter, video: str | SampledVideo, frames: int | None = None) -> PreparedVideo:
    """Decode (unless already decoded) and preprocess: the CPU-side work that can run ahead.

    ``frames`` None samples as ``model.settings`` says; a count samples that many uniformly.

    Raises
    ------
    InputError
        A missing, non-video, truncated or corrupt file.
    """
    if not isinstance(video, SampledVideo):
        video = read_for(model, video, frames)
    inputs, preprocess_ms = timed(lambda: model.prepare(video), model.device)
    return PreparedVideo(video, inputs, preprocess_ms)


class FirstTokenClock:
    """A ``generate`` streamer that notes when the first new token comes out (``perf_counter`` s)."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_token_at: float | None = None

    def put(self, value: torch.Tensor) -> None:
        self.calls += 1
        if self.calls == 2:  # the first call hands over the prompt
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


_WARMED: set[int] = set()


def warm_up(model: ModelAdapter) -> None:
    """One short forward of the LLM, once per process and model, before the first timed prefill
    (so the timed ones pay no one-off start-up costs: kernels, allocator, caches)."""
    if id(model.model) in _WARMED:
        return
    ids = model.question_ids("warm up")[None, :8].to(model.device)
    model.prefill(
        LLMInputs({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, original_length=ids.shape[1]), keep_cache=False
    )
    synchronize(model.device)
    _WARMED.add(id(model.model))


@dataclass
class Answer:
    """One question answered on a prefilled prefix.

    Attributes
    ----------
    text : str
        The answer (after the reasoning, for a Thinking checkpoint).
    reasoning : str or None
    token_ids : torch.Tensor
        (T,) int64 generated ids.
    inputs : LLMInputs
        The question's own tokens (``input_ids`` (1, S)), at their original positions.
    prefill_ms : float
        From the start of generate to its first token (the question's prefill).
    generation_ms : float
        From the first token to the end.
    first_token_at : float
        ``time.perf_counter()`` at the first token.
    """

    text: str
    reasoning: str | None
    token_ids: torch.Tensor
    inputs: LLMInputs
    prefill_ms: float
    generation_ms: float
    first_token_at: float

    @property
    def cut_off_reasoning(self) -> bool:
        """Whether the answer length ran out while the model was still reasoning: a model that
        reasons first (reasoning not None) gave no answer."""
        return self.reasoning is not None and not self.text.strip()

    def cut_off_note(self, excerpt: int = REASONING_EXCERPT) -> str | None:
        """The note for an answer cut off while the model was reasoning, with the start of what it
        had (at most ``excerpt`` characters; all of it is the result's ``reasoning``); None otherwise."""
        if not self.cut_off_reasoning:
            return None
        had = " ".join("".join(ch if ch.isprintable() else " " for ch in self.reasoning or "").split())
        shown = had if len(had) <= excerpt else had[:excerpt].rstrip() + "\u2026"
        return (
            f"the answer was cut off while the model was reasoning: all {int(self.token_ids.numel()):,} new tokens "
            "went to its reasoning and no answer came (a longer answer length, max new tokens, lets it finish). "
            f"Its reasoning so far ({len(had):,} characters; all of it is the result's reasoning field): "
            f"{shown or '(empty)'}"
        )


class PrunedVideo:
    """The video's prompt prefix with the kept tokens (all of them for ``kept`` None), and its KV cache.

    Made by :meth:`VideoSession.prune`. :meth:`prefill` runs the prefix through the LLM once;
    :meth:`answer` answers a question on that cache, prefilling only the question's tokens, and
    leaves the cache as it found it, so every question sees the same prefix.
    """

    def __init__(self, session: VideoSession, kept: PruneResult | None, pruning_ms: float) -> None:
        self.session = session
        self.model = session.model
        self.kept = kept
        self.pruning_ms = pruning_ms
        self.inputs = self.model.build_inputs(session.inputs, session.features, kept)
        self.cache: Any = None  # the prefix's transformers Cache, after prefill()
        self.prefill_ms = 0.0

    def prefill(self) -> float:
        """Prefill the prefix once (timed) and keep its cache; returns the milliseconds."""
        if self.cache is None:
            warm_up(self.model)
            out, self.prefill_ms = timed(lambda: self.model.prefill(self.inputs), self.model.device)
            self.cache = out.cache
        return self.prefill_ms

    def answer(self, question: str, max_new_tokens: int | None = None) -> Answer:
        """Answer ``question`` greedily, continuing from the prefix's cache.

        The adapter's ``generate`` gets the whole prompt (prefix and question) with the cache of the
        prefix, so it prefills the question's tokens only, at their original positions, decodes from
        there, and leaves the cache as the prefix left it.

        Raises
        ------
        InputError
            An empty question.
        """
        if not question.strip():
            raise InputError("the question is empty")
        self.prefill()
        suffix = self.inputs.then(self.model.question_ids(question))
        whole = self.inputs.join(suffix)
        clock = FirstTokenClock()
        synchronize(self.model.device)
        start = time.perf_counter()
        ids = self.model.generate(whole, max_new_tokens or self.model.default_max_new_tokens, cache=self.cache, streamer=clock)
        synchronize(self.model.device)
        end = time.perf_counter()
        first = clock.first_token_at or end
        text, reasoning = self.model.decode_answer(ids)
        return Answer(text, reasoning, ids, suffix, (first - start) * 1e3, (end - first) * 1e3, first)

    def time_prefill_without_cache(self, question: str) -> float:
        """Milliseconds of one prefill of the whole prompt (prefix and question) with no cache kept:
        the vanilla baseline's measurement."""
        warm_up(self.model)
        whole = self.inputs.join(self.inputs.then(self.model.question_ids(question)))
        _, ms = timed(lambda: self.model.prefill(whole, keep_cache=False), self.model.device)
        return ms


VISION_BATCH = {"cpu": 16, "cuda": 64}
"""Frames per chunk of the streaming encode, by device type: on a GPU the paper's 32 and 64 frames
are one chunk; a long video is encoded 64 frames at a time (a few GiB of activations for a 7B
model's SigLIP); on a CPU, 16."""


def default_vision_batch(device: torch.device) -> int:
    """Frames per chunk of the streaming encode on ``device`` (see :data:`VISION_BATCH`)."""
    return VISION_BATCH.get(torch.device(device).type, 16)


def encode_video(model: ModelAdapter, video: SampledVideo, vision_batch: int | None = None) -> tuple[VideoFeatures, dict]:
    """Preprocess and encode a video chunk by chunk, keeping only what pruning needs between chunks.

    A chunk of ``vision_batch`` frames (rounded up to the family's multiple: Qwen2.5-VL's pairs) is
    decoded (unless the frames are in memory), preprocessed and run through the vision encoder; only
    its pooled tokens, frame features and saliency are kept. The next chunk is decoded on a thread
    while the encoder works on this one. Peak memory therefore grows with the frame count only
    through the pooled tokens (F, N, D) and the (F, Dg), (F, N) features.

    Parameters
    ----------
    model : ModelAdapter
    video : SampledVideo
        Decoded or not (``read_video(..., decode=False)``).
    vision_batch : int, optional
        Frames per chunk; default :func:`default_vision_batch` of the model's device.

    Returns
    -------
    features : VideoFeatures
        The whole video's, equal to one encode of every frame (the encoders work frame by frame).
    ms : dict
        Milliseconds of ``decode`` (the part done here), ``preprocess`` and ``vision``, summed over chunks.

    Raises
    ------
    InputError
        ``vision_batch`` below 1, or a file found corrupt while decoding.
    """
    size = default_vision_batch(model.device) if vision_batch is None else vision_batch
    if size < 1:
        raise InputError(f"the vision batch must be at least 1 frame, got {size}")
    step = model.frames_per_chunk
    size = -(-size // step) * step
    decode_before = video.decode_ms
    parts, preprocess_ms, vision_ms = [], 0.0, 0.0
    with ThreadPoolExecutor(max_workers=1) as pool:
        chunks = video.frame_chunks(size)
        if video.frames is None:
            chunks = _read_ahead(chunks, pool)
        for frames in chunks:
            inputs, ms = timed(partial(model.preprocess, frames, video), model.device)
            preprocess_ms += ms
            features, ms = timed(partial(model.encode, inputs), model.device)
            vision_ms += ms
            parts.append(features)
            del inputs, frames
    features = model.concat_features(parts)
    return features, {"decode": video.decode_ms - decode_before, "preprocess": preprocess_ms, "vision": vision_ms}


def _read_ahead(chunks: Iterator, pool: ThreadPoolExecutor) -> Iterator:
    """``chunks``' items in order, each next one fetched on ``pool``'s thread while the caller works on this one."""
    pending = pool.submit(next, chunks, None)
    while (item := pending.result()) is not None:
        pending = pool.submit(next, chunks, None)
        yield item


class VideoSession:
    """A video decoded, preprocessed and encoded once, ready to be pruned and asked about.

    Attributes
    ----------
    model : ModelAdapter
    video : SampledVideo
    inputs : dict
        The prompt prefix's tensors (``input_ids`` (1, L) ...; see ``ModelAdapter.prompt_inputs``).
    features : VideoFeatures
        Tokens (F, N, D), frame features and saliency to prune.
    ms : dict
        Milliseconds of ``decode``, ``preprocess`` and ``vision`` (with the streaming encode, decoding
        overlaps the other two, so their sum can exceed the wall time).
    started_at : float
        ``time.perf_counter()`` when the video's work began (decoding done before :meth:`open`
        counted as if it ran just before): the start of the TTFT.
    notes : list of str
    """

    def __init__(
        self,
        model: ModelAdapter,
        video: SampledVideo,
        inputs: dict,
        features: VideoFeatures,
        ms: dict,
        started_at: float,
        notes: list[str],
    ) -> None:
        self.model, self.video, self.inputs, self.features = model, video, inputs, features
        self.ms, self.started_at, self.notes = ms, started_at, notes

    @classmethod
    def open(
        cls,
        model: ModelAdapter,
        video: str | SampledVideo | PreparedVideo,
        frames: int | None = None,
        on_stage: Callable[[str], None] | None = None,
        vision_batch: int | None = None,
    ) -> VideoSession:
        """Decode, preprocess and encode a video, streaming it in chunks (:func:`encode_video`), timing each stage.

        Parameters
        ----------
        model : ModelAdapter
        video : str, SampledVideo or PreparedVideo
            A path is sampled as ``model.settings`` say (or ``frames`` uniformly) and decoded chunk
            by chunk; decoded frames are encoded chunk by chunk; a prepared video (a batch's
            prefetch) is encoded in one pass.
        frames : int, optional
        on_stage : callable, optional
            Called with each stage's name as it starts.
        vision_batch : int, optional
            Frames per chunk (default :func:`default_vision_batch`).

        Raises
        ------
        InputError
            A missing, non-video, truncated or corrupt file, or a bad ``vision_batch``.
        """
        notify = on_stage or (lambda stage: None)
        started_at = time.perf_counter()
        if isinstance(video, PreparedVideo):  # prepared ahead: its decoding and preprocessing count as if done now
            started_at -= (video.video.decode_ms + video.preprocess_ms) / 1e3
            notify("vision")
            features, vision_ms = timed(lambda: model.encode(video.inputs), model.device)
            inputs, sampled = video.inputs, video.video
            ms = {"decode": sampled.decode_ms, "preprocess": video.preprocess_ms, "vision": vision_ms}
        else:
            if isinstance(video, SampledVideo):
                sampled = video
                started_at -= sampled.decode_ms / 1e3
            else:
                sampled = read_for(model, video, frames, decode=False)
            notify("decode, preprocess and vision" if sampled.frames is None else "preprocess and vision")
            inputs, prompt_ms = timed(lambda: model.prompt_inputs(sampled, None), model.device)
            features, ms = encode_video(model, sampled, vision_batch)
            # decoding done before and during the streaming encode both land in the video's decode_ms
            ms = {"decode": sampled.decode_ms, "preprocess": ms["preprocess"] + prompt_ms, "vision": ms["vision"]}
        notes = [*model.settings.notes] + ([sampled.short_note] if sampled.short_note else [])
        if model.tiny_random:
            notes.append(TINY_NOTE)
        return cls(model, sampled, inputs, features, ms, started_at, notes)

    def prune(self, method: Callable | None) -> PrunedVideo:
        """Prune the video tokens with ``method`` (a pruning config; None keeps every token), timed."""
        if method is None:
            return PrunedVideo(self, None, 0.0)
        f = self.features
        kept, ms = timed(lambda: method(f.video_tokens, f.frame_features, f.saliency), self.model.device)
        return PrunedVideo(self, kept, ms)

    def ttft_ms(self, first_token_at: float) -> float:
        """Time to first token of the first question: wall time from the start of the video's work
        (decoding included) to ``first_token_at``."""
        return (first_token_at - self.started_at) * 1e3

    def unpruned_counts(self) -> tuple[int, int]:
        """(prompt length L, video slots) of the unpruned prefix, without building it."""
        ids = self.inputs["input_ids"]
        return int(ids.shape[1]), int((ids == self.model.video_token_id).sum())


def ask_many(
    model: ModelAdapter,
    video: str | SampledVideo | PreparedVideo,
    questions: list[str],
    options: AskOptions | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> list[AskResult]:
    """Answer several questions about one video: one decode, vision pass, pruning and prefix prefill.

    Question k prefills only its own tokens on the prefix's KV cache, at its original positions
    (M-RoPE columns for Qwen2.5-VL), so its answer equals a fresh single-question run.

    Parameters
    ----------
    model : ModelAdapter
        From :func:`fastvid_cli.models.load_model`.
    video : str, SampledVideo or PreparedVideo
    questions : list of str
        Non-empty questions, answered in order.
    options : AskOptions, optional
    on_stage : callable, optional
        Called with each stage's name as it starts (for progress display).

    Returns
    -------
    list of AskResult
        One per question, in order.

    Raises
    ------
    InputError
        No question, an empty one, or a bad video.
    ModelError
        A prompt template that puts the question before the video.
    """
    return list(iter_answers(model, video, questions, options, on_stage))


def iter_answers(
    model: ModelAdapter,
    video: str | SampledVideo | PreparedVideo,
    questions: list[str],
    options: AskOptions | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Iterator[AskResult]:
    """:func:`ask_many`, yielding each answer as soon as it is there (a batch writes it at once)."""
    options = options or AskOptions()
    notify = on_stage or (lambda stage: None)
    if not questions or any(not q.strip() for q in questions):
        raise InputError("give at least one question, none of them empty")
    for question in questions:
        model.prompt_parts(question)  # a template that puts the question first is refused here
    session = VideoSession.open(model, video, options.frames, notify, options.vision_batch)
    notify("pruning")
    pruned = session.prune(options.config)
    vanilla_ms, skipped = None, []
    baseline = options.baseline
    if baseline is None:
        length = session.unpruned_counts()[0] + int(model.question_ids(questions[0]).numel())
        window = context_window(model)
        baseline = window is None or length <= window
        if not baseline:
            skipped.append(
                f"vanilla baseline skipped: the unpruned prompt ({length:,} tokens) is longer than the LLM's "
                f"context window ({window:,}); asking for the baseline explicitly runs it anyway"
            )
    if baseline:
        notify("prefill (vanilla baseline, only to measure)")
        vanilla_ms = session.prune(None).time_prefill_without_cache(questions[0])
    for k, question in enumerate(questions):
        notify("prefill" if k == 0 else f"question {k + 1}")
        answer = pruned.answer(question, options.max_new_tokens)
        result = _result(session, pruned, question, answer, options, first=k == 0, vanilla_ms=vanilla_ms if k == 0 else None)
        if k == 0:
            result.notes.extend(skipped)
        yield result


def context_window(model: ModelAdapter) -> int | None:
    """The LLM's ``max_position_embeddings`` (its trained context, in tokens), or None when unknown."""
    config = model.model.config
    text = getattr(config, "text_config", None) or config
    return getattr(text, "max_position_embeddings", None)


def ask(
    model: ModelAdapter,
    video: str | SampledVideo | PreparedVideo,
    question: str,
    options: AskOptions | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> AskResult:
    """Answer one question about a video with FastVID-pruned video tokens (see :func:`ask_many`)."""
    return ask_many(model, video, [question], options, on_stage)[0]


def _result(
    session: VideoSession,
    pruned: PrunedVideo,
    question: str,
    answer: Answer,
    options: AskOptions,
    first: bool,
    vanilla_ms: float | None,
) -> AskResult:
    model, features, kept = session.model, session.features, pruned.kept
    full_length, full_slots = session.unpruned_counts()
    video_before = features.num_frames * features.tokens_per_frame
    video_after = int(kept.indices.numel()) if kept is not None else video_before
    own = answer.inputs.length
    tokens = TokenCounts(
        video_before=video_before,
        video_after=video_after,
        video_kept_ratio=video_after / video_before,
        newline_before=full_slots - video_before,
        newline_after=pruned.inputs.video_slots - video_after,
        tokens_per_frame=features.tokens_per_frame,
        grid=list(features.grid),
        grid_thw=list(features.state.patch_grid) if features.state.patch_grid is not None else None,
        prompt_before=full_length + own,
        prompt_after=pruned.inputs.length + own,
        prefill_tokens=pruned.inputs.length + own if first else own,
    )
    flops = flops_report(model.llm_geometry(), video_before, video_after, tokens.prompt_before, tokens.prompt_after)
    shared = session.ms if first else {"decode": 0.0, "preprocess": 0.0, "vision": 0.0}
    prefill_ms = answer.prefill_ms + (pruned.prefill_ms if first else 0.0)
    ttft = session.ttft_ms(answer.first_token_at) if first else answer.prefill_ms
    if first and vanilla_ms is not None:  # the baseline ran between pruning and the prefill: not part of the TTFT
        ttft -= vanilla_ms
    pruning_ms = pruned.pruning_ms if first else 0.0
    timing = Timing(
        decode_ms=shared["decode"],
        preprocess_ms=shared["preprocess"],
        vision_ms=shared["vision"],
        pruning_ms=pruning_ms,
        prefill_ms=prefill_ms,
        generation_ms=answer.generation_ms,
        prefill_vanilla_ms=vanilla_ms,
        prefill_speedup=vanilla_ms / prefill_ms if vanilla_ms else None,
        ttft_ms=ttft,
        total_ms=sum(shared.values()) + pruning_ms + prefill_ms + answer.generation_ms + (vanilla_ms or 0.0),
    )
    notes = list(session.notes) + ([BASELINE_NOTE] if vanilla_ms is not None else [])
    cut_off = answer.cut_off_note()
    if cut_off:
        notes.append(cut_off)
    return AskResult(
        answer=answer.text,
        question=question,
        reasoning=answer.reasoning,
        model=model_info(model),
        video=video_info(session.video),
        frames=session.video.num_frames,
        retention=options.config.retention_ratio,
        config=options.config.to_dict(),
        settings=model.settings,
        tokens=tokens,
        flops=flops,
        timing=timing,
        segments=kept.segment_lengths if kept is not None else [features.num_frames],
        notes=notes,
    )


__all__ = [
    "AskOptions",
    "AskResult",
    "ModelInfo",
    "PreparedVideo",
    "PrunedVideo",
    "Timing",
    "TokenCounts",
    "VideoSession",
    "VideoSource",
    "ask",
    "ask_many",
    "default_vision_batch",
    "encode_video",
    "iter_answers",
    "prepare_video",
    "read_for",
]
