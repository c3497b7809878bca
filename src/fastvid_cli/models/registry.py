"""The one registry of supported model families: family name -> adapter class.

Everything that depends on the family asks its adapter through here: detecting the family of a
checkpoint (:func:`family_of_config`, :func:`detect_family`), its paper settings (:func:`paper_settings`),
loading it (:meth:`ModelAdapter.from_pretrained`), and its token geometry without weights
(:meth:`ModelAdapter.geometry_from_config`). Adding a family means
one new adapter module and one :class:`Family` line below.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ModelError
from .settings import RunSettings

if TYPE_CHECKING:
    from .base import ModelAdapter


@dataclass(frozen=True)
class Family:
    """One supported model family.

    Attributes
    ----------
    name : str
        The family's name (``ModelAdapter.family``), e.g. ``llava_onevision``.
    description : str
        What checkpoints it covers, for messages.
    module : str
        Module of its adapter, relative to :mod:`fastvid_cli.models`; imported on first use.
    adapter : str
        Class name of its adapter in ``module``.
    """

    name: str
    description: str
    module: str
    adapter: str

    def adapter_class(self) -> type[ModelAdapter]:
        """The adapter class (its module is imported on first use)."""
        adapter: type[ModelAdapter] = getattr(importlib.import_module(self.module, __package__), self.adapter)
        return adapter


FAMILIES = {
    family.name: family
    for family in (
        Family("llava_onevision", "LLaVA-OneVision (transformers llava_onevision)", ".llava_onevision", "LlavaOnevisionAdapter"),
        Family(
            "llava_video",
            "LLaVA-Video (LLaVA-NeXT LlavaQwenForCausalLM, or llava_onevision with the grid layout)",
            ".llava_video",
            "LlavaVideoAdapter",
        ),
        Family("qwen2_5_vl", "Qwen2.5-VL (transformers qwen2_5_vl)", ".qwen2_5_vl", "Qwen2_5_VLAdapter"),
        Family("qwen3_vl", "Qwen3-VL, dense and MoE (transformers qwen3_vl, qwen3_vl_moe)", ".qwen3_vl", "Qwen3VLAdapter"),
        Family(
            "qwen3_5",
            "Qwen3.5, dense and MoE, hybrid Gated DeltaNet + attention (transformers qwen3_5, qwen3_5_moe)",
            ".qwen3_5",
            "Qwen3_5Adapter",
        ),
    )
}
"""Supported families, by name."""
SUPPORTED_FAMILIES = {name: family.description for name, family in FAMILIES.items()}
"""Family name -> description."""


def adapter_class(family: str) -> type[ModelAdapter]:
    """The adapter class of a family of :data:`FAMILIES`.

    Raises
    ------
    KeyError
        For a family not in the registry.
    """
    return FAMILIES[family].adapter_class()


def read_config(path: Path) -> dict:
    """A checkpoint folder's ``config.json``, parsed.

    Raises
    ------
    ModelError
        If it is missing or not JSON.
    """
    try:
        config: dict = json.loads((Path(path) / "config.json").read_text())
        return config
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {Path(path) / 'config.json'}: {err}") from None


LAYOUT_KEY = "fastvid_layout"
"""Config key that carries the video layout asked for (``--layout``) to ``ModelAdapter.claims``; LLaVA-Video's
converter writes it too (``grid``)."""


def family_of_config(config: dict, layout: str = "auto") -> str | None:
    """The family whose adapter claims a checkpoint's ``config.json`` (see ``ModelAdapter.claims``), or None.

    Parameters
    ----------
    config : dict
        The parsed ``config.json``.
    layout : str
        ``auto`` (as the config says) or a layout name, passed to the adapters as ``config[LAYOUT_KEY]``
        (LLaVA checkpoints: ``onevision`` or ``grid``).

    Raises
    ------
    RuntimeError
        If two adapters claim the same config (a bug in the registry).
    """
    if layout != "auto":
        config = {**config, LAYOUT_KEY: layout}
    claimed = [name for name, family in FAMILIES.items() if family.adapter_class().claims(config)]
    if len(claimed) > 1:
        raise RuntimeError(f"families {', '.join(claimed)} all claim model_type {config.get('model_type')!r}")
    return claimed[0] if claimed else None


def detect_family(path: Path, layout: str = "auto") -> str:
    """The model family of a checkpoint folder, from its ``config.json`` (and ``layout``).

    LLaVA-NeXT checkpoints (``LlavaQwenForCausalLM``) and llava_onevision checkpoints whose config
    or ``layout`` says ``grid`` are LLaVA-Video; other llava_onevision ones are LLaVA-OneVision.
    Each family's adapter says which configs it claims (:func:`family_of_config`).

    Raises
    ------
    ModelError
        If the config cannot be read, or the architecture is not supported (the message lists the supported ones).
    """
    return family_of(read_config(path), path, layout)


def family_of(config: dict, path: Path, layout: str = "auto") -> str:
    """The family of a parsed ``config.json`` (``path`` names it in messages); see :func:`detect_family`.

    Raises
    ------
    ModelError
        If no registered family claims it.
    """
    family = family_of_config(config, layout)
    if family is None:
        supported = "; ".join(f"{k}: {v}" for k, v in SUPPORTED_FAMILIES.items())
        raise ModelError(f"unsupported architecture {config.get('model_type', '?')!r} in {path}; supported: {supported}")
    return family


def paper_settings(family: str) -> RunSettings:
    """The paper's settings of a model family (``llava_onevision``, ``llava_video``, ``qwen2_5_vl``; for ``qwen3_vl``
    and ``qwen3_5``, beyond the paper, the model's own):
    its adapter's ``paper``.

    Raises
    ------
    KeyError
        For a family not in the registry.
    """
    return adapter_class(family).paper


__all__ = [
    "FAMILIES",
    "LAYOUT_KEY",
    "SUPPORTED_FAMILIES",
    "Family",
    "adapter_class",
    "detect_family",
    "family_of",
    "family_of_config",
    "paper_settings",
    "read_config",
]
