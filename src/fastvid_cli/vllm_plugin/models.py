"""FastVID model classes for vLLM: vLLM's own Qwen2.5-VL, Qwen3-VL (dense, MoE) and Qwen3.5 (dense, MoE)
classes with FastVID in place of EVS's selection. Imported by vLLM only (lazily, through the names
:func:`fastvid_cli.vllm_plugin.register` gives ``ModelRegistry``), never by ``fastvid_cli`` itself.

What each class changes, and nothing else (weights, layers, the LLM and the scheduler are vLLM's):

- ``_process_video_input`` runs vLLM's vision tower with hooks on its last block's attention that keep its
  q, k, v projection and rotary tables, and from them recomputes the attention each patch receives (mean
  over heads and the queries of its temporal patch): FastVID's saliency for ATS, as ``fastvid ask``
  computes it with transformers (``fastvid_cli.pruning.ats.received_attention``, the same function).
- ``_postprocess_video_embeds_evs`` (vLLM's video-pruning step, taken when ``--video-pruning-rate`` q > 0)
  keeps FastVID's tokens instead of EVS's: exactly vLLM's placeholder count for the video (the count the
  processor sized the prompt with, by the same function), DTM's anchors merged, DeepStack levels merged
  alike, and each kept token at its unpruned M-RoPE position (vLLM's own ``_create_final_video_embeddings``
  and ``compute_mrope_for_media`` place them, from the retention mask).
- Qwen3-VL and Qwen3.5 get a processor that replaces the prompt's whole ``<|vision_start|><|video_pad|>
  <|vision_end|>`` (vLLM defect 2 in docs/vllm.md).

Source followed: vLLM 0.32 / 0.33 ``model_executor/models/qwen2_5_vl.py``, ``qwen3_vl.py``,
``qwen3_vl_moe.py``, ``qwen3_5.py`` and ``multimodal/video_prune/evs.py`` (their ``_postprocess_video_embeds_evs``
loops, with the selection replaced; a test pins those methods' source, so a vLLM change is seen).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, cast

import torch
from vllm.model_executor.models.qwen2_5_vl import Qwen2_5_VLForConditionalGeneration
from vllm.model_executor.models.qwen3_5 import Qwen3_5ForConditionalGeneration, Qwen3_5MoeForConditionalGeneration
from vllm.model_executor.models.qwen3_vl import Qwen3VLForConditionalGeneration, Qwen3VLMultiModalProcessor
from vllm.model_executor.models.qwen3_vl_moe import Qwen3VLMoeForConditionalGeneration
from vllm.multimodal import MULTIMODAL_REGISTRY
from vllm.multimodal.video_prune.evs import compute_mrope_for_media
from vllm.multimodal.video_prune.evs import compute_retained_tokens_count as evs_count
from vllm.multimodal.video_prune.vidcom2 import compute_retained_tokens_count as vidcom2_count
from vllm.utils.gpu_sync_debug import gpu_sync_allowed

from ..pruning.ats import received_attention
from .selection import Selection, select, token_saliency
from .settings import CONFIG_KEY, fastvid_config

logger = logging.getLogger("vllm.fastvid")  # under "vllm": printed with vLLM's own log lines

TRACE_ENV = "FASTVID_VLLM_TRACE"
"""A folder: each pruned video writes ``trace.jsonl`` (one line: tokens before and after, vLLM's budget,
pruning ms) and, for the end-to-end check, its features and FastVID's choice (``video-N.pt``)."""


def _frame_bounds(grid_thw: list[list[int]]) -> list[int]:
    """Cumulative starts of the full-attention sequences of the videos' patches: one per temporal patch."""
    bounds = [0]
    for t, h, w in grid_thw:
        for _ in range(int(t)):
            bounds.append(bounds[-1] + int(h) * int(w))
    return bounds


