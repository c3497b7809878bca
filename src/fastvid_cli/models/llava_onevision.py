"""LLaVA-OneVision through transformers' ``LlavaOnevisionForConditionalGeneration``.

Video path of the model (transformers 5.x): SigLIP (last layer dropped) -> projector -> bilinear
pooling 27x27 -> 14x14 = 196 tokens per frame -> one ``image_newline`` after all frames. FastVID
prunes the F * 196 pooled tokens; the newline is always kept. Saliency and frame features come
from SigLIP's re-attached head (:mod:`fastvid_cli.models.siglip_head`) on the same vision-tower output.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from ..pruning import PruneResult
from .base import ModelAdapter
from .features import EncoderState, KeptSlots, VideoFeatures, VisionBench
from .geometry_base import ModelGeometry, transformers_config
from .recipe import QWEN2_CHAT_TOKENS, TINY_SIGLIP, TINY_TEXT, TinyRecipe
from .registry import LAYOUT_KEY
from .settings import LLAVA_SAMPLING, RunSettings, SettingsOverrides
from .siglip_head import SIGLIP_HEAD_DIR, SIGLIP_REPO, SiglipHead, load_siglip_head
from .tiny_names import is_tiny_random


def wants_grid_layout(config: dict) -> bool:
    """Whether a llava_onevision config asks for LLaVA-Video's grid layout: ``fastvid_layout`` says
    so, or (with no layout asked for) its ``mm_newline_position`` is ``grid``."""
    if config.get(LAYOUT_KEY) in ("grid", "onevision"):
        return bool(config[LAYOUT_KEY] == "grid")
    return config.get("mm_newline_position") == "grid"


@dataclass
class NewlineState(EncoderState):
    """LLaVA's ``image_newline`` embedding, (1, D) in the model's dtype: what fills the newline slots."""

    newline: torch.Tensor


TO_LLAVA_HF = (
    (r"^model\.language_model\.", "language_model.model."),
    (r"^lm_head\.", "language_model.lm_head."),
    (r"^model\.vision_tower\.", "vision_tower.vision_model."),
    (r"^model\.multi_modal_projector\.", "multi_modal_projector."),
    (r"^model\.image_newline$", "image_newline"),
)
"""transformers 5 names -> llava-hf checkpoint names (transformers 4.45 layout; 5.x renames them at load time)."""


SO400M_VISION: dict[str, Any] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu_pytorch_tanh",
}
"""google/siglip-so400m-patch14-384's vision tower, the LLaVA families' (its depth is read from the checkpoint)."""
SIGLIP_LAYERS = 26
"""The LLaVA checkpoints drop SigLIP-so400m's last layer: 26 of its 27 layers."""


HUB_MEAN_STD = [0.5, 0.5, 0.5]
"""Image mean and std of the hub's LLaVA checkpoints (the processor classes default to CLIP's)."""

LLAVA_HF_TOKENS = {**QWEN2_CHAT_TOKENS, 151646: "<image>", 151647: "<video>"}
"""The added tokens of llava-hf's LLaVA-OneVision tokenizers: Qwen2's, then ``<image>`` and ``<video>``
(transformers' ``convert_llava_onevision_weights_to_hf.py``)."""
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""llava-hf's layout of a turn (Qwen2's chat tokens, ``<image>``/``<video>`` before the text, no system turn of
its own): the tiny checkpoints' template, since the published folder here has none."""


def shrink_llava_hf(config: dict, vocab_size: int) -> dict:
    """A published llava-hf LLaVA-OneVision config at test size: the Qwen2 LLM's widths, depth and heads
    (:data:`TINY_TEXT`), the vocabulary, and a tiny SigLIP (:data:`TINY_SIGLIP`; image and patch size as
    published)."""
    config = dict(config)
    config["text_config"] = config.get("text_config", {}) | TINY_TEXT | {"vocab_size": vocab_size}
    config["vision_config"] = config.get("vision_config", {}) | TINY_SIGLIP
    return config


