"""DTM: density-based token merging (FastVID paper Sec. 3.3, eqs. 3-5).

DTM works on each frame's non-salient tokens. Within a segment, anchor frames are every p-th
frame counted back from the last one; their densest, most isolated tokens (density peaks, eqs. 3-4)
become anchors, and every non-salient token of the segment is merged into the most similar anchor
of each anchor frame (anchor-centric aggregation, eq. 5).

Memory follows blocks, not the video: density peaks are computed a few anchor frames at a time, and
the assignment and merge run over blocks of whole segments of equal length (batched, no padding of
tokens) or, for a segment too long for one block, over chunks of its tokens; every buffer of a
block holds at most :data:`BLOCK_ELEMENTS` elements. Python loops run over blocks only, never over
tokens; everything inside a block is batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .segmentation import Segmentation

DENSITY_NEIGHBOURS = 4
"""k of the k-nearest-neighbour density (eq. 3), the token itself included."""
BLOCK_ELEMENTS = 1 << 22
"""Elements in one buffer of a block (4 Mi: 16 MiB in float32): a block's tokens (rows x D) and its
similarities (rows x anchor slots) each fit in it."""


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


def density_scores(tokens: torch.Tensor, k: int = DENSITY_NEIGHBOURS, scratch: bool = False) -> torch.Tensor:
    """Density-peak score rho * delta of every token within its frame (eqs. 3-4).

    Distances are Euclidean divided by sqrt(D). rho_i = exp(-mean squared distance to the k
    nearest tokens, itself included); delta_i = distance to the nearest token of higher rho
    (equal rho: the lower index counts as higher), or the frame's largest distance for the densest.

    Distances come from a float32 Gram product of the frame's tokens after subtracting the frame's
    mean (distances do not change; smaller norms mean less cancellation). Identical tokens are
    exactly 0 apart and have identical distances to every other token (see :func:`first_copies`),
    so copies of a token tie and go by index, never by rounding. No float64 anywhere.

    Parameters
    ----------
    tokens : torch.Tensor
        (Fa, M, D) tokens of Fa frames, any float dtype.
    k : int
        Neighbours in the density (default 4), capped at M.
    scratch : bool
        ``tokens`` may be overwritten (it is when float32): saves a copy of them. Default False.

    Returns
    -------
    torch.Tensor
        (Fa, M) float32 scores.
    """
    x = tokens.float()
    num, dim = x.shape[1], x.shape[2]
    first = first_copies(x)
    mean = x.mean(1, keepdim=True)
    x = x.sub_(mean) if scratch or x is not tokens else x - mean
    sq_dist = torch.bmm(x, x.transpose(1, 2))  # Gram; below, in place: |x_i|^2 + |x_j|^2 - 2 x_i.x_j
    sq_norm = sq_dist.diagonal(dim1=1, dim2=2).clone()
    sq_dist.mul_(-2).add_(sq_norm[:, :, None]).add_(sq_norm[:, None, :]).clamp_min_(0)  # diagonal exactly 0
    if first is not None:  # a copy reads the distances of the first token it copies: its row and column are that token's
        sq_dist = sq_dist.gather(1, first[:, :, None].expand(-1, -1, num)).gather(2, first[:, None, :].expand(-1, num, -1))
    sq_dist.div_(dim)
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


def first_copies(tokens: torch.Tensor) -> torch.Tensor | None:
    """For every token, the lowest index of an identical token of the same frame (itself if none).

    Candidates are pairs with equal fingerprints (the sum and the norm of the token: a reduction
    over one token depends only on its values, so identical tokens always match, and different
    tokens almost never do); each candidate pair is then compared exactly, element by element.
    -0.0 and 0.0 count as equal, NaN as different.

    Parameters
    ----------
    tokens : torch.Tensor
        (Fa, M, D) float tokens.

    Returns
    -------
    torch.LongTensor or None
        (Fa, M) int64 token indices within each frame; None when no frame has two identical tokens.
    """
    frames, num, dim = tokens.shape
    total, norm = tokens.sum(-1), torch.linalg.vector_norm(tokens, dim=-1)
    same_print = (total[:, :, None] == total[:, None, :]) & (norm[:, :, None] == norm[:, None, :])
    frame, i, j = torch.tril(same_print, diagonal=-1).nonzero(as_tuple=True)  # pairs j < i
    step = max(1, BLOCK_ELEMENTS // dim)
    equal = [
        (tokens[frame[s:s + step], i[s:s + step]] == tokens[frame[s:s + step], j[s:s + step]]).all(-1)
        for s in range(0, frame.numel(), step)  # chunks of pairs: only copies reach here, in numbers
    ]
    if not equal or not (equal := torch.cat(equal)).any():
        return None
    first = torch.arange(num, device=tokens.device).repeat(frames, 1)
    first.view(-1).scatter_reduce_(0, frame[equal] * num + i[equal], j[equal], "amin")
    return first


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
        anchor it was merged into (one pair per token and anchor frame of its segment), ordered by
        token, then anchor.
    self_weight : torch.Tensor
        (Ka,) float32 w = max(beta, 1/(n+1)) of each anchor in eq. 5.
    pair_weight : torch.Tensor
        (P,) float32 (1 - w) / n of the pair's anchor: ``tokens[a] = w x[a] + sum of pair_weight x[token]``
        over the pairs into anchor a (its own pair included).
    """

    positions: torch.Tensor
    tokens: torch.Tensor
    pairs: torch.Tensor
    self_weight: torch.Tensor
    pair_weight: torch.Tensor


