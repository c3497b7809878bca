"""A picture of what FastVID kept: frames with their DySeg segments and kept tokens, and the cuts.

The sampled frames (as the model sees them, resized to a square) are laid out in a grid, each
framed in its segment's colour. On each frame the token grid is drawn over the image: salient
(ATS) tokens in orange, DTM anchors in blue, and every other token shaded with the colour of the
anchor it was merged into (the anchor of the nearest anchor frame). Below, DySeg's transition
similarity between consecutive frames, the threshold tau and the cuts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engine.pipeline import VideoSession, read_for
from ..pruning import FastVIDConfig, PruneResult
from ..video import SampledVideo, read_video

SALIENT = (1.0, 0.55, 0.0)
ANCHOR = (0.1, 0.35, 0.95)
DPI = 100
TILE_ASPECT = 1.15
"""Tile height / width: the frame plus its title."""
HEADER_PX = 80
"""Room above the frames for the title and the legend."""
CURVE_SHARE = 0.28
"""Height of the similarity plot, as a share of the figure width divided by the columns, times 2.5."""


@dataclass
class TokenMap:
    """What happened to every token, on the (F, h, w) grid.

    Attributes
    ----------
    kind : numpy.ndarray
        (F, h, w) int8: 2 salient (kept as is), 1 anchor (kept, merged), 0 merged into an anchor.
    anchor_of : numpy.ndarray
        (F, h, w) int64: for merged tokens and anchors, the rank of their anchor among all anchors
        (ascending flat index), else -1.
    """

    kind: np.ndarray
    anchor_of: np.ndarray


def token_map(kept: PruneResult, num_frames: int, grid: tuple[int, int]) -> TokenMap:
    """Classify every token of a FastVID result (vectorized; see :class:`TokenMap`)."""
    h, w = grid
    n = h * w
    total = num_frames * n
    indices = kept.indices.cpu().numpy()
    anchors = indices[kept.anchor_mask.cpu().numpy()]
    kind = np.zeros(total, dtype=np.int8)
    kind[indices] = 2
    kind[anchors] = 1
    anchor_of = np.full(total, -1, dtype=np.int64)
    pairs = kept.merge_pairs.cpu().numpy()
    if pairs.size:
        token, anchor = pairs
        distance = np.abs(token // n - anchor // n)
        order = np.lexsort((anchor, distance, token))  # per token: nearest anchor frame, then lowest anchor
        token, anchor = token[order], anchor[order]
        first = np.ones(token.size, dtype=bool)
        first[1:] = token[1:] != token[:-1]
        anchor_of[token[first]] = np.searchsorted(anchors, anchor[first])
    anchor_of[anchors] = np.arange(anchors.size)
    return TokenMap(kind.reshape(num_frames, h, w), anchor_of.reshape(num_frames, h, w))


def figure_size_px(num_frames: int, width: int = 1600, columns: int = 8) -> tuple[int, int]:
    """(width, height) in pixels of the picture for ``num_frames`` frames."""
    cols = max(1, min(columns, num_frames))
    rows = math.ceil(num_frames / cols)
    tile = width / cols
    height = rows * tile * TILE_ASPECT + 2.5 * tile * CURVE_SHARE * max(1, cols / 4) + HEADER_PX
    return width, round(height)


def render(
    frames: np.ndarray,
    kept: PruneResult,
    grid: tuple[int, int],
    tau: float,
    out: str | Path,
    frame_numbers: np.ndarray | None = None,
    title: str = "",
    width: int = 1600,
    columns: int = 8,
) -> Path:
    """Draw the picture and save it as PNG (exactly :func:`figure_size_px` pixels).

    Parameters
    ----------
    frames : numpy.ndarray
        (F, H, W, 3) uint8 sampled frames.
    kept : PruneResult
        FastVID's result for these frames.
    grid : tuple of int
        (h, w) token grid per frame.
    tau : float
        DySeg threshold, drawn on the similarity plot.
    out : str or Path
        PNG file to write.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from PIL import Image

    num_frames = frames.shape[0]
    tokens = token_map(kept, num_frames, grid)
    cols = max(1, min(columns, num_frames))
    rows = math.ceil(num_frames / cols)
    w_px, h_px = figure_size_px(num_frames, width, columns)
    fig = plt.figure(figsize=(w_px / DPI, h_px / DPI), dpi=DPI)
    curve_h = 2.5 * (w_px / cols) * CURVE_SHARE * max(1, cols / 4)
    tile_h = (w_px / cols) * TILE_ASPECT
    top = 1 - HEADER_PX / h_px
    spec = fig.add_gridspec(
        rows + 1,
        cols,
        height_ratios=[tile_h] * rows + [curve_h],
        left=0.06,
        right=0.99,
        top=top,
        bottom=0.07,
        hspace=0.35,
        wspace=0.06,
    )
    segment_of = np.repeat(np.arange(len(kept.segment_lengths)), kept.segment_lengths)
    segment_colours = plt.get_cmap("tab10")
    anchor_colours = plt.get_cmap("Set3")  # pastel, distinct from the salient and anchor colours
    side = 336
    for f in range(num_frames):
        ax = fig.add_subplot(spec[f // cols, f % cols])
        image = np.asarray(Image.fromarray(frames[f]).resize((side, side), Image.Resampling.BILINEAR)).astype(np.float32) / 255
        overlay = _overlay(tokens, f, anchor_colours)
        cell = side // grid[0], side // grid[1]
        big = np.repeat(np.repeat(overlay, cell[0], axis=0), cell[1], axis=1)
        big = np.pad(big, ((0, side - big.shape[0]), (0, side - big.shape[1]), (0, 0)))
        alpha = big[..., 3:]
        ax.imshow(image * (1 - alpha) + big[..., :3] * alpha)
        colour = segment_colours(segment_of[f] % 10)
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4)
        ax.set_xticks([])
        ax.set_yticks([])
        number = f"#{int(frame_numbers[f])}" if frame_numbers is not None else f"{f}"
        ax.set_title(f"{number}  S{segment_of[f] + 1}", fontsize=9, color=colour)
    curve = fig.add_subplot(spec[rows, :])
    similarity = kept.transition_similarity.cpu().numpy()
    if similarity.size:
        x = np.arange(similarity.size) + 0.5
        curve.plot(x, similarity, marker="o", markersize=3, color="0.2", label="similarity of frames i, i+1")
        curve.axhline(tau, color="tab:red", linestyle="--", linewidth=1, label=f"tau = {tau:g}")
        cuts = np.cumsum(kept.segment_lengths)[:-1] - 0.5  # between the last frame of a segment and the next
        for i, cut in enumerate(cuts):
            curve.axvline(cut, color="tab:purple", linewidth=1, alpha=0.7, label="cut" if i == 0 else None)
        curve.set_xlim(-0.5, num_frames - 0.5)
        curve.legend(loc="lower left", fontsize=8, ncol=3)
    curve.set_xlabel("sampled frame")
    curve.set_ylabel("cosine")
    curve.set_title("DySeg: transition similarity, threshold and cuts", fontsize=10)
    legend = [
        Patch(color=SALIENT, label="salient token (ATS, kept)"),
        Patch(color=ANCHOR, label="anchor (DTM, kept, merged)"),
        Patch(color=anchor_colours(3), alpha=0.45, label="merged into the anchor of that colour"),
    ]
    fig.legend(handles=legend, loc="upper left", bbox_to_anchor=(0.055, 1 - 30 / h_px), ncol=3, fontsize=9, frameon=False)
    fig.suptitle(title, x=0.06, y=1 - 8 / h_px, ha="left", va="top", fontsize=11)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png")
    plt.close(fig)
    return out


def _overlay(tokens: TokenMap, f: int, anchor_colours) -> np.ndarray:
    """(h, w, 4) RGBA per token of frame f."""
    kind, anchor_of = tokens.kind[f], tokens.anchor_of[f]
    rgba = np.zeros(kind.shape + (4,), dtype=np.float32)
    merged = (kind == 0) & (anchor_of >= 0)
    if merged.any():
        rgba[merged, :3] = np.asarray(anchor_colours(anchor_of[merged] % anchor_colours.N))[:, :3]
        rgba[merged, 3] = 0.45
    rgba[kind == 1] = (*ANCHOR, 0.85)
    rgba[kind == 2] = (*SALIENT, 0.7)
    return rgba


def show(
    model, video, out: str | Path, config: FastVIDConfig, frames: int | None = None, width: int = 1600, columns: int = 8
) -> tuple[Path, PruneResult]:
    """Encode a video with ``model``, prune it with FastVID, and draw :func:`render`'s picture.

    Returns
    -------
    (Path, PruneResult)
        The PNG written and the pruning result it shows.

    Raises
    ------
    InputError
        A bad video.
    """
    if isinstance(video, SampledVideo) and video.frames is None:  # the picture needs the frames: decode them up front
        video = read_video(video.path, video.sampling or video.num_frames)
    elif not isinstance(video, SampledVideo):
        video = read_for(model, video, frames)
    session = VideoSession.open(model, video)
    f = session.features
    kept = session.prune(config).kept
    assert kept is not None and session.video.frames is not None  # a method was given; the frames were decoded
    kept_count = int(kept.indices.numel())
    title = (
        f"{Path(session.video.path).name}: FastVID keeps {kept_count:,} of {f.num_frames * f.tokens_per_frame:,} video tokens "
        f"(R = {config.retention_ratio:g}), {len(kept.segment_lengths)} DySeg segments; model {model.model_id}"
    )
    step = -(-session.video.num_frames // f.num_frames)  # Qwen2.5-VL: one token frame per 2 sampled frames
    images, numbers = session.video.frames[::step][: f.num_frames], session.video.indices[::step][: f.num_frames]
    path = render(images, kept, f.grid, config.tau, out, numbers, title, width, columns)
    return path, kept
