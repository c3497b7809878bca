"""Splitting frames into segments: DySeg (FastVID paper Sec. 3.2, eqs. 1-2) and the paper's ablations.

- :func:`dyseg`: cut at the c - 1 weakest transitions and wherever similarity < tau (the paper's).
- :func:`fixed_segments`: segments of a fixed number of frames (ablation, Table 6).
- :func:`cluster_segments`: k-means of the frame features into c clusters (ablation, Table 6); a
  cluster's frames need not be contiguous, and DTM treats each cluster as one segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Segmentation:
    """Frames split into segments (temporally ordered runs, or clusters of frames).

    Attributes
    ----------
    lengths : torch.LongTensor
        (S,) int64 on CPU, frames in each segment, summing to F.
    segment_ids : torch.LongTensor
        (F,) int64 on CPU, the segment index of every frame (non-decreasing for runs; segments are
        numbered by their first frame).
    transition_similarity : torch.FloatTensor
        (F - 1,) float32 on CPU, t_i = cos(g_i, g_{i+1}) (eq. 1); empty for F = 1.
    cuts : torch.LongTensor
        int64 on CPU, frame indices i such that frames i and i + 1 lie in different segments.
    """

    lengths: torch.Tensor
    segment_ids: torch.Tensor
    transition_similarity: torch.Tensor
    cuts: torch.Tensor

    @classmethod
    def from_cut_mask(cls, cut: torch.Tensor, transition_similarity: torch.Tensor) -> Segmentation:
        """Build segments from a (F - 1,) bool mask that is True where a segment ends after frame i."""
        cut = cut.to("cpu", torch.bool)
        num_frames = cut.numel() + 1
        cuts = cut.nonzero().flatten()
        ends = torch.cat([cuts, torch.tensor([num_frames - 1])])
        lengths = torch.diff(ends, prepend=torch.tensor([-1]))
        segment_ids = torch.cat([torch.zeros(1, dtype=torch.long), cut.long().cumsum(0)])
        return cls(lengths, segment_ids, transition_similarity.to("cpu", torch.float32), cuts)

    @classmethod
    def from_labels(cls, labels: torch.Tensor, transition_similarity: torch.Tensor) -> Segmentation:
        """Build segments from any (F,) labels; segments are renumbered by their first frame."""
        labels = labels.to("cpu", torch.long)
        _, first = torch.unique(labels, return_inverse=True)
        order = torch.full((int(first.max()) + 1,), labels.numel(), dtype=torch.long)
        order = order.scatter_reduce(0, first, torch.arange(labels.numel()), "amin")
        rank = torch.empty_like(order)
        rank[order.argsort()] = torch.arange(order.numel())
        segment_ids = rank[first]
        lengths = torch.bincount(segment_ids)
        cuts = (segment_ids[1:] != segment_ids[:-1]).nonzero().flatten()
        return cls(lengths, segment_ids, transition_similarity.to("cpu", torch.float32), cuts)

    def as_list(self) -> list[int]:
        """Segment lengths as a list of Python ints."""
        return [int(x) for x in self.lengths.tolist()]


def transition_similarity(frame_features: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of consecutive frames' global features (eq. 1).

    Parameters
    ----------
    frame_features : torch.Tensor
        (F, Dg) one global feature g_i per frame, any float dtype.

    Returns
    -------
    torch.Tensor
        (F - 1,) float32 on the input's device.

    Notes
    -----
    Computed as the authors' release does (unit vectors, then the sum of their products), so
    transitions whose similarities nearly tie are ordered the same way in float32.
    """
    g = frame_features.float()
    g = g / g.norm(dim=1, keepdim=True)
    similarity: torch.Tensor = (g[:-1] * g[1:]).sum(dim=1)
    return similarity