def density_merge(
    tokens: torch.Tensor,
    segmentation: Segmentation,
    context: int,
    p: int,
    beta: float,
    eligible: torch.Tensor | None = None,
    index: torch.Tensor | None = None,
) -> MergeResult:
    """Pick anchors by density and merge each segment's non-salient tokens into them (DTM).

    Anchors are picked per anchor frame by density score (eqs. 3-4; ties: lower index). Every token
    of a segment goes, for each anchor frame of the segment, to that frame's anchor of highest cosine
    similarity (ties: the first anchor; an anchor always takes itself), and each anchor becomes
    a* = w a + (1 - w) mean(assigned), w = max(beta, 1/(n+1)) (eq. 5, n counts the anchor itself).

    Work and memory go block by block (see :data:`BLOCK_ELEMENTS`): the largest buffer is bounded
    by the block, not by the video. A token is compared with the anchors of its own segment only, so
    the arithmetic is the sum over segments of (tokens x anchors of the segment): linear in F for
    segments of bounded length, quadratic in the length of a segment.

    Parameters
    ----------
    tokens : torch.Tensor
        (F, M, D) the non-salient tokens of every frame, in temporal and spatial order; or, with
        ``index``, (F, N, D) all tokens of every frame. Any float dtype; the work is in float32.
    segmentation : Segmentation
        DySeg segments over the F frames (or clusters of frames).
    context : int
        Anchors per frame on average; a segment of L frames gets exactly context * L anchors.
    p : int
        Anchor-frame interval. With p = 1 every frame merges only its own tokens.
    beta : float
        Least self-weight of an anchor: a* = w a + (1 - w) mean(assigned), w = max(beta, 1/(n+1)).
    eligible : torch.BoolTensor, optional
        (F,) frames that may be anchor frames (see :func:`anchor_counts`).
    index : torch.LongTensor, optional
        (F, M) int64 positions within each frame of ``tokens`` of the M tokens DTM works on (the
        non-salient ones), so that they need not be copied out first. Default: all of them.

    Returns
    -------
    MergeResult
        Positions and pairs refer to the (F * M) tokens DTM works on.
    """
    num_frames, num_tokens, dim = tokens.shape
    device = tokens.device
    if index is None:
        index = torch.arange(num_tokens, device=device).expand(num_frames, num_tokens)
    index = index.to(device)
    available = index.shape[1]
    flat = tokens.reshape(-1, dim)
    rows_of = (torch.arange(num_frames, device=device)[:, None] * num_tokens + index).flatten()  # (F*M,) rows of flat

    counts = anchor_counts(segmentation, context, p, available, eligible)
    frames = counts.nonzero().flatten()
    per_chunk = max(1, BLOCK_ELEMENTS // (available * max(dim, available)))
    scores = torch.cat([torch.empty(0, available, device=device)] + [
        density_scores(
            flat.index_select(0, rows_of.view(num_frames, available)[chunk.to(device)].flatten()).view(-1, available, dim),
            scratch=True,  # a copy of ours
        )
        for chunk in frames.split(per_chunk)
    ])
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(available, device=device).expand_as(order))
    chosen = rank < counts[frames].to(device)[:, None]
    local_frame, local_pos = chosen.nonzero(as_tuple=True)
    positions = frames.to(device)[local_frame] * available + local_pos  # ascending: frames, then positions

    anchors = flat.index_select(0, rows_of[positions]).float()
    sums, assigned, pairs = _assign_and_sum(flat, index, anchors, positions, segmentation, counts, p)
    mean = sums / assigned[:, None]
    w = torch.clamp(1.0 / (assigned[:, None] + 1.0), min=beta)
    merged = w * anchors + (1 - w) * mean
    share = ((1 - w[:, 0]) / assigned)[torch.searchsorted(positions, pairs[1])]  # each pair's (1 - w) / n
    return MergeResult(positions=positions, tokens=merged.to(tokens.dtype), pairs=pairs, self_weight=w[:, 0],
                       pair_weight=share)


