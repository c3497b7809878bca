"""FastVID hyperparameters and the per-frame token budget (STPrune, paper Sec. 3.3)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


SEGMENTATIONS = ("dyseg", "fixed", "cluster")
"""FastVID's segmentation: DySeg (the paper's), fixed intervals of 4 frames, or k-means of frame features."""


def check_retention(value) -> None:
    """Raise ValueError unless ``value`` is a retention ratio in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"retention ratio must be in (0, 1], got {value!r}")


def tokens_per_frame_kept(tokens_per_frame: int, retention_ratio: float) -> int:
    """max(1, floor(N * R)): the per-frame budget every method keeps on average (project rule)."""
    return max(1, math.floor(tokens_per_frame * retention_ratio))


@dataclass(frozen=True)
class FastVIDConfig:
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

    retention_ratio: float = 0.1
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
        check_retention(self.retention_ratio)
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
        if self.max_segment is not None and (isinstance(self.max_segment, bool) or not isinstance(self.max_segment, int)
                                             or self.max_segment < 1):
            raise ValueError(f"max_segment must be an integer >= 1 or None, got {self.max_segment!r}")
        if self.segmentation not in SEGMENTATIONS:
            raise ValueError(f"segmentation must be one of {', '.join(SEGMENTATIONS)}, got {self.segmentation!r}")

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)

    def __call__(self, video_tokens, frame_features, saliency):
        """Prune with FastVID; see :func:`fastvid_cli.pruning.fastvid_prune`."""
        from .fastvid import fastvid_prune

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
    """

    retain: int
    context: int
    salient: int

    @classmethod
    def from_config(cls, tokens_per_frame: int, config: FastVIDConfig) -> "FrameBudget":
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
