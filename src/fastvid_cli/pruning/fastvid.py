"""FastVID: its hyperparameters, and DySeg + STPrune (ATS and DTM) on pooled video tokens (Shen et al., NeurIPS 2025).

Paper: "FastVID: Dynamic Density Pruning for Fast Video Large Language Models",
arXiv 2503.11187, Sec. 3; the authors' release (github.com/LunarShen/FastVID) decides details.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..budget import tokens_per_frame_kept
from .ats import select_salient
from .base import PruneResult, PruningMethod, check_inputs
from .dtm import density_merge
from .segmentation import Segmentation, cluster_segments, dyseg, fixed_segments, split_long_segments

FIXED_SEGMENT_LENGTH = 4
"""Frames per segment of the ``fixed`` segmentation ablation."""
SEGMENTATIONS = ("dyseg", "fixed", "cluster")
"""FastVID's segmentation: DySeg (the paper's), fixed intervals of 4 frames, or k-means of frame features."""


@dataclass(frozen=True)
class FastVIDConfig(PruningMethod):
    """Hyperparameters of FastVID (Shen et al., NeurIPS 2025, arXiv 2503.11187).

    Calling the config prunes: ``FastVIDConfig(retention_ratio=0.1)(tokens, features, saliency)``.

    Parameters
    ----------
    retention_ratio : float
        R in (0, 1]: the fraction of video tokens kept. R = 1 keeps every token unchanged.
    c : int
        DySeg: the number of segments aimed for; the c - 1 lowest transition similarities are
        always cuts (eq. 2). Also the number of clusters of ``segmentation="cluster"``. Must be >= 1.
    tau : float
        DySeg: any transition similarity below tau is also a cut (eq. 2).
    d : float
        STPrune: the share of each frame's budget spent on DTM anchors (context tokens);
        the rest goes to ATS (salient tokens). In [0, 1]; d = 0 is ATS only, d = 1 DTM only.
    p : int
        DTM: anchor frames are every p-th frame counted back from a segment's last frame. >= 1.
    beta : float
        DTM: the least weight an anchor keeps of itself when merged (eq. 5). In [0, 1].
    segmentation : str
        ``dyseg`` (the paper's), or the paper's ablations ``fixed`` (segments of 4 frames) and
        ``cluster`` (k-means of the frame features into c clusters, Table 6).
    split_tau : float or None
        Second threshold of FastVID's Qwen2.5-VL release (0.95 there; None: off). Inside a
        multi-frame segment, frames whose transition to the next one is at least ``split_tau``
        similar are near-repeats: DTM's anchor frames are then chosen (every p-th, from the end)
        among the last frames of the runs this threshold splits the segment into. Budgets, ATS and
        the merging over the whole segment are unchanged.
    max_segment : int or None
        Not in the paper (None, the default, is the paper's DySeg): DySeg segments longer than this
        many frames are split into near-equal parts. DTM compares every token of a segment with
        every anchor of it, so its time grows with the square of the longest segment; at hundreds
        of frames of long shots this bounds it (32 never changes the paper's 32-frame runs).

    Raises
    ------
    ValueError
        If a field is out of range; the message names the field and its range.
    """

    c: int = 8
    tau: float = 0.9
    d: float = 0.4
    p: int = 4
    beta: float = 0.6
    segmentation: str = "dyseg"
    split_tau: float | None = None
    max_segment: int | None = None

    name = "fastvid"

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("c", "p"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("d", "beta"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not isinstance(self.tau, (int, float)) or not math.isfinite(self.tau):
            raise ValueError(f"tau must be a finite number, got {self.tau!r}")
        if self.split_tau is not None and (not isinstance(self.split_tau, (int, float)) or not math.isfinite(self.split_tau)):
            raise ValueError(f"split_tau must be a finite number or None, got {self.split_tau!r}")
        if self.max_segment is not None and (
            isinstance(self.max_segment, bool) or not isinstance(self.max_segment, int) or self.max_segment < 1
        ):
            raise ValueError(f"max_segment must be an integer >= 1 or None, got {self.max_segment!r}")
        if self.segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, got {self.segmentation!r}")

    def __call__(self, video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> PruneResult:
        """Prune with FastVID; see :func:`fastvid_prune`."""
        return fastvid_prune(video_tokens, frame_features, saliency, self)


@dataclass(frozen=True)
class FrameBudget:
    """Tokens kept per frame on average (STPrune budgets, spec Sec. 2).

    Attributes
    ----------
    retain : int
        max(1, floor(N * R)) tokens per frame.
    context : int
        floor(retain * d): DTM anchor tokens per frame, spread over each segment's anchor frames.
    salient : int
        retain - context: ATS tokens kept in every frame.
    extra : int
        Tokens kept beyond F * retain when an exact total is asked (:meth:`for_count`); 0 otherwise.
    drop : int
        Tokens of the F * retain dropped when an exact total below one per frame is asked; 0 otherwise.
    """

    retain: int
    context: int
    salient: int
    extra: int = 0
    drop: int = 0

    @classmethod
    def from_config(cls, tokens_per_frame: int, config: FastVIDConfig) -> FrameBudget:
        """Budget for N = ``tokens_per_frame`` tokens per frame under ``config``.

        Raises
        ------
        ValueError
            If ``tokens_per_frame`` < 1.
        """
        if tokens_per_frame < 1:
            raise ValueError(f"need at least one token per frame, got {tokens_per_frame}")
        retain = tokens_per_frame_kept(tokens_per_frame, config.retention_ratio)
        context = math.floor(retain * config.d)
        return cls(retain=retain, context=context, salient=retain - context)

    @classmethod
    def for_count(cls, tokens_per_frame: int, num_frames: int, count: int, config: FastVIDConfig) -> FrameBudget:
        """Budget for exactly ``count`` tokens over F = ``num_frames`` frames of N = ``tokens_per_frame``.

        An engine that sizes the prompt before the vision encoder runs (vLLM fixes its placeholder
        count from the grid and the rate: ``int(F * N * (1 - q))``, at least N) asks for a total that
        F * max(1, floor(N * R)) misses by the rounding. The total is spread as FastVID spreads any
        budget: retain = count // F per frame (at least 1), split into context and salient by d; the
        remainder ``extra`` = count - F * retain (< F) goes to DTM's anchor budget when DTM runs
        (context >= 1), else to ATS (see :func:`spatiotemporal_prune`); a total below one token per
        frame keeps one per frame and ``drop``s the least salient of them.

        Raises
        ------
        ValueError
            If ``count`` is outside [1, F * N].
        """
        if not 1 <= count <= num_frames * tokens_per_frame:
            raise ValueError(f"count must be in [1, {num_frames * tokens_per_frame}] (F * N), got {count}")
        retain = max(1, count // num_frames)
        context = math.floor(retain * config.d)
        return cls(
            retain=retain,
            context=context,
            salient=retain - context,
            extra=max(0, count - num_frames * retain),
            drop=max(0, num_frames * retain - count),
        )


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
    count: int | None = None,
) -> PruneResult:
    """Prune pooled video tokens with FastVID.

    DySeg (or the segmentation ``config`` names) splits the frames into segments (eqs. 1-2). In every frame ATS keeps the ``salient``
    tokens of highest saliency unchanged; DTM keeps ``context * L`` density-peak anchors per
    segment of L frames, each merged with the segment's tokens most similar to it (eqs. 3-5).
    Exactly F * max(1, floor(N * R)) tokens are kept, or exactly ``count`` when given (the budget
    of an engine that fixed it beforehand, see :meth:`FrameBudget.for_count`); R = 1 (or a count of
    F * N) returns the input unchanged. The result is deterministic.

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
    count : int, optional
        Keep exactly this many tokens, in [1, F * N], instead of F * max(1, floor(N * R)); R then
        only matters through the other fields (the vLLM plugin passes vLLM's placeholder count).

    Returns
    -------
    PruneResult

    Raises
    ------
    ValueError
        If the shapes do not agree (see :func:`check_inputs`), or ``count`` is out of range.
    """
    config = config or FastVIDConfig()
    check_inputs(video_tokens, frame_features, saliency)
    num_frames, num_tokens, dim = video_tokens.shape
    device = video_tokens.device
    budget = None if count is None else FrameBudget.for_count(num_tokens, num_frames, count, config)
    segmentation = segment(frame_features, config)
    if (config.retention_ratio >= 1 and count is None) or count == num_frames * num_tokens:
        return PruneResult(
            tokens=video_tokens.reshape(-1, dim),
            indices=torch.arange(num_frames * num_tokens, device=device),
            segment_lengths=segmentation.as_list(),
            anchor_mask=torch.zeros(num_frames * num_tokens, dtype=torch.bool, device=device),
            transition_similarity=segmentation.transition_similarity,
        )
    return spatiotemporal_prune(video_tokens, saliency, segmentation, config, budget)


def spatiotemporal_prune(
    video_tokens: torch.Tensor,
    saliency: torch.Tensor,
    segmentation: Segmentation,
    config: FastVIDConfig,
    budget: FrameBudget | None = None,
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
    budget : FrameBudget, optional
        The budget; by default ``FrameBudget.from_config(N, config)``. One from
        :meth:`FrameBudget.for_count` keeps its exact total: its ``extra`` tokens are DTM anchors,
        spread over the segments by length (:func:`segment_shares`), when DTM runs, else the most
        salient tokens left (ties: lower index); its ``drop`` removes the least salient kept tokens.

    Returns
    -------
    PruneResult
        F * retain + extra - drop tokens (F * max(1, floor(N * R)) for the default budget).
    """
    num_frames, num_tokens, dim = video_tokens.shape
    device = video_tokens.device
    budget = budget or FrameBudget.from_config(num_tokens, config)
    salient, rest = select_salient(saliency.to(device), budget.salient)
    frame_offset = torch.arange(num_frames, device=device)[:, None] * num_tokens
    salient_flat = (salient + frame_offset).flatten()
    if budget.extra and budget.context == 0:  # no DTM to take the remainder: the most salient of the rest, as they are
        rest_flat = (rest + frame_offset).flatten()
        order = torch.sort(saliency.to(device).flatten()[rest_flat].float(), descending=True, stable=True).indices
        salient_flat = torch.cat([salient_flat, rest_flat[order[: budget.extra]]]).sort().values
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
        extra = segment_shares(segmentation, budget.extra) if budget.extra else None
        merged = density_merge(  # reads the non-salient tokens through ``index``, block by block: no copy of them all
            video_tokens, segmentation, budget.context, config.p, config.beta, eligible, index=rest, extra=extra
        )
        kept_tokens.append(merged.tokens)
        kept_indices.append(rest_flat[merged.positions])
        pairs = rest_flat[merged.pairs]
        self_weight.append(merged.self_weight)
        pair_weight = merged.pair_weight
    indices = torch.cat(kept_indices)
    anchor_mask = torch.arange(indices.numel(), device=device) >= salient_flat.numel()
    indices, order = indices.sort()
    result = PruneResult(
        tokens=torch.cat(kept_tokens)[order],
        indices=indices,
        segment_lengths=segmentation.as_list(),
        anchor_mask=anchor_mask[order],
        transition_similarity=segmentation.transition_similarity,
        merge_pairs=pairs,
        self_weight=torch.cat(self_weight)[order],
        pair_weight=pair_weight,
    )
    if budget.drop:
        result = _drop_least_salient(result, saliency.to(device).flatten(), budget.drop)
    return result


def segment_shares(segmentation: Segmentation, extra: int) -> torch.Tensor:
    """``extra`` tokens spread over the segments in proportion to their lengths (largest remainder;
    ties go to the later segment, as DTM's own remainder goes to the latest anchor frames).

    Returns
    -------
    torch.LongTensor
        (S,) int64 on CPU, summing to ``extra``.
    """
    lengths = segmentation.lengths
    frames = int(lengths.sum())
    share = extra * lengths
    base, remainder = share // frames, share % frames
    left = extra - int(base.sum())
    key = remainder * lengths.numel() + torch.arange(lengths.numel())  # larger remainder first, then later segment
    base[torch.argsort(key, descending=True)[:left]] += 1
    return base


def _drop_least_salient(result: PruneResult, saliency: torch.Tensor, drop: int) -> PruneResult:
    """``result`` without its ``drop`` least salient kept tokens (ties: higher flat index first), with
    the merge pairs into a dropped token removed."""
    reverse = torch.sort(saliency[result.indices].float().flip(0), stable=True).indices  # ties: higher index first
    keep = torch.ones(result.indices.numel(), dtype=torch.bool, device=result.indices.device)
    keep[result.indices.numel() - 1 - reverse[:drop]] = False
    pairs = result.merge_pairs
    if pairs.numel():
        kept_anchor = torch.isin(pairs[1], result.indices[keep])
        pairs = pairs[:, kept_anchor]
        pair_weight = None if result.pair_weight is None else result.pair_weight[kept_anchor]
    else:
        pair_weight = result.pair_weight
    return PruneResult(
        tokens=result.tokens[keep],
        indices=result.indices[keep],
        segment_lengths=result.segment_lengths,
        anchor_mask=result.anchor_mask[keep],
        transition_similarity=result.transition_similarity,
        merge_pairs=pairs,
        self_weight=None if result.self_weight is None else result.self_weight[keep],
        pair_weight=pair_weight,
        note=f"an exact total below one token per frame: the {drop} least salient of one token per frame dropped",
    )
