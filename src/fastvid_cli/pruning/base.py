"""What every pruning method is and returns: the base of the method configs, the result, and the checks they share."""

from __future__ import annotations

import abc
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, ClassVar

import torch

from ..budget import check_retention  # torch-free: the CLI checks R before torch loads

MERGE_BLOCK_ELEMENTS = 1 << 22
"""Elements of one block of merged rows in :meth:`PruneResult.gather` (16 MiB in float32)."""


@dataclass
class PruneResult:
    """The video tokens a pruning method keeps.

    Attributes
    ----------
    tokens : torch.Tensor
        (K, D) kept tokens (selected ones unchanged, merged ones updated), dtype and device of the input.
    indices : torch.LongTensor
        (K,) int64 ascending flat indices of the kept tokens into the F * N input tokens; the
        position of each kept token in the LLM's sequence is that of its original slot.
    segment_lengths : list of int
        Segment lengths in frames, summing to F (DySeg for FastVID, windows for DyCoke, [F] for
        methods without segments).
    anchor_mask : torch.BoolTensor
        (K,) True where the kept token is a merge of several tokens (a DTM anchor, a VisionZip
        contextual token), False for a token kept as it was.
    transition_similarity : torch.Tensor
        (F - 1,) float32 CPU cosine similarity of consecutive frames' features (DySeg eq. 1).
    merge_pairs : torch.LongTensor
        (2, P) int64: flat input index of a merged token, flat index of the anchor it went into.
    self_weight : torch.Tensor or None
        (K,) float32: the weight of each kept token's own input row in it (1 for a token kept as it
        was); None when no token is merged.
    pair_weight : torch.Tensor or None
        (P,) float32: the weight of each merged token (``merge_pairs[0]``) in its anchor. With
        ``self_weight``, every kept token is a linear combination of input tokens::

            tokens[k] = self_weight[k] * x[indices[k]] + sum over pairs p into indices[k] of pair_weight[p] * x[merge_pairs[0, p]]

        so other per-token features (Qwen3-VL's DeepStack levels) are kept the same way by :meth:`gather`.
    note : str or None
        Set when the method could not keep exactly the budget asked, saying what it kept instead.
    """

    tokens: torch.Tensor
    indices: torch.Tensor
    segment_lengths: list[int]
    anchor_mask: torch.Tensor
    transition_similarity: torch.Tensor = field(default_factory=lambda: torch.empty(0))
    merge_pairs: torch.Tensor = field(default_factory=lambda: torch.empty(2, 0, dtype=torch.long))
    self_weight: torch.Tensor | None = None
    pair_weight: torch.Tensor | None = None
    note: str | None = None

    def gather(self, features: torch.Tensor) -> torch.Tensor:
        """Other per-token features of the same tokens, kept and merged exactly as :attr:`tokens` were.

        Selected tokens take their own row; a merged token takes the same weighted sum of the same
        input rows as its entry in :attr:`tokens` (see :attr:`pair_weight`). A model that feeds a
        second set of features per video token into the LLM (Qwen3-VL's DeepStack levels, added to
        the hidden states at the video positions) must see them for the kept tokens, merged alike,
        or the merged token and its DeepStack rows would describe different pixels.

        Parameters
        ----------
        features : torch.Tensor
            (F, N, D') or (F * N, D') features of the input tokens, in their order, any float dtype.

        Returns
        -------
        torch.Tensor
            (K, D') in the dtype and on the device of ``features``; merged rows are summed in float32.
            ``gather(video_tokens)`` equals :attr:`tokens` up to float rounding.

        Raises
        ------
        ValueError
            If ``features`` does not have one row per input token (or the result has merge pairs but
            no :attr:`pair_weight`).
        """
        flat = features.reshape(-1, features.shape[-1])
        if self.indices.numel() and int(self.indices.max()) >= flat.shape[0]:
            raise ValueError(f"features have {flat.shape[0]} rows, fewer than the pruned tokens' {int(self.indices.max()) + 1}")
        indices = self.indices.to(flat.device)
        if self.self_weight is None or self.merge_pairs.numel() == 0:
            return flat.index_select(0, indices)
        out = flat.index_select(0, indices).float() * self.self_weight.to(flat.device)[:, None]
        source, anchor = self.merge_pairs.to(flat.device)
        rows = torch.searchsorted(indices, anchor)
        if self.pair_weight is None:
            raise ValueError("merge_pairs without pair_weight: the merged rows' weights are unknown")
        weight = self.pair_weight.to(flat.device)
        step = max(1, MERGE_BLOCK_ELEMENTS // flat.shape[1])
        for start in range(0, source.numel(), step):  # blocks of pairs: never all P rows of D' at once
            part = slice(start, start + step)
            out.index_add_(0, rows[part], flat.index_select(0, source[part]).float() * weight[part, None])
        return out.to(flat.dtype)


def flat_indices(per_frame: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """(F, k) token indices within each frame -> (F * k,) flat indices into the F * N tokens."""
    offset = torch.arange(per_frame.shape[0], device=per_frame.device)[:, None] * tokens_per_frame
    return (per_frame + offset).flatten()


def check_inputs(video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> None:
    """Check the shapes shared by every pruning method.

    Raises
    ------
    ValueError
        If ``video_tokens`` is not (F, N, D), ``frame_features`` not (F, Dg) or ``saliency`` not (F, N).
    """
    if video_tokens.dim() != 3 or video_tokens.shape[0] < 1 or video_tokens.shape[1] < 1:
        raise ValueError(f"video_tokens must be (F, N, D) with F, N >= 1, got {tuple(video_tokens.shape)}")
    num_frames, num_tokens, _ = video_tokens.shape
    if frame_features.dim() != 2 or frame_features.shape[0] != num_frames:
        raise ValueError(f"frame_features must be ({num_frames}, Dg), got {tuple(frame_features.shape)}")
    if tuple(saliency.shape) != (num_frames, num_tokens):
        raise ValueError(f"saliency must be ({num_frames}, {num_tokens}), got {tuple(saliency.shape)}")


@dataclass(frozen=True)
class PruningMethod(abc.ABC):
    """The base of every pruning method's config: the retention ratio and its check, once.

    As kvpress's ``ScorerPress`` holds the compression ratio for every press, this holds what the
    methods share: R (``retention_ratio``, the first field, checked on creation), the method's
    :attr:`name`, :meth:`to_dict`, and the method's own fields (:meth:`hyperparameters`, which
    ``make_method`` specs and the lmms-eval plugin's model args may set). A method is a frozen
    dataclass subclass that adds its fields (each with a default), checks them in its
    ``__post_init__`` after calling this one's, and prunes in :meth:`__call__`.

    Parameters
    ----------
    retention_ratio : float
        R in (0, 1]: the fraction of video tokens kept (default 0.1).

    Raises
    ------
    ValueError
        If R is outside (0, 1] (or a subclass's field is out of range).
    """

    retention_ratio: float = 0.1

    name: ClassVar[str]
    """The method's name in specs and reports (``fastvid``, ``uniform``, ...)."""

    def __post_init__(self) -> None:
        check_retention(self.retention_ratio)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for JSON output)."""
        return asdict(self)

    @classmethod
    def hyperparameters(cls) -> dict[str, Field[Any]]:
        """The method's own fields, by name: every field but ``retention_ratio``, in declaration order."""
        return {f.name: f for f in fields(cls) if f.name != "retention_ratio"}

    @abc.abstractmethod
    def __call__(self, video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> PruneResult:
        """Prune (F, N, D) ``video_tokens`` given (F, Dg) ``frame_features`` and (F, N) ``saliency``.

        Returns
        -------
        PruneResult
            F * max(1, floor(N * R)) tokens (a method that cannot meet the budget says so in ``note``).

        Raises
        ------
        ValueError
            If the shapes do not agree (see :func:`check_inputs`).
        """
