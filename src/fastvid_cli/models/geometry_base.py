"""The geometry of a model and the shipped configs it is read from: the layer below the adapters.

A geometry is what FLOPs and a random-weight benchmark need: the LLM's shape and the video token
layout (tokens per frame, default frames, newline slots). Each family's adapter states it from a
``config.json`` (``ModelAdapter.geometry_from_config``) with the types here; known models need no
download: their config's fields that matter are shipped in :data:`KNOWN_CONFIGS` (read off their
public configs). Looking a geometry up by model name is :mod:`.geometry`'s, above the registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..flops import LLMGeometry


@dataclass(frozen=True)
class ModelGeometry:
    """LLM shape plus video token layout of one model.

    Attributes
    ----------
    name : str
    family : str
    llm : LLMGeometry
    heads : int
        Attention heads of the LLM (for building a random-weight copy).
    tokens_per_frame : int
        N, pooled video tokens per frame that pruning works on.
    frames : int
        Default frames sampled.
    extra_slots : int
        Video slots never pruned (LLaVA-OneVision: one newline after the video).
    newlines_per_frame : int
        Newline slots per frame that go with their rows (LLaVA-Video's grid: 13); a pruned prompt
        keeps those of the rows that keep a token.
    frames_per_group : int
        Sampled frames per token frame (Qwen2.5-VL's temporal patch: 2; its tokens per group are
        given at :data:`QWEN_REFERENCE_PIXELS`, since they depend on the video's resolution).
    text_config : dict or None
        The LLM's transformers config (``to_dict()``), for building a random-weight copy of it (a
        benchmark); None when only the shape is known. Not part of :meth:`to_dict`.
    """

    name: str
    family: str
    llm: LLMGeometry
    heads: int
    tokens_per_frame: int
    frames: int
    extra_slots: int
    newlines_per_frame: int = 0
    frames_per_group: int = 1
    text_config: dict | None = field(default=None, compare=False, repr=False)

    def token_frames(self, frames: int) -> int:
        """Frames as the LLM sees them: sampled frames / frames_per_group (rounded up)."""
        return -(-frames // self.frames_per_group)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("text_config")
        return out

    @classmethod
    def of_llm(cls, name: str, family: str, text_config: Any, **video: int) -> ModelGeometry:
        """A geometry whose LLM shape and heads are read from a transformers text config (e.g. ``Qwen2Config``).

        ``video`` gives the video token layout fields (``tokens_per_frame``, ``frames``, ``extra_slots``, ...).
        """
        return cls(
            name=name,
            family=family,
            llm=LLMGeometry.from_config(text_config),
            heads=text_config.num_attention_heads,
            text_config=text_config.to_dict(),
            **video,
        )


QWEN_REFERENCE_PIXELS = 448
"""Qwen2.5-VL token counts are given for 448 x 448 frames: (448 / 28)^2 = 256 tokens per 2 frames."""


def _qwen2(hidden: int, heads: int, kv_heads: int, intermediate: int, layers: int, vocab: int) -> dict:
    """The fields of a Qwen2 LLM's config that its geometry reads."""
    return {
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "vocab_size": vocab,
    }


def _llava_hf_vocab(qwen2_vocab: int) -> int:
    """The LLM vocabulary of a llava-hf LLaVA-OneVision checkpoint: Qwen2's plus ``<image>`` and ``<video>``,
    padded to a multiple of 64 (transformers' ``convert_llava_onevision_weights_to_hf.py``): 152064 -> 152128."""
    return -(-(qwen2_vocab + 2) // 64) * 64


_SIGLIP_384 = {"model_type": "siglip_vision_model", "image_size": 384, "patch_size": 14}
_QWEN_VISION = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
KNOWN_CONFIGS = {
    "Qwen/Qwen2.5-VL-7B-Instruct": {
        "model_type": "qwen2_5_vl",
        **_qwen2(3584, 28, 4, 18944, 28, 152064),
        "vision_config": _QWEN_VISION,
    },
    "Qwen/Qwen2.5-VL-3B-Instruct": {
        "model_type": "qwen2_5_vl",
        **_qwen2(2048, 16, 2, 11008, 36, 151936),
        "vision_config": _QWEN_VISION,
    },
    "lmms-lab/LLaVA-Video-7B-Qwen2": {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava",
        "mm_vision_tower": "google/siglip-so400m-patch14-384",
        **_qwen2(3584, 28, 4, 18944, 28, 152064),
    },
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": {
        "model_type": "llava_onevision",
        "vision_config": _SIGLIP_384,
        "text_config": {"model_type": "qwen2", **_qwen2(896, 14, 2, 4864, 24, _llava_hf_vocab(151936))},
    },
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": {
        "model_type": "llava_onevision",
        "vision_config": _SIGLIP_384,
        "text_config": {"model_type": "qwen2", **_qwen2(3584, 28, 4, 18944, 28, _llava_hf_vocab(152064))},
    },
    "llava-hf/llava-onevision-qwen2-72b-ov-hf": {
        "model_type": "llava_onevision",
        "vision_config": _SIGLIP_384,
        "text_config": {"model_type": "qwen2", **_qwen2(8192, 64, 8, 29568, 80, _llava_hf_vocab(152064))},
    },
}
"""The shipped models: the fields of their public ``config.json`` that the geometry reads (the rest are
the transformers defaults), so their geometry needs no download and comes from the same adapter code."""
PUBLISHED = Path(__file__).resolve().parent / "published"
"""Published checkpoint files shipped with the package (see its README.md): their ``config.json`` gives
the geometry of those Qwen repo ids with no download."""


def shipped_config(repo_id: str) -> tuple[dict, Path | None] | None:
    """The ``config.json`` shipped for ``repo_id`` (:data:`KNOWN_CONFIGS`, or one under :data:`PUBLISHED`)
    and its folder (None for a known one), or None when none ships."""
    if repo_id in KNOWN_CONFIGS:
        return KNOWN_CONFIGS[repo_id], None
    published = PUBLISHED / repo_id.rpartition("/")[2] / "config.json"
    if repo_id.startswith("Qwen/") and published.exists():
        return json.loads(published.read_text()), published.parent
    return None


def transformers_config(config: dict, path: Path | None = None) -> Any:
    """A ``config.json`` dict as the transformers config class of its ``model_type`` reads it (no file read).

    Raises
    ------
    ModelError
        For a ``model_type`` transformers does not know.
    """
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type is None or model_type not in CONFIG_MAPPING:
        raise ModelError(f"{path or 'the config'}: transformers does not know model_type {model_type!r}")
    return CONFIG_MAPPING[model_type].from_dict(dict(config))
