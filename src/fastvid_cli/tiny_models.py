"""The offline tiny models by name (``--model tiny-random...``, ``fastvid tiny-model --arch``): built on
first use and cached.

Two ways to build one: the hand-written builders of :mod:`fastvid_cli.tiny` (the paper's three
families), and, for a family that ships a real checkpoint's published files
(``fastvid_cli/models/published``), :func:`fastvid_cli.tiny_config_write.build_from_config` on them, so
the tiny model's layout, processor limits, chat template and generation config are the real ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from . import tiny
from .models.tiny_names import TINY_MODELS as TINY_ARCHITECTURES
from .models.tiny_names import TINY_RANDOM
from .tiny_config_write import build_from_config

PUBLISHED = Path(__file__).resolve().parent / "models" / "published"
"""Published checkpoint files shipped with the package (configs only, no weights)."""
ARCHITECTURES: dict[str, Callable[..., Path] | Path] = {
    "llava-onevision": tiny.build_llava_onevision,
    "llava-video": tiny.build_llava_video,
    "qwen2.5-vl": tiny.build_qwen2_5_vl,
    "qwen3-vl": PUBLISHED / "Qwen3-VL-8B-Instruct",
    "qwen3.5": PUBLISHED / "Qwen3.5-0.8B",
}
"""``fastvid tiny-model --arch`` choices: architecture -> its builder, or the published files it is built from."""


def build_tiny(arch: str, out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write the tiny random checkpoint of ``arch`` (see :data:`ARCHITECTURES`) to ``out_dir``.

    Raises
    ------
    KeyError
        For an architecture not in :data:`ARCHITECTURES`.
    """
    source = ARCHITECTURES[arch]
    if isinstance(source, Path):
        return build_from_config(source, out_dir, seed=seed)
    return source(out_dir, seed=seed)


def tiny_random_dir(name: str = TINY_RANDOM, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached checkpoint folder of a tiny model (:data:`.models.tiny_names.TINY_MODELS`), built on first use.

    Parameters
    ----------
    name : str
        ``tiny-random`` (LLaVA-OneVision), ``tiny-random-llava-video``, ``tiny-random-qwen2.5-vl``, ``tiny-random-qwen3-vl``,
        ``tiny-random-qwen3.5``.
    cache_dir : str or PathLike, optional
        Where to keep it; default ``$FASTVID_CACHE`` or ``~/.cache/fastvid``.

    Raises
    ------
    KeyError
        If ``name`` is not a tiny model's.
    """
    arch = TINY_ARCHITECTURES[name]
    base = Path(cache_dir or os.environ.get("FASTVID_CACHE") or Path.home() / ".cache" / "fastvid")
    target = base / f"tiny-random-{arch}-v{tiny.FORMAT_VERSION}"
    if (target / "fastvid.json").exists():
        return target
    staging = base / f".{target.name}.{os.getpid()}"
    build_tiny(arch, staging)
    try:
        staging.rename(target)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target
