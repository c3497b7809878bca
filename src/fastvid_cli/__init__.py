"""fastvid: ask Video LLMs about videos, several times cheaper with FastVID token pruning.

FastVID: Shen et al., "FastVID: Dynamic Density Pruning for Fast Video Large Language Models",
NeurIPS 2025, arXiv 2503.11187.

The Python API, importable from here whatever module holds it (docs/python-api.md)::

    from fastvid_cli import AskOptions, FastVIDConfig, ask, load_model

    model = load_model("tiny-random")
    result = ask(model, "clip.mp4", "What happens?", AskOptions(config=FastVIDConfig(retention_ratio=0.1)))

Each name loads its module (and torch) on first use: ``import fastvid_cli`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

API = {
    "load_model": "fastvid_cli.models",
    "AskOptions": "fastvid_cli.engine.pipeline",
    "AskResult": "fastvid_cli.engine.results",
    "VideoSession": "fastvid_cli.engine.pipeline",
    "ask": "fastvid_cli.engine.pipeline",
    "ask_many": "fastvid_cli.engine.pipeline",
    "FastVIDConfig": "fastvid_cli.pruning",
    "fastvid_prune": "fastvid_cli.pruning",
    "make_method": "fastvid_cli.pruning",
    "model_geometry": "fastvid_cli.models.geometry",
}
"""Public name -> the module that holds it."""

if TYPE_CHECKING:
    from .engine.pipeline import AskOptions, VideoSession, ask, ask_many
    from .engine.results import AskResult
    from .models import load_model
    from .models.geometry import model_geometry
    from .pruning import FastVIDConfig, fastvid_prune, make_method


def __getattr__(name: str) -> Any:
    """The names of :data:`API`, imported on first use (PEP 562)."""
    if name in API:
        return getattr(importlib.import_module(API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "API",
    "AskOptions",
    "AskResult",
    "FastVIDConfig",
    "VideoSession",
    "__version__",
    "ask",
    "ask_many",
    "fastvid_prune",
    "load_model",
    "make_method",
    "model_geometry",
]
