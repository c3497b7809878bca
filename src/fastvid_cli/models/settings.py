"""The paper's evaluation settings per model family: frames, pixels, layout, prompt and decoding.

FastVID's numbers come from the authors' lmms-eval runs (their ``scripts/eval.sh`` and model
wrappers in github.com/LunarShen/FastVID). A real checkpoint's own files can say otherwise
(LLaVA-Video-7B-Qwen2's config.json asks for bilinear pooling and its generation_config.json for
sampling), so ``fastvid`` runs each family as the paper did unless the user overrides a setting.
Each family's paper run is its adapter's ``paper`` (``ModelAdapter.paper``, found through
:mod:`.registry`); this module holds the types and the sampling rules they share:

=================  =====================================  ============================================
family             paper's run                            source
=================  =====================================  ============================================
LLaVA-OneVision    32 frames (floor of linspace), 196     fastvid_llavaonevision/scripts/eval.sh
                   tokens + 1 newline, qwen_1_5 template  (max_frames_num=32, conv_template=qwen_1_5),
                   (system "You are a helpful             lmms_eval/models/llava_onevision.py
                   assistant."), greedy                   (load_video, temperature 0)
LLaVA-Video        64 frames (floor of linspace, first    fastvid_llavavideo/scripts/eval.sh
                   and last), average pooling stride 2    (max_frames_num=64, force_sample=True,
                   (13 x 13) + a newline per row (182     mm_spatial_pool_mode=average), llava_vid.py
                   slots), qwen_1_5, greedy with the      (overwrite_config: pooling, grid newlines;
                   checkpoint's repetition_penalty 1.05   generate: do_sample False, the rest from
                                                          generation_config.json)
Qwen2.5-VL         2 fps (4-768 frames, even), one        fastvid_qwen25vl/.../qwen2_5_vl.py
                   pixel budget of 16384 x 28 x 28 for    (max_pixels=16384*28*28, min_pixels=16*28*28,
                   the whole video, system "You are a     system_prompt) and its qwenvlutils/
                   helpful assistant.", greedy            vision_process.py (fetch_video)
=================  =====================================  ============================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..video import FrameSampling

SYSTEM_PROMPT = "You are a helpful assistant."
"""The system turn of every paper run (LLaVA-NeXT's qwen_1_5 template; Qwen2.5-VL's wrapper)."""
QWEN_FACTOR = 28
"""Qwen2.5-VL's pixel grid: 14 px patches merged 2 x 2."""


