"""ATS: attention-based token selection (FastVID paper Sec. 3.3)."""

from __future__ import annotations

import torch


def select_salient(saliency: torch.Tensor, num_salient: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split each frame's tokens into the ``num_salient`` most salient ones and the rest.

    Ties in saliency are broken deterministically: the lower token index wins.

    Parameters
    ----------
    saliency : torch.Tensor
        (F, N) [CLS]-attention saliency of every token, pooled to the token grid, any float dtype.
    num_salient : int
        Tokens kept per frame, 0 <= num_salient <= N.

    Returns
    -------
    salient : torch.LongTensor
        (F, num_salient) int64 token indices within each frame, ascending.
    rest : torch.LongTensor
        (F, N - num_salient) int64 indices of the non-salient tokens, ascending.

    Raises
    ------
    ValueError
        If ``num_salient`` is outside [0, N].
    """
    num_tokens = saliency.shape[1]
    if not 0 <= num_salient <= num_tokens:
        raise ValueError(f"num_salient must be in [0, {num_tokens}], got {num_salient}")
    order = torch.sort(saliency.float(), dim=1, descending=True, stable=True).indices
    salient = order[:, :num_salient].sort(dim=1).values
    rest = order[:, num_salient:].sort(dim=1).values
    return salient, rest