def _assign_and_sum(
    flat: torch.Tensor,
    index: torch.Tensor,
    anchors: torch.Tensor,
    positions: torch.Tensor,
    segmentation: Segmentation,
    counts: torch.Tensor,
    p: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Assign every token to an anchor per anchor frame of its segment, block by block (eqs. 4-5).

    A merge unit is a segment (a frame when p = 1). Units with the same number of frames and of
    anchors are batched; a long unit is cut into chunks of rows. A block reads whole frames (all N
    tokens; those DTM does not work on are masked), so a unit of consecutive frames is read in place.
    Each unit's anchors are laid out as (anchor frames x most anchors of one frame) slots, so that
    the first best anchor of every anchor frame is one argmax.

    Parameters
    ----------
    flat : torch.Tensor
        (F * N, D) all tokens, any float dtype.
    index : torch.LongTensor
        (F, M) int64 positions within each frame of the tokens DTM works on.
    anchors : torch.Tensor
        (Ka, D) float32 anchor tokens, at ``positions``.
    positions : torch.LongTensor
        (Ka,) int64 ascending flat positions of the anchors in the F * M tokens.
    segmentation : Segmentation
    counts : torch.LongTensor
        (F,) int64 CPU anchors per frame (:func:`anchor_counts`).
    p : int

    Returns
    -------
    sums : torch.Tensor
        (Ka, D) float32 sum of the tokens assigned to each anchor (itself included).
    assigned : torch.Tensor
        (Ka,) float32 number of tokens assigned to each anchor (n, itself included).
    pairs : torch.LongTensor
        (2, P) int64 (token position, anchor position), ordered by token, then anchor.
    """
    device, dim = flat.device, flat.shape[1]
    num_frames, available = index.shape
    per_frame = flat.shape[0] // num_frames  # N
    num_anchors = positions.numel()
    unit = segmentation.segment_ids.cpu() if p > 1 else torch.arange(num_frames)
    num_units = int(unit.max()) + 1
    # position in the F * M tokens of each of the F * N rows, -1 for a token DTM does not work on
    position_of = torch.full((num_frames, per_frame), -1, dtype=torch.long, device=device)
    position_of.scatter_(1, index, torch.arange(num_frames * available, device=device).view(num_frames, available))
    position_of = position_of.flatten()

    # Bookkeeping on the CPU, O(F + Ka): frames of each unit in time order; anchors by unit, then
    # frame (a group = one anchor frame), then position.
    frame_order = torch.sort(unit, stable=True).indices
    unit_frames = torch.bincount(unit, minlength=num_units)
    unit_start = unit_frames.cumsum(0) - unit_frames
    slot_of_frame = torch.empty_like(frame_order)
    slot_of_frame[frame_order] = torch.arange(num_frames) - unit_start[unit[frame_order]]  # frame's place in its unit
    anchor_pos = positions.cpu()
    anchor_frame = anchor_pos // available
    anchor_unit = unit[anchor_frame]
    by_unit = torch.sort(anchor_unit, stable=True).indices
    anchor_unit, anchor_frame, anchor_pos = anchor_unit[by_unit], anchor_frame[by_unit], anchor_pos[by_unit]
    unit_anchors = torch.bincount(anchor_unit, minlength=num_units)
    anchor_start = unit_anchors.cumsum(0) - unit_anchors
    new_group = torch.ones(num_anchors, dtype=torch.bool)
    new_group[1:] = anchor_frame[1:] != anchor_frame[:-1]
    group = new_group.cumsum(0) - 1
    group_start = torch.nonzero(new_group).flatten()
    column = torch.arange(num_anchors) - anchor_start[anchor_unit]  # place among its unit's anchors
    in_group = torch.arange(num_anchors) - group_start[group]  # place among its anchor frame's anchors
    group_unit = anchor_unit[group_start]
    unit_groups = torch.bincount(group_unit, minlength=num_units)
    group_in_unit = group - (unit_groups.cumsum(0) - unit_groups)[anchor_unit]
    widest = torch.zeros(num_units, dtype=torch.long).scatter_reduce_(0, group_unit, torch.bincount(group), "amax")
    anchor_row = slot_of_frame[anchor_frame] * per_frame + index.cpu()[anchor_frame, anchor_pos % available]  # row in its unit

    by_unit_dev = by_unit.to(device)
    unit_vectors = torch.nn.functional.normalize(anchors.index_select(0, by_unit_dev), dim=-1)  # (Ka, D), by unit
    sums = torch.empty(num_anchors, dim, device=device)
    assigned = torch.empty(num_anchors, device=device)
    token_parts, anchor_parts = [], []

    # Classes of units with the same number of frames and of anchors: batched without padding.
    key = unit_frames * (num_anchors + 1) + unit_anchors
    has_anchors = torch.nonzero(unit_anchors > 0).flatten()
    for value in torch.unique(key[has_anchors]).tolist():
        units = has_anchors[key[has_anchors] == value]
        num, length, k = units.numel(), int(unit_frames[units[0]]), int(unit_anchors[units[0]])
        groups, width = int(unit_groups[units].max()), int(widest[units].max())
        rows = length * per_frame
        mine = torch.isin(anchor_unit, units)  # this class's anchors, unit by unit
        member = torch.repeat_interleave(torch.arange(num), k)
        slot_column = torch.zeros(num, groups * width, dtype=torch.long)
        slot_real = torch.zeros(num, groups * width, dtype=torch.bool)
        slot = group_in_unit[mine] * width + in_group[mine]
        slot_column[member, slot] = column[mine]
        slot_real[member, slot] = True
        plain = groups * width == k and bool(slot_real.all())  # slots are the columns: no re-layout
        class_rows = anchor_row[mine].view(num, k)
        frames_of_unit = frame_order[unit_start[units][:, None] + torch.arange(length)]  # (U, L)
        per_row = max(dim, groups * width)
        batch = max(1, BLOCK_ELEMENTS // (rows * per_row))
        chunk = rows if rows * per_row <= BLOCK_ELEMENTS else max(1, BLOCK_ELEMENTS // per_row)
        for u0 in range(0, num, batch):
            sel = slice(u0, u0 + batch)
            size = frames_of_unit[sel].shape[0]
            sorted_ids = (anchor_start[units[sel]][:, None] + torch.arange(k)).to(device)  # (B, k) anchors by unit
            vectors = unit_vectors[sorted_ids]  # (B, k, D)
            anchor_ids = by_unit_dev[sorted_ids]  # (B, k) anchor indices
            row_index = (frames_of_unit[sel][:, :, None] * per_frame + torch.arange(per_frame)).view(size, rows)
            start = int(row_index[0, 0])  # consecutive frames are read in place, without a copy
            in_place = bool((row_index.flatten() - start == torch.arange(size * rows)).all())
            columns, real = slot_column[sel].to(device), slot_real[sel].to(device)
            block_sums = torch.zeros(size, k, dim, device=device)
            block_assigned = torch.zeros(size, k, device=device)
            for r0 in range(0, rows, chunk):
                r1 = min(rows, r0 + chunk)
                block_rows = row_index[:, r0:r1].to(device)
                if in_place:
                    x = flat[start : start + size * rows].view(size, rows, dim)[:, r0:r1]
                else:
                    x = flat.index_select(0, block_rows.flatten()).view(size, r1 - r0, dim)
                x = x.float()
                sim = torch.nn.functional.normalize(x, dim=-1) @ vectors.transpose(1, 2)  # (B, R, k) cosine
                own_b, own_c = ((class_rows[sel] >= r0) & (class_rows[sel] < r1)).nonzero(as_tuple=True)
                sim[own_b.to(device), (class_rows[sel][own_b, own_c] - r0).to(device), own_c.to(device)] = float("inf")
                if plain:
                    slots = sim
                else:
                    slots = sim.gather(2, columns[:, None, :].expand(-1, r1 - r0, -1))
                    slots.masked_fill_(~real[:, None, :], float("-inf"))
                best = slots.view(size, r1 - r0, groups, width).argmax(-1)  # (B, R, groups): first best slot
                best = best + torch.arange(groups, device=device) * width
                best_column = columns.gather(1, best.view(size, -1)).view_as(best) if not plain else best
                position = position_of[block_rows]  # (B, R)
                take = (position >= 0)[:, :, None] & real.view(size, groups, width)[:, None, :, 0]  # (B, R, groups)
                onehot = torch.zeros_like(sim).scatter_add_(2, best_column, take.float())
                block_sums.baddbmm_(onehot.transpose(1, 2), x)
                block_assigned += onehot.sum(1)
                b_i, r_i, g_i = take.nonzero(as_tuple=True)
                token_parts.append(position[b_i, r_i])
                anchor_parts.append(positions[anchor_ids[b_i, best_column[b_i, r_i, g_i]]])
            sums.index_copy_(0, anchor_ids.flatten(), block_sums.view(-1, dim))  # each anchor is in one unit
            assigned.index_copy_(0, anchor_ids.flatten(), block_assigned.flatten())
    token = torch.cat(token_parts) if token_parts else positions.new_empty(0)
    anchor = torch.cat(anchor_parts) if anchor_parts else positions.new_empty(0)
    order = torch.argsort(token * (num_frames * available) + anchor)
    return sums, assigned, torch.stack([token[order], anchor[order]])
