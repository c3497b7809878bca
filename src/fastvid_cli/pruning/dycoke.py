"""DyCoke's input-stage temporal token merging (TTM), at a given budget.

Tao et al., "DyCoke: Dynamic Compression of Tokens for Fast Video Large Language Models",
CVPR 2025, arXiv 2411.15024. FastVID (Sec. 4) compares with its first, input-stage step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..budget import tokens_per_frame_kept
from .base import PruneResult, PruningMethod, check_inputs
from .segmentation import transition_similarity


@dataclass(frozen=True)
class DyCokeConfig(PruningMethod):
    """DyCoke's temporal token merging (Tao et al., CVPR 2025, arXiv 2411.15024) at a given budget.

    Drops the tokens of later frames that repeat the token at the same place in their window's first frame.

    Frames are grouped in windows of ``window`` frames. Every token of a window's first frame is
    kept. Each token of the other frames is scored by its cosine similarity to the token at the
    same grid position in the window's first frame, and the least similar ones are kept until the
    budget F * max(1, floor(N * R)) is met (ties: earlier token first). A budget below the first
    frames' tokens (25 % for windows of 4) cannot be met: then only the first frames are kept and
    ``PruneResult.note`` says so.

    Parameters
    ----------
    retention_ratio : float
        R in (0, 1].
    window : int
        Frames per window (DyCoke: 4), >= 1.

    Raises
    ------
    ValueError
        If a field is out of range.
    """

    window: int = 4

    name = "dycoke"

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ValueError(f"window must be an integer >= 1, got {self.window!r}")

    def __call__(self, video_tokens: torch.Tensor, frame_features: torch.Tensor, saliency: torch.Tensor) -> PruneResult:
        """Prune (F, N, D) tokens; ``frame_features`` and ``saliency`` are only checked and reported."""
        check_inputs(video_tokens, frame_features, saliency)
        num_frames, num_tokens, dim = video_tokens.shape
        device = video_tokens.device
        budget = num_frames * tokens_per_frame_kept(num_tokens, self.retention_ratio)
        frame = torch.arange(num_frames, device=device)
        first = frame - frame % self.window
        x = torch.nn.functional.normalize(video_tokens.float(), dim=-1)
        similarity = (x * x[first]).sum(-1)  # (F, N)
        is_first = (frame == first)[:, None].expand(num_frames, num_tokens)
        similarity = similarity.masked_fill(is_first, float("-inf")).flatten()  # first frames: always kept
        floor = int(is_first.sum())
        keep = max(budget, floor)
        order = torch.sort(similarity, stable=True).indices  # least similar first, ties: lower index
        indices = order[:keep].sort().values
        note = None
        if keep > budget:
            note = (
                f"dycoke keeps every token of each window's first frame: {keep} tokens "
                f"({keep / (num_frames * num_tokens):.1%}), more than the {budget} asked"
            )
        starts = torch.arange(0, num_frames, self.window)
        lengths = (torch.clamp(starts + self.window, max=num_frames) - starts).tolist()
        return PruneResult(
            tokens=video_tokens.reshape(-1, dim)[indices],
            indices=indices,
            segment_lengths=[int(n) for n in lengths],
            anchor_mask=torch.zeros(indices.numel(), dtype=torch.bool, device=device),
            transition_similarity=transition_similarity(frame_features).cpu(),
            note=note,
        )
