"""Reading videos with decord, and the rules that pick which frames are read.

A :class:`FrameSampling` says which frames a model sees: a fixed count spread uniformly (the
LLaVA models' evaluation scripts: ``np.linspace(0, n - 1, F, dtype=int)``), or a frame rate with
bounds (Qwen2.5-VL's: 2 fps, 4 to 768 frames, an even count, as qwen-vl-utils samples).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import InputError
from .streams import quiet_native_stderr


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video a model sees.

    Exactly one of ``frames`` (a fixed count) and ``fps`` (time-based) is set.

    Attributes
    ----------
    frames : int or None
        Frames spread uniformly over the whole video, first and last included.
    fps : float or None
        Frames per second of video; the count is then clamped to [min_frames, max_frames].
    min_frames, max_frames : int
        Bounds of the time-based count (``max_frames`` also never exceeds the video's frames).
    multiple : int
        The count is rounded down to a multiple of this (Qwen2.5-VL groups frames in pairs: 2). A model
        family with its own counting rule subclasses this and overrides :meth:`count` (Qwen2.5-VL:
        qwen-vl-utils' ``smart_nframes``).
    rounding : {"floor", "round"}
        How the uniform positions ``linspace(0, n - 1, count)`` become frame numbers: ``floor``
        as the LLaVA evaluation scripts (``np.linspace(..., dtype=int)``), ``round`` as qwen-vl-utils.

    Raises
    ------
    ValueError
        Neither or both of frames and fps, or a count, rate or bound out of range.
    """

    frames: int | None = None
    fps: float | None = None
    min_frames: int = 1
    max_frames: int = 768
    multiple: int = 1
    rounding: Literal["floor", "round"] = "floor"

    def __post_init__(self) -> None:
        if (self.frames is None) == (self.fps is None):
            raise ValueError("frame sampling takes either a frame count or a frame rate, not both")
        if self.frames is not None and self.frames < max(1, self.multiple):
            raise ValueError(f"frames must be at least {max(1, self.multiple)}, got {self.frames}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 1 <= min frames <= max frames, got {self.min_frames} and {self.max_frames}")
        if self.rounding not in ("floor", "round"):
            raise ValueError(f"rounding is floor or round, got {self.rounding!r}")

    def with_frames(self, frames: int) -> FrameSampling:
        """The same rule with a fixed count instead (``--frames N``)."""
        return replace(self, frames=frames, fps=None)

    def with_fps(self, fps: float, max_frames: int | None = None) -> FrameSampling:
        """The same rule, time-based (``--fps X [--max-frames M]``)."""
        return replace(
            self,
            frames=None,
            fps=fps,
            max_frames=max_frames or self.max_frames,
            min_frames=min(self.min_frames, max_frames or self.max_frames),
        )

    def count(self, total_frames: int, video_fps: float) -> int:
        """How many frames to read from a video of ``total_frames`` frames at ``video_fps``.

        A video with fewer frames than a fixed count gives all of them (see ``short_note``).
        """
        if self.frames is not None:
            count = min(self.frames, total_frames)
        else:
            assert self.fps is not None  # a frame count or a frame rate (checked on creation)
            wanted = total_frames / video_fps * self.fps if video_fps > 0 else self.max_frames
            count = int(min(max(wanted, self.min_frames), self.max_frames, total_frames))
        return max(self.multiple, count - count % self.multiple)

    def indices(self, total_frames: int, video_fps: float) -> np.ndarray:
        """(count,) int64 frame numbers, ascending, first and last frame included."""
        count = self.count(total_frames, video_fps)
        if self.rounding == "round":  # qwen-vl-utils: torch.linspace (float32) rounded
            import torch

            return torch.linspace(0, total_frames - 1, count).round().long().numpy()
        return np.floor(np.linspace(0, total_frames - 1, count)).astype(np.int64)

    def describe(self, used: int | None = None, total: int | None = None) -> str:
        """One line: the rule (``32 frames, uniform``, ``2 fps (4-768 frames, even)``), or with
        ``used``, the frames a video got by it and, where fewer than asked, why
        (``250 frames, uniform (5,000 asked: the video has only 250)``, ``2 fps (4-768 frames): 20 frames``).
        ``total`` is the video's frame count."""
        even = ", even" if self.multiple == 2 else ""
        if self.frames is not None:
            if used is None or used == self.frames:
                return f"{self.frames:,} frames, uniform{even}"
            why = f": the video has only {total:,}" if total is not None and total < self.frames else ""
            return f"{used:,} frames, uniform{even} ({self.frames:,} asked{why})"
        rule = f"{self.fps:g} fps ({self.min_frames}-{self.max_frames} frames{even})"
        return rule if used is None else f"{rule}: {used:,} frames"

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "fps": self.fps,
            "min_frames": self.min_frames,
            "max_frames": self.max_frames,
            "multiple": self.multiple,
            "rounding": self.rounding,
            "rule": self.describe(),
        }


