"""DySeg: dynamic temporal segmentation (FastVID paper Sec. 3.2, eqs. 1-2)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Segmentation:
    """Frames split into temporally ordered segments.

    Attributes
    ----------
    lengths : torch.LongTensor
        (S,) int64 on CPU, segment lengths in frames, summing to F.
    segment_ids : torch.LongTensor
        (F,) int64 on CPU, the segment index of every frame (non-decreasing).
    transition_similarity : torch.FloatTensor
        (F - 1,) float32 on CPU, t_i = cos(g_i, g_{i+1}) (eq. 1); empty for F = 1.
    cuts : torch.LongTensor
        (S - 1,) int64 on CPU, frame indices i such that a segment ends after frame i.
    """

    lengths: torch.Tensor
    segment_ids: torch.Tensor
    transition_similarity: torch.Tensor
    cuts: torch.Tensor

    @classmethod
    def from_cut_mask(cls, cut: torch.Tensor, transition_similarity: torch.Tensor) -> "Segmentation":
        """Build segments from a (F - 1,) bool mask that is True where a segment ends after frame i."""
        cut = cut.to("cpu", torch.bool)
        num_frames = cut.numel() + 1
        cuts = cut.nonzero().flatten()
        ends = torch.cat([cuts, torch.tensor([num_frames - 1])])
        lengths = torch.diff(ends, prepend=torch.tensor([-1]))
        segment_ids = torch.cat([torch.zeros(1, dtype=torch.long), cut.long().cumsum(0)])
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
    """
    g = frame_features.float()
    return torch.nn.functional.cosine_similarity(g[:-1], g[1:], dim=-1)


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
