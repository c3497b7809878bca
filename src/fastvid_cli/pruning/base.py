"""What every pruning method returns, and the input checks they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class PruneResult:
    """The video tokens a pruning method keeps.

    Attributes
    ----------
    tokens : torch.Tensor
        (K, D) kept tokens (selected ones unchanged, merged ones updated), dtype and device of the input.
    indices : torch.LongTensor
        (K,) int64 ascending flat indices of the kept tokens into the F * N input tokens; the
        position of each kept token in the LLM's sequence is that of its original slot.
    segment_lengths : list of int
        Segment lengths in frames, summing to F (DySeg for FastVID, windows for DyCoke, [F] for
        methods without segments).
    anchor_mask : torch.BoolTensor
        (K,) True where the kept token is a merge of several tokens (a DTM anchor, a VisionZip
        contextual token), False for a token kept as it was.
    transition_similarity : torch.Tensor
        (F - 1,) float32 CPU cosine similarity of consecutive frames' features (DySeg eq. 1).
    merge_pairs : torch.LongTensor
        (2, P) int64: flat input index of a merged token, flat index of the anchor it went into.
    note : str or None
        Set when the method could not keep exactly the budget asked, saying what it kept instead.
    """

    tokens: torch.Tensor
    indices: torch.Tensor
    segment_lengths: list[int]
    anchor_mask: torch.Tensor
    transition_similarity: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    merge_pairs: torch.Tensor = field(default_factory=lambda: torch.empty(2, 0, dtype=torch.long))
    note: str | None = None


def flat_indices(per_frame: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """(F, k) token indices within each frame -> (F * k,) flat indices into the F * N tokens."""
    offset = torch.arange(per_frame.shape[0], device=per_frame.device)[:, None] * tokens_per_frame
    return (per_frame + offset).flatten()


def check_inputs(video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> None:
    """Check the shapes shared by every pruning method.

    Raises
    ------
    ValueError
        If ``video_tokens`` is not (F, N, D), ``frame_features`` not (F, Dg) or ``saliency`` not (F, N).
    """
    if video_tokens.dim() != 3 or video_tokens.shape[0] < 1 or video_tokens.shape[1] < 1:
        raise ValueError(f"video_tokens must be (F, N, D) with F, N >= 1, got {tuple(video_tokens.shape)}")
    num_frames, num_tokens, _ = video_tokens.shape
    if frame_features.dim() != 2 or frame_features.shape[0] != num_frames:
        raise ValueError(f"frame_features must be ({num_frames}, Dg), got {tuple(frame_features.shape)}")
    if tuple(saliency.shape) != (num_frames, num_tokens):
        raise ValueError(f"saliency must be ({num_frames}, {num_tokens}), got {tuple(saliency.shape)}")