class FastVIDMixin:
    """FastVID's saliency capture and selection, shared by the families' classes (see the module docstring).

    The class using it is a vLLM Qwen VL model (``visual``, ``video_pruning_rate``, ``config``);
    :attr:`fastvid_family` names fastvid's settings for it.
    """

    fastvid_family: str = ""
    """fastvid's family name: its FastVID defaults (``settings.FAMILY_DEFAULTS``)."""
    fastvid_plugin = True
    """Marks FastVID's classes for the plugin's runner fix (``workarounds``)."""
    grid_as_list = False
    """Whether vLLM's vision tower takes the videos' ``grid_thw`` as a list (Qwen2.5-VL) or a tensor (Qwen3)."""

    visual: Any
    config: Any
    video_pruning_rate: float | None
    is_multimodal_pruning_enabled: bool

    def __init__(self, *, vllm_config: Any, prefix: str = "") -> None:
        super().__init__(vllm_config=vllm_config, prefix=prefix)  # type: ignore[call-arg]  # the vLLM class's
        self._fastvid_init(vllm_config)

    def _process_video_input(self, video_input: Any) -> tuple[torch.Tensor, ...]:
        """vLLM's (no data-parallel tower: refused at start), with the saliency captured."""
        grid_thw = video_input["video_grid_thw"]
        if video_input["type"] == "video_embeds" or self._fastvid_config is None:
            return cast(tuple[torch.Tensor, ...], super()._process_video_input(video_input))  # type: ignore[misc]
        embeds = self._fastvid_visual(video_input["pixel_values_videos"], grid_thw.tolist() if self.grid_as_list else grid_thw)
        merge = self.visual.spatial_merge_size
        return tuple(embeds.split((grid_thw.prod(-1) // merge // merge).tolist()))

    def _fastvid_init(self, vllm_config: Any) -> None:
        """Read FastVID's settings once, at engine start (a bad one stops it with one line)."""
        multimodal = vllm_config.model_config.get_multimodal_config()
        if multimodal.mm_encoder_tp_mode == "data":
            raise ValueError('FastVID in vLLM: mm_encoder_tp_mode "data" is not supported (saliency needs the whole tower)')
        self._fastvid_saliency: list[torch.Tensor] = []
        self._fastvid_pixels: list[torch.Tensor] = []
        self._fastvid_videos = 0
        rate = multimodal.video_pruning_rate
        self._fastvid_method = multimodal.video_pruning_method
        self._fastvid_config = None
        if rate:
            fields = getattr(vllm_config.model_config.hf_config, CONFIG_KEY, None) or {}
            self._fastvid_config = fastvid_config(self.fastvid_family, float(rate), dict(fields))
            logger.info("FastVID selects the video tokens: %s", self._fastvid_config)
        else:
            logger.warning("FastVID architecture without --video-pruning-rate: every video token is kept")

    # -- saliency ---------------------------------------------------------------------------------

    def _fastvid_visual(self, pixels: torch.Tensor, grid_thw: Any) -> torch.Tensor:
        """vLLM's vision tower on ``pixels``, with FastVID's per-token saliency of each video kept aside."""
        grid = grid_thw.tolist() if isinstance(grid_thw, torch.Tensor) else [list(g) for g in grid_thw]
        attn = self.visual.blocks[-1].attn
        captured: dict[str, Any] = {}

        def grab(module: Any, args: tuple, kwargs: dict) -> None:
            captured["cos"] = kwargs["rotary_pos_emb_cos"]
            captured["sin"] = kwargs["rotary_pos_emb_sin"]

        def grab_qkv(module: Any, args: tuple, output: Any) -> None:  # the block's own projection, not a second one
            captured["qkv"] = output[0] if isinstance(output, tuple) else output

        handles = [attn.register_forward_pre_hook(grab, with_kwargs=True), attn.qkv.register_forward_hook(grab_qkv)]
        try:
            out = self.visual(pixels, grid_thw=grid_thw)
        finally:
            for handle in handles:
                handle.remove()
        self._fastvid_saliency = self._token_saliency(attn, captured, grid)
        if os.environ.get(TRACE_ENV):  # the pixels too, normalised as the tower normalises them (vLLM may send
            # uint8 and normalise on the device), for the end-to-end check against transformers' tower
            normalised = self.visual.input_norm(pixels.to(self.visual.device), self.visual.dtype)
            self._fastvid_pixels = list(normalised.split([int(t) * int(h) * int(w) for t, h, w in grid]))
        return cast(torch.Tensor, out)

    def _token_saliency(self, attn: Any, captured: dict[str, Any], grid: list[list[int]]) -> list[torch.Tensor]:
        """Per video, (T, N) float32 saliency of each merged token, in raster order."""
        qkv = captured["qkv"]  # (P, 1, 3 * heads * d): the block's attention's own projection
        heads, dim = attn.num_attention_heads_per_partition, attn.hidden_size_per_attention_head
        qkv = qkv.view(qkv.shape[0], 3, heads, dim)
        qk = torch.stack([qkv[:, 0], qkv[:, 1]]).contiguous()  # (2, P, heads, d): vLLM's "(two b) s head d"
        q, k = attn.apply_rotary_emb(qk, captured["cos"], captured["sin"]).unbind(0)
        received = received_attention(q.transpose(0, 1), k.transpose(0, 1), _frame_bounds(grid), dim**-0.5)
        if attn.tp_size > 1:  # heads are split over the ranks: the mean over all heads
            from vllm.distributed import tensor_model_parallel_all_reduce

            received = tensor_model_parallel_all_reduce(received) / attn.tp_size
        merge = self.visual.spatial_merge_size
        out, start = [], 0
        for t, h, w in grid:
            patches = received[start : start + t * h * w]
            out.append(self._raster_order(token_saliency(patches, merge, t), (t, h, w)))
            start += t * h * w
        return out

    def _raster_order(self, saliency: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """(T, N) saliency in the tower's token order -> raster order (Qwen3's tower keeps raster order)."""
        return saliency

    # -- selection --------------------------------------------------------------------------------

    def _fastvid_count(self, tokens_per_frame: int, frames: int) -> int:
        """vLLM's placeholder count for a video: the function its processor sized the prompt with."""
        count_fn = vidcom2_count if self._fastvid_method == "vidcom2" else evs_count
        return int(count_fn(tokens_per_frame=tokens_per_frame, num_frames=frames, q=self.video_pruning_rate))

    def _fastvid_select(self, emb: torch.Tensor, size: list[int], main_width: int) -> Selection:
        """FastVID's selection for the next video of the batch (its saliency from :meth:`_fastvid_visual`)."""
        if self._fastvid_config is None:
            raise RuntimeError("FastVID pruning was called without a video_pruning_rate")
        saliency = self._fastvid_saliency.pop(0)
        t, h, w = (int(x) for x in size)
        merge = self.visual.spatial_merge_size
        count = self._fastvid_count((h // merge) * (w // merge), t)
        with gpu_sync_allowed():
            selection = select(emb, (t, h, w), merge, main_width, saliency, count, self._fastvid_config)
        self._fastvid_trace(emb, size, main_width, saliency, count, selection)
        return selection

    def _fastvid_trace(
        self, emb: torch.Tensor, size: list[int], main_width: int, saliency: torch.Tensor, count: int, selection: Selection
    ) -> None:
        """With :data:`TRACE_ENV` set: a JSON line per video, and its features and choice for the end-to-end check."""
        folder = os.environ.get(TRACE_ENV)
        if not folder:
            return
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        index = self._fastvid_videos = self._fastvid_videos + 1
        name = f"video-{os.getpid()}-{index}.pt"
        torch.save(
            {
                "embeddings": emb.detach().cpu(),
                "grid_thw": [int(x) for x in size],
                "merge": int(self.visual.spatial_merge_size),
                "main_width": int(main_width),
                "saliency": saliency.detach().cpu(),
                "count": count,
                "config": self._fastvid_config.to_dict() if self._fastvid_config else None,
                "pixels": self._fastvid_pixels.pop(0).detach().cpu() if self._fastvid_pixels else None,
                "indices": selection.result.indices.cpu(),
                "rows": selection.rows.detach().cpu(),
            },
            path / name,
        )
        record = {
            "family": self.fastvid_family,
            "video_tokens_before": int(emb.shape[0]),
            "video_tokens_after": int(selection.rows.shape[0]),
            "budget": count,
            "pruning_ms": round(selection.pruning_ms, 3),
            "features": name,
        }
        with open(path / "trace.jsonl", "a") as sink:
            sink.write(json.dumps(record) + "\n")


class FastVIDQwen2_5_VL(FastVIDMixin, Qwen2_5_VLForConditionalGeneration):
    """Qwen2.5-VL with FastVID (``--hf-overrides '{"architectures": ["FastVIDQwen2_5_VLForConditionalGeneration"]}'``)."""

    fastvid_family = "qwen2_5_vl"
    grid_as_list = True

    def _raster_order(self, saliency: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Qwen2.5-VL's tower works in window order: put each token's saliency back at its raster place."""
        window_index, _ = self.visual.get_window_index_thw(*grid)
        raster = torch.empty_like(saliency.flatten())
        raster[window_index.to(raster.device)] = saliency.flatten()
        return raster.view_as(saliency)

    def _postprocess_video_embeds_evs(
        self, video_embeds_split: tuple[torch.Tensor, ...], video_input: Any
    ) -> tuple[torch.Tensor, ...]:
        """vLLM's loop with FastVID's rows and mask in place of EVS's (positions: vLLM's, of the kept tokens)."""
        if not self._fastvid_saliency:  # precomputed embeddings: no attention to rank by
            raise ValueError("FastVID needs the vision tower's attention: video_embeds inputs are not supported")
        grid_thw_list = video_input["video_grid_thw"].tolist()
        merge_size = self.visual.spatial_merge_size
        second_per_grid_ts = video_input.get("second_per_grid_ts")
        if second_per_grid_ts is None:
            raise ValueError("second_per_grid_ts is required when video_pruning_rate > 0")
        second_per_grid_ts = second_per_grid_ts.long()
        tokens_per_second = self.config.vision_config.tokens_per_second
        out = []
        for emb, size, video_second_per_grid_t in zip(video_embeds_split, grid_thw_list, second_per_grid_ts, strict=True):
            selection = self._fastvid_select(emb, size, emb.shape[1])
            positions = compute_mrope_for_media(
                size, merge_size, tokens_per_second=tokens_per_second, video_second_per_grid=video_second_per_grid_t.item()
            ).to(emb.device)
            with gpu_sync_allowed():
                positions = positions[selection.mask]
            out.append(torch.cat([selection.rows, positions.to(selection.rows.dtype)], dim=1))
        return tuple(out)


class Qwen3VLFullPlaceholderProcessor(Qwen3VLMultiModalProcessor):
    """vLLM's Qwen3-VL processor replacing the whole ``<|vision_start|><|video_pad|><|vision_end|>`` of the prompt.

    With transformers 5.x's processor, vLLM replaces the bare ``<|video_pad|>`` and keeps the outer
    markers around its per-frame blocks; with pruning on, ``recompute_mrope_positions`` then takes the
    outer ``<|vision_start|>`` for the first frame's and fails (vLLM defect 2 in docs/vllm.md). The
    per-frame blocks carry their own markers, so replacing the triple gives the layout the model was
    trained on.
    """

    @staticmethod
    def _expands_only_video_token(hf_processor: Any) -> bool:
        return False


class FastVIDQwen3Mixin(FastVIDMixin):
    """Qwen3-VL's selection step (Qwen3.5 reuses it): vLLM's per-frame layout rebuilt around FastVID's rows."""

    visual_dim: int
    _create_final_video_embeddings: Any

    def _postprocess_video_embeds_evs(
        self, video_embeds_split: tuple[torch.Tensor, ...], video_input: Any
    ) -> tuple[torch.Tensor, ...]:
        """vLLM's loop with FastVID's rows and mask in place of EVS's or VidCom2's."""
        if not self._fastvid_saliency:
            raise ValueError("FastVID needs the vision tower's attention: video_embeds inputs are not supported")
        grid_thw_list = video_input["video_grid_thw"].tolist()
        assert video_input.timestamps is not None
        out = []
        for video_idx, (emb, size) in enumerate(zip(video_embeds_split, grid_thw_list, strict=True)):
            selection = self._fastvid_select(emb, size, self.visual_dim)
            t = int(size[0])
            with gpu_sync_allowed():
                per_frame = selection.mask.view(t, -1).sum(1).long().tolist()
            out.append(
                self._create_final_video_embeddings(
                    video_embeddings=selection.rows,
                    num_tokens_per_frame=per_frame,
                    timestamps=video_input.timestamps[video_idx],
                    video_grid_thw=size,
                    retention_mask=selection.mask,
                )
            )
        return tuple(out)


def _with_full_placeholder(model_cls: Any) -> Any:
    """Register :class:`Qwen3VLFullPlaceholderProcessor` on ``model_cls`` with its parent's info and dummy inputs."""
    parent = model_cls._processor_factory  # the vLLM parent's (the mixins register none)
    return MULTIMODAL_REGISTRY.register_processor(
        Qwen3VLFullPlaceholderProcessor, info=parent.info, dummy_inputs=parent.dummy_inputs
    )(model_cls)


@_with_full_placeholder
class FastVIDQwen3VL(FastVIDQwen3Mixin, Qwen3VLForConditionalGeneration):
    """Qwen3-VL (dense) with FastVID (``FastVIDQwen3VLForConditionalGeneration``)."""

    fastvid_family = "qwen3_vl"


@_with_full_placeholder
class FastVIDQwen3VLMoe(FastVIDQwen3Mixin, Qwen3VLMoeForConditionalGeneration):
    """Qwen3-VL MoE with FastVID (``FastVIDQwen3VLMoeForConditionalGeneration``)."""

    fastvid_family = "qwen3_vl"


@_with_full_placeholder
class FastVIDQwen3_5(FastVIDQwen3Mixin, Qwen3_5ForConditionalGeneration):
    """Qwen3.5 (dense) with FastVID (``FastVIDQwen3_5ForConditionalGeneration``)."""

    fastvid_family = "qwen3_5"


@_with_full_placeholder
class FastVIDQwen3_5Moe(FastVIDQwen3Mixin, Qwen3_5MoeForConditionalGeneration):
    """Qwen3.5 MoE with FastVID (``FastVIDQwen3_5MoeForConditionalGeneration``)."""

    fastvid_family = "qwen3_5"
