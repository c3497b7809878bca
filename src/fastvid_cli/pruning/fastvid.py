"""FastVID: DySeg + STPrune (ATS and DTM) on pooled video tokens (Shen et al., NeurIPS 2025).

Paper: "FastVID: Dynamic Density Pruning for Fast Video Large Language Models",
arXiv 2503.11187, Sec. 3; the authors' release (github.com/LunarShen/FastVID) decides details.
"""

from __future__ import annotations

import torch

from .ats import select_salient
from .base import PruneResult, check_inputs
from .config import FastVIDConfig, FrameBudget
from .dtm import density_merge
from .segmentation import Segmentation, cluster_segments, dyseg, fixed_segments, split_long_segments

FIXED_SEGMENT_LENGTH = 4
"""Frames per segment of the ``fixed`` segmentation ablation."""


def segment(frame_features: torch.Tensor, config: FastVIDConfig) -> Segmentation:
    """Segments by ``config.segmentation``: DySeg, fixed intervals of 4, or k-means into c clusters;
    DySeg's segments longer than ``config.max_segment`` frames are then split (see :func:`split_long_segments`)."""
    if config.segmentation == "fixed":
        return fixed_segments(frame_features, FIXED_SEGMENT_LENGTH)
    if config.segmentation == "cluster":
        return cluster_segments(frame_features, config.c)
    segmentation = dyseg(frame_features, config.c, config.tau)
    if config.max_segment is not None:
        segmentation = split_long_segments(segmentation, config.max_segment)
    return segmentation


def fastvid_prune(
    video_tokens: torch.Tensor,
    frame_features: torch.Tensor,
    saliency: torch.Tensor,
    config: FastVIDConfig | None = None,
) -> PruneResult:
    """Prune pooled video tokens with FastVID.

    DySeg (or the segmentation ``config`` names) splits the frames into segments (eqs. 1-2). In every frame ATS keeps the ``salient``
    tokens of highest saliency unchanged; DTM keeps ``context * L`` density-peak anchors per
    segment of L frames, each merged with the segment's tokens most similar to it (eqs. 3-5).
    Exactly F * max(1, floor(N * R)) tokens are kept; R = 1 returns the input unchanged.
    The result is deterministic.

    Parameters
    ----------
    video_tokens : torch.Tensor
        (F, N, D) pooled video tokens at the LLM input (any float dtype, any device).
    frame_features : torch.Tensor
        (F, Dg) one global feature per frame for DySeg.
    saliency : torch.Tensor
        (F, N) [CLS]-attention saliency of each token, pooled like the tokens.
    config : FastVIDConfig, optional
        Hyperparameters; the paper's defaults when omitted.

    Returns
    -------
    PruneResult

    Raises
    ------
    ValueError
        If the shapes do not agree (see :func:`check_inputs`).
    """
    config = config or FastVIDConfig()
    check_inputs(video_tokens, frame_features, saliency)
    num_frames, num_tokens, dim = video_tokens.shape
    device = video_tokens.device
    segmentation = segment(frame_features, config)
    if config.retention_ratio >= 1:
        return PruneResult(
            tokens=video_tokens.reshape(-1, dim),
            indices=torch.arange(num_frames * num_tokens, device=device),
            segment_lengths=segmentation.as_list(),
            anchor_mask=torch.zeros(num_frames * num_tokens, dtype=torch.bool, device=device),
            transition_similarity=segmentation.transition_similarity,
        )
    return spatiotemporal_prune(video_tokens, saliency, segmentation, config)


def spatiotemporal_prune(
    video_tokens: torch.Tensor, saliency: torch.Tensor, segmentation: Segmentation, config: FastVIDConfig
) -> PruneResult:
    """STPrune on given segments: ATS in every frame, DTM on the rest (paper Sec. 3.3).

    Parameters
    ----------
    video_tokens : torch.Tensor
        (F, N, D) pooled video tokens.
    saliency : torch.Tensor
        (F, N) token saliency.
    segmentation : Segmentation
        Segments over the F frames (DySeg or any other segmentation).
    config : FastVIDConfig
        Budgets (R, d) and DTM parameters (p, beta).

    Returns
    -------
    PruneResult
        F * max(1, floor(N * R)) tokens.
    """
    num_frames, num_tokens, dim = video_tokens.shape
    device = video_tokens.device
    budget = FrameBudget.from_config(num_tokens, config)
    salient, rest = select_salient(saliency.to(device), budget.salient)
    frame_offset = torch.arange(num_frames, device=device)[:, None] * num_tokens
    salient_flat = (salient + frame_offset).flatten()
    kept_tokens = [video_tokens.reshape(-1, dim)[salient_flat]]
    kept_indices = [salient_flat]
    pairs = torch.empty(2, 0, dtype=torch.long, device=device)
    self_weight = [torch.ones(salient_flat.numel(), device=device)]
    pair_weight = torch.empty(0, device=device)
    if budget.context > 0:
        rest_flat = (rest + frame_offset).flatten()
        eligible = None
        if config.split_tau is not None:  # anchor frames: last frames of the runs the second threshold cuts
            eligible = torch.ones(num_frames, dtype=torch.bool)
            eligible[:-1] = segmentation.transition_similarity < config.split_tau
        merged = density_merge(  # reads the non-salient tokens through ``index``, block by block: no copy of them all
            video_tokens, segmentation, budget.context, config.p, config.beta, eligible, index=rest
        )
        kept_tokens.append(merged.tokens)
        kept_indices.append(rest_flat[merged.positions])
        pairs = rest_flat[merged.pairs]
        self_weight.append(merged.self_weight)
        pair_weight = merged.pair_weight
    indices = torch.cat(kept_indices)
    anchor_mask = torch.arange(indices.numel(), device=device) >= salient_flat.numel()
    indices, order = indices.sort()
    return PruneResult(
        tokens=torch.cat(kept_tokens)[order],
        indices=indices,
        segment_lengths=segmentation.as_list(),
        anchor_mask=anchor_mask[order],
        transition_similarity=segmentation.transition_similarity,
        merge_pairs=pairs,
        self_weight=torch.cat(self_weight)[order],
        pair_weight=pair_weight,
    )
