"""VisionZip applied to pooled video tokens, frame by frame, as the FastVID paper's baseline.

Yang et al., "VisionZip: Longer is Better but Not Necessary in Vision Language Models",
CVPR 2025, arXiv 2412.04467. FastVID (Sec. 4) applies it after pooling, at the LLM input.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..budget import tokens_per_frame_kept
from .ats import select_salient
from .base import PruneResult, PruningMethod, check_inputs, flat_indices
from .segmentation import transition_similarity


@dataclass(frozen=True)
class VisionZipConfig(PruningMethod):
    """VisionZip (Yang et al., CVPR 2025, arXiv 2412.04467) on pooled video tokens, frame by frame.

    Dominant tokens by [CLS] attention, the rest merged into uniformly chosen contextual tokens.

    Per frame, of K = max(1, floor(N * R)) kept tokens, round(K * dominant_share) are the most
    salient ones (kept unchanged; ties: lower index) and the others are contextual: targets taken
    at a uniform stride among the remaining tokens, each absorbing the remaining tokens most
    similar to it (cosine). As in VisionZip's code, a target becomes target + mean(absorbed tokens).

    Parameters
    ----------
    retention_ratio : float
        R in (0, 1].
    dominant_share : float
        Share of the budget for dominant tokens, in [0, 1]; VisionZip's default 54 of 64.

    Raises
    ------
    ValueError
        If a field is out of range.
    """

    dominant_share: float = 54 / 64

    name = "visionzip"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 <= self.dominant_share <= 1:
            raise ValueError(f"dominant_share must be in [0, 1], got {self.dominant_share!r}")

    def __call__(self, video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> PruneResult:
        """Prune (F, N, D) tokens to exactly F * max(1, floor(N * R)) tokens.

        Parameters
        ----------
        video_tokens : torch.Tensor
            (F, N, D) pooled video tokens.
        frame_features : torch.Tensor
            (F, Dg); only checked and reported.
        saliency : torch.Tensor
            (F, N) [CLS] attention pooled like the tokens.
        """
        check_inputs(video_tokens, frame_features, saliency)
        num_frames, num_tokens, dim = video_tokens.shape
        keep = tokens_per_frame_kept(num_tokens, self.retention_ratio)
        dominant = min(keep, round(keep * self.dominant_share))
        contextual = keep - dominant
        top, rest = select_salient(saliency.to(video_tokens.device), dominant)
        pairs = torch.empty(2, 0, dtype=torch.long, device=video_tokens.device)
        pair_weight = None
        kept_idx = [flat_indices(top, num_tokens)]
        flat = video_tokens.reshape(-1, dim)
        kept_tok = [flat[kept_idx[0]]]
        if contextual > 0:
            remaining = rest.shape[1]
            stride = max(1, remaining // contextual)
            target_pos = torch.arange(0, stride * contextual, stride, device=rest.device)
            is_target = torch.zeros(remaining, dtype=torch.bool, device=rest.device)
            is_target[target_pos] = True
            targets = rest[:, is_target]  # (F, contextual)
            others = rest[:, ~is_target]  # (F, remaining - contextual)
            target_x = torch.gather(video_tokens, 1, targets[..., None].expand(-1, -1, dim)).float()
            other_x = torch.gather(video_tokens, 1, others[..., None].expand(-1, -1, dim)).float()
            sim = torch.nn.functional.normalize(other_x, dim=-1) @ torch.nn.functional.normalize(target_x, dim=-1).transpose(1, 2)
            one_hot = torch.nn.functional.one_hot(sim.argmax(-1), contextual).to(other_x.dtype)  # (F, M', C)
            counts = one_hot.sum(1).clamp(min=1)[..., None]
            merged = target_x + one_hot.transpose(1, 2) @ other_x / counts
            kept_idx.append(flat_indices(targets, num_tokens))
            kept_tok.append(merged.reshape(-1, dim).to(video_tokens.dtype))
            frame, other, target = one_hot.nonzero(as_tuple=True)  # each remaining token into its target
            offset = frame * num_tokens
            pairs = torch.stack([others[frame, other] + offset, targets[frame, target] + offset])
            pair_weight = 1.0 / counts[frame, target, 0]
        indices = torch.cat(kept_idx)
        is_merged = torch.arange(indices.numel(), device=indices.device) >= kept_idx[0].numel()
        indices, order = indices.sort()
        return PruneResult(
            tokens=torch.cat(kept_tok)[order],
            indices=indices,
            segment_lengths=[num_frames],
            anchor_mask=is_merged[order],
            merge_pairs=pairs,
            self_weight=None if pair_weight is None else torch.ones(indices.numel(), device=indices.device),
            pair_weight=pair_weight,
            transition_similarity=transition_similarity(frame_features).cpu(),
        )