def dyseg(frame_features: torch.Tensor, c: int, tau: float) -> Segmentation:
    """Split frames into segments at scene transitions (DySeg, eq. 2).

    A segment ends after frame i when t_i is among the min(c - 1, F - 1) smallest transition
    similarities (ties: earlier frame first) or when t_i < tau.

    Parameters
    ----------
    frame_features : torch.Tensor
        (F, Dg) global frame features g_i, any float dtype and device.
    c : int
        Number of segments the fixed cuts aim for (>= 1).
    tau : float
        Similarity threshold below which a transition is always cut.

    Returns
    -------
    Segmentation
        At least min(c, F) segments; one segment when F = 1.

    Raises
    ------
    ValueError
        If ``frame_features`` is not 2-D with at least one frame, or c < 1.
    """
    if frame_features.dim() != 2 or frame_features.shape[0] < 1:
        raise ValueError(f"frame_features must be (F, Dg) with F >= 1, got {tuple(frame_features.shape)}")
    if c < 1:
        raise ValueError(f"c must be >= 1, got {c}")
    num_frames = frame_features.shape[0]
    sim = transition_similarity(frame_features)
    cut = sim < tau
    k = min(c - 1, num_frames - 1)
    if k > 0:
        lowest = torch.sort(sim, stable=True).indices[:k]
        cut[lowest] = True
    return Segmentation.from_cut_mask(cut, sim)


def split_long_segments(segmentation: Segmentation, max_length: int) -> Segmentation:
    """Split every segment longer than ``max_length`` frames into the fewest near-equal parts that fit.

    A segment of L frames becomes ceil(L / max_length) consecutive parts of floor or ceil of
    L / parts frames. Segments that fit are unchanged, so with ``max_length`` >= F this returns the
    input's segments. Works on runs of frames (DySeg, fixed), not on clusters.

    Parameters
    ----------
    segmentation : Segmentation
        Temporally ordered segments over F frames.
    max_length : int
        Most frames in a segment (>= 1).

    Returns
    -------
    Segmentation
        Every segment at most ``max_length`` frames; the same transition similarities.

    Raises
    ------
    ValueError
        If ``max_length`` < 1.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    ids, lengths = segmentation.segment_ids, segmentation.lengths
    if int(lengths.max()) <= max_length:
        return segmentation
    start = torch.cumsum(lengths, 0) - lengths
    position = torch.arange(ids.numel()) - start[ids]  # place of each frame in its segment
    length = lengths[ids]
    parts = -(-length // max_length)
    part = position * parts // length  # part of each frame: 0 .. parts - 1, near-equal lengths
    same_segment = ids[1:] == ids[:-1]
    cut = ~same_segment | (part[1:] != part[:-1])
    return Segmentation.from_cut_mask(cut, segmentation.transition_similarity)


def fixed_segments(frame_features: torch.Tensor, length: int = 4) -> Segmentation:
    """Segments of ``length`` consecutive frames (the last may be shorter): the paper's fixed ablation.

    Parameters
    ----------
    frame_features : torch.Tensor
        (F, Dg); only F and the transition similarity (reported) are taken from it.
    length : int
        Frames per segment (>= 1).
    """
    num_frames = frame_features.shape[0]
    labels = torch.arange(num_frames) // length
    return Segmentation.from_labels(labels, transition_similarity(frame_features))


def cluster_segments(frame_features: torch.Tensor, c: int, iterations: int = 20) -> Segmentation:
    """k-means of the frame features (cosine) into at most c clusters: the paper's cluster ablation.

    Deterministic: the first centre is frame 0, each next one the frame least similar to the
    centres so far; then ``iterations`` rounds of assignment (ties: lower cluster) and mean update.

    Parameters
    ----------
    frame_features : torch.Tensor
        (F, Dg) global frame features.
    c : int
        Clusters (>= 1), capped at F; empty clusters vanish.

    Returns
    -------
    Segmentation
        One segment per cluster, numbered by first frame; its frames need not be contiguous.
    """
    g = torch.nn.functional.normalize(frame_features.float(), dim=-1)
    k = min(c, g.shape[0])
    chosen = [0]
    for _ in range(k - 1):  # farthest-point initialisation, at most c - 1 steps
        closest = (g @ g[chosen].T).amax(dim=1)
        chosen.append(int(closest.argmin()))
    centres = g[chosen]
    labels = torch.zeros(g.shape[0], dtype=torch.long, device=g.device)
    for _ in range(iterations):
        labels = (g @ centres.T).argmax(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, labels, g)
        counts = torch.bincount(labels, minlength=k)[:, None]
        centres = torch.where(counts > 0, torch.nn.functional.normalize(sums, dim=-1), centres)
    return Segmentation.from_labels(labels, transition_similarity(frame_features))
