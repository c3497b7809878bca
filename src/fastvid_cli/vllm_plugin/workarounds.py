"""Workarounds for vLLM defects on FastVID's path (docs/vllm.md, "vLLM's defects"); each applies to FastVID's
architectures only, and each has a test (tests/test_vllm_plugin.py) that fails once vLLM fixes or changes
the code it works around, so that the workaround can go.

1. **The CPU runner never enables pruning.** ``CPUModelRunner.load_model`` (vLLM 0.32-0.33) does not set
   ``is_multimodal_pruning_enabled`` as ``GPUModelRunner.load_model`` does, so the runner splits the
   pruned embeddings by the unpruned sizes ("split_with_sizes expects split_sizes to sum exactly ...").
   After the CPU runner loads a FastVID model, the flag is set as the GPU runner sets it.
2. **Qwen3-VL's outer markers** are handled by the models' processor
   (``models.Qwen3VLFullPlaceholderProcessor``).
3. **Prefix caching with pruning** gives different tokens for two identical requests (cause not found;
   off, they match). A FastVID architecture turns prefix caching off at start-up, with a log line, through
   vLLM's per-architecture config hook (``MODELS_CONFIG_MAP``). ``FASTVID_VLLM_PREFIX_CACHING=on`` keeps
   it on (to see whether vLLM still shows the defect: ``scripts/vllm-e2e``'s probe does).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

PREFIX_CACHING_ENV = "FASTVID_VLLM_PREFIX_CACHING"
"""``on``: leave prefix caching as vLLM configures it (a probe of defect 3), instead of turning it off."""

logger = logging.getLogger("vllm.fastvid")  # under "vllm": printed with vLLM's own log lines


class FastVIDConfigUpdate:
    """vLLM's ``VerifyAndUpdateConfig`` for FastVID's architectures: prefix caching off (defect 3)."""

    @staticmethod
    def verify_and_update_config(vllm_config: Any) -> None:
        cache = vllm_config.cache_config
        multimodal = vllm_config.model_config.multimodal_config
        if os.environ.get(PREFIX_CACHING_ENV) == "on":
            logger.warning("fastvid-vllm: prefix caching left as configured (%s=on)", PREFIX_CACHING_ENV)
            return
        if multimodal is not None and multimodal.video_pruning_rate and cache.enable_prefix_caching:
            logger.warning("fastvid-vllm: prefix caching off with video pruning (vLLM defect 3 in fastvid's docs/vllm.md)")
            cache.enable_prefix_caching = False

    @staticmethod
    def verify_and_update_model_config(model_config: Any) -> None:
        return


def cpu_runner_needs_fix() -> bool:
    """Whether vLLM's ``CPUModelRunner.load_model`` still leaves ``is_multimodal_pruning_enabled`` unset (defect 1)."""
    import inspect

    from vllm.v1.worker.cpu_model_runner import CPUModelRunner

    return "is_multimodal_pruning_enabled" not in inspect.getsource(CPUModelRunner.load_model)


def _fix_cpu_runner() -> None:
    """Wrap ``CPUModelRunner.load_model`` to set the pruning flag for FastVID's models (defect 1); once."""
    from vllm.model_executor.models.interfaces import supports_multimodal_pruning
    from vllm.v1.worker.cpu_model_runner import CPUModelRunner

    original = CPUModelRunner.load_model
    if getattr(original, "fastvid_fix", False) or not cpu_runner_needs_fix():
        return

    def load_model(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        model = self.get_model()
        if getattr(model, "fastvid_plugin", False):
            multimodal = self.model_config.multimodal_config
            self.is_multimodal_pruning_enabled = (
                supports_multimodal_pruning(model) and multimodal is not None and multimodal.is_multimodal_pruning_enabled()
            )

    load_model.fastvid_fix = True  # type: ignore[attr-defined]
    CPUModelRunner.load_model = load_model


def install(architectures: Mapping[str, str]) -> None:
    """Install the workarounds for FastVID's ``architectures`` (idempotent; vLLM loads plugins in every process)."""
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP
    from vllm.platforms import current_platform

    for name in architectures:
        MODELS_CONFIG_MAP.setdefault(name, FastVIDConfigUpdate)
    if current_platform.is_cpu():
        _fix_cpu_runner()
