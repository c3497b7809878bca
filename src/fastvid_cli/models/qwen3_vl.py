"""Qwen3-VL, dense and MoE (Qwen/Qwen3-VL-2B/4B/8B/32B, -30B-A3B, -235B-A22B; Instruct and Thinking),
through transformers' native classes (``models/qwen3_vl``, ``models/qwen3_vl_moe``).

FastVID on Qwen3-VL is this project's extension: the paper and the authors' release stop at
Qwen2.5-VL. What the model does, and what pruning keeps consistent:

- Video layout: frames are paired (temporal patch 2), cut into 16 px patches and merged 2 x 2, so a
  temporal patch of h x w pixels becomes (h / 32) x (w / 32) LLM tokens. The processor writes, for
  each temporal patch, its timestamp text (``<0.5 seconds>``), then ``<|vision_start|>``, the patch's
  ``<|video_pad|>`` slots, ``<|vision_end|>``. One FastVID frame is one temporal patch. Pruning drops
  ``<|video_pad|>`` slots only: every timestamp and every start/end pair stays, also around a
  temporal patch that keeps no token, so the model still reads the time of every patch.
- Features for FastVID (as for Qwen2.5-VL): g_i = the mean of a temporal patch's merged tokens;
  saliency = the attention each patch receives in the last vision block (mean over heads and the
  queries of its temporal patch), averaged over the 2 x 2 patches of a merged token.
- DeepStack: the vision tower also returns one feature per merged token from blocks 8, 16 and 24
  (``deepstack_visual_indexes``); the text model adds level l to the hidden states at the video
  positions after its decoder layer l. Those rows describe the same pixels as the token at that
  position, so they follow the tokens: the same kept indices, in the same order, and where DTM
  merges tokens into an anchor, the same merge weights at every level (``PruneResult.gather``).
  Taking the anchor's own DeepStack rows would add to a merged token features of one patch only.
- Positions: interleaved M-RoPE (``mrope_section`` [24, 20, 20]). ``get_rope_index`` runs on the
  unpruned prompt (with ``mm_token_type_ids``) and the kept columns are passed explicitly, so the
  text after the video and the decoded tokens continue from the unpruned positions (as vLLM's EVS
  for Qwen3-VL keeps the original M-RoPE positions of the kept tokens).
- Sampling and sizing: the model's own, through transformers' ``Qwen3VLVideoProcessor``: 2 fps, 4 to
  768 frames (``sample_frames``); frame size by its ``smart_resize`` under the published processor's
  pixel limits, with the per-frame cap of the reference implementation (``cap_pixels_per_frame``).
  decord reads the frames; they are resized once for the whole video (bicubic, antialiased), so a
  streaming encode of chunks sees the sizes one processor call on all frames would give.
- Thinking checkpoints: the reasoning (up to ``</think>``) is returned apart from the answer.
- FastVID's settings: the paper has none for Qwen3-VL; the release's Qwen2.5-VL values are the
  default (R 0.27, tau 0.84, split_tau 0.95), marked as not the paper's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, cast

import torch

from ..errors import ModelError
from ..pruning import PruneResult
from ..video import FrameSampling
from .features import KeptSlots, VideoFeatures
from .qwen2_5_vl import RELEASE_DEFAULTS, PatchGridState, Qwen2_5_VLAdapter, block_saliency, run_vision_tower
from .recipe import QWEN2_VL_TOKENS, QWEN_MEDIA_TOKENS, QWEN_VL_ROLES, TINY_TEXT, TinyRecipe, scale_layers, scale_sections
from .registry import read_config
from .settings import PixelBudget, RunSettings, SettingsOverrides
from .tiny_names import is_tiny_random

MODEL_TYPES = {"qwen3_vl": "Qwen3VLForConditionalGeneration", "qwen3_vl_moe": "Qwen3VLMoeForConditionalGeneration"}
"""transformers model types of the family -> their model class."""
THINK_END = "</think>"
"""Where a Thinking checkpoint's reasoning ends and its answer begins."""
THINKING_MAX_NEW_TOKENS = 4096
"""Default answer length of a Thinking checkpoint: its reasoning comes first (an Instruct one: 128)."""


