"""FastVID on vLLM's video embeddings: DySeg + STPrune (ATS, DTM) at exactly vLLM's token count (torch-free of vLLM).

vLLM fixes how many video tokens reach the LLM before the vision encoder runs, from the grid and its
``video_pruning_rate`` q alone (``compute_retained_tokens_count``: ``max(N, int(T * N * (1 - q)))``), and
sizes the prompt with it. After the encoder, :func:`select` runs fastvid's own pruning core
(:func:`~fastvid_cli.pruning.fastvid_prune`, not a copy) on the embeddings with that exact count
(:meth:`~fastvid_cli.pruning.FrameBudget.for_count`), and returns what vLLM's post-processing takes:
a retention mask over the unpruned tokens (whose M-RoPE positions the kept rows keep) and the kept
rows, DTM's anchors merged (eq. 5). vLLM's rows are ``[main | DeepStack level 1 | ...]`` on the
channel axis (Qwen3-VL); the main part is what FastVID compares and merges, and every DeepStack level
is merged with the same weights (``PruneResult.gather``), as ``fastvid ask`` does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..pruning import FastVIDConfig, PruneResult, fastvid_prune


@dataclass
class Selection:
    """FastVID's choice for one video, in vLLM's terms.

    Attributes
    ----------
    mask : torch.BoolTensor
        (T * H' * W',) True at the kept tokens of the unpruned video (H' = H / merge, W' = W / merge),
        exactly ``count`` of them.
    rows : torch.Tensor
        (count, D_total) the kept rows in mask order, dtype of the embeddings: selected tokens as they were,
        anchors merged; DeepStack levels (columns past the main width) merged alike.
    result : PruneResult
        fastvid's own result (indices, segments, merge pairs and weights).
    pruning_ms : float
        Wall time of FastVID's segmentation, selection and merge, in ms (device synchronised).
    """

    mask: torch.Tensor
    rows: torch.Tensor
    result: PruneResult
    pruning_ms: float


def token_saliency(patch_saliency: torch.Tensor, merge: int, frames: int) -> torch.Tensor:
    """Saliency of each merged token: the mean over its merge x merge patches (FastVID's Qwen release).

    Parameters
    ----------
    patch_saliency : torch.Tensor
        (T * H * W,) attention each patch received in the vision tower's last block, patches in the
        tower's merge order (each token's merge^2 patches consecutive, tokens in raster order).
    merge : int
        The spatial merge size (2).
    frames : int
        T, temporal patches.

    Returns
    -------
    torch.Tensor
        (T, H' * W') float32.
    """
    return patch_saliency.float().view(-1, merge * merge).mean(-1).view(frames, -1)


def select(
    embeddings: torch.Tensor,
    grid_thw: tuple[int, int, int] | list[int],
    merge: int,
    main_width: int,
    saliency: torch.Tensor,
    count: int,
    config: FastVIDConfig,
) -> Selection:
    """FastVID's kept tokens and rows for one video's vLLM embeddings.

    Parameters
    ----------
    embeddings : torch.Tensor
        (T * H' * W', D_total) the vision tower's output for the video, tokens in (t, row, col) order;
        D_total = ``main_width`` x (1 + DeepStack levels).
    grid_thw : (int, int, int)
        The video's patch grid (T, H, W), before the merge.
    merge : int
        Spatial merge size.
    main_width : int
        Width of the main embedding (the LLM's hidden size); the rest are DeepStack levels.
    saliency : torch.Tensor
        (T, H' * W') per-token saliency (:func:`token_saliency`).
    count : int
        Tokens to keep: vLLM's placeholder count for the video.
    config : FastVIDConfig
        FastVID's hyperparameters (R = 1 - q; :func:`~.settings.fastvid_config`).

    Returns
    -------
    Selection

    Raises
    ------
    ValueError
        If the shapes disagree with the grid, or ``count`` is outside [1, T * H' * W'].
    """
    frames, height, width = (int(x) for x in grid_thw)
    per_frame = (height // merge) * (width // merge)
    if embeddings.shape[0] != frames * per_frame:
        raise ValueError(f"{embeddings.shape[0]} embeddings for a {frames} x {height} x {width} grid (merge {merge})")
    if embeddings.is_cuda:
        torch.cuda.synchronize(embeddings.device)
    start = time.perf_counter()
    main = embeddings[:, :main_width].view(frames, per_frame, main_width)
    result = fastvid_prune(main, main.float().mean(1), saliency.to(embeddings.device), config, count=count)
    rows = result.tokens
    if embeddings.shape[1] > main_width:  # DeepStack levels: the same indices, merged with the same weights
        rows = torch.cat([rows, result.gather(embeddings[:, main_width:])], dim=1)
    mask = torch.zeros(frames * per_frame, dtype=torch.bool, device=embeddings.device)
    mask[result.indices] = True
    if embeddings.is_cuda:
        torch.cuda.synchronize(embeddings.device)
    return Selection(mask=mask, rows=rows, result=result, pruning_ms=(time.perf_counter() - start) * 1e3)