@dataclass(frozen=True)
class PixelBudget:
    """Qwen2.5-VL's frame size rule of the paper's runs: one pixel budget for the whole video.

    Each frame gets at most ``max(int(total_pixels / frames * 2), int(1.05 * min_pixels))`` pixels
    and is resized by qwen-vl-utils' ``smart_resize`` (sides multiples of 28, aspect kept). This is
    the FastVID release's copy of qwen-vl-utils (``fetch_video``), which drops the library's
    per-frame cap of 768 x 28 x 28 pixels.

    Attributes
    ----------
    total_pixels : int
        Pixels for the whole video, counted per pair of frames (16384 x 28 x 28).
    min_pixels : int
        Least pixels of a frame (16 x 28 x 28).

    Raises
    ------
    ValueError
        If a budget is not positive or the minimum exceeds the total.
    """

    total_pixels: int = 16384 * QWEN_FACTOR * QWEN_FACTOR
    min_pixels: int = 16 * QWEN_FACTOR * QWEN_FACTOR

    def __post_init__(self) -> None:
        if not 0 < self.min_pixels <= self.total_pixels:
            raise ValueError(f"need 0 < min pixels <= total pixels, got {self.min_pixels} and {self.total_pixels}")

    @property
    def factor(self) -> int:
        """Side in pixels of one LLM token (a merged patch): frame sides are multiples of it."""
        return QWEN_FACTOR

    def frame_pixels(self, frames: int) -> int:
        """Most pixels one of ``frames`` frames may have."""
        return max(int(self.total_pixels / frames * 2), int(self.min_pixels * 1.05))

    def frame_size(self, height: int, width: int, frames: int) -> tuple[int, int]:
        """(height, width) in pixels a ``height`` x ``width`` frame is resized to, ``frames`` frames in all."""
        from qwen_vl_utils.vision_process import smart_resize

        size: tuple[int, int] = smart_resize(
            height, width, QWEN_FACTOR, min_pixels=self.min_pixels, max_pixels=self.frame_pixels(frames)
        )
        return size

    def tokens(self, height: int, width: int, frames: int) -> int:
        """Video tokens of ``frames`` frames of this size: (frames / 2) x (h / f) x (w / f), f = :attr:`factor`."""
        h, w = self.frame_size(height, width, frames)
        return -(-frames // 2) * (h // self.factor) * (w // self.factor)

    def describe(self) -> str:
        return f"{self.total_pixels:,} px per video (16384 x 28 x 28), min {self.min_pixels:,} px per frame"


@dataclass(frozen=True)
class Decoding:
    """How answers are decoded: greedy, as every paper run.

    Attributes
    ----------
    repetition_penalty : float or None
        Kept from the checkpoint's generation_config.json, as the paper's runs kept it: LLaVA-NeXT's
        ``generate`` merges its call's ``do_sample=False, temperature=0, top_p=None`` into the
        checkpoint's generation config, so a repetition penalty there (LLaVA-Video: 1.05) still
        applies under greedy decoding, while sampling settings (temperature, top_k, top_p) do not.
    source : str
        Where ``repetition_penalty`` came from.
    penalize_prompt : bool
        Whether the penalty also counts the prompt's tokens. LLaVA-NeXT's ``generate`` hands
        transformers only ``inputs_embeds``, so its penalty saw the generated tokens alone (False for
        the LLaVA families); Qwen2.5-VL's wrapper passes ``input_ids``, so the prompt counts (True).
    """

    repetition_penalty: float | None = None
    source: str = ""
    penalize_prompt: bool = True

    def __post_init__(self) -> None:
        if self.repetition_penalty is not None and not self.repetition_penalty > 0:
            raise ValueError(f"repetition penalty must be positive, got {self.repetition_penalty}")

    def describe(self) -> str:
        if self.repetition_penalty in (None, 1.0):
            return "greedy"
        return f"greedy, repetition penalty {self.repetition_penalty:g}" + (f" ({self.source})" if self.source else "")


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides what the LLM sees and says, besides the pruning (shown with each run).

    Attributes
    ----------
    family : str
    sampling : FrameSampling
    pixels : PixelBudget or None
        Qwen2.5-VL's whole-video budget; None for the LLaVA models (384 x 384 frames).
    pooling : str
        How the patch grid becomes tokens, e.g. ``average 2x2: 27x27 -> 13x13``.
    newlines : str
        Where newline slots sit in the video, e.g. ``one after each row``.
    system_prompt : str or None
        The system turn; None for none.
    decoding : Decoding
    thinking : bool or None
        Whether the model reasons before it answers, for a model whose chat template has that switch
        (Qwen3.5's ``enable_thinking``: off by default); None for a model without one.
    notes : tuple of str
        Where the checkpoint's own files differ from what runs (one line each).
    """

    family: str
    sampling: FrameSampling
    pixels: PixelBudget | None = None
    pooling: str = ""
    newlines: str = ""
    system_prompt: str | None = SYSTEM_PROMPT
    decoding: Decoding = field(default_factory=Decoding)
    thinking: bool | None = None
    notes: tuple[str, ...] = ()

    def with_overrides(self, overrides: SettingsOverrides | None) -> RunSettings:
        """These settings with what the user gave (unset fields keep the paper's).

        Raises
        ------
        ValueError
            A maximum frame count without a frame rate, a pixel budget for a LLaVA model, or a
            pooling mode for another model than LLaVA-Video.
        """
        if overrides is None:
            return self
        sampling = self.sampling
        if overrides.frames is not None:
            sampling = sampling.with_frames(overrides.frames)
        elif overrides.fps is not None:
            sampling = sampling.with_fps(overrides.fps, overrides.max_frames)
        elif overrides.max_frames is not None:
            if sampling.fps is None:
                raise ValueError("a maximum frame count goes with a frame rate (fps)")
            sampling = sampling.with_fps(sampling.fps, overrides.max_frames)
        if overrides.pool_mode is not None and self.family != "llava_video":
            raise ValueError(f"a pooling mode applies to LLaVA-Video, not to {self.family}")
        pixels = self.pixels
        if overrides.video_pixels is not None:
            if pixels is None:
                raise ValueError(f"a video pixel budget applies to the Qwen models, not to {self.family}")
            pixels = replace(pixels, total_pixels=overrides.video_pixels)
        prompt = self.system_prompt if overrides.system_prompt is None else (overrides.system_prompt or None)
        decoding = self.decoding
        if overrides.repetition_penalty is not None:
            decoding = replace(decoding, repetition_penalty=overrides.repetition_penalty, source="given")
        thinking = self.thinking
        if overrides.thinking is not None:
            if thinking is None:
                raise ValueError(
                    f"a thinking switch applies to models whose chat template has one (Qwen3.5), not to {self.family}"
                )
            thinking = overrides.thinking
        return replace(self, sampling=sampling, pixels=pixels, system_prompt=prompt, decoding=decoding, thinking=thinking)

    def describe(self, frames: int | None = None, total_frames: int | None = None) -> str:
        """One line for the Settings line: frames, pixels, layout, system prompt, decoding; with
        ``frames``, the frames a video got (of its ``total_frames``) rather than the rule alone
        (see :meth:`fastvid_cli.video.FrameSampling.describe`)."""
        parts = [self.sampling.describe(frames, total_frames)]
        if self.pixels is not None:
            parts.append(self.pixels.describe())
        parts += [p for p in (self.pooling, self.newlines) if p]
        parts.append(f"system {self.system_prompt!r}" if self.system_prompt else "no system prompt")
        if self.thinking is not None:
            parts.append("thinking on" if self.thinking else "thinking off")
        parts.append(self.decoding.describe())
        return "; ".join(parts)

    def to_dict(self) -> dict:
        """The ``settings`` entry of ``--json``."""
        return {
            "family": self.family,
            "rule": self.describe(),
            "frames": self.sampling.to_dict(),
            "pixel_budget": None if self.pixels is None else {**asdict(self.pixels), "rule": self.pixels.describe()},
            "pooling": self.pooling,
            "newlines": self.newlines,
            "system_prompt": self.system_prompt,
            "decoding": {
                "greedy": True,
                "repetition_penalty": self.decoding.repetition_penalty,
                "rule": self.decoding.describe(),
            },
            "thinking": self.thinking,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class SettingsOverrides:
    """What a user changed of the paper's settings; None keeps the paper's.

    Attributes
    ----------
    frames : int or None
        A fixed frame count, spread uniformly.
    fps, max_frames : float, int or None
        Sampling by time, at most ``max_frames`` frames.
    system_prompt : str or None
        The system turn; "" for none (Qwen2.5-VL's template then has an empty one).
    video_pixels : int or None
        Qwen2.5-VL's pixel budget for the whole video.
    pool_mode : str or None
        LLaVA-Video's pooling of the patch grid: ``average`` (the paper's), ``max`` or ``bilinear``.
    repetition_penalty : float or None
        Instead of the checkpoint's (1.0 turns it off).
    thinking : bool or None
        Turn the chat template's thinking switch on or off (Qwen3.5).

    Raises
    ------
    ValueError
        Both frames and fps, or a value out of range.
    """

    frames: int | None = None
    fps: float | None = None
    max_frames: int | None = None
    system_prompt: str | None = None
    video_pixels: int | None = None
    pool_mode: str | None = None
    repetition_penalty: float | None = None
    thinking: bool | None = None

    def __post_init__(self) -> None:
        if self.frames is not None and self.fps is not None:
            raise ValueError("give a frame count or a frame rate (fps), not both")
        for name in ("frames", "max_frames", "video_pixels"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be at least 1, got {value}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.pool_mode is not None and self.pool_mode not in POOL_MODES:
            raise ValueError(f"unknown pooling {self.pool_mode!r}: use {', '.join(POOL_MODES)}")
        if self.repetition_penalty is not None and not self.repetition_penalty > 0:
            raise ValueError(f"repetition penalty must be positive, got {self.repetition_penalty}")


POOL_MODES = ("average", "max", "bilinear")
"""LLaVA-Video's pooling modes (LLaVA-NeXT's ``mm_spatial_pool_mode``)."""

LLAVA_SAMPLING = FrameSampling(frames=32, rounding="floor")
"""LLaVA evaluation scripts: ``np.linspace(0, n - 1, F, dtype=int)``."""


def checkpoint_decoding(generation_config: Any, penalize_prompt: bool = True) -> tuple[Decoding, list[str]]:
    """Greedy decoding with what the paper's runs kept of a checkpoint's generation config.

    Parameters
    ----------
    generation_config : transformers.GenerationConfig
        The checkpoint's (``model.generation_config``).
    penalize_prompt : bool
        Whether the repetition penalty sees the prompt's tokens (False for the LLaVA families: the
        paper's runs gave ``generate`` embeddings only, see ``ModelAdapter.penalize_prompt``).

    Returns
    -------
    decoding : Decoding
        Greedy, with the checkpoint's repetition penalty (the paper's runs applied it).
    notes : list of str
        A line when the checkpoint asks for sampling, which is not done.
    """
    penalty = getattr(generation_config, "repetition_penalty", None)
    decoding = Decoding(penalty, "from the checkpoint, as the paper's runs") if penalty not in (None, 1.0) else Decoding()
    if not penalize_prompt:
        decoding = replace(decoding, penalize_prompt=False)
    notes = []
    if getattr(generation_config, "do_sample", False):
        asked = ", ".join(
            f"{k} {getattr(generation_config, k):g}"
            for k in ("temperature", "top_k", "top_p")
            if getattr(generation_config, k, None) is not None
        )
        notes.append(
            f"the checkpoint's generation config asks for sampling ({asked}); decoding greedily, as fastvid always does (and the paper's runs did)"
        )
    return decoding, notes
