"""LLaVA-Video-7B-Qwen2 (lmms-lab/LLaVA-Video-7B-Qwen2) in transformers' LLaVA-OneVision modules.

LLaVA-Video shares LLaVA-OneVision's modules (SigLIP, 2-layer MLP projector, Qwen2) but lays the
video out differently: 2x2 average pooling of the 27x27 patch grid to 13x13 = 169 tokens per frame,
and a newline token after every row (13 x 14 = 182 slots per frame). transformers' llava_onevision
code applies bilinear 14x14 pooling and one trailing newline, so this adapter builds the grid layout
itself from the vision tower and projector.

The official checkpoint is in the LLaVA-NeXT format. It is loaded straight into
``LlavaOnevisionForConditionalGeneration`` by renaming its tensors at load time
(:data:`LLAVA_NEXT_KEY_MAPPING`, transformers' ``key_mapping``); the converted config and processor
(a few kB) are cached in ``$FASTVID_CACHE/converted``, the weights are read from the checkpoint.

Pruning works on the 169 real tokens per frame; the newline of every row that keeps a token is kept
at its original position (the FastVID release's rule).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, cast

import torch

from ..errors import ModelError
from ..pruning import PruneResult
from .features import KeptSlots, VideoFeatures
from .geometry_base import ModelGeometry, transformers_config
from .llava_onevision import (
    SIGLIP_LAYERS,
    SO400M_VISION,
    LlavaOnevisionAdapter,
    NewlineState,
    llava_processors,
    wants_grid_layout,
)
from .recipe import QWEN2_CHAT_TOKENS, TINY_SIGLIP, TINY_TEXT, TinyRecipe
from .registry import LAYOUT_KEY, read_config
from .settings import LLAVA_SAMPLING, RunSettings, SettingsOverrides
from .siglip_head import SIGLIP_HEAD_DIR, SIGLIP_REPO, head_cache_dir, load_siglip_head
from .tiny_names import is_tiny_random

LLAVA_NEXT_KEY_MAPPING = {
    r"^model\.embed_tokens\.": "model.language_model.embed_tokens.",
    r"^model\.layers\.": "model.language_model.layers.",
    r"^model\.norm\.": "model.language_model.norm.",
    r"^model\.vision_tower\.vision_tower\.vision_model\.": "model.vision_tower.",
    r"^model\.mm_projector\.0\.": "model.multi_modal_projector.linear_1.",
    r"^model\.mm_projector\.2\.": "model.multi_modal_projector.linear_2.",
}
"""LLaVA-NeXT tensor names (regex) -> transformers LlavaOnevisionForConditionalGeneration names."""

TO_LLAVA_NEXT = (
    (r"^model\.language_model\.", "model."),
    (r"^model\.vision_tower\.", "model.vision_tower.vision_tower.vision_model."),
    (r"^model\.multi_modal_projector\.linear_1\.", "model.mm_projector.0."),
    (r"^model\.multi_modal_projector\.linear_2\.", "model.mm_projector.2."),
)
"""transformers names -> LLaVA-NeXT names (the inverse of LLaVA-Video's load-time key mapping)."""


CONVERTER_VERSION = 2
"""Bumped when the converted config or processor changes, so stale cached conversions are redone."""


@dataclass(frozen=True)
class GridLayout:
    """How LLaVA-Video lays out a frame: pooling of the patch grid, then a newline after every row.

    Attributes
    ----------
    pool_mode : str
        ``average`` (LLaVA-Video), ``max`` or ``bilinear`` (``mm_spatial_pool_mode``).
    stride : int
        Pooling stride (``mm_spatial_pool_stride``, 2).
    """

    pool_mode: str = "average"
    stride: int = 2

    def pooled_side(self, side: int) -> int:
        """13 for 27 patches with average or max pooling (floor), 14 with bilinear (ceil)."""
        return math.ceil(side / self.stride) if self.pool_mode == "bilinear" else side // self.stride

    def pool(self, grid: torch.Tensor) -> torch.Tensor:
        """(F, C, side, side) -> (F, C, s, s) as LLaVA-NeXT's ``get_2dPool``."""
        if self.pool_mode == "average":
            return torch.nn.functional.avg_pool2d(grid, self.stride)
        if self.pool_mode == "max":
            return torch.nn.functional.max_pool2d(grid, self.stride)
        size = self.pooled_side(grid.shape[-1])
        return torch.nn.functional.interpolate(grid, size=(size, size), mode="bilinear")


def is_llava_next(config: dict) -> bool:
    """Whether a config.json is LLaVA-NeXT's (LlavaQwenForCausalLM), not a transformers model type."""
    return "LlavaQwenForCausalLM" in (config.get("architectures") or []) or (
        "mm_vision_tower" in config and config.get("model_type") in ("llava", "llava_qwen", "qwen2")
    )


PAPER_LAYOUT = GridLayout("average", 2)
"""The paper's LLaVA-Video layout: its evaluation script passes ``mm_spatial_pool_mode=average`` and the
lmms-eval wrapper overwrites the checkpoint's config with stride 2 and grid newlines (13 x 13 + 13 slots)."""


def video_layout(config: dict, pool_mode: str | None = None) -> tuple[GridLayout, list[str]]:
    """LLaVA-Video's layout as the paper ran it (or with ``pool_mode``), and a note where the config differs.

    The published LLaVA-Video-7B-Qwen2 config says ``"mm_spatial_pool_mode": "bilinear"`` (14 x 14 +
    14 = 210 slots per frame); the paper's runs override it to average pooling (13 x 13 + 13 = 182).

    Parameters
    ----------
    config : dict
        The checkpoint's config.json.
    pool_mode : str, optional
        ``average``, ``max`` or ``bilinear`` instead of the paper's ``average``.

    Returns
    -------
    layout : GridLayout
    notes : list of str
    """
    layout = GridLayout(pool_mode or PAPER_LAYOUT.pool_mode, PAPER_LAYOUT.stride)
    asked = GridLayout(
        config.get("mm_spatial_pool_mode", layout.pool_mode), int(config.get("mm_spatial_pool_stride", layout.stride))
    )
    notes = []
    if asked != layout:
        side = 27
        slots = lambda g: g.pooled_side(side) * (g.pooled_side(side) + 1)
        why = "as given" if pool_mode else "as the paper's runs"
        notes.append(
            f"the checkpoint's config asks for {asked.pool_mode} pooling, stride {asked.stride} ({slots(asked)} slots per "
            f"frame); running {layout.pool_mode} pooling, stride {layout.stride} ({slots(layout)} slots per frame), {why}"
        )
    return layout, notes


def _checkpoint_keys(path: Path) -> list[str]:
    index = path / "model.safetensors.index.json"
    if index.exists():
        return list(json.loads(index.read_text())["weight_map"])
    from safetensors import safe_open

    keys = []
    for file in sorted(path.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            keys += list(f.keys())
    return keys


_NEXT_TEXT_FIELDS = [
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vocab_size",
    "rms_norm_eps",
    "rope_theta",
    "max_position_embeddings",
    "tie_word_embeddings",
    "hidden_act",
    "initializer_range",
]


def llava_next_text_config(source: dict, path: Path):
    """The Qwen2 LLM's config from a LLaVA-NeXT config.json (its shape sits at the top level).

    Raises
    ------
    ModelError
        If the LLM's shape (the first six fields of ``_NEXT_TEXT_FIELDS``) is missing.
    """
    from transformers import Qwen2Config

    missing = [k for k in _NEXT_TEXT_FIELDS[:6] if k not in source]
    if missing:
        raise ModelError(f"{path}/config.json is LLaVA-NeXT but lacks {', '.join(missing)}")
    return Qwen2Config(**{k: source[k] for k in _NEXT_TEXT_FIELDS if k in source})


def shrink_llava_next(config: dict, vocab_size: int) -> dict:
    """A published LLaVA-NeXT config at test size: the Qwen2 LLM's widths, depth and heads at the top level,
    the vocabulary, and a ``vision_config`` for the tiny SigLIP (the real config has none: its tower is
    google/siglip-so400m-patch14-384's, whose image and patch size stay); ``mm_hidden_size`` follows."""
    config = config | TINY_TEXT | {"vocab_size": vocab_size, "mm_hidden_size": TINY_SIGLIP["hidden_size"]}
    config["vision_config"] = SO400M_VISION | TINY_SIGLIP
    return config


def next_model_config(config: dict, tokenizer, path: Path):
    """The transformers config a LLaVA-NeXT ``config.json`` loads into (``LlavaOnevisionConfig``, as
    :func:`convert_llava_next` writes it): the tiny builder draws the weights from it.

    ``<image>`` and ``<video>`` get the two ids after the tokenizer's (spare embedding rows, as the
    converter adds them); the SigLIP tower is so400m's at its published depth (26 layers) unless the
    config carries a ``vision_config`` (a tiny one).

    Raises
    ------
    ModelError
        A vision tower other than google/siglip-so400m-patch14-384 (the only one whose geometry is known
        here), an ``mm_hidden_size`` that is not the tower's width, or a config without the LLM's shape.
    """
    from transformers import LlavaOnevisionConfig

    tower = config.get("mm_vision_tower", "")
    if "siglip-so400m-patch14-384" not in str(tower):
        raise ModelError(
            f"{path}/config.json: vision tower {tower!r} is not google/siglip-so400m-patch14-384, "
            "the only one whose geometry is known here"
        )
    vision = {"num_hidden_layers": SIGLIP_LAYERS} | dict(config.get("vision_config") or SO400M_VISION)
    if config.get("mm_hidden_size", vision["hidden_size"]) != vision["hidden_size"]:
        raise ModelError(
            f"{path}/config.json: mm_hidden_size {config['mm_hidden_size']} is not its SigLIP's {vision['hidden_size']}"
        )
    text = llava_next_text_config(config, path)
    return LlavaOnevisionConfig(  # type: ignore[call-arg]  # image/video_token_id: transformers maps them to *_index
        text_config=text.to_dict(),
        vision_config=vision | {"vision_use_head": False},
        image_token_id=len(tokenizer),
        video_token_id=len(tokenizer) + 1,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        tie_word_embeddings=text.tie_word_embeddings,
    )


def convert_llava_next(path: Path, cache_root: Path) -> Path:
    """Cached transformers config + processor for a LLaVA-NeXT checkpoint folder; weights stay in place.

    The vision tower's depth is counted from the checkpoint's tensor names; the text model's shape
    comes from the LLaVA-NeXT config; ``<image>`` and ``<video>`` are added to the tokenizer at
    unused ids below the embedding size.

    Raises
    ------
    ModelError
        A config without the LLM's shape, or a vocabulary with no room for the two tokens.
    """
    from transformers import AutoTokenizer, LlavaOnevisionConfig, LlavaOnevisionProcessor

    source = read_config(path)
    fingerprint = json.dumps([CONVERTER_VERSION, source, str(path.resolve())], sort_keys=True)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    target = cache_root / "converted" / f"llava-next-{digest}"
    if (target / "config.json").exists() and (target / "fastvid.json").exists():
        return target
    keys = _checkpoint_keys(path)
    depth = len({m.group(1) for k in keys if (m := re.search(r"vision_model\.encoder\.layers\.(\d+)\.", k))})
    vision = dict(source.get("vision_config") or SO400M_VISION)
    vision["num_hidden_layers"] = depth or vision.get("num_hidden_layers", 26)
    vision["vision_use_head"] = False  # LLaVA checkpoints drop SigLIP's pooling head (fastvid re-attaches its own)
    vision.pop("model_type", None)
    text = llava_next_text_config(source, path)
    with warnings.catch_warnings():  # it parses the LLaVA-NeXT config.json as transformers' llava one (rope_scaling)
        warnings.simplefilter("ignore", FutureWarning)
        tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>", "<video>"]}, replace_extra_special_tokens=False)
    image_id, video_id = cast(list[int], tokenizer.convert_tokens_to_ids(["<image>", "<video>"]))
    if max(image_id, video_id) >= text.vocab_size:
        raise ModelError(f"{path}: no unused embedding rows for <image>/<video> (vocab {text.vocab_size})")
    config = LlavaOnevisionConfig(  # type: ignore[call-arg]  # image/video_token_id: transformers maps them to *_index
        text_config=text.to_dict(),
        vision_config=vision,
        image_token_id=image_id,
        video_token_id=video_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        tie_word_embeddings=text.tie_word_embeddings,
    )
    setattr(config, LAYOUT_KEY, "grid")
    config.mm_spatial_pool_mode = source.get("mm_spatial_pool_mode", "average")
    config.mm_spatial_pool_stride = source.get("mm_spatial_pool_stride", 2)
    target.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(target)
    image_processor, video_processor = llava_processors()
    LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        num_image_tokens=729,
        vision_feature_select_strategy="full",
    ).save_pretrained(target)
    (target / "fastvid.json").write_text(json.dumps({"converted_from": str(path.resolve()), "format": "llava-next"}) + "\n")
    return target


class LlavaVideoAdapter(LlavaOnevisionAdapter):
    """FastVID on LLaVA-Video: grid layout (pooled 13x13 tokens + a newline per row) on LLaVA-OneVision modules.

    Parameters
    ----------
    model : transformers.LlavaOnevisionForConditionalGeneration
    processor : transformers.LlavaOnevisionProcessor
        Its tokenizer and video processor are used; the prompt is built here.
    siglip_head : SiglipHead
    model_id : str
    layout : GridLayout
    overrides : SettingsOverrides, optional
    notes : list of str
        Where the checkpoint's config differs from what runs.
    tiny_random : bool
        Whether the checkpoint is a tiny random-weight model.
    """

    family = "llava_video"
    paper = RunSettings(
        family="llava_video",
        sampling=replace(LLAVA_SAMPLING, frames=64),
        pooling="average 2x2: 27x27 -> 13x13",
        newlines="one after each row",
    )
    lmms_eval_model = "llava_vid"  # fastvid_llavavideo/scripts/eval.sh
    lmms_eval_tasks: ClassVar[dict] = {"videomme": "videomme_llava_vid"}  # llava_vid's VideoMME prompt ends "The best answer is:"
    tiny_recipe = TinyRecipe(
        display_name="LLaVA-Video",
        model_class="LlavaOnevisionForConditionalGeneration",
        layout_fields=(
            ("config.json", "mm_spatial_pool_mode"),
            ("config.json", "mm_spatial_pool_stride"),
            ("config.json", "mm_newline_position"),
            ("config.json", "mm_patch_merge_type"),
            ("config.json", "mm_vision_select_layer"),
            ("config.json", "mm_vision_select_feature"),
            ("config.json", "mm_projector_type"),
            ("config.json", "mm_vision_tower"),
            ("config.json", "force_sample"),
            ("config.json", "add_time_instruction"),
            ("config.json", "add_faster_video"),
            ("config.json", "image_aspect_ratio"),
            ("config.json", "image_grid_pinpoints"),
            ("config.json", "tie_word_embeddings"),
            ("config.json", "max_position_embeddings"),
            ("tokenizer_config.json", "chat_template"),
            ("tokenizer_config.json", "eos_token"),
            ("tokenizer_config.json", "pad_token"),
            ("tokenizer_config.json", "model_max_length"),
            ("generation_config.json", "do_sample"),
            ("generation_config.json", "temperature"),
            ("generation_config.json", "top_k"),
            ("generation_config.json", "top_p"),
            ("generation_config.json", "repetition_penalty"),
        ),
        special_tokens=QWEN2_CHAT_TOKENS,
        renames=TO_LLAVA_NEXT,
        shrink=shrink_llava_next,
        format_name="LLaVA-NeXT format",
        model_config=next_model_config,
        siglip_head=True,
    )
    """The recipe of LLaVA-NeXT checkpoints (``LlavaQwenForCausalLM``); LLaVA-Video weights in llava-hf's
    format are built with LLaVA-OneVision's (:meth:`tiny_recipe_for`)."""

    def __init__(
        self,
        model,
        processor,
        siglip_head,
        model_id: str,
        layout: GridLayout = PAPER_LAYOUT,
        overrides: SettingsOverrides | None = None,
        notes: list[str] | tuple = (),
        tiny_random: bool = False,
    ):
        self.layout = layout
        super().__init__(model, processor, siglip_head, model_id, overrides, notes, tiny_random)
        side = layout.pooled_side(self._side())
        self.settings = replace(
            self.settings,
            pooling=f"{layout.pool_mode} {layout.stride}x{layout.stride}: {self._side()}x{self._side()} -> {side}x{side}",
        )

    @classmethod
    def from_pretrained(cls, path, model_id: str, overrides: SettingsOverrides | None = None, **load_kwargs) -> LlavaVideoAdapter:
        """Load a LLaVA-NeXT-format checkpoint (tensors renamed at load time), or a transformers one.

        The layout is the paper's (average pooling, stride 2, a newline per row) whatever the
        checkpoint's config says, unless ``overrides.pool_mode`` is given; a differing config gets a note.
        A LLaVA-NeXT checkpoint's converted config and processor are cached under ``$FASTVID_CACHE``.
        """
        from transformers import AutoProcessor, LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

        path = Path(path)
        source = read_config(path)
        if is_llava_next(source):
            converted = convert_llava_next(path, head_cache_dir())
            config = LlavaOnevisionConfig.from_pretrained(str(converted))
            model = LlavaOnevisionForConditionalGeneration.from_pretrained(
                str(path), config=config, key_mapping=LLAVA_NEXT_KEY_MAPPING, **load_kwargs
            ).eval()
            processor = AutoProcessor.from_pretrained(str(converted))
            settings = read_config(converted)
        else:
            model = LlavaOnevisionForConditionalGeneration.from_pretrained(str(path), **load_kwargs).eval()
            processor = AutoProcessor.from_pretrained(str(path))
            settings = source
        local_head = path / SIGLIP_HEAD_DIR
        head = load_siglip_head(local_head if local_head.is_dir() else SIGLIP_REPO)
        layout, notes = video_layout(settings, overrides.pool_mode if overrides else None)
        return cls(model, processor, head, model_id, layout, overrides, notes, tiny_random=is_tiny_random(path))

    @classmethod
    def tiny_recipe_for(cls, config: dict) -> TinyRecipe:
        """:attr:`tiny_recipe` for a LLaVA-NeXT config; LLaVA-OneVision's (llava-hf's format), with this family's
        layout fields and name, for LLaVA-Video weights in llava_onevision format."""
        if is_llava_next(config):
            return cls.tiny_recipe
        return replace(LlavaOnevisionAdapter.tiny_recipe, display_name="LLaVA-Video", layout_fields=cls.tiny_recipe.layout_fields)

    @classmethod
    def claims(cls, config: dict) -> bool:
        """LLaVA-NeXT checkpoints (``LlavaQwenForCausalLM``), and ``llava_onevision`` ones whose config (or
        the layout asked for, ``fastvid_layout``) asks for the grid layout."""
        return is_llava_next(config) or (config.get("model_type") == "llava_onevision" and wants_grid_layout(config))

    @classmethod
    def geometry_from_config(cls, config: dict, name: str, path: Path | None = None) -> ModelGeometry:
        """The paper's grid layout (:data:`PAPER_LAYOUT`: average pooling 27 -> 13, a newline per row:
        169 tokens + 13 newlines per frame) whatever the config's ``mm_spatial_pool_mode``; 64 frames."""
        if is_llava_next(config):  # LLaVA-NeXT: the LLM's shape sits at the top level
            text = llava_next_text_config(config, path or Path(name))
            vision = config.get("vision_config") or {
                "image_size": SO400M_VISION["image_size"],
                "patch_size": SO400M_VISION["patch_size"],
            }
            side = vision["image_size"] // vision["patch_size"]
        else:
            parsed = transformers_config(config, path)
            text = parsed.text_config
            side = parsed.vision_config.image_size // parsed.vision_config.patch_size
        pooled = PAPER_LAYOUT.pooled_side(side)
        return ModelGeometry.of_llm(
            name,
            cls.family,
            text,
            tokens_per_frame=pooled * pooled,
            frames=cls.paper_frames(),
            extra_slots=0,
            newlines_per_frame=pooled,
        )

    def _side(self) -> int:
        vision = self.model.config.vision_config
        return int(vision.image_size // vision.patch_size)

    def prompt_inputs(self, video, question: str | None = None) -> dict:
        """The paper's prompt (``qwen_1_5``) with F x s x (s + 1) video slots (s x s tokens and s
        newlines per frame).

        Returns
        -------
        dict
            ``input_ids`` (1, L) and ``attention_mask`` (1, L), int64.
        """
        side = self.layout.pooled_side(self._side())
        return self.expanded_prompt(question, video.num_frames * side * side + self.extra_slots(video.num_frames, (side, side)))

    def preprocess(self, frames, video=None) -> dict:
        """``pixel_values_videos`` (1, k, 3, 384, 384) of k frames ((k, H, W, 3) uint8), in the model's dtype."""
        pixels = self.processor.video_processor(videos=[frames], return_tensors="pt")["pixel_values_videos"]
        return {"pixel_values_videos": pixels.to(self.device, self.dtype)}

    def extra_slots(self, num_frames: int, grid: tuple[int, int]) -> int:
        """One newline per row of every frame: F x s."""
        return num_frames * grid[0]

    @torch.inference_mode()
    def encode(self, inputs: dict) -> VideoFeatures:
        """Vision tower and projector, then the grid pooling; SigLIP head on the same raw output.

        Returns
        -------
        VideoFeatures
            ``video_tokens`` (F, 169, D); ``saliency`` (F, 169): the head's attention over the 27 x 27
            patches pooled like the tokens; ``frame_features`` (F, 1152); ``extra_slots`` F x 13 newlines.
        """
        pixels = inputs["pixel_values_videos"][0]
        num_frames = pixels.shape[0]
        out = self.model.model.vision_tower(pixels, output_hidden_states=True)
        raw = out.hidden_states[-1]  # (F, 729, Dv), before any layer norm
        projected = self.model.model.multi_modal_projector(raw)  # (F, 729, D)
        side = self._side()
        grid = projected.view(num_frames, side, side, -1).permute(0, 3, 1, 2)
        tokens = self.layout.pool(grid).permute(0, 2, 3, 1)  # (F, s, s, D)
        pooled = tokens.shape[1]
        frame_features, attention = self.siglip_head(raw.to(self.siglip_head.post_layernorm.weight.dtype))
        saliency = self.layout.pool(attention.float().view(num_frames, 1, side, side)).flatten(1)
        return VideoFeatures(
            video_tokens=tokens.reshape(num_frames, pooled * pooled, -1),
            frame_features=frame_features,
            saliency=saliency,
            grid=(pooled, pooled),
            extra_slots=self.extra_slots(num_frames, (pooled, pooled)),
            state=NewlineState(self.model.model.image_newline[None]),
        )

    def slot_indices(self, features: VideoFeatures, kept: PruneResult | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Video slots to keep: the kept tokens, and the newline of every row that keeps a token.

        Returns
        -------
        token_slots : torch.LongTensor
            (K,) slot of each kept token (token (f, r, c) sits at f*s*(s+1) + r*(s+1) + c).
        newline_slots : torch.LongTensor
            Slots of the kept newlines, ascending.
        """
        rows, cols = features.grid
        n = features.tokens_per_frame
        total = features.num_frames * n
        device = features.video_tokens.device
        indices = torch.arange(total, device=device) if kept is None else kept.indices.to(device)
        frame, rest = indices // n, indices % n
        row, col = rest // cols, rest % cols
        token_slots = frame * rows * (cols + 1) + row * (cols + 1) + col
        kept_rows = torch.unique(frame * rows + row)  # sorted
        newline_slots = (kept_rows // rows) * rows * (cols + 1) + (kept_rows % rows) * (cols + 1) + cols
        return token_slots, newline_slots

    def kept_slots(self, features: VideoFeatures, kept: PruneResult | None) -> KeptSlots:
        """The kept tokens at their grid slots and the newline of every row that keeps a token (see :meth:`slot_indices`).

        Returns
        -------
        KeptSlots
            (K + rows kept,) slots: the tokens, then ``image_newline`` for each kept row.
        """
        token_slots, newline_slots = self.slot_indices(features, kept)
        tokens = features.video_tokens.reshape(-1, features.video_tokens.shape[-1]) if kept is None else kept.tokens
        newlines = cast(NewlineState, features.state).newline.expand(newline_slots.numel(), -1).to(tokens.dtype)
        return KeptSlots(torch.cat([token_slots, newline_slots]), torch.cat([tokens, newlines]))