@functools.lru_cache(maxsize=8)
def _video_processor(fps: float, min_frames: int, max_frames: int):
    from transformers import Qwen3VLVideoProcessor

    return Qwen3VLVideoProcessor(fps=fps, min_frames=min_frames, max_frames=max_frames)


@dataclass(frozen=True)
class Qwen3VLSampling(FrameSampling):
    """transformers' ``Qwen3VLVideoProcessor.sample_frames``, called as it is: by time, int(n / video fps
    x fps) frames clamped to [min_frames, min(max_frames, n)]; frame numbers ``linspace(0, n - 1, k).round()``.

    Unlike qwen-vl-utils (Qwen2.5-VL), the count need not be even: an odd last frame is paired with
    itself by the processor. A fixed count (``--frames``) is spread the same way, at most n frames.
    """

    def count(self, total_frames: int, video_fps: float) -> int:
        return len(self.indices(total_frames, video_fps))

    def indices(self, total_frames: int, video_fps: float):
        from transformers.video_utils import VideoMetadata

        processor = _video_processor(self.fps or 2.0, self.min_frames, self.max_frames)
        metadata = VideoMetadata(total_num_frames=total_frames, fps=video_fps or None)
        if self.frames is not None:
            return processor.sample_frames(metadata, num_frames=min(self.frames, total_frames)).astype("int64")
        if not video_fps:  # no frame rate in the header: the processor would assume 24 fps, with a warning
            metadata.fps = 24.0
        return processor.sample_frames(metadata, fps=self.fps).astype("int64")


QWEN3_SAMPLING = Qwen3VLSampling(fps=2.0, min_frames=4, max_frames=768, rounding="round")
"""Qwen3VLVideoProcessor's defaults (the published checkpoints set no others): 2 fps, 4 to 768 frames."""


