"""Model geometries for analytic FLOPs and benchmarks, shipped so they work with no download.

A geometry is what FLOPs and a random-weight benchmark need: the LLM's shape and the video token
layout (tokens per frame, default frames, newline slots). The family's adapter derives it from a
``config.json`` (``ModelAdapter.geometry_from_config``); known models need no download, their
config's fields that matter are shipped in :data:`KNOWN_CONFIGS` (read off their public configs)
and go through the same adapter.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    def of_llm(cls, name: str, family: str, text_config, **video) -> "ModelGeometry":
        """A geometry whose LLM shape and heads are read from a transformers text config (e.g. ``Qwen2Config``).

        ``video`` gives the video token layout fields (``tokens_per_frame``, ``frames``, ``extra_slots``, ...).
        """
        return cls(name=name, family=family, llm=LLMGeometry.from_config(text_config),
                   heads=text_config.num_attention_heads, text_config=text_config.to_dict(), **video)


QWEN_REFERENCE_PIXELS = 448
"""Qwen2.5-VL token counts are given for 448 x 448 frames: (448 / 28)^2 = 256 tokens per 2 frames."""


def _qwen2(hidden: int, heads: int, kv_heads: int, intermediate: int, layers: int, vocab: int) -> dict:
    """The fields of a Qwen2 LLM's config that its geometry reads."""
    return {"hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "intermediate_size": intermediate, "num_hidden_layers": layers, "vocab_size": vocab}


def _llava_hf_vocab(qwen2_vocab: int) -> int:
    """The LLM vocabulary of a llava-hf LLaVA-OneVision checkpoint: Qwen2's plus ``<image>`` and ``<video>``,
    padded to a multiple of 64 (transformers' ``convert_llava_onevision_weights_to_hf.py``): 152064 -> 152128."""
    return -(-(qwen2_vocab + 2) // 64) * 64


_SIGLIP_384 = {"model_type": "siglip_vision_model", "image_size": 384, "patch_size": 14}
_QWEN_VISION = {"patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
KNOWN_CONFIGS = {
    "Qwen/Qwen2.5-VL-7B-Instruct": {"model_type": "qwen2_5_vl", **_qwen2(3584, 28, 4, 18944, 28, 152064),
                                    "vision_config": _QWEN_VISION},
    "Qwen/Qwen2.5-VL-3B-Instruct": {"model_type": "qwen2_5_vl", **_qwen2(2048, 16, 2, 11008, 36, 151936),
                                    "vision_config": _QWEN_VISION},
    "lmms-lab/LLaVA-Video-7B-Qwen2": {"architectures": ["LlavaQwenForCausalLM"], "model_type": "llava",
                                      "mm_vision_tower": "google/siglip-so400m-patch14-384", **_qwen2(3584, 28, 4, 18944, 28, 152064)},
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": {"model_type": "llava_onevision", "vision_config": _SIGLIP_384,
                                                  "text_config": {"model_type": "qwen2", **_qwen2(896, 14, 2, 4864, 24, _llava_hf_vocab(151936))}},
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": {"model_type": "llava_onevision", "vision_config": _SIGLIP_384,
                                                "text_config": {"model_type": "qwen2", **_qwen2(3584, 28, 4, 18944, 28, _llava_hf_vocab(152064))}},
    "llava-hf/llava-onevision-qwen2-72b-ov-hf": {"model_type": "llava_onevision", "vision_config": _SIGLIP_384,
                                                 "text_config": {"model_type": "qwen2", **_qwen2(8192, 64, 8, 29568, 80, _llava_hf_vocab(152064))}},
}
"""The shipped models: the fields of their public ``config.json`` that the geometry reads (the rest are
the transformers defaults), so their geometry needs no download and comes from the same adapter code."""


def transformers_config(config: dict, path: Path | None = None):
    """A ``config.json`` dict as the transformers config class of its ``model_type`` reads it (no file read).

    Raises
    ------
    ModelError
        For a ``model_type`` transformers does not know.
    """
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise ModelError(f"{path or 'the config'}: transformers does not know model_type {model_type!r}")
    return CONFIG_MAPPING[model_type].from_dict(dict(config))


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
    from . import family_of
    from .registry import adapter_class

    family = family_of(config, path or Path(name), layout)
    return adapter_class(family).geometry_from_config(config, name, path)


PUBLISHED = Path(__file__).resolve().parent / "published"
"""Published checkpoint files shipped with the package (see its README.md): their ``config.json`` gives
the geometry of those repo ids with no download."""


def known_geometry(repo_id: str) -> ModelGeometry | None:
    """The geometry of a shipped repo id (:data:`KNOWN_CONFIGS`, or a ``config.json`` under :data:`PUBLISHED`), or None."""
    if repo_id in KNOWN_CONFIGS:
        return geometry_from_config(KNOWN_CONFIGS[repo_id], repo_id)
    published = PUBLISHED / repo_id.rpartition("/")[2] / "config.json"
    if repo_id.startswith("Qwen/") and published.exists():
        import json

        return geometry_from_config(json.loads(published.read_text()), repo_id, published.parent)
    return None


def geometry_from_folder(path: Path, name: str | None = None) -> ModelGeometry:
    """Geometry of a local checkpoint folder, from its ``config.json`` alone (see :func:`geometry_from_config`).

    Raises
    ------
    ModelError
        If the config is missing, unreadable or of an unsupported family.
    """
    from .registry import read_config

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
    from dataclasses import replace

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
    from .tiny_names import TINY_MODELS
    from . import ALIASES, resolve_model

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

    from ..hub import hub_offline, hub_unreachable

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
    except Exception as err:
        raise ModelError(f"no geometry for {repo_id}: cannot fetch its config.json ({type(err).__name__})") from None
