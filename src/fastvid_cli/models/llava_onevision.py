"""LLaVA-OneVision through transformers' ``LlavaOnevisionForConditionalGeneration``.

Video path of the model (transformers 5.x): SigLIP (last layer dropped) -> projector -> bilinear
pooling 27x27 -> 14x14 = 196 tokens per frame -> one ``image_newline`` after all frames. FastVID
prunes the F * 196 pooled tokens; the newline is always kept. Saliency and frame features come
from SigLIP's re-attached head (:mod:`fastvid_cli.siglip_head`) on the same vision-tower output.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from ..pruning import PruneResult
from ..siglip_head import SIGLIP_HEAD_DIR, SIGLIP_REPO, SiglipHead, load_siglip_head
from .base import LLMInputs, ModelAdapter, VideoFeatures
from .settings import SettingsOverrides


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
    """

    family = "llava_onevision"

    def __init__(self, model, processor, siglip_head: SiglipHead, model_id: str,
                 overrides: SettingsOverrides | None = None, notes: list[str] | tuple = ()) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        vision_device = next(model.model.vision_tower.parameters()).device
        self.siglip_head = siglip_head.to(vision_device, self.dtype)
        self.init_settings(overrides, notes)

    @classmethod
    def from_pretrained(cls, path: str | Path, model_id: str, overrides: SettingsOverrides | None = None,
                        **load_kwargs) -> "LlavaOnevisionAdapter":
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
        return cls(model, processor, head, model_id, overrides)

    @property
    def video_token_id(self) -> int:
        return int(self.model.config.video_token_id)

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
        return self.expanded_prompt(question, video.num_frames * pooled * pooled + 1)

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
            extra_slots=1,
            state={"newline": pooled[-1:]},
        )

    def build_inputs(self, inputs: dict, features: VideoFeatures, kept: PruneResult | None) -> LLMInputs:
        """The prompt with only the kept video slots, each at its original position.

        Text tokens and the trailing newline slot are always kept. ``position_ids`` are the
        original indices of the kept slots (with gaps), so generation continues at the original length.

        Parameters
        ----------
        inputs : dict
            Output of :meth:`prepare`.
        features : VideoFeatures
            Output of :meth:`encode`.
        kept : PruneResult or None
            Kept tokens; None keeps every token (the vanilla model).
        """
        input_ids = inputs["input_ids"]
        video_slots = (input_ids[0] == self.video_token_id).nonzero().flatten()
        total = features.num_frames * features.tokens_per_frame
        if video_slots.numel() != total + features.extra_slots:
            raise RuntimeError(f"prompt has {video_slots.numel()} video slots, features have {total} + newline")
        if kept is None:
            tokens = features.video_tokens.reshape(total, -1)
            keep = torch.ones_like(input_ids[0], dtype=torch.bool)
        else:
            tokens = kept.tokens
            keep = input_ids[0] != self.video_token_id
            keep[video_slots[kept.indices.to(video_slots.device)]] = True
            keep[video_slots[total:]] = True
        video = torch.cat([tokens, features.state["newline"]]).to(self.dtype)[None]
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)[keep][None]
        next_position = torch.full((1, 1), input_ids.shape[1], device=input_ids.device)
        kwargs = {
            "input_ids": input_ids[:, keep],
            "attention_mask": torch.ones_like(positions),  # always given: gapped positions are not packing
            "position_ids": positions,
            "mm_encoder_outputs": {"video": BaseModelOutputWithPooling(pooler_output=video)},
        }
        return LLMInputs(kwargs=kwargs, original_length=int(input_ids.shape[1]), video_slots=int(video.shape[1]),
                         next_position=next_position)