def write_llava_hf_processor(model_config, out: Path, written: set[str]) -> list[str]:
    """LLaVA-OneVision's image and video processors (:func:`llava_processors`) and a ``processor_config.json``
    from the model's config, each where the published folder (``written``: the files already written from it)
    has none: what a llava-hf checkpoint folder holds.

    Returns
    -------
    list of str
        The names of the files written.
    """
    files = []
    for processor, name in zip(llava_processors(), ("preprocessor_config.json", "video_preprocessor_config.json"), strict=True):
        if name not in written:  # a published one stays as published
            processor.save_pretrained(str(out))
            files.append(name)
    if "processor_config.json" not in written:
        side = model_config.vision_config.image_size // model_config.vision_config.patch_size
        processor = {
            "num_image_tokens": side * side,
            "processor_class": "LlavaOnevisionProcessor",
            "vision_feature_select_strategy": model_config.vision_feature_select_strategy,
        }
        (out / "processor_config.json").write_text(json.dumps(processor, indent=2) + "\n")
        files.append("processor_config.json")
    return files


def llava_processors():
    """LLaVA-OneVision's image and video processors with the hub checkpoints' mean and std (0.5, not the
    classes' defaults): for the converted LLaVA-Video config and the tiny checkpoints.

    Returns
    -------
    image_processor : transformers.LlavaOnevisionImageProcessor
    video_processor : transformers.LlavaOnevisionVideoProcessor
    """
    from transformers import LlavaOnevisionImageProcessor, LlavaOnevisionVideoProcessor

    return (
        LlavaOnevisionImageProcessor(image_mean=HUB_MEAN_STD, image_std=HUB_MEAN_STD),
        LlavaOnevisionVideoProcessor(image_mean=HUB_MEAN_STD, image_std=HUB_MEAN_STD),
    )


