"""Names of the offline tiny random-weight models, as the loader and the reports need them.

The product knows the tiny models by name only: which ``--model`` names they are, how to tell a
tiny checkpoint folder, which published files each is built from, and the note that goes with their
answers. Building them is the job of the tiny-model builder :mod:`fastvid_cli.tiny`, which only the
``tiny-model`` command and the loader of tiny models (:func:`fastvid_cli.models.tiny_model_dir`) import.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TINY_RANDOM = "tiny-random"
"""The default tiny model (LLaVA-OneVision)."""
TINY_NOTE = "tiny-random has random weights: its answers are noise (use it to check the pipeline, not the model)"
"""Shown with every answer of a tiny model."""
TINY_MODELS = {
    TINY_RANDOM: "llava-onevision",
    "tiny-random-llava-video": "llava-video",
    "tiny-random-qwen2.5-vl": "qwen2.5-vl",
    "tiny-random-qwen3-vl": "qwen3-vl",
    "tiny-random-qwen3.5": "qwen3.5",
}
"""``--model`` names of the offline tiny models -> their architecture (``fastvid tiny-model --arch``)."""
TINY_ARCHITECTURES = {
    "llava-onevision": "llava-onevision-qwen2-7b-ov-hf",
    "llava-video": "LLaVA-Video-7B-Qwen2",
    "qwen2.5-vl": "Qwen2.5-VL-7B-Instruct",
    "qwen3-vl": "Qwen3-VL-8B-Instruct",
    "qwen3.5": "Qwen3.5-0.8B",
}
"""Architecture -> the folder of ``fastvid_cli/models/published`` its tiny checkpoint is built from (the first is
the default of ``fastvid tiny-model``)."""
MARKER = "fastvid.json"
"""File a tiny checkpoint folder carries; its ``tiny_random`` field is true."""


def is_tiny_random(model_dir: str | os.PathLike) -> bool:
    """Whether a checkpoint folder holds a tiny random-weight model (its answers are noise).

    Parameters
    ----------
    model_dir : str or PathLike
        A checkpoint folder; one without :data:`MARKER` (or with an unreadable one) is not tiny.
    """
    try:
        return bool(json.loads((Path(model_dir) / MARKER).read_text()).get("tiny_random"))
    except (OSError, ValueError):
        return False
