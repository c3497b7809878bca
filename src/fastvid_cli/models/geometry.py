"""Model geometries for analytic FLOPs and benchmarks, by model name, shipped so they work with no download.

A geometry (:class:`~.geometry_base.ModelGeometry`) is what FLOPs and a random-weight benchmark need:
the LLM's shape and the video token layout (tokens per frame, default frames, newline slots). The
family's adapter derives it from a ``config.json`` (``ModelAdapter.geometry_from_config``); known
models need no download, their config's fields that matter are shipped in
:data:`~.geometry_base.KNOWN_CONFIGS` (read off their public configs) and go through the same adapter.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import ModelError
from . import ALIASES, resolve_model
from .geometry_base import ModelGeometry, shipped_config
from .hub import hub_offline, hub_unreachable
from .registry import adapter_class, family_of, read_config
from .tiny_names import TINY_MODELS


def geometry_from_config(config: dict, name: str, path: Path | None = None, layout: str = "auto") -> ModelGeometry:
    """Geometry of a checkpoint from its ``config.json`` dict, by its family's adapter (no weights read).

    The video layout is the one ``fastvid ask`` runs: the paper's for the family (LLaVA-Video:
    average pooling to 13 x 13 and a newline per row, whatever the config's ``mm_spatial_pool_mode``),
    and the paper's frame count (Qwen2.5-VL, sampled by time: 32 frames at 448 x 448 px).

    Raises
    ------
    ModelError
        If the config is of an unsupported family or lacks what the geometry needs.
    """
    family = family_of(config, path or Path(name), layout)
    return adapter_class(family).geometry_from_config(config, name, path)


def known_geometry(repo_id: str) -> ModelGeometry | None:
    """The geometry of a shipped repo id (:func:`.geometry_base.shipped_config`), or None."""
    shipped = shipped_config(repo_id)
    return None if shipped is None else geometry_from_config(shipped[0], repo_id, shipped[1])


def geometry_from_folder(path: Path, name: str | None = None) -> ModelGeometry:
    """Geometry of a local checkpoint folder, from its ``config.json`` alone (see :func:`geometry_from_config`).

    Raises
    ------
    ModelError
        If the config is missing, unreadable or of an unsupported family.
    """
    return geometry_from_config(read_config(path), name or str(path), Path(path))


def video_geometry(geometry: ModelGeometry, info, settings) -> tuple[ModelGeometry, int]:
    """The geometry for one video as ``fastvid ask`` samples and sizes it, read from the file's header.

    Parameters
    ----------
    geometry : ModelGeometry
    info : fastvid_cli.video.VideoInfo
        Frame count, frame rate and size of the video.
    settings : RunSettings
        How the model runs (frame sampling, Qwen2.5-VL's pixel budget).

    Returns
    -------
    geometry : ModelGeometry
        With the video's tokens per frame (Qwen2.5-VL: by its resized size) and frame count.
    frames : int
        Frames sampled from the video.
    """
    frames = settings.sampling.count(info.total_frames, info.fps)
    if settings.pixels is None:
        return replace(geometry, frames=frames), frames
    height, width = settings.pixels.frame_size(info.height, info.width, frames)
    factor = settings.pixels.factor
    return replace(geometry, frames=frames, tokens_per_frame=(height // factor) * (width // factor)), frames


def model_geometry(name: str) -> ModelGeometry:
    """Geometry of a model named as ``--model`` takes it, without loading weights.

    Known repo ids and aliases need no network; ``tiny-random`` and local folders are read from
    their config; another repo id needs its ``config.json`` (cached, or fetched from the Hub).

    Raises
    ------
    ModelError
        Unknown or unreachable model, or an unsupported architecture.
    """
    repo_id = ALIASES.get(name, name)
    known = known_geometry(repo_id)
    if known is not None:
        return known
    local = Path(name).expanduser()
    if name in TINY_MODELS or local.is_dir():
        resolved = resolve_model(name)
        return geometry_from_folder(resolved.path, name)
    return geometry_from_folder(_fetch_config(repo_id), repo_id)


def _fetch_config(repo_id: str) -> Path:
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    if repo_id.count("/") != 1:
        raise ModelError(f"unknown model {repo_id!r}: pass a Hub repo id, an alias, a local checkpoint folder, or tiny-random")
    cached = try_to_load_from_cache(repo_id, "config.json")  # the cache alone: no request at all
    if isinstance(cached, str):
        return Path(cached).parent
    if hub_offline():
        raise ModelError(f"no geometry for {repo_id}: its config.json is not cached and HF_HUB_OFFLINE is set")
    why = hub_unreachable()
    if why is not None:
        raise ModelError(f"no geometry for {repo_id}: its config.json is not cached and the Hub cannot be reached ({why})")
    try:
        return Path(hf_hub_download(repo_id, "config.json")).parent
    except Exception as err:  # noqa: BLE001 - whatever the Hub or the network does: one line
        raise ModelError(f"no geometry for {repo_id}: cannot fetch its config.json ({type(err).__name__})") from None