@dataclass(frozen=True)
class Qwen3VLPixels(PixelBudget):
    """Qwen3-VL's frame size: ``Qwen3VLVideoProcessor.resize`` with the reference's per-frame cap.

    Each of F frames gets at most ``max(min(frame_tokens x 32^2, total_pixels // F), int(1.05 x
    min_pixels))`` pixels, and transformers' ``smart_resize`` (sides multiples of 32) sizes it for
    the video's F frames. The defaults are the published ``video_preprocessor_config.json`` of
    Qwen/Qwen3-VL-8B-Instruct (``size``: longest_edge 25,165,824 = 24,576 tokens of 32 x 32,
    shortest_edge 4,096) and the processor's 768 tokens per frame.

    Attributes
    ----------
    total_pixels : int
        The processor's ``size["longest_edge"]``.
    min_pixels : int
        Its ``size["shortest_edge"]``.
    frame_tokens : int
        Its ``max_video_tokens``: most merged tokens of one frame.
    """

    total_pixels: int = 25165824
    min_pixels: int = 4096
    frame_tokens: int = 768

    @property
    def factor(self) -> int:
        return 32

    def frame_pixels(self, frames: int) -> int:
        cap = self.frame_tokens * self.factor * self.factor
        return max(min(cap, self.total_pixels // max(frames, 1)), int(self.min_pixels * 1.05))

    def frame_size(self, height: int, width: int, frames: int) -> tuple[int, int]:
        from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize

        frames = max(frames, 2)  # one frame is paired with itself
        return cast(
            tuple[int, int],
            smart_resize(
                frames,
                height,
                width,
                temporal_factor=2,
                factor=self.factor,
                min_pixels=self.min_pixels,
                max_pixels=self.frame_pixels(frames) * frames,
            ),
        )

    def describe(self) -> str:
        return (
            f"{self.total_pixels:,} px per video, at most {self.frame_tokens} tokens per frame, "
            f"min {self.min_pixels:,} px (the checkpoint's video processor, per-frame cap)"
        )

    @classmethod
    def of_processor(cls, video_processor) -> Qwen3VLPixels:
        """The limits a loaded ``Qwen3VLVideoProcessor`` (the checkpoint's ``video_preprocessor_config.json``) sets."""
        size = video_processor.size
        longest = size["longest_edge"] if isinstance(size, dict) else size.longest_edge
        shortest = size["shortest_edge"] if isinstance(size, dict) else size.shortest_edge
        return cls(
            total_pixels=int(longest),
            min_pixels=int(shortest),
            frame_tokens=int(getattr(video_processor, "max_video_tokens", None) or 768),
        )


@dataclass
class DeepStackState(PatchGridState):
    """Qwen3-VL's patch grid and DeepStack features.

    Attributes
    ----------
    grid_thw : tuple of int
        (t, h, w) patch grid of the video.
    levels : tuple of torch.Tensor
        One (t, N, D) tensor per DeepStack level (``deepstack_visual_indexes``), row for row with the
        video tokens, in the model's dtype.
    """

    levels: tuple[torch.Tensor, ...] = field(default_factory=tuple)

    def concat(self, parts: Sequence[DeepStackState]) -> DeepStackState:  # type: ignore[override]  # a video's chunks share its state type
        """The chunks' temporal patches added up, each level's rows joined in order."""
        grid = super().concat(parts).grid_thw
        return DeepStackState(grid, tuple(torch.cat(rows) for rows in zip(*(p.levels for p in parts))))


TINY_VISION = {"depth": 4, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2}
"""Test-size vision tower: 4 blocks, so that three DeepStack levels from distinct blocks remain."""
TINY_EXPERTS = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
"""Test-size MoE: 4 experts, 2 active per token."""


VIDEO_LAYOUT_FIELDS = (
    ("config.json", "vision_config.patch_size"),
    ("config.json", "vision_config.spatial_merge_size"),
    ("config.json", "vision_config.temporal_patch_size"),
    ("config.json", "text_config.max_position_embeddings"),
    ("config.json", "tie_word_embeddings"),
    ("video_preprocessor_config.json", "size"),
    ("video_preprocessor_config.json", "patch_size"),
    ("video_preprocessor_config.json", "merge_size"),
    ("video_preprocessor_config.json", "temporal_patch_size"),
    ("preprocessor_config.json", "size"),
)
"""Published fields of the Qwen3 generation (Qwen3-VL, Qwen3.5) that decide the video's tokens: patch, merge and
temporal patch sizes, the processors' pixel limits, positions, tied embeddings."""


def shrink_config(config: dict, vocab_size: int) -> dict:
    """A published Qwen3-VL config (``text_config`` and ``vision_config`` nested) at test size: the LLM's
    widths, depth, heads and head_dim 16, M-RoPE sections in the same proportions (sum = head_dim / 2),
    4 experts of which 2 active for MoE, a 4-block vision tower whose DeepStack levels come from
    blocks at the published proportions of its depth. Patch, merge and temporal patch sizes stay."""
    text = config["text_config"] | TINY_TEXT | {"vocab_size": vocab_size}
    head_dim = TINY_TEXT["hidden_size"] // TINY_TEXT["num_attention_heads"]
    text["head_dim"] = head_dim
    for key in ("rope_scaling", "rope_parameters"):
        if "mrope_section" in (text.get(key) or {}):
            text[key] = text[key] | {"mrope_section": scale_sections(text[key]["mrope_section"], head_dim // 2)}
    if "num_experts" in text:
        text |= TINY_EXPERTS
    vision = config["vision_config"]
    depth = TINY_VISION["depth"]
    deepstack = scale_layers(vision.get("deepstack_visual_indexes", []), depth, vision.get("depth", depth))
    vision = vision | TINY_VISION | {"out_hidden_size": TINY_TEXT["hidden_size"], "deepstack_visual_indexes": deepstack}
    return config | {"text_config": text, "vision_config": vision}


class Qwen3VLAdapter(Qwen2_5_VLAdapter):
    """FastVID on Qwen3-VL (dense and MoE).

    Parameters
    ----------
    model : transformers.Qwen3VLForConditionalGeneration or Qwen3VLMoeForConditionalGeneration
    processor : transformers.Qwen3VLProcessor
    model_id : str
    overrides : SettingsOverrides, optional
    notes : list of str
    tiny_random : bool
    """

    family = "qwen3_vl"
    resize_api = "torchvision.transforms.v2.functional"  # as Qwen3VLVideoProcessor resizes (see the base's)
    model_types = MODEL_TYPES
    """The family's transformers model types -> model class."""
    paper = RunSettings(
        family="qwen3_vl",
        sampling=QWEN3_SAMPLING,
        pixels=Qwen3VLPixels(),
        pooling="2x2 patch merge",
        newlines="none; a timestamp and start/end tokens around every temporal patch",
        system_prompt=None,
    )
    """Not a paper's run: the model's own sampling, sizing and chat template (no system turn)."""
    fastvid_defaults = RELEASE_DEFAULTS
    """Not the paper's (it has no Qwen3 run): the FastVID release's Qwen2.5-VL values."""
    lmms_eval_model = "qwen3_vl"  # lmms-eval's own Qwen3-VL wrapper (no paper run)
    lmms_eval_tasks: ClassVar[dict] = {
        "videomme": "videomme_qwen3_vl"
    }  # its VideoMME prompt: "Question: ... Answer with the option letter only."
    tiny_recipe = TinyRecipe(
        display_name="Qwen3-VL",
        model_class=lambda config: MODEL_TYPES[config["model_type"]],
        layout_fields=(
            *VIDEO_LAYOUT_FIELDS,
            ("config.json", "text_config.rope_scaling.mrope_interleaved"),
            ("chat_template.json", "chat_template"),
            ("generation_config.json", "do_sample"),
            ("generation_config.json", "temperature"),
            ("generation_config.json", "top_k"),
            ("generation_config.json", "top_p"),
        ),
        special_tokens=QWEN2_VL_TOKENS,
        role_ids=QWEN_VL_ROLES,
        media_tokens=QWEN_MEDIA_TOKENS,
        shrink=shrink_config,
    )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, model_id: str, overrides: SettingsOverrides | None = None, **load_kwargs
    ) -> Qwen3VLAdapter:
        """Load model and processor from a checkpoint folder (``load_kwargs`` go to transformers).

        The pixel limits are the checkpoint's video processor's; a note says where they differ from
        Qwen3-VL-8B-Instruct's published ones.
        """
        import transformers
        from transformers import AutoProcessor

        model_type = read_config(Path(path))["model_type"]
        model = getattr(transformers, cls.model_types[model_type]).from_pretrained(str(path), **load_kwargs).eval()
        processor = AutoProcessor.from_pretrained(str(path))
        adapter = cls(model, processor, model_id, overrides, tiny_random=is_tiny_random(path))
        own = Qwen3VLPixels.of_processor(processor.video_processor)
        if own != cls.paper.pixels and (overrides is None or overrides.video_pixels is None):
            from dataclasses import replace

            note = (
                f"the checkpoint's video processor sets its own pixel limits ({own.describe()}), not "
                f"Qwen3-VL-8B-Instruct's published ones ({Qwen3VLPixels().describe()}): running the checkpoint's"
            )
            adapter.settings = replace(adapter.settings, pixels=own, notes=(*adapter.settings.notes, note))
        return adapter

    def init_settings(self, overrides, notes=()) -> None:
        """The model's own settings, with a note that FastVID's defaults here are not the paper's."""
        defaults = ", ".join(f"{key.removesuffix('_ratio')} {value:g}" for key, value in self.fastvid_defaults.items())
        note = (
            f"FastVID's defaults for {self.family} are not the paper's (it has none for this family): the release's "
            f"Qwen2.5-VL values ({defaults}); comparing retention ratios (the compare command) shows what another R changes"
        )
        super().init_settings(overrides, (*notes, note))

    @classmethod
    def claims(cls, config: dict) -> bool:
        """transformers' ``qwen3_vl`` and ``qwen3_vl_moe`` checkpoints."""
        return config.get("model_type") in MODEL_TYPES

    @property
    def thinking(self) -> bool:
        """Whether the chat template opens a reasoning block for the answer (Thinking checkpoints)."""
        template = getattr(self.processor, "chat_template", None) or getattr(self.processor.tokenizer, "chat_template", "") or ""
        return "<think>" in template

    @property
    def default_max_new_tokens(self) -> int:
        return THINKING_MAX_NEW_TOKENS if self.thinking else super().default_max_new_tokens

    def full_prompt(self, question: str) -> str:
        """The checkpoint's chat template (no system turn unless one is set), the video as one
        ``<|video_pad|>`` (the processor's collapse of the template's start/pad/end), then the question."""
        text = super(Qwen2_5_VLAdapter, self).full_prompt(question)
        wrapper = self.processor.vision_start_token + self.processor.video_token + self.processor.vision_end_token
        return text.replace(wrapper, self.processor.video_token)

    def frame_size(self, video) -> tuple[int, int]:
        """(height, width) in pixels every frame of ``video`` is resized to (:class:`Qwen3VLPixels`).

        Raises
        ------
        ModelError
            Without a pixel budget in the settings (as Qwen2.5-VL's).
        """
        pixels = self.settings.pixels
        if pixels is None:
            raise ModelError(f"{self.family} runs need a pixel budget (settings.pixels)")
        return pixels.frame_size(video.height, video.width, video.num_frames)

    def prompt_inputs(self, video, question: str | None = None) -> dict:
        """The chat prompt with, for each temporal patch, its timestamp text, ``<|vision_start|>``, its
        (h/32) x (w/32) ``<|video_pad|>`` slots and ``<|vision_end|>``, as the processor writes them
        (its own ``replace_video_token``, from the frame numbers and the file's frame rate).

        Returns
        -------
        dict
            ``input_ids`` (1, L), ``attention_mask`` (1, L), ``mm_token_type_ids`` (1, L),
            ``video_grid_thw`` (1, 3) int64 = (t, h/16, w/16).
        """
        from transformers.video_utils import VideoMetadata

        height, width = self.frame_size(video)
        patch = self.model.config.vision_config.patch_size
        t = self.padded_frames(video) // self.frames_per_chunk
        grid = torch.tensor([[t, height // patch, width // patch]])
        metadata = VideoMetadata(
            total_num_frames=video.total_frames, fps=video.fps or None, frames_indices=[int(i) for i in video.indices]
        )
        placeholder = self.processor.replace_video_token({"video_grid_thw": grid, "video_metadata": [metadata]}, 0)
        text = self.prompt_text(question).replace(self.media_token, placeholder, 1)
        ids = self.processor.tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"].to(self.device)
        types = self.processor.create_mm_token_type_ids(ids.tolist())
        return {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "mm_token_type_ids": torch.tensor(types, dtype=torch.long, device=self.device),
            "video_grid_thw": grid.to(self.device),
        }

    @torch.inference_mode()
    def encode(self, inputs: dict) -> VideoFeatures:
        """Vision tower once, with the last block's attention captured for the saliency.

        Returns
        -------
        VideoFeatures
            ``video_tokens`` (t, (h/2)(w/2), D); ``frame_features`` (t, D); ``saliency`` (t, (h/2)(w/2));
            ``state`` the grid and the DeepStack levels, each (t, (h/2)(w/2), D).
        """
        visual = self.model.model.visual
        grid_thw = inputs["video_grid_thw"]
        out, captured = run_vision_tower(visual, inputs["pixel_values_videos"], grid_thw)
        t, h, w = (int(x) for x in grid_thw[0])
        merge = visual.spatial_merge_size
        rows, cols = h // merge, w // merge
        tokens = out.pooler_output.view(t, rows * cols, -1)
        received = block_saliency(visual.blocks[-1].attn, captured)  # (P,), merge blocks in raster order
        saliency = received.view(-1, merge * merge).mean(-1).view(t, rows * cols)
        levels = tuple(level.view(t, rows * cols, -1) for level in getattr(out, "deepstack_features", None) or ())
        return VideoFeatures(
            video_tokens=tokens,
            frame_features=tokens.float().mean(1),
            saliency=saliency.float(),
            grid=(rows, cols),
            extra_slots=0,
            state=DeepStackState((t, h, w), levels),
        )

    def kept_slots(self, features: VideoFeatures, kept: PruneResult | None) -> KeptSlots:
        """The kept tokens at their own slots, and their DeepStack rows: the same indices, merged with
        the same weights (:meth:`PruneResult.gather`)."""
        slots = super().kept_slots(features, kept)
        levels = cast(DeepStackState, features.state).levels
        if kept is None:
            rows = tuple(level.reshape(-1, level.shape[-1]) for level in levels)
        else:
            rows = tuple(kept.gather(level) for level in levels)
        return KeptSlots(slots.slots, slots.values, rows)

    def video_encoder_output(self, kept: KeptSlots):
        """The kept tokens and their DeepStack rows as the model takes them (one tuple entry per video);
        a tower without DeepStack (Qwen3.5's) takes the tokens alone."""
        from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

        if not kept.levels:
            return super().video_encoder_output(kept)
        return BaseModelOutputWithDeepstackFeatures(  # the model takes one tuple entry per video
            pooler_output=(kept.values.to(self.dtype),),  # type: ignore[arg-type]
            deepstack_features=[(level.to(self.dtype),) for level in kept.levels],  # type: ignore[misc]
        )

    def position_ids(self, inputs: dict) -> torch.Tensor:
        """(4, 1, L) position ids of the unpruned prompt: the 1-D text row, then interleaved M-RoPE's t, h, w rows."""
        rope, _ = self.model.model.get_rope_index(
            inputs["input_ids"],
            inputs["mm_token_type_ids"],
            video_grid_thw=inputs["video_grid_thw"],
            attention_mask=inputs["attention_mask"],
        )
        text = torch.arange(inputs["input_ids"].shape[1], device=rope.device).view(1, 1, -1)
        return torch.cat([text, rope], dim=0)

    def decode_answer(self, token_ids: torch.Tensor) -> tuple[str, str | None]:
        """(answer, reasoning): a Thinking checkpoint's text up to ``</think>`` is its reasoning; the
        answer is what follows (all of it, for an Instruct checkpoint, with no reasoning)."""
        return split_reasoning(self.decode(token_ids), self.thinking)


def split_reasoning(text: str, thinking: bool) -> tuple[str, str | None]:
    """(answer, reasoning) of a decoded reply: the reasoning ends at the last ``</think>`` (the template
    opened ``<think>`` itself); without one, a Thinking reply is all reasoning (cut short) and the answer empty.

    >>> split_reasoning("the man walks</think>\\n\\nHe walks.", True)
    ('He walks.', 'the man walks')
    """
    if THINK_END in text:
        reasoning, _, answer = text.rpartition(THINK_END)
        return answer.strip(), reasoning.replace("<think>", "").strip()
    if thinking:
        return "", text.replace("<think>", "").strip()
    return text, None
