"""The typed values an adapter and the pipeline exchange: video features to prune, the kept slots, LLM inputs.

:class:`VideoFeatures` (what the vision side gives FastVID), :class:`KeptSlots` (where kept tokens sit in the
prompt), :class:`LLMInputs` and :class:`Prefill` (what the LLM is called with and gives back),
:class:`EncoderState` (a family's encoder outputs the prompt needs), :class:`VisionBench` (a vision
tower for ``fastvid bench``). The adapters (:mod:`.base` and each family's module) build them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class EncoderState:
    """What a family's vision encoder hands on besides the tokens to prune; a family with more
    subclasses it (LLaVA's newline embedding, Qwen's patch grid, Qwen3-VL's DeepStack levels).

    Per-frame tensors of a subclass are joined over the chunks of a streaming encode by :meth:`concat`.
    """

    def concat(self, parts: Sequence[EncoderState]) -> EncoderState:
        """The state of the whole video from those of its consecutive chunks (this one is the first);
        by default the first chunk's."""
        return self

    @property
    def patch_grid(self) -> tuple[int, int, int] | None:
        """The video's (t, h, w) patch grid where the family has one (Qwen's), else None."""
        return None


@dataclass
class VideoFeatures:
    """Vision-encoder output of one video, ready for pruning.

    Attributes
    ----------
    video_tokens : torch.Tensor
        (F, N, D) pooled video tokens at the LLM input, model dtype, model device.
    frame_features : torch.Tensor
        (F, Dg) DySeg frame features g_i.
    saliency : torch.Tensor
        (F, N) ATS saliency pooled to the token grid.
    grid : tuple of int
        (h, w) token grid of one frame, h * w = N.
    extra_slots : int
        Video slots in the unpruned prompt besides the F * N tokens (newlines: 1 trailing one for
        LLaVA-OneVision, one per row for LLaVA-Video's grid layout).
    state : EncoderState
        The family's own encoder output besides these (typed by the family).
    """

    video_tokens: torch.Tensor
    frame_features: torch.Tensor
    saliency: torch.Tensor
    grid: tuple[int, int]
    extra_slots: int = 0
    state: EncoderState = field(default_factory=EncoderState)

    @property
    def num_frames(self) -> int:
        return int(self.video_tokens.shape[0])

    @property
    def tokens_per_frame(self) -> int:
        return int(self.video_tokens.shape[1])


@dataclass
class KeptSlots:
    """The video slots a prompt keeps and what fills them, row for row.

    Attributes
    ----------
    slots : torch.LongTensor
        (K,) indices among the unpruned prompt's video slots.
    values : torch.Tensor
        (K, D) the LLM-input features of those slots.
    levels : tuple of torch.Tensor
        Further per-slot features the model takes beside ``values``, each (K, D_l), row for row
        (Qwen3-VL's DeepStack levels); empty for most families.
    """

    slots: torch.Tensor
    values: torch.Tensor
    levels: tuple[torch.Tensor, ...] = ()

    def in_order(self) -> KeptSlots:
        """The same slots in ascending order (the prompt's order), every tensor reordered alike."""
        order = self.slots.argsort(stable=True)
        return KeptSlots(self.slots[order], self.values[order], tuple(level[order] for level in self.levels))


@dataclass
class VisionBench:
    """A random-weight copy of a family's vision tower, ready to time (``fastvid bench``).

    Attributes
    ----------
    run : callable
        One forward over the frames, no arguments.
    layers, total_layers : int
        Layers built, and the real tower's (the time is scaled by their ratio).
    description : str
        For progress lines, e.g. ``3 of 26 SigLIP layers on 32 frames``.
    """

    run: Callable[[], object]
    layers: int
    total_layers: int
    description: str


@dataclass
class Prefill:
    """The LLM's prefill of one prompt.

    Attributes
    ----------
    logits : torch.Tensor
        (V,) float32 logits of the next token.
    cache : transformers.Cache or None
        The prompt's cache (KV, and recurrent state where the model has one); None when not kept.
    """

    logits: torch.Tensor
    cache: object = None


@dataclass
class LLMInputs:
    """Keyword arguments of the LLM's forward / generate for one (possibly pruned) prompt.

    Attributes
    ----------
    kwargs : dict
        ``input_ids`` (1, L'), ``attention_mask`` (1, L'), ``position_ids`` (1, L') or the model's
        multi-row form, and the pre-computed multimodal features.
    original_length : int
        L, the unpruned prompt length; decoding continues from there.
    video_slots : int
        Video placeholder slots in this prompt (kept tokens plus kept newlines).
    next_position : torch.Tensor or None
        Position ids of a token that would follow this prompt, shaped like ``position_ids`` with a
        last dimension of 1: (1, 1) = [[L]], or Qwen2.5-VL's (4, 1, 1) = [L, m, m, m] with m one past
        the largest M-RoPE position of the unpruned prompt (as ``get_rope_index`` continues text).
    """

    kwargs: dict
    original_length: int
    video_slots: int = 0
    next_position: torch.Tensor | None = None

    @property
    def length(self) -> int:
        """L', the tokens actually fed to the LLM."""
        return int(self.kwargs["input_ids"].shape[1])

    def then(self, ids: torch.Tensor) -> LLMInputs:
        """The text ``ids`` (S,) that follow this prompt, at the positions that continue it.

        Returns
        -------
        LLMInputs
            ``input_ids`` (1, S), ``position_ids`` continuing from :attr:`next_position`, and an
            ``attention_mask`` over this prompt and them (1, L' + S), for a forward on this prompt's KV cache.

        Raises
        ------
        ValueError
            If this prompt has no :attr:`next_position` (one :meth:`ModelAdapter.build_inputs` made has it).
        """
        if self.next_position is None:
            raise ValueError("a prompt without next_position cannot be continued")
        ids = ids.to(self.kwargs["input_ids"].device)[None]
        steps = torch.arange(ids.shape[1], device=ids.device)
        positions = self.next_position + steps
        mask = torch.ones(1, self.length + ids.shape[1], dtype=torch.long, device=ids.device)
        return LLMInputs(
            {"input_ids": ids, "position_ids": positions, "attention_mask": mask},
            original_length=self.original_length + ids.shape[1],
            next_position=self.next_position + ids.shape[1],
        )

    def join(self, after: LLMInputs) -> LLMInputs:
        """One prompt: this one followed by ``after`` (from :meth:`then`), for a forward without a cache."""
        kwargs = dict(self.kwargs)
        kwargs["input_ids"] = torch.cat([self.kwargs["input_ids"], after.kwargs["input_ids"]], dim=1)
        kwargs["position_ids"] = torch.cat([self.kwargs["position_ids"], after.kwargs["position_ids"]], dim=-1)
        kwargs["attention_mask"] = after.kwargs["attention_mask"]
        return LLMInputs(kwargs, after.original_length, self.video_slots, after.next_position)
