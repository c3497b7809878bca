"""Model geometries for analytic FLOPs and benchmarks, shipped so they work with no download.

A geometry is what FLOPs and a random-weight benchmark need: the LLM's shape and the video token
layout (tokens per frame, default frames, newline slots). Known models come from the table below
(read off their public configs); any local checkpoint folder is read from its ``config.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
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
    """

    name: str
    family: str
    llm: LLMGeometry
    heads: int
    tokens_per_frame: int
    frames: int
    extra_slots: int

    def to_dict(self) -> dict:
        return asdict(self)


def _qwen2(hidden, heads, kv_heads, inter, layers, vocab):
    return LLMGeometry(hidden=hidden, kv_dim=kv_heads * (hidden // heads), intermediate=inter, layers=layers, vocab=vocab), heads


_OV = {"family": "llava_onevision", "tokens_per_frame": 196, "frames": 32, "extra_slots": 1}
KNOWN = {
    "llava-hf/llava-onevision-qwen2-0.5b-ov-hf": (_qwen2(896, 14, 2, 4864, 24, 151936), _OV),
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": (_qwen2(3584, 28, 4, 18944, 28, 152064), _OV),
    "llava-hf/llava-onevision-qwen2-72b-ov-hf": (_qwen2(8192, 64, 8, 29568, 80, 152064), _OV),
}


def known_geometry(repo_id: str) -> ModelGeometry | None:
    """The shipped geometry of a known repo id, or None."""
    if repo_id not in KNOWN:
        return None
    (llm, heads), video = KNOWN[repo_id]
    return ModelGeometry(name=repo_id, llm=llm, heads=heads, **video)


def geometry_from_folder(path: Path, name: str | None = None) -> ModelGeometry:
    """Geometry of a local checkpoint folder, from its ``config.json`` alone (no weights read).

    Raises
    ------
    ModelError
        If the config is missing, unreadable or of an unsupported family.
    """
    from transformers import AutoConfig

    from . import detect_family

    family = detect_family(path)
    config = AutoConfig.from_pretrained(str(path))
    text = config.text_config
    vision = config.vision_config
    side = vision.image_size // vision.patch_size
    pooled = -(-side // 2)  # LLaVA-OneVision: bilinear pooling to ceil(27 / 2) = 14 per side
    try:
        frames = json.loads((path / "fastvid.json").read_text()).get("frames", 32)
    except (OSError, ValueError):
        frames = 32
    return ModelGeometry(
        name=name or str(path),
        family=family,
        llm=LLMGeometry.from_config(config),
        heads=text.num_attention_heads,
        tokens_per_frame=pooled * pooled,
        frames=frames,
        extra_slots=1,
    )


def model_geometry(name: str) -> ModelGeometry:
    """Geometry of a model named as ``--model`` takes it, without loading weights.

    Known repo ids and aliases need no network; ``tiny-random`` and local folders are read from
    their config; another repo id needs its ``config.json`` (cached, or fetched from the Hub).

    Raises
    ------
    ModelError
        Unknown or unreachable model, or an unsupported architecture.
    """
    from . import ALIASES, resolve_model
    from ..tiny import TINY_RANDOM

    repo_id = ALIASES.get(name, name)
    known = known_geometry(repo_id)
    if known is not None:
        return known
    local = Path(name).expanduser()
    if name == TINY_RANDOM or local.is_dir():
        resolved = resolve_model(name)
        return geometry_from_folder(resolved.path, name)
    return geometry_from_folder(_fetch_config(repo_id), repo_id)


def _fetch_config(repo_id: str) -> Path:
    from huggingface_hub import hf_hub_download

    from ..hub import hub_offline

    if repo_id.count("/") != 1:
        raise ModelError(f"unknown model {repo_id!r}: pass a Hub repo id, an alias, a local checkpoint folder, or tiny-random")
    try:
        return Path(hf_hub_download(repo_id, "config.json", local_files_only=True)).parent
    except Exception:
        if hub_offline():
            raise ModelError(f"no geometry for {repo_id}: its config.json is not cached and HF_HUB_OFFLINE is set") from None
    try:
        return Path(hf_hub_download(repo_id, "config.json")).parent
    except Exception as err:
        raise ModelError(f"no geometry for {repo_id}: cannot fetch its config.json ({type(err).__name__})") from None