class LlavaOnevisionAdapter(ModelAdapter):
    """FastVID on LLaVA-OneVision (llava-hf/llava-onevision-qwen2-{0.5b,7b,72b}-ov-hf).

    Parameters
    ----------
    model : transformers.LlavaOnevisionForConditionalGeneration
    processor : transformers.LlavaOnevisionProcessor
    siglip_head : SiglipHead
        Moved to the model's device and dtype here.
    model_id : str
        Name shown in the output.
    overrides : SettingsOverrides, optional
        What the user changed of the paper's settings (frames, system prompt, ...).
    notes : list of str
        Where the checkpoint differs from the paper's run.
    tiny_random : bool
        Whether the checkpoint is a tiny random-weight model.
    """

    family = "llava_onevision"
    paper = RunSettings(
        family="llava_onevision", sampling=LLAVA_SAMPLING, pooling="bilinear 27x27 -> 14x14", newlines="one after the video"
    )
    penalize_prompt = False  # LLaVA-NeXT's generate gave transformers inputs_embeds only
    lmms_eval_model = "llava_onevision"  # fastvid_llavaonevision/scripts/eval.sh
    tiny_recipe = TinyRecipe(
        display_name="LLaVA-OneVision",
        model_class="LlavaOnevisionForConditionalGeneration",
        layout_fields=(
            ("config.json", "vision_config.image_size"),
            ("config.json", "vision_config.patch_size"),
            ("config.json", "vision_config.vision_use_head"),
            ("config.json", "vision_feature_layer"),
            ("config.json", "vision_feature_select_strategy"),
            ("config.json", "vision_aspect_ratio"),
            ("config.json", "image_grid_pinpoints"),
            ("config.json", "use_image_newline_parameter"),
            ("config.json", "tie_word_embeddings"),
            ("processor_config.json", "num_image_tokens"),
            ("processor_config.json", "vision_feature_select_strategy"),
        ),
        special_tokens=LLAVA_HF_TOKENS,
        role_ids={
            "image_token_index": "<image>",
            "image_token_id": "<image>",
            "video_token_index": "<video>",
            "video_token_id": "<video>",
        },
        media_tokens={"image_token": "<image>", "video_token": "<video>"},
        renames=TO_LLAVA_HF,
        shrink=shrink_llava_hf,
        chat_template=LLAVA_CHAT_TEMPLATE,
        siglip_head=True,
        write_processor=write_llava_hf_processor,
    )

    def __init__(
        self,
        model,
        processor,
        siglip_head: SiglipHead,
        model_id: str,
        overrides: SettingsOverrides | None = None,
        notes: list[str] | tuple = (),
        tiny_random: bool = False,
    ) -> None:
        super().__init__(model, processor, model_id, overrides, notes, tiny_random)
        vision_device = next(model.model.vision_tower.parameters()).device
        self.siglip_head = siglip_head.to(vision_device, self.dtype)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, model_id: str, overrides: SettingsOverrides | None = None, **load_kwargs
    ) -> LlavaOnevisionAdapter:
        """Load model, processor and SigLIP head from a checkpoint folder.

        The head comes from ``path/siglip_head`` when the checkpoint ships one (tiny-random does),
        else from google/siglip-so400m-patch14-384 (byte ranges, cached after the first use).
        ``load_kwargs`` go to ``from_pretrained`` (dtype, device_map, attn_implementation).
        """
        from transformers import AutoProcessor, LlavaOnevisionForConditionalGeneration

        model = LlavaOnevisionForConditionalGeneration.from_pretrained(str(path), **load_kwargs).eval()
        processor = AutoProcessor.from_pretrained(str(path))
        local_head = Path(path) / SIGLIP_HEAD_DIR
        head = load_siglip_head(local_head if local_head.is_dir() else SIGLIP_REPO)
        return cls(model, processor, head, model_id, overrides, tiny_random=is_tiny_random(path))

    @classmethod
    def claims(cls, config: dict) -> bool:
        """transformers' ``llava_onevision`` checkpoints, unless their config (or the layout asked for,
        ``fastvid_layout``) asks for the grid layout."""
        return config.get("model_type") == "llava_onevision" and not wants_grid_layout(config)

    @classmethod
    def geometry_from_config(cls, config: dict, name: str, path: Path | None = None) -> ModelGeometry:
        """SigLIP's patch grid pooled bilinearly to ceil(side / 2) per side (27 -> 14: 196 tokens per
        frame) and one newline after the video; the paper's 32 frames."""
        parsed = transformers_config(config, path)
        side = parsed.vision_config.image_size // parsed.vision_config.patch_size
        pooled = -(-side // 2)  # bilinear pooling to ceil(27 / 2) = 14 per side
        return ModelGeometry.of_llm(
            name, cls.family, parsed.text_config, tokens_per_frame=pooled * pooled, frames=cls.paper_frames(), extra_slots=1
        )

    @property
    def video_token_id(self) -> int:
        return int(self.model.config.video_token_id)

    @classmethod
    def vision_benchmark(cls, frames: int, layers: int | None, scale: float, device, dtype) -> VisionBench:
        """SigLIP-so400m (:data:`SO400M_VISION`, its last layer dropped: 26 layers) on ``frames`` 384 x 384 frames."""
        from transformers import SiglipVisionConfig, SiglipVisionModel

        total = SIGLIP_LAYERS
        layers = layers or max(1, round(total / scale))
        config = SiglipVisionConfig(**SO400M_VISION, num_hidden_layers=layers, vision_use_head=False)
        config._attn_implementation = "sdpa"
        torch.manual_seed(0)
        with torch.device(device):
            vision = SiglipVisionModel(config).to(dtype).eval()
        pixels = torch.randn(frames, 3, 384, 384, device=device, dtype=dtype)
        return VisionBench(
            lambda: vision(pixel_values=pixels), layers, total, f"{layers} of {total} SigLIP layers on {frames} frames"
        )

    def prompt_inputs(self, video, question: str | None = None) -> dict:
        """The paper's prompt (``qwen_1_5``: system turn, ``<video>``, newline, question) with F x 196 + 1
        video slots, as the processor expands it (ceil(27 / 2)^2 pooled tokens per frame and one newline).

        Parameters
        ----------
        video : SampledVideo
            Its frames need not be decoded.
        question : str or None
            None gives the prompt's prefix only (system turn and video), shared by every question.

        Returns
        -------
        dict
            ``input_ids`` (1, L) and ``attention_mask`` (1, L), int64.
        """
        vision = self.model.config.vision_config
        pooled = math.ceil(vision.image_size // vision.patch_size / 2)
        return self.expanded_prompt(
            question, video.num_frames * pooled * pooled + self.extra_slots(video.num_frames, (pooled, pooled))
        )

    def preprocess(self, frames, video=None) -> dict:
        """``pixel_values_videos`` (1, k, 3, 384, 384) of k frames ((k, H, W, 3) uint8), in the model's dtype."""
        pixels = self.processor.video_processor(videos=[frames], return_tensors="pt")["pixel_values_videos"]
        return {"pixel_values_videos": pixels.to(self.device, self.dtype)}

    def extra_slots(self, num_frames: int, grid: tuple[int, int]) -> int:
        """One ``image_newline`` after all frames."""
        return 1

    @torch.inference_mode()
    def encode(self, inputs: dict) -> VideoFeatures:
        """Vision tower, projector and pooling once; SigLIP head on the same raw output.

        Returns
        -------
        VideoFeatures
            ``video_tokens`` (F, 196, D); ``frame_features`` (F, 1152); ``saliency`` (F, 196): the
            head's attention over the 27 x 27 patches, pooled bilinearly to 14 x 14 like the tokens.
        """
        pixels = inputs["pixel_values_videos"]
        num_frames = pixels.shape[1]
        out = self.model.model.get_video_features(pixels, output_hidden_states=True, return_dict=True)
        pooled = out.pooler_output[0]  # (F * N + 1, D): the last row is image_newline
        raw = out.hidden_states[-1]  # (F, P, Dv) before any layer norm
        frame_features, attention = self.siglip_head(raw.to(self.siglip_head.post_layernorm.weight.dtype))
        side = math.isqrt(attention.shape[1])
        grid = (math.ceil(side / 2), math.ceil(side / 2))
        saliency = torch.nn.functional.interpolate(
            attention.float().view(num_frames, 1, side, side), size=grid, mode="bilinear"
        ).flatten(1)
        tokens = pooled[:-1].view(num_frames, grid[0] * grid[1], -1)
        return VideoFeatures(
            video_tokens=tokens,
            frame_features=frame_features,
            saliency=saliency,
            grid=grid,
            extra_slots=self.extra_slots(num_frames, grid),
            state=NewlineState(pooled[-1:]),
        )

    def kept_slots(self, features: VideoFeatures, kept: PruneResult | None) -> KeptSlots:
        """The kept tokens at their own slots, then the one ``image_newline`` after all frames (always kept)."""
        total = features.num_frames * features.tokens_per_frame
        tokens = features.video_tokens.reshape(total, -1) if kept is None else kept.tokens
        slots = torch.arange(total, device=tokens.device) if kept is None else kept.indices.to(tokens.device)
        newline = cast(NewlineState, features.state).newline.to(tokens.device, tokens.dtype).expand(features.extra_slots, -1)
        extra = torch.arange(total, total + features.extra_slots, device=tokens.device)
        return KeptSlots(torch.cat([slots, extra]), torch.cat([tokens, newline]))

    def full_prompt(self, question: str) -> str:
        """The paper's ``qwen_1_5`` prompt with one video placeholder (see :meth:`chat_prompt`)."""
        return self.chat_prompt(question, self.media_token)

    def chat_prompt(self, question: str, media_token: str) -> str:
        """The prompt of LLaVA-NeXT's ``qwen_1_5`` conversation template, as the paper's LLaVA runs built it.

        ``<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{media}\\n{question}<|im_end|>\\n``
        ``<|im_start|>assistant\\n``; without a system prompt the system turn is left out.
        """
        system = f"<|im_start|>system\n{self.settings.system_prompt}<|im_end|>\n" if self.settings.system_prompt else ""
        return f"{system}<|im_start|>user\n{media_token}\n{question}<|im_end|>\n<|im_start|>assistant\n"
