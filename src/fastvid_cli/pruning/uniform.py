"""Uniform: a spatially uniform subset of each frame's tokens (the simplest baseline)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..budget import tokens_per_frame_kept
from .base import PruneResult, PruningMethod, check_inputs, flat_indices
from .segmentation import transition_similarity


@dataclass(frozen=True)
class UniformConfig(PruningMethod):
    """Uniform spatial sampling, the naive baseline (no paper): the same budget as every method.

    Keeps max(1, floor(N * R)) tokens per frame at evenly spaced positions of the token grid.

    Token k of the kept ones is at raster index floor((k + 1/2) * N / K), the centre of the k-th of K
    equal stretches of the grid, so every frame keeps the same positions, spread over all rows.

    Parameters
    ----------
    retention_ratio : float
        R in (0, 1].

    Raises
    ------
    ValueError
        If R is outside (0, 1].
    """

    name = "uniform"

    def __call__(self, video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> PruneResult:
        """Prune (F, N, D) tokens to (F * K, D); ``frame_features`` and ``saliency`` only checked."""
        check_inputs(video_tokens, frame_features, saliency)
        num_frames, num_tokens, dim = video_tokens.shape
        keep = tokens_per_frame_kept(num_tokens, self.retention_ratio)
        positions = ((torch.arange(keep, dtype=torch.float64) + 0.5) * num_tokens / keep).floor().long()
        positions = positions.to(video_tokens.device).expand(num_frames, keep)
        indices = flat_indices(positions, num_tokens)
        return PruneResult(
            tokens=video_tokens.reshape(-1, dim)[indices],
            indices=indices,
            segment_lengths=[num_frames],
            anchor_mask=torch.zeros(indices.numel(), dtype=torch.bool, device=indices.device),
            transition_similarity=transition_similarity(frame_features).cpu(),
        )
