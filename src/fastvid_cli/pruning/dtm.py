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

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .segmentation import Segmentation

DENSITY_NEIGHBOURS = 4
"""k of the k-nearest-neighbour density (eq. 3), the token itself included."""
BLOCK_ELEMENTS = 1 << 22
"""Elements in one buffer of a block (4 Mi: 16 MiB in float32): a block's tokens (rows x D) and its
similarities (rows x anchor slots) each fit in it."""


def anchor_counts(
    segmentation: Segmentation,
    context: int,
    p: int,
    available: int,
    eligible: torch.Tensor | None = None,
    extra: torch.Tensor | None = None,
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
    extra : torch.LongTensor, optional
        (S,) anchors each segment takes beyond ``context * L`` (an exact total asked of FastVID, see
        ``FrameBudget.for_count``), spread by the same rules; at most (available - context) * L each.

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
    budget = context * length + (0 if extra is None else extra.cpu().long()[seg])
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
    chunks = [
        (tokens[frame[s : s + step], i[s : s + step]] == tokens[frame[s : s + step], j[s : s + step]]).all(-1)
        for s in range(0, frame.numel(), step)  # chunks of pairs: only copies reach here, in numbers
    ]
    if not chunks or not (equal := torch.cat(chunks)).any():
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
    extra: torch.Tensor | None = None,
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
    extra : torch.LongTensor, optional
        (S,) anchors each segment takes beyond ``context * L`` (see :func:`anchor_counts`).

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

    counts = anchor_counts(segmentation, context, p, available, eligible, extra)
    frames = counts.nonzero().flatten()
    per_chunk = max(1, BLOCK_ELEMENTS // (available * max(dim, available)))
    scores = torch.cat(
        [torch.empty(0, available, device=device)]
        + [
            density_scores(
                flat.index_select(0, rows_of.view(num_frames, available)[chunk.to(device)].flatten()).view(-1, available, dim),
                scratch=True,  # a copy of ours
            )
            for chunk in frames.split(per_chunk)
        ]
    )
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(available, device=device).expand_as(order))
    chosen = rank < counts[frames].to(device)[:, None]
    local_frame, local_pos = chosen.nonzero(as_tuple=True)
    positions = frames.to(device)[local_frame] * available + local_pos  # ascending: frames, then positions

    anchors = flat.index_select(0, rows_of[positions]).float()
    sums, assigned, pairs = _assign_and_sum(flat, index, anchors, positions, segmentation, p)
    mean = sums / assigned[:, None]
    w = torch.clamp(1.0 / (assigned[:, None] + 1.0), min=beta)
    merged = w * anchors + (1 - w) * mean
    share = ((1 - w[:, 0]) / assigned)[torch.searchsorted(positions, pairs[1])]  # each pair's (1 - w) / n
    return MergeResult(positions=positions, tokens=merged.to(tokens.dtype), pairs=pairs, self_weight=w[:, 0], pair_weight=share)


def _assign_and_sum(
    flat: torch.Tensor,
    index: torch.Tensor,
    anchors: torch.Tensor,
    positions: torch.Tensor,
    segmentation: Segmentation,
    p: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Assign every token to an anchor per anchor frame of its segment, and sum each anchor's tokens (eqs. 4-5).

    What it computes is defined by the plain loops of the tests' reference, ``ref_prune`` in
    ``tests/test_pruning.py`` (its ``for af, group in anchors.items(): for t in seg_tokens:`` loop):
    for every anchor frame of a segment, every token DTM works on in that segment (only the anchor
    frame's own tokens when p = 1) goes to the anchor of that frame with the highest cosine
    similarity, the first such anchor on a tie, an anchor always to itself. ``dense_density_merge``
    there is the same in one (tokens x anchors) matrix; this is that matrix block by block.

    The steps, each a function below:

    1. :func:`_unit_layout`: on the CPU, where each merge unit's frames and anchors sit. A merge unit
       is a segment (a frame when p = 1); its anchors are laid out as (anchor frames x most anchors
       of one frame) slots, so that the first best anchor of every anchor frame is one argmax.
    2. :func:`_unit_classes`: units with the same number of frames and of anchors are batched
       without padding; a long unit is cut into chunks of rows (:func:`_block_shape`).
    3. :func:`_merge_batch`: per batch of units, each chunk of rows is read (whole frames, all N
       tokens; those DTM does not work on are masked, so a unit of consecutive frames is read in
       place), assigned (:func:`_best_anchor_columns`) and summed into its anchors.
    4. The (token, anchor) pairs are sorted by token, then anchor.

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
    layout = _unit_layout(unit, positions, index, per_frame)
    position_of = _positions_of_rows(index, per_frame)
    anchor_order = layout.anchor_order.to(device)
    unit_vectors = torch.nn.functional.normalize(anchors.index_select(0, anchor_order), dim=-1)  # (Ka, D), by unit
    sums = torch.empty(num_anchors, dim, device=device)
    assigned = torch.empty(num_anchors, device=device)
    token_parts: list[torch.Tensor] = []
    anchor_parts: list[torch.Tensor] = []
    for members in _unit_classes(layout, num_anchors):
        batch, chunk = _block_shape(members, per_frame, dim)
        for u0 in range(0, members.units.numel(), batch):
            block = _merge_batch(
                flat, position_of, positions, unit_vectors, anchor_order, layout, members, slice(u0, u0 + batch), chunk, per_frame
            )
            sums.index_copy_(0, block.anchor_ids.flatten(), block.sums.view(-1, dim))  # each anchor is in one unit
            assigned.index_copy_(0, block.anchor_ids.flatten(), block.assigned.flatten())
            token_parts += block.tokens
            anchor_parts += block.anchors
    token = torch.cat(token_parts) if token_parts else positions.new_empty(0)
    anchor = torch.cat(anchor_parts) if anchor_parts else positions.new_empty(0)
    order = torch.argsort(token * (num_frames * available) + anchor)
    return sums, assigned, torch.stack([token[order], anchor[order]])


def _positions_of_rows(index: torch.Tensor, per_frame: int) -> torch.Tensor:
    """(F * N,) int64: position in the F * M tokens DTM works on of each of the F * N rows, -1 for a token it does not."""
    num_frames, available = index.shape
    position_of = torch.full((num_frames, per_frame), -1, dtype=torch.long, device=index.device)
    position_of.scatter_(1, index, torch.arange(num_frames * available, device=index.device).view(num_frames, available))
    return position_of.flatten()


@dataclass
class _UnitLayout:
    """Where the merge units' frames and anchors sit: CPU bookkeeping, O(F + Ka) (:func:`_unit_layout`).

    Anchors are ordered by unit, then anchor frame (a *group*), then position; the per-anchor
    tensors below are in that order.

    Attributes
    ----------
    frame_order : torch.LongTensor
        (F,) frames by unit, in time order within a unit.
    frames, frame_start : torch.LongTensor
        (U,) frames of each unit, and where they start in ``frame_order``.
    anchor_order : torch.LongTensor
        (Ka,) indices into ``positions`` by unit, then group, then position.
    anchors, anchor_start : torch.LongTensor
        (U,) anchors of each unit, and where they start in ``anchor_order``.
    groups, widest : torch.LongTensor
        (U,) anchor frames of each unit, and the most anchors one of them has.
    anchor_unit, column, group_in_unit, in_group : torch.LongTensor
        (Ka,) each anchor's unit, its place among the unit's anchors, its anchor frame's place among
        the unit's anchor frames, and its place among that frame's anchors.
    row : torch.LongTensor
        (Ka,) each anchor's row among its unit's L * N rows.
    """

    frame_order: torch.Tensor
    frames: torch.Tensor
    frame_start: torch.Tensor
    anchor_order: torch.Tensor
    anchors: torch.Tensor
    anchor_start: torch.Tensor
    groups: torch.Tensor
    widest: torch.Tensor
    anchor_unit: torch.Tensor
    column: torch.Tensor
    group_in_unit: torch.Tensor
    in_group: torch.Tensor
    row: torch.Tensor


def _unit_layout(unit: torch.Tensor, positions: torch.Tensor, index: torch.Tensor, per_frame: int) -> _UnitLayout:
    """The :class:`_UnitLayout` of the units ``unit`` ((F,) CPU unit of each frame) and the anchors at ``positions``."""
    num_frames, available = index.shape
    num_units = int(unit.max()) + 1
    num_anchors = positions.numel()
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
    group_unit = anchor_unit[group_start]
    unit_groups = torch.bincount(group_unit, minlength=num_units)
    return _UnitLayout(
        frame_order=frame_order,
        frames=unit_frames,
        frame_start=unit_start,
        anchor_order=by_unit,
        anchors=unit_anchors,
        anchor_start=anchor_start,
        groups=unit_groups,
        widest=torch.zeros(num_units, dtype=torch.long).scatter_reduce_(0, group_unit, torch.bincount(group), "amax"),
        anchor_unit=anchor_unit,
        column=torch.arange(num_anchors) - anchor_start[anchor_unit],
        group_in_unit=group - (unit_groups.cumsum(0) - unit_groups)[anchor_unit],
        in_group=torch.arange(num_anchors) - group_start[group],
        row=slot_of_frame[anchor_frame] * per_frame + index.cpu()[anchor_frame, anchor_pos % available],
    )


@dataclass
class _UnitClass:
    """Units with the same number of frames and of anchors, merged in batches without padding, and their slots.

    Each unit's anchors are laid out as (``groups`` x ``width``) slots: one row of slots per anchor
    frame, as wide as the unit class's most anchors of one frame.

    Attributes
    ----------
    units : torch.LongTensor
        (U',) the units.
    length, anchors, groups, width : int
        Frames and anchors of each unit; anchor frames and slots per anchor frame of the layout.
    slot_column : torch.LongTensor
        (U', groups * width) the anchor (its column among the unit's) in each slot; 0 in an empty one.
    slot_real : torch.BoolTensor
        (U', groups * width) whether a slot holds an anchor.
    plain : bool
        The slots are the columns (every anchor frame has ``width`` anchors): no re-layout.
    anchor_rows : torch.LongTensor
        (U', anchors) each anchor's row among its unit's rows.
    frames : torch.LongTensor
        (U', length) the frames of each unit, in time order.
    """

    units: torch.Tensor
    length: int
    anchors: int
    groups: int
    width: int
    slot_column: torch.Tensor
    slot_real: torch.Tensor
    plain: bool
    anchor_rows: torch.Tensor
    frames: torch.Tensor


def _unit_classes(layout: _UnitLayout, num_anchors: int) -> Iterator[_UnitClass]:
    """The classes of units with anchors, by (frames, anchors), each with its slot layout (CPU)."""
    key = layout.frames * (num_anchors + 1) + layout.anchors
    has_anchors = torch.nonzero(layout.anchors > 0).flatten()
    for value in torch.unique(key[has_anchors]).tolist():
        units = has_anchors[key[has_anchors] == value]
        num, length, k = units.numel(), int(layout.frames[units[0]]), int(layout.anchors[units[0]])
        groups, width = int(layout.groups[units].max()), int(layout.widest[units].max())
        mine = torch.isin(layout.anchor_unit, units)  # this class's anchors, unit by unit
        member = torch.repeat_interleave(torch.arange(num), k)
        slot_column = torch.zeros(num, groups * width, dtype=torch.long)
        slot_real = torch.zeros(num, groups * width, dtype=torch.bool)
        slot = layout.group_in_unit[mine] * width + layout.in_group[mine]
        slot_column[member, slot] = layout.column[mine]
        slot_real[member, slot] = True
        yield _UnitClass(
            units=units,
            length=length,
            anchors=k,
            groups=groups,
            width=width,
            slot_column=slot_column,
            slot_real=slot_real,
            plain=groups * width == k and bool(slot_real.all()),
            anchor_rows=layout.row[mine].view(num, k),
            frames=layout.frame_order[layout.frame_start[units][:, None] + torch.arange(length)],
        )


def _block_shape(members: _UnitClass, per_frame: int, dim: int) -> tuple[int, int]:
    """(units per batch, rows per chunk) keeping a block's tokens and similarities within :data:`BLOCK_ELEMENTS`."""
    rows = members.length * per_frame
    per_row = max(dim, members.groups * members.width)
    batch = max(1, BLOCK_ELEMENTS // (rows * per_row))
    chunk = rows if rows * per_row <= BLOCK_ELEMENTS else max(1, BLOCK_ELEMENTS // per_row)
    return batch, chunk


@dataclass
class _BatchMerge:
    """A batch of units merged: its anchors' sums and counts, and the (token, anchor) pairs found.

    Attributes
    ----------
    anchor_ids : torch.LongTensor
        (B, k) indices into ``positions`` of the units' anchors.
    sums, assigned : torch.Tensor
        (B, k, D) and (B, k) float32 per anchor, as :func:`_assign_and_sum` returns them.
    tokens, anchors : list of torch.LongTensor
        Per chunk of rows, the pairs' token and anchor positions.
    """

    anchor_ids: torch.Tensor
    sums: torch.Tensor
    assigned: torch.Tensor
    tokens: list[torch.Tensor]
    anchors: list[torch.Tensor]


def _merge_batch(
    flat: torch.Tensor,
    position_of: torch.Tensor,
    positions: torch.Tensor,
    unit_vectors: torch.Tensor,
    anchor_order: torch.Tensor,
    layout: _UnitLayout,
    members: _UnitClass,
    sel: slice,
    chunk: int,
    per_frame: int,
) -> _BatchMerge:
    """Assign and sum the rows of the units ``members.units[sel]``, ``chunk`` rows of each unit at a time."""
    device, dim = flat.device, flat.shape[1]
    k, rows = members.anchors, members.length * per_frame
    frames = members.frames[sel]
    size = frames.shape[0]
    sorted_ids = (layout.anchor_start[members.units[sel]][:, None] + torch.arange(k)).to(device)  # (B, k) anchors by unit
    vectors = unit_vectors[sorted_ids]  # (B, k, D)
    anchor_ids = anchor_order[sorted_ids]  # (B, k) anchor indices
    row_index = (frames[:, :, None] * per_frame + torch.arange(per_frame)).view(size, rows)
    start = int(row_index[0, 0])  # consecutive frames are read in place, without a copy
    in_place = bool((row_index.flatten() - start == torch.arange(size * rows)).all())
    columns, real = members.slot_column[sel].to(device), members.slot_real[sel].to(device)
    anchor_rows = members.anchor_rows[sel]
    out = _BatchMerge(anchor_ids, torch.zeros(size, k, dim, device=device), torch.zeros(size, k, device=device), [], [])
    for r0 in range(0, rows, chunk):
        r1 = min(rows, r0 + chunk)
        block_rows = row_index[:, r0:r1].to(device)
        if in_place:
            x = flat[start : start + size * rows].view(size, rows, dim)[:, r0:r1]
        else:
            x = flat.index_select(0, block_rows.flatten()).view(size, r1 - r0, dim)
        x = x.float()
        best_column = _best_anchor_columns(x, vectors, anchor_rows, r0, columns, real, members)
        position = position_of[block_rows]  # (B, R)
        take = (position >= 0)[:, :, None] & real.view(size, members.groups, members.width)[:, None, :, 0]  # (B, R, groups)
        onehot = torch.zeros(size, r1 - r0, k, device=device).scatter_add_(2, best_column, take.float())
        out.sums.baddbmm_(onehot.transpose(1, 2), x)
        out.assigned += onehot.sum(1)
        b_i, r_i, g_i = take.nonzero(as_tuple=True)
        out.tokens.append(position[b_i, r_i])
        out.anchors.append(positions[anchor_ids[b_i, best_column[b_i, r_i, g_i]]])
    return out


def _best_anchor_columns(
    x: torch.Tensor,
    vectors: torch.Tensor,
    anchor_rows: torch.Tensor,
    r0: int,
    columns: torch.Tensor,
    real: torch.Tensor,
    members: _UnitClass,
) -> torch.Tensor:
    """For every row and anchor frame of its unit, the column of the anchor it goes to.

    The most similar anchor of the frame by cosine similarity, the first one on a tie; an anchor's
    own row always goes to itself.

    Parameters
    ----------
    x : torch.Tensor
        (B, R, D) float32 rows ``r0`` to ``r0 + R`` of each unit.
    vectors : torch.Tensor
        (B, k, D) the units' anchors, unit-normalised.
    anchor_rows : torch.LongTensor
        (B, k) CPU each anchor's row in its unit.
    columns, real : torch.Tensor
        (B, groups * width) the slot layout (:class:`_UnitClass`), on the device.

    Returns
    -------
    torch.LongTensor
        (B, R, groups) anchor columns in 0..k-1 (for a missing anchor frame, a column its mask drops).
    """
    size, length = x.shape[0], x.shape[1]
    groups, width = members.groups, members.width
    sim = torch.nn.functional.normalize(x, dim=-1) @ vectors.transpose(1, 2)  # (B, R, k) cosine
    own_b, own_c = ((anchor_rows >= r0) & (anchor_rows < r0 + length)).nonzero(as_tuple=True)
    sim[own_b.to(x.device), (anchor_rows[own_b, own_c] - r0).to(x.device), own_c.to(x.device)] = float("inf")
    if members.plain:
        slots = sim
    else:
        slots = sim.gather(2, columns[:, None, :].expand(-1, length, -1))
        slots.masked_fill_(~real[:, None, :], float("-inf"))
    best = slots.view(size, length, groups, width).argmax(-1)  # (B, R, groups): first best slot
    best = best + torch.arange(groups, device=x.device) * width
    return best if members.plain else columns.gather(1, best.view(size, -1)).view_as(best)
