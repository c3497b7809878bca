"""Reading videos with decord and sampling frames uniformly."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass
class SampledVideo:
    """Frames sampled from a video.

    Attributes
    ----------
    frames : numpy.ndarray
        (F, H, W, 3) uint8 RGB frames.
    indices : numpy.ndarray
        (F,) int64 frame numbers in the file.
    timestamps : numpy.ndarray
        (F,) float64 seconds of each sampled frame.
    total_frames : int
        Frames in the file.
    fps : float
        Average frame rate of the file.
    requested : int
        Frames asked for; more than ``len(frames)`` when the video is shorter.
    path : str
        The file read.
    decode_ms : float
        Wall-clock milliseconds spent opening and decoding.
    """

    frames: np.ndarray
    indices: np.ndarray
    timestamps: np.ndarray
    total_frames: int
    fps: float
    requested: int
    path: str
    decode_ms: float = 0.0

    @property
    def num_frames(self) -> int:
        """F, the number of sampled frames."""
        return int(self.frames.shape[0])

    @property
    def duration_s(self) -> float:
        """Length of the video in seconds (0 when the frame rate is unknown)."""
        return self.total_frames / self.fps if self.fps > 0 else 0.0

    @property
    def short_note(self) -> str | None:
        """A one-line note when the video has fewer frames than asked, else None."""
        if self.num_frames < self.requested:
            return (
                f"{self.path} has only {self.total_frames} frames, fewer than the {self.requested} asked; "
                f"using all {self.num_frames}"
            )
        return None


@contextlib.contextmanager
def _quiet_native_stderr():
    """Silence decord's own C++ log lines (written to fd 2) while it opens or decodes a file.

    Redirecting fd 2 is process-wide, so it is done on the main thread only: a prefetch thread
    decoding in the background must not swallow what the main thread prints meanwhile.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        saved = os.dup(2)
    except OSError:  # no usable fd 2
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def uniform_indices(total_frames: int, num_frames: int) -> np.ndarray:
    """Frame numbers of ``num_frames`` frames spread uniformly over ``total_frames``.

    The first and last frames are always included (as in lmms-eval's LLaVA-OneVision loader);
    when the video has no more than ``num_frames`` frames, all of them are returned.

    Returns
    -------
    numpy.ndarray
        (min(num_frames, total_frames),) int64, ascending and distinct.

    Raises
    ------
    ValueError
        If ``num_frames`` < 1 or ``total_frames`` < 1.
    """
    if num_frames < 1 or total_frames < 1:
        raise ValueError(f"need at least one frame, got num_frames={num_frames}, total_frames={total_frames}")
    if total_frames <= num_frames:
        return np.arange(total_frames, dtype=np.int64)
    return np.linspace(0, total_frames - 1, num_frames).round().astype(np.int64)


def read_video(path: str | os.PathLike, num_frames: int) -> SampledVideo:
    """Decode ``num_frames`` uniformly sampled frames of a video with decord.

    Parameters
    ----------
    path : str or PathLike
        A video file decord (FFmpeg) can read.
    num_frames : int
        Frames to sample (>= 1). A shorter video gives all its frames (see ``short_note``).

    Returns
    -------
    SampledVideo

    Raises
    ------
    InputError
        If the file is missing, is not a video, or is truncated or corrupt.
    """
    import decord
    import decord.logging

    decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's warnings on damaged files
    start = time.perf_counter()
    path = Path(path)
    if num_frames < 1:
        raise InputError(f"--frames must be at least 1, got {num_frames}")
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    try:
        with _quiet_native_stderr():
            reader = decord.VideoReader(str(path), num_threads=0)
    except (RuntimeError, decord.DECORDError):
        raise InputError(f"not a readable video (unknown format, or truncated or corrupt): {path}") from None
    total = len(reader)
    if total < 1:
        raise InputError(f"video has no frames: {path}")
    indices = uniform_indices(total, num_frames)
    try:
        with _quiet_native_stderr():
            frames = reader.get_batch(indices.tolist()).asnumpy()
            timestamps = reader.get_frame_timestamp(indices.tolist())[:, 0].astype(np.float64)
    except (RuntimeError, decord.DECORDError, IndexError) as err:
        raise InputError(f"video is truncated or corrupt: {path} ({_first_line(err)})") from None
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise InputError(f"video is truncated or corrupt: {path} (decoded {frames.shape[0]} of {len(indices)} frames)")
    fps = float(reader.get_avg_fps() or 0.0)
    return SampledVideo(
        frames=frames,
        indices=indices,
        timestamps=timestamps,
        total_frames=total,
        fps=fps,
        requested=num_frames,
        path=str(path),
        decode_ms=(time.perf_counter() - start) * 1e3,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0][:200] if text else type(err).__name__
