"""Qwen2.5-VL (Qwen/Qwen2.5-VL-3B-Instruct, -7B-Instruct) through transformers' native classes.

Qwen2.5-VL groups frames in pairs (temporal patch 2), cuts them into 14 px patches and merges 2x2
patches into one LLM token: a video becomes a (t, h, w) patch grid and t x (h/2) x (w/2) tokens,
so token counts depend on the resolution. FastVID's "frames" here are the t temporal groups.

- Frame features g_i: the mean of each temporal group's merged patch embeddings.
- Saliency: the attention each patch receives in the last vision block (mean over heads and
  queries, within its temporal group), averaged over the 2x2 patches of a merged token.
- Positions: M-RoPE ids are computed with ``get_rope_index`` on the unpruned prompt and the
  columns of the kept tokens are kept, so Qwen never falls back to 1-D positions or a stale
  ``rope_deltas`` (passing them explicitly bypasses both); generation continues from them.
- Frames are sampled and sized as the paper's runs (the FastVID release's copy of qwen-vl-utils):
  2 fps, 4 to 768 frames, and one pixel budget of 16384 x 28 x 28 for the whole video; decord reads
  them, qwen-vl-utils' ``smart_resize`` gives the size, torchvision resizes (bicubic, antialiased)
  and the processor gets them with ``do_resize=False``. Temporal positions assume 2 fps (one grid
  step per second), as in the paper's runs, whose wrapper did not pass the sampled rate on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, cast

import torch

from ..errors import ModelError
from ..pruning.ats import received_attention
from ..video import FrameSampling
from .base import ModelAdapter
from .features import EncoderState, KeptSlots, VideoFeatures
from .geometry_base import QWEN_REFERENCE_PIXELS, ModelGeometry, transformers_config
from .recipe import QWEN2_VL_TOKENS, QWEN_MEDIA_TOKENS, QWEN_VL_ROLES, TINY_TEXT, TinyRecipe, scale_sections
from .settings import PixelBudget, RunSettings, SettingsOverrides
from .tiny_names import is_tiny_random

PAPER_POSITION_FPS = 2.0
"""Frame rate M-RoPE's temporal positions assume in the paper's runs (the processor's default)."""
RELEASE_DEFAULTS = {"retention_ratio": 0.27, "tau": 0.84, "split_tau": 0.95}
"""FastVID's Qwen2.5-VL release: R 0.27 (about 24.1 % kept after Qwen's sampling), tau 0.84, second threshold 0.95."""


@dataclass(frozen=True)
class QwenVLUtilsSampling(FrameSampling):
    """qwen-vl-utils' frame count (``smart_nframes``: the library's own rule, not a copy): an even count,
    at least 2; by time, 4 to min(768, n) frames; frame numbers ``linspace(0, n - 1, k).round()``."""

    def count(self, total_frames: int, video_fps: float) -> int:
        from qwen_vl_utils.vision_process import smart_nframes

        if total_frames < 2:
            return 2  # the one frame twice: Qwen needs a pair
        if self.frames is not None:
            even_total = total_frames - total_frames % 2
            return min(
                cast(int, smart_nframes({"nframes": min(self.frames, even_total)}, total_frames, video_fps or 1.0)), even_total
            )
        bounds = {"min_frames": self.min_frames, "max_frames": min(self.max_frames, total_frames)}
        return cast(int, smart_nframes({"fps": self.fps, **bounds}, total_frames, video_fps or self.fps))


QWEN_SAMPLING = QwenVLUtilsSampling(fps=2.0, min_frames=4, max_frames=768, multiple=2, rounding="round")
"""qwen-vl-utils: 2 fps, 4 to min(768, n) frames, an even count, ``linspace(...).round()``."""


@dataclass
class PatchGridState(EncoderState):
    """Qwen's (t, h, w) patch grid of the video: t temporal patches of h x w patches of the vision tower."""

    grid_thw: tuple[int, int, int]

    def concat(self, parts: Sequence[PatchGridState]) -> PatchGridState:  # type: ignore[override]  # a video's chunks share its state type
        """The chunks' temporal patches added up."""
        return PatchGridState((sum(p.grid_thw[0] for p in parts), *self.grid_thw[1:]))

    @property
    def patch_grid(self) -> tuple[int, int, int]:
        return self.grid_thw


TINY_VISION = {"depth": 4, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2}
"""Test-size Qwen2.5-VL vision tower (4 blocks, so that windowed and full-attention blocks both remain)."""


def map_full_attention(published: list[int], depth: int) -> list[int]:
    """Full-attention blocks of a ``depth``-block tower, in the published pattern's spirit.

    As many full blocks as published but at most half the blocks, evenly spaced and ending with the
    last block, so both kinds of block remain.

    >>> map_full_attention([7, 15, 23, 31], 4)
    [1, 3]
    """
    if not published:
        return []
    count = max(1, min(len(published), depth // 2))
    stride = depth // count
    return [depth - 1 - stride * j for j in reversed(range(count))]


def shrink_config(config: dict, vocab_size: int) -> dict:
    """The published Qwen2.5-VL config (flat layout: text fields at the top) at test size: the LLM's
    widths, depth and heads, M-RoPE sections in the same proportions (sum = head_dim / 2), a 4-block
    vision tower whose full-attention blocks follow the published pattern."""
    config = config | TINY_TEXT | {"vocab_size": vocab_size}
    head_dim = TINY_TEXT["hidden_size"] // TINY_TEXT["num_attention_heads"]
    rope = config.get("rope_scaling") or {}
    if "mrope_section" in rope:
        config["rope_scaling"] = rope | {"mrope_section": scale_sections(rope["mrope_section"], head_dim // 2)}
    vision = config.get("vision_config", {})
    config["vision_config"] = (
        vision
        | TINY_VISION
        | {
            "out_hidden_size": TINY_TEXT["hidden_size"],
            "fullatt_block_indexes": map_full_attention(vision.get("fullatt_block_indexes", []), TINY_VISION["depth"]),
        }
    )
    return config


class Qwen2_5_VLAdapter(ModelAdapter):
    """FastVID on Qwen2.5-VL.

    Parameters
    ----------
    model : transformers.Qwen2_5_VLForConditionalGeneration
    processor : transformers.Qwen2_5_VLProcessor
    model_id : str
    overrides : SettingsOverrides, optional
    notes : list of str
    tiny_random : bool
    """

    family = "qwen2_5_vl"
    paper = RunSettings(
        family="qwen2_5_vl", sampling=QWEN_SAMPLING, pixels=PixelBudget(), pooling="2x2 patch merge", newlines="none"
    )
    fastvid_defaults = RELEASE_DEFAULTS
    lmms_eval_model = "qwen2_5_vl"  # fastvid_qwen25vl's eval script
    tiny_recipe = TinyRecipe(
        display_name="Qwen2.5-VL",
        model_class="Qwen2_5_VLForConditionalGeneration",
        layout_fields=(
            ("config.json", "vision_config.patch_size"),
            ("config.json", "vision_config.spatial_merge_size"),
            ("config.json", "vision_config.temporal_patch_size"),
            ("config.json", "vision_config.window_size"),
            ("config.json", "vision_config.tokens_per_second"),
            ("config.json", "rope_scaling.type"),
            ("config.json", "tie_word_embeddings"),
            ("config.json", "max_position_embeddings"),
            ("preprocessor_config.json", "min_pixels"),
            ("preprocessor_config.json", "max_pixels"),
            ("preprocessor_config.json", "image_mean"),
            ("chat_template.json", "chat_template"),
        ),
        special_tokens=QWEN2_VL_TOKENS,
        role_ids=QWEN_VL_ROLES,
        media_tokens=QWEN_MEDIA_TOKENS,
        renames=((r"^model\.language_model\.", "model."), (r"^model\.visual\.", "visual.")),
        shrink=shrink_config,
    )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, model_id: str, overrides: SettingsOverrides | None = None, **load_kwargs
    ) -> Qwen2_5_VLAdapter:
        """Load model and processor from a checkpoint folder (``load_kwargs`` go to transformers)."""
        from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), **load_kwargs).eval()
        return cls(model, AutoProcessor.from_pretrained(str(path)), model_id, overrides, tiny_random=is_tiny_random(path))

    @classmethod
    def claims(cls, config: dict) -> bool:
        """transformers' ``qwen2_5_vl`` checkpoints."""
        return config.get("model_type") == "qwen2_5_vl"

    @classmethod
    def geometry_from_config(cls, config: dict, name: str, path: Path | None = None) -> ModelGeometry:
        """Tokens per temporal group of 2 frames at :data:`~.geometry_base.QWEN_REFERENCE_PIXELS` px (Qwen2.5-VL's
        14 px patches, 2 x 2 merged: (448 / 28)^2 = 256; Qwen3-VL's 16 px: 196), as the video's size decides them
        at run time; 32 frames."""
        parsed = transformers_config(config, path)
        vision = parsed.vision_config
        merged = QWEN_REFERENCE_PIXELS // (vision.patch_size * vision.spatial_merge_size)
        return ModelGeometry.of_llm(
            name,
            cls.family,
            parsed.text_config,
            tokens_per_frame=merged * merged,
            frames=cls.paper_frames(),
            extra_slots=0,
            frames_per_group=vision.temporal_patch_size,
        )

    @property
    def video_token_id(self) -> int:
        return int(self.model.config.video_token_id)

    @property
    def media_token(self) -> str:
        return cast(str, self.processor.video_token)

    def full_prompt(self, question: str) -> str:
        """The checkpoint's chat template with the system turn (an empty one without a system prompt: the
        template would otherwise add its default), the video, then the question."""
        system = [{"role": "system", "content": self.settings.system_prompt or ""}]
        conversation = system + [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        return cast(str, self.processor.apply_chat_template(conversation, add_generation_prompt=True))

    frames_per_chunk = 2  # the temporal patch: a chunk of the streaming encode never splits a pair

    def frame_size(self, video) -> tuple[int, int]:
        """(height, width) in pixels every frame of ``video`` is resized to, by the whole-video pixel budget.

        Raises
        ------
        ModelError
            Without a pixel budget in the settings (the paper's runs always had one).
        """
        if self.settings.pixels is None:
            raise ModelError("Qwen2.5-VL runs need a pixel budget (settings.pixels)")
        return self.settings.pixels.frame_size(video.height, video.width, self.padded_frames(video))

    @staticmethod
    def padded_frames(video) -> int:
        """Frames after pairing: an odd count gets its last frame repeated, as the processor does."""
        return int(video.num_frames + video.num_frames % 2)

    def prompt_inputs(self, video, question: str | None = None) -> dict:
        """Chat prompt (system turn, video, question; None: up to the video only) with the video's
        t x (h/28) x (w/28) slots, and what M-RoPE needs to place them.

        Returns
        -------
        dict
            ``input_ids`` (1, L), ``attention_mask`` (1, L), ``mm_token_type_ids`` (1, L),
            ``video_grid_thw`` (1, 3) int64 = (t, h/14, w/14), ``second_per_grid_ts`` (1,) float32.
        """
        height, width = self.frame_size(video)
        patch = self.model.config.vision_config.patch_size
        merge = self.model.config.vision_config.spatial_merge_size
        t = self.padded_frames(video) // self.frames_per_chunk
        grid = torch.tensor([[t, height // patch, width // patch]])
        out = self.expanded_prompt(question, t * (height // patch // merge) * (width // patch // merge))
        types = self.processor.create_mm_token_type_ids(out["input_ids"].tolist())
        out["mm_token_type_ids"] = torch.tensor(types, dtype=torch.long, device=self.device)
        out["video_grid_thw"] = grid.to(self.device)
        # the paper's runs dropped qwen-vl-utils' fps, so the processor took its default 2 fps: one temporal
        # grid step = 1 s, whatever the sampled rate (a long video's positions are compressed the same way)
        out["second_per_grid_ts"] = torch.tensor([self.frames_per_chunk / PAPER_POSITION_FPS], device=self.device)
        return out

    def preprocess(self, frames, video) -> dict:
        """Pixel patches of k consecutive frames ((k, H, W, 3) uint8) at the video's size (:meth:`frame_size`).

        An odd chunk (the video's last) gets its last frame repeated, as the processor pairs frames.

        Returns
        -------
        dict
            ``pixel_values_videos`` (ceil(k/2) x h/p x w/p, 3 x 2 x p^2) in the model's dtype, p the patch size
            (Qwen2.5-VL 14: 1176 values a patch; Qwen3-VL 16: 1536), ``video_grid_thw`` (1, 3).
        """
        import numpy as np

        if frames.shape[0] % 2:
            frames = np.concatenate([frames, frames[-1:]])
        frames = self.resize_frames(frames, self.frame_size(video))
        out = self.processor.video_processor(
            videos=[frames], do_sample_frames=False, do_resize=False, cap_pixels_per_frame=True, return_tensors="pt"
        )
        return {
            "pixel_values_videos": out["pixel_values_videos"].to(self.device, self.dtype),
            "video_grid_thw": out["video_grid_thw"].to(self.device),
        }

    resize_api: ClassVar[str] = "torchvision.transforms.functional"
    """The torchvision functional API whose ``resize`` the family's reference resizes with: qwen-vl-utils'
    ``fetch_video`` uses v1's (Qwen2.5-VL); transformers' video processors v2's, which rounds uint8 pixels
    differently (Qwen3-VL)."""

    def resize_frames(self, frames, size: tuple[int, int]):
        """(k, H, W, 3) uint8 -> (k, h, w, 3) uint8 at ``size`` = (h, w), bicubic, antialiased, on the uint8
        frames, with :attr:`resize_api`'s ``resize``, as the family's reference resizes them (for Qwen2.5-VL,
        qwen-vl-utils' ``fetch_video``), so that chunks resized apart equal the whole video resized at once."""
        import importlib

        from torchvision.transforms import InterpolationMode

        if tuple(size) == tuple(frames.shape[1:3]):
            return frames
        resize = importlib.import_module(self.resize_api).resize
        video = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
        video = resize(video, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        return video.permute(0, 2, 3, 1).contiguous().numpy()

    @torch.inference_mode()
    def encode(self, inputs: dict) -> VideoFeatures:
        """Vision tower once, with the last block's attention captured for the saliency.

        Returns
        -------
        VideoFeatures
            ``video_tokens`` (t, (h/2)(w/2), D); ``frame_features`` (t, D); ``saliency`` (t, (h/2)(w/2)).
        """
        visual = self.model.model.visual
        grid_thw = inputs["video_grid_thw"]
        out, captured = run_vision_tower(visual, inputs["pixel_values_videos"], grid_thw)
        t, h, w = (int(x) for x in grid_thw[0])
        merge = visual.spatial_merge_size
        rows, cols = h // merge, w // merge
        tokens = out.pooler_output.view(t, rows * cols, -1)
        received = block_saliency(visual.blocks[-1].attn, captured)  # (P,) window order
        unit = merge * merge
        per_token = received.view(-1, unit).mean(-1)  # merged tokens, window order
        from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import get_vision_window_index

        window_index, _ = get_vision_window_index(
            grid_thw, spatial_merge_size=merge, window_size=visual.window_size, patch_size=visual.patch_size, kwargs={}
        )
        saliency = per_token[torch.argsort(window_index)].view(t, rows * cols)
        return VideoFeatures(
            video_tokens=tokens,
            frame_features=tokens.float().mean(1),
            saliency=saliency.float(),
            grid=(rows, cols),
            extra_slots=self.extra_slots(t, (rows, cols)),
            state=PatchGridState((t, h, w)),
        )

    def prompt_positions(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """M-RoPE positions of the unpruned prompt (:meth:`position_ids`, (4, 1, L)), whose kept columns
        the pruned prompt keeps, and the (4, 1, 1) position of a following token: [L, m, m, m], m one past
        the largest M-RoPE position (``get_rope_index`` continues text after the video from there)."""
        position_ids = self.position_ids(inputs)
        following = int(position_ids[1:].max()) + 1
        length = inputs["input_ids"].shape[1]
        return position_ids, torch.tensor([length, following, following, following], device=position_ids.device).view(4, 1, 1)

    def video_encoder_output(self, kept: KeptSlots):
        """Qwen2.5-VL takes the video's merged tokens as a tuple, one entry per video."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(pooler_output=(kept.values.to(self.dtype),))  # type: ignore[arg-type]  # the model takes a tuple

    def position_ids(self, inputs: dict) -> torch.Tensor:
        """(4, 1, L) position ids of the unpruned prompt: the 1-D text row, then M-RoPE's t, h, w rows."""
        rope, _ = self.model.model.get_rope_index(
            inputs["input_ids"],
            inputs.get("mm_token_type_ids"),
            video_grid_thw=inputs["video_grid_thw"],
            second_per_grid_ts=inputs.get("second_per_grid_ts"),
            attention_mask=inputs["attention_mask"],
        )
        text = torch.arange(inputs["input_ids"].shape[1], device=rope.device).view(1, 1, -1)
        return torch.cat([text, rope], dim=0)


def run_vision_tower(visual, pixels: torch.Tensor, grid_thw: torch.Tensor):
    """One forward of a Qwen vision tower, with the inputs of its last block's attention captured (for
    :func:`block_saliency`).

    Parameters
    ----------
    visual : Qwen2_5_VisionTransformerPretrainedModel or Qwen3VLVisionModel (or Qwen3.5's)
    pixels : torch.Tensor
        (P, C) flattened patches, as the processor gives them.
    grid_thw : torch.LongTensor
        (1, 3) the video's patch grid.

    Returns
    -------
    out : transformers.modeling_outputs.BaseModelOutputWithPooling
        The tower's output (``pooler_output`` the merged tokens; Qwen3-VL's also ``deepstack_features``).
    captured : dict
        ``hidden`` (P, C) the last block's normed input, ``cu_seqlens``, ``position_embeddings``.
    """
    captured = {}

    def grab(module, args, kwargs):
        captured["hidden"] = args[0] if args else kwargs["hidden_states"]
        captured["cu_seqlens"] = kwargs["cu_seqlens"]
        captured["position_embeddings"] = kwargs["position_embeddings"]

    handle = visual.blocks[-1].attn.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        out = visual(pixels.to(visual.dtype), grid_thw=grid_thw, return_dict=True)
    finally:
        handle.remove()
    return out, captured


def block_saliency(attn, captured: dict) -> torch.Tensor:
    """Mean attention each patch receives in one vision block (over heads and the queries of its sequence):
    the block's q and k recomputed from its captured inputs, then :func:`fastvid_cli.pruning.ats.received_attention`.

    Parameters
    ----------
    attn : Qwen2_5_VLVisionAttention or Qwen3VLVisionAttention
        The block's attention (its ``qkv`` weights, head count and scaling); the rotary embedding is
        applied by its own modeling file's ``apply_rotary_pos_emb_vision``.
    captured : dict
        The block's inputs: ``hidden`` (P, C) normed hidden states, ``cu_seqlens``, ``position_embeddings``.

    Returns
    -------
    torch.Tensor
        (P,) float32, in the order of the block's input (window order).
    """
    import sys

    apply_rotary_pos_emb_vision = sys.modules[type(attn).__module__].apply_rotary_pos_emb_vision
    hidden = captured["hidden"]
    length = hidden.shape[0]
    q, k, _ = attn.qkv(hidden).reshape(length, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    cos, sin = captured["position_embeddings"]
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    return received_attention(q.transpose(0, 1), k.transpose(0, 1), captured["cu_seqlens"].tolist(), attn.scaling)
