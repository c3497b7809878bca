"""DTM: density-based token merging (FastVID paper Sec. 3.3, eqs. 3-5).

DTM works on each frame's non-salient tokens. Within a segment, anchor frames are every p-th
frame counted back from the last one; their densest, most isolated tokens (density peaks, eqs. 3-4)
become anchors, and every non-salient token of the segment is merged into the most similar anchor
of each anchor frame (anchor-centric aggregation, eq. 5). Everything is vectorized over frames and
segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .segmentation import Segmentation

DENSITY_NEIGHBOURS = 4
"""k of the k-nearest-neighbour density (eq. 3), the token itself included."""
SAME_TOKEN_EPS = 1e-12
"""Squared distances below this share of the larger squared norm are float64 rounding: taken as 0."""


def anchor_counts(
    segmentation: Segmentation, context: int, p: int, available: int, eligible: torch.Tensor | None = None
) -> torch.Tensor:
    """How many anchors each frame contributes (the DTM budget).

    A segment's anchor frames are its last frame, then every p-th one back, counted over the
    segment's own eligible frames (all by default; clusters of non-contiguous frames work too).
    Its budget of ``context * L`` anchors is split evenly over them; the remainder goes one token
    each to the latest anchor frames. An anchor frame with fewer than its share of non-salient
    tokens (``available``) passes the rest to the segment's other frames, latest first. The counts
    of a segment therefore always sum to ``context * L``.

    Parameters
    ----------
    segmentation : Segmentation
        DySeg output for F frames.
    context : int
        Anchor tokens per frame on average (>= 0).
    p : int
        Anchor-frame interval (>= 1).
    available : int
        Non-salient tokens per frame, M >= context.
    eligible : torch.BoolTensor, optional
        (F,) frames that may be anchor frames (with FastVID's second threshold: the last frame of
        each sub-segment). A segment's last frame is always eligible.

    Returns
    -------
    torch.LongTensor
        (F,) int64 on CPU, anchors taken from each frame.
    """
    seg = segmentation.segment_ids
    frame = torch.arange(seg.numel())
    same = seg[:, None] == seg[None, :]
    later = same & (frame[None, :] > frame[:, None])  # [i, j]: j is a later frame of i's segment
    length = same.sum(1)  # L of each frame's segment
    eligible = torch.ones_like(seg, dtype=torch.bool) if eligible is None else eligible.cpu().bool().clone()
    eligible |= later.sum(1) == 0  # the segment's last frame
    from_end = (later & eligible[None, :]).sum(1)  # eligible frames after this one (0 for the last)
    is_anchor_frame = eligible & (from_end % p == 0)
    anchor_frames = ((same & eligible[None, :]).sum(1) + p - 1) // p
    budget = context * length
    base, remainder = budget // anchor_frames, budget % anchor_frames
    rank = from_end // p  # 0 = latest anchor frame
    quota = torch.where(is_anchor_frame, base + (rank < remainder).long(), 0)
    capped = quota.clamp(max=available)
    overflow = torch.zeros(int(seg.max()) + 1, dtype=torch.long).index_add_(0, seg, quota - capped)
    later_others = (later & ~is_anchor_frame[None, :]).sum(1)  # non-anchor frames later in the segment
    take = (overflow[seg] - available * later_others).clamp(0, available)
    return torch.where(is_anchor_frame, capped, take)


def density_scores(tokens: torch.Tensor, k: int = DENSITY_NEIGHBOURS) -> torch.Tensor:
    """Density-peak score rho * delta of every token within its frame (eqs. 3-4).

    Distances are Euclidean divided by sqrt(D). rho_i = exp(-mean squared distance to the k
    nearest tokens, itself included); delta_i = distance to the nearest token of higher rho
    (equal rho: the lower index counts as higher), or the frame's largest distance for the densest.

    Parameters
    ----------
    tokens : torch.Tensor
        (Fa, M, D) tokens of Fa frames, any float dtype.
    k : int
        Neighbours in the density (default 4), capped at M.

    Distances come from float64 Gram products, with identical tokens exactly 0 apart.

    Returns
    -------
    torch.Tensor
        (Fa, M) float64 scores.
    """
    x = tokens.double()  # float64 Gram products: rounding stays far below any real distance
    num = x.shape[1]
    sq_norm = (x * x).sum(-1)
    sq_dist = (sq_norm[:, :, None] + sq_norm[:, None, :] - 2 * x @ x.transpose(1, 2)).clamp_min(0)
    # identical tokens are exactly 0 apart (their delta is 0 and ties go by index, not by rounding)
    scale = torch.maximum(sq_norm[:, :, None], sq_norm[:, None, :])
    sq_dist = sq_dist.masked_fill(sq_dist <= SAME_TOKEN_EPS * scale, 0.0)
    sq_dist = sq_dist / x.shape[-1]
    dist = sq_dist.sqrt()
    nearest = sq_dist.topk(min(k, num), dim=-1, largest=False).values
    rho = torch.exp(-nearest.mean(-1))
    index = torch.arange(num, device=x.device)
    denser = (rho[:, None, :] > rho[:, :, None]) | (
        (rho[:, None, :] == rho[:, :, None]) & (index[None, :] < index[:, None])
    )  # [f, i, j]: token j counts as denser than token i
    delta = dist.masked_fill(~denser, float("inf")).amin(-1)
    largest = dist.flatten(1).amax(-1, keepdim=True).expand_as(delta)
    delta = torch.where(torch.isinf(delta), largest, delta)
    return rho * delta


@dataclass
class MergeResult:
    """Anchors after DTM.

    Attributes
    ----------
    positions : torch.LongTensor
        (Ka,) int64 flat positions of the anchors in the (F * M) non-salient tokens, ascending.
    tokens : torch.Tensor
        (Ka, D) merged anchors (eq. 5), dtype of the input tokens.
    pairs : torch.LongTensor
        (2, P) int64: row 0 a non-salient token's flat position, row 1 the flat position of an
        anchor it was merged into (one pair per token and anchor frame of its segment).
    """

    positions: torch.Tensor
    tokens: torch.Tensor
    pairs: torch.Tensor


def density_merge(
    tokens: torch.Tensor,
    segmentation: Segmentation,
    context: int,
    p: int,
    beta: float,
    eligible: torch.Tensor | None = None,
) -> MergeResult:
    """Pick anchors by density and merge each segment's non-salient tokens into them (DTM).

    Parameters
    ----------
    tokens : torch.Tensor
        (F, M, D) the non-salient tokens of every frame, in temporal and spatial order.
    segmentation : Segmentation
        DySeg segments over the F frames.
    context : int
        Anchors per frame on average; a segment of L frames gets exactly context * L anchors.
    p : int
        Anchor-frame interval. With p = 1 every frame merges only its own tokens.
    beta : float
        Least self-weight of an anchor: a* = w a + (1 - w) mean(assigned), w = max(beta, 1/(n+1)).
    eligible : torch.BoolTensor, optional
        (F,) frames that may be anchor frames (see :func:`anchor_counts`).

    Returns
    -------
    MergeResult
    """
    num_frames, available, dim = tokens.shape
    device = tokens.device
    counts = anchor_counts(segmentation, context, p, available, eligible)
    frames = counts.nonzero().flatten()
    scores = density_scores(tokens[frames.to(device)])
    rank = torch.empty_like(scores, dtype=torch.long)
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank.scatter_(1, order, torch.arange(available, device=device).expand_as(order))
    chosen = rank < counts[frames].to(device)[:, None]
    local_frame, local_pos = chosen.nonzero(as_tuple=True)
    anchor_frame = frames.to(device)[local_frame]
    positions = anchor_frame * available + local_pos  # ascending: frames ascending, then positions

    flat = tokens.reshape(-1, dim).float()
    unit = torch.nn.functional.normalize(flat, dim=-1)
    sim = unit @ unit[positions].T  # (F*M, Ka) cosine similarity
    num_anchors = positions.numel()
    sim[positions, torch.arange(num_anchors, device=device)] = float("inf")  # an anchor keeps itself

    seg = segmentation.segment_ids.to(device)
    token_frame = torch.arange(num_frames, device=device).repeat_interleave(available)
    allowed = seg[token_frame][:, None] == seg[anchor_frame][None, :]
    if p == 1:
        allowed &= token_frame[:, None] == anchor_frame[None, :]
    sim = sim.masked_fill(~allowed, float("-inf"))

    # For each token and each anchor frame: the first anchor of highest similarity.
    group = anchor_frame.expand(flat.shape[0], num_anchors)
    best = torch.full((flat.shape[0], num_frames), float("-inf"), device=device)
    best = best.scatter_reduce(1, group, sim, "amax")
    hit = (sim == best.gather(1, group)) & allowed
    column = torch.arange(num_anchors, device=device).expand_as(hit)
    candidate = torch.where(hit, column, num_anchors)
    first = torch.full((flat.shape[0], num_frames), num_anchors, device=device)
    first = first.scatter_reduce(1, group, candidate, "amin")
    assign = hit & (column == first.gather(1, group))  # (F*M, Ka)

    weights = assign.T.to(flat.dtype)
    assigned = weights.sum(1, keepdim=True)  # n, the anchor itself included
    mean = (weights @ flat) / assigned
    w = torch.clamp(1.0 / (assigned + 1.0), min=beta)
    merged = w * flat[positions] + (1 - w) * mean
    token_pos, anchor_col = assign.nonzero(as_tuple=True)
    pairs = torch.stack([token_pos, positions[anchor_col]])
    return MergeResult(positions=positions, tokens=merged.to(tokens.dtype), pairs=pairs)