@dataclass
class SampledVideo:
    """Frames sampled from a video.

    Attributes
    ----------
    frames : numpy.ndarray or None
        (F, H, W, 3) uint8 RGB frames; None when the frames are decoded chunk by chunk as they are
        used (``read_video(..., decode=False)``, see :meth:`frame_chunks`).
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
    sampling : FrameSampling or None
        The rule that picked the frames.
    height, width : int
        Frame size in pixels, as decoded (0 when unknown).
    """

    frames: np.ndarray | None
    indices: np.ndarray
    timestamps: np.ndarray
    total_frames: int
    fps: float
    requested: int
    path: str
    decode_ms: float = 0.0
    sampling: FrameSampling | None = None
    height: int = 0
    width: int = 0

    def __post_init__(self) -> None:
        if self.frames is not None and not self.height:
            self.height, self.width = int(self.frames.shape[1]), int(self.frames.shape[2])

    @property
    def num_frames(self) -> int:
        """F, the number of sampled frames."""
        return len(self.indices)

    def frame_chunks(self, size: int) -> Iterator[np.ndarray]:
        """The sampled frames, ``size`` at a time, in order: (k, H, W, 3) uint8 arrays, k <= size.

        Frames already in memory are sliced; otherwise each chunk is decoded from :attr:`path` as it
        is asked for (the time goes to :attr:`decode_ms`), so only one chunk's pixels are held at once.

        Raises
        ------
        InputError
            A file that turns out truncated or corrupt while decoding.
        """
        if size < 1:
            raise InputError(f"chunks must hold at least 1 frame, got {size}")
        if self.frames is not None:
            for start in range(0, self.num_frames, size):
                yield self.frames[start : start + size]
            return
        for start in range(0, self.num_frames, size):
            began = time.perf_counter()
            # a fresh reader per chunk: one kept across a long file's seeks grows by hundreds of MiB
            # while the model works between chunks (600 MiB over 256 frames of a 96 s clip), and
            # opening one costs less than that growth does
            reader = _reader(self.path)
            chunk = _decode(reader, self.indices[start : start + size], self.path)
            del reader
            self.decode_ms += (time.perf_counter() - began) * 1e3
            yield chunk

    @property
    def duration_s(self) -> float:
        """Length of the video in seconds (0 when the frame rate is unknown)."""
        return self.total_frames / self.fps if self.fps > 0 else 0.0

    @property
    def short_note(self) -> str | None:
        """A one-line note when the video has fewer frames than asked, else None."""
        if self.num_frames < self.requested:
            return (
                f"{self.path} has only {self.total_frames} frames, fewer than the {self.requested:,} asked; "
                f"using all {self.num_frames}"
            )
        return None


def import_decord() -> Any:
    """The ``decord`` module, imported without loading every NVIDIA library installed beside it.

    On import, decord2 dlopens every ``site-packages/nvidia/*/lib/*.so*`` with ``RTLD_GLOBAL`` (for its
    CUDA builds, whose CUDA runtime may come from those pip packages). Among them is NVBLAS, which
    then answers the BLAS calls of a torch loaded afterwards: the first CPU matmul crashes (a
    segfault, after "[NVBLAS] CPU Blas library need to be provided"). ``fastvid`` reads a video before
    torch loads (a bad file is said at once), so decord is imported with the ``nvidia`` packages hidden
    from that one search; a build that cannot load without them is imported again as decord2 does.

    Raises
    ------
    ImportError, OSError
        If decord cannot be imported at all.
    """
    if "decord" in sys.modules:
        return sys.modules["decord"]
    find_spec = importlib.util.find_spec

    def without_nvidia(name: str, package: str | None = None) -> Any:
        return None if name == "nvidia" else find_spec(name, package)

    importlib.util.find_spec = without_nvidia  # decord's search of the nvidia packages only
    try:
        import decord
    except OSError:  # a CUDA build of decord that needs those libraries: let it load them
        for name in [m for m in sys.modules if m == "decord" or m.startswith("decord.")]:
            del sys.modules[name]
        importlib.util.find_spec = find_spec
        import decord
    finally:
        importlib.util.find_spec = find_spec
    import decord.logging

    return decord


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself, read without decoding frames.

    Attributes
    ----------
    path : str
    total_frames : int
    fps : float
        Average frame rate (0 when unknown).
    height, width : int
        Frame size in pixels.
    """

    path: str
    total_frames: int
    fps: float
    height: int
    width: int


def _reader(path: str | os.PathLike):
    """decord's reader of ``path``; a missing, unreadable or corrupt file raises InputError."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    decord = import_decord()
    decord.logging.set_level(decord.logging.QUIET)  # FFmpeg's warnings on damaged files
    try:
        with quiet_native_stderr():
            return decord.VideoReader(str(path), num_threads=0)
    except (RuntimeError, decord.DECORDError, IndexError):
        raise InputError(f"not a readable video (unknown format, or truncated or corrupt): {path}") from None


