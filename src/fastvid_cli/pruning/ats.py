"""ATS: attention-based token selection (FastVID paper Sec. 3.3)."""

from __future__ import annotations

import itertools

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


RECEIVED_BLOCK_ELEMENTS = 1 << 24
"""Scores computed at once by :func:`received_attention` (64 MiB in float32): (heads x queries x keys) of a block."""


def received_attention(q: torch.Tensor, k: torch.Tensor, bounds: list[int], scaling: float) -> torch.Tensor:
    """Mean attention each token receives in one attention layer: the saliency ATS ranks by on Qwen's towers.

    For each full-attention sequence ``bounds[i]:bounds[i + 1]`` (one temporal patch of a Qwen vision
    tower), softmax(q k^T * scaling) over the keys, then the mean over heads and the sequence's queries
    (FastVID's Qwen2.5-VL release; spec "Where the features come from"). Queries go in blocks, so the
    largest buffer is :data:`RECEIVED_BLOCK_ELEMENTS` scores, never heads x P x P.

    Parameters
    ----------
    q, k : torch.Tensor
        (H, P, d) queries and keys after the rotary embedding, any float dtype (computed in float32).
    bounds : list of int
        Cumulative sequence starts, ``[0, ..., P]`` (a vision tower's ``cu_seqlens``).
    scaling : float
        The layer's score scale (d ** -0.5).

    Returns
    -------
    torch.Tensor
        (P,) float32, in the order of ``q`` and ``k``.
    """
    heads, length, _ = q.shape
    received = torch.empty(length, dtype=torch.float32, device=q.device)
    for start, end in itertools.pairwise(bounds):
        keys = k[:, start:end].float()
        total = torch.zeros(end - start, dtype=torch.float32, device=q.device)
        step = max(1, RECEIVED_BLOCK_ELEMENTS // (heads * max(end - start, 1)))
        for q0 in range(start, end, step):  # blocks of queries: the softmax is per query, so blocks add up
            scores = (q[:, q0 : min(q0 + step, end)].float() @ keys.transpose(1, 2)) * scaling
            total += scores.softmax(-1).sum(dim=(0, 1))
        received[start:end] = total / (heads * (end - start))
    return received
