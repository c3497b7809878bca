"""Tiny random-weight checkpoints, built offline from real checkpoints' published files: one builder for every family.

``--model tiny-random*``, ``fastvid tiny-model --arch`` and ``fastvid tiny-model --config REAL_DIR`` all
go through :func:`.write.build_from_config`: the published ``config.json``, processor files, chat
template and generation config of a real checkpoint (shipped in ``fastvid_cli/models/published`` for
the ``--arch`` choices) are written as published, widths and depths shrink to test size, and the
weights are random. Only shapes, token counts and the code paths are real; answers are noise.

- :mod:`.plan`: what a checkpoint will hold (configs, tokenizer, tensor layout), no weights;
- :mod:`.write`: writing a plan with random weights;
- :mod:`.tokenizer`: the local byte-level BPE every tiny checkpoint gets.

What differs between families is declared on their adapters (``ModelAdapter.tiny_recipe``); this package
names none. Product code reaches it only through :func:`fastvid_cli.models.tiny_model_dir` and the
``tiny-model`` command (tests/test_import_rules.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..models.geometry_base import PUBLISHED
from ..models.tiny_names import MARKER, TINY_ARCHITECTURES, TINY_MODELS, TINY_RANDOM
from .write import FORMAT_VERSION, build_from_config

ARCHITECTURES: dict[str, Path] = {arch: PUBLISHED / folder for arch, folder in TINY_ARCHITECTURES.items()}
"""``fastvid tiny-model --arch`` choices: architecture -> the published files it is built from."""


def build_tiny(arch: str, out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write the tiny random checkpoint of ``arch`` (see :data:`ARCHITECTURES`) to ``out_dir``.

    Raises
    ------
    KeyError
        For an architecture not in :data:`ARCHITECTURES`.
    InputError
        ``out_dir`` exists and is not empty.
    """
    return build_from_config(ARCHITECTURES[arch], out_dir, seed=seed)


def tiny_random_dir(name: str = TINY_RANDOM, cache_dir: str | os.PathLike | None = None) -> Path:
    """The cached checkpoint folder of a tiny model (:data:`fastvid_cli.models.tiny_names.TINY_MODELS`), built on first use.

    Parameters
    ----------
    name : str
        One of :data:`~fastvid_cli.models.tiny_names.TINY_MODELS` (``tiny-random`` ...).
    cache_dir : str or PathLike, optional
        Where to keep it; default ``$FASTVID_CACHE`` or ``~/.cache/fastvid``.

    Raises
    ------
    KeyError
        If ``name`` is not a tiny model's.
    """
    arch = TINY_MODELS[name]
    base = Path(cache_dir or os.environ.get("FASTVID_CACHE") or Path.home() / ".cache" / "fastvid")
    target = base / f"tiny-random-{arch}-v{FORMAT_VERSION}"
    if (target / MARKER).exists():
        return target
    staging = base / f".{target.name}.{os.getpid()}"
    build_tiny(arch, staging)
    try:
        staging.rename(target)
    except OSError:  # another process built it first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return target


__all__ = ["ARCHITECTURES", "FORMAT_VERSION", "build_from_config", "build_tiny", "tiny_random_dir"]