def _open(path: str | os.PathLike) -> tuple[Any, VideoInfo]:
    """decord's reader of ``path`` and its :class:`VideoInfo`; bad files raise InputError."""
    decord = import_decord()

    reader = _reader(path)
    try:
        with quiet_native_stderr():
            height, width = reader[0].shape[:2] if len(reader) else (0, 0)
    except (RuntimeError, decord.DECORDError, IndexError):
        raise InputError(f"not a readable video (unknown format, or truncated or corrupt): {path}") from None
    if len(reader) < 1:
        raise InputError(f"video has no frames: {path}")
    return reader, VideoInfo(str(path), len(reader), float(reader.get_avg_fps() or 0.0), int(height), int(width))


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Frame count, frame rate and size of a video (one frame decoded).

    Raises
    ------
    InputError
        If the file is missing, is not a video, or is truncated or corrupt.
    """
    return _open(path)[1]


def read_video(path: str | os.PathLike, sampling: int | FrameSampling, decode: bool = True) -> SampledVideo:
    """Decode the frames of a video that ``sampling`` picks, with decord.

    Parameters
    ----------
    path : str or PathLike
        A video file decord (FFmpeg) can read.
    sampling : int or FrameSampling
        A frame count (uniform, floor positions as the LLaVA evaluation scripts), or a rule. A
        video shorter than a fixed count gives all its frames (see ``short_note``).
    decode : bool
        Decode the frames now (default). False reads the indices and timestamps only; the frames are
        then decoded chunk by chunk by :meth:`SampledVideo.frame_chunks` (a long video's streaming encode).

    Returns
    -------
    SampledVideo

    Raises
    ------
    InputError
        If the file is missing, is not a video, or is truncated or corrupt, or the count is < 1.
    """
    decord = import_decord()

    start = time.perf_counter()
    if isinstance(sampling, int):
        if sampling < 1:
            raise InputError(f"frames must be at least 1, got {sampling}")
        sampling = FrameSampling(frames=sampling)
    reader, info = _open(path)
    indices = sampling.indices(info.total_frames, info.fps)
    try:
        with quiet_native_stderr():
            timestamps = reader.get_frame_timestamp(indices.tolist())[:, 0].astype(np.float64)
    except (RuntimeError, decord.DECORDError, IndexError):  # its text is decord's C++ internals: not for the user
        raise InputError(f"video is truncated or corrupt: {path} (its frame timestamps do not read)") from None
    frames = _decode(reader, indices, path) if decode else None
    return SampledVideo(
        frames=frames,
        height=info.height,
        width=info.width,
        indices=indices,
        timestamps=timestamps,
        total_frames=info.total_frames,
        fps=info.fps,
        requested=sampling.frames or len(indices),
        path=str(path),
        decode_ms=(time.perf_counter() - start) * 1e3,
        sampling=sampling,
    )


def _decode(reader, indices: np.ndarray, path) -> np.ndarray:
    """(k, H, W, 3) uint8 frames at ``indices``; a failed or short decode raises InputError."""
    decord = import_decord()

    try:
        with quiet_native_stderr():
            frames: np.ndarray = reader.get_batch(indices.tolist()).asnumpy()
    except (RuntimeError, decord.DECORDError, IndexError):  # its text is decord's C++ internals: not for the user
        where = f"at frame {indices[0]}" if len(indices) == 1 else f"between frames {indices[0]} and {indices[-1]}"
        raise InputError(f"video is truncated or corrupt: {path} (decoding failed {where})") from None
    if frames.ndim != 4 or frames.shape[0] != len(indices) or frames.shape[-1] != 3:
        raise InputError(f"video is truncated or corrupt: {path} (decoded {frames.shape[0]} of {len(indices)} frames)")
    return frames
