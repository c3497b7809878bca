"""Model geometries for analytic FLOPs and benchmarks, shipped so they work with no download.

A geometry is what FLOPs and a random-weight benchmark need: the LLM's shape and the video token
layout (tokens per frame, default frames, newline slots). Known models come from the table below
(read off their public configs); any local checkpoint folder is read from its ``config.json``.
"""

from __future__ import annotations

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
    newlines_per_frame : int
        Newline slots per frame that go with their rows (LLaVA-Video's grid: 13); a pruned prompt
        keeps those of the rows that keep a token.
    frames_per_group : int
        Sampled frames per token frame (Qwen2.5-VL's temporal patch: 2; its tokens per group are
        given at :data:`QWEN_REFERENCE_PIXELS`, since they depend on the video's resolution).
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

    def token_frames(self, frames: int) -> int:
        """Frames as the LLM sees them: sampled frames / frames_per_group (rounded up)."""
        return -(-frames // self.frames_per_group)

    def to_dict(self) -> dict:
        return asdict(self)


def _qwen2(hidden, heads, kv_heads, inter, layers, vocab):
    return LLMGeometry(hidden=hidden, kv_dim=kv_heads * (hidden // heads), intermediate=inter, layers=layers, vocab=vocab), heads


_OV = {"family": "llava_onevision", "tokens_per_frame": 196, "frames": 32, "extra_slots": 1}
_VIDEO = {"family": "llava_video", "tokens_per_frame": 169, "frames": 64, "extra_slots": 0, "newlines_per_frame": 13}
QWEN_REFERENCE_PIXELS = 448
"""Qwen2.5-VL token counts are given for 448 x 448 frames: (448 / 28)^2 = 256 tokens per 2 frames."""
_QWEN = {"family": "qwen2_5_vl", "tokens_per_frame": (QWEN_REFERENCE_PIXELS // 28) ** 2, "frames": 32, "extra_slots": 0,
         "frames_per_group": 2}
KNOWN = {
    "Qwen/Qwen2.5-VL-7B-Instruct": (_qwen2(3584, 28, 4, 18944, 28, 152064), _QWEN),
    "Qwen/Qwen2.5-VL-3B-Instruct": (_qwen2(2048, 16, 2, 11008, 36, 151936), _QWEN),
    "lmms-lab/LLaVA-Video-7B-Qwen2": (_qwen2(3584, 28, 4, 18944, 28, 152064), _VIDEO),
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

    The video layout is the one ``fastvid ask`` runs: the paper's for the family (LLaVA-Video:
    average pooling to 13 x 13 and a newline per row, whatever the config's ``mm_spatial_pool_mode``),
    and the paper's frame count (Qwen2.5-VL, sampled by time: 32 frames at 448 x 448 px).

    Raises
    ------
    ModelError
        If the config is missing, unreadable or of an unsupported family.
    """
    from transformers import AutoConfig

    from . import detect_family
    from .llava_video import PAPER_LAYOUT, is_llava_next, llava_next_text_config, read_config
    from .settings import paper_settings

    family = detect_family(path)
    raw = read_config(path)
    frames = paper_settings(family).sampling.frames or 32
    if is_llava_next(raw):  # LLaVA-NeXT: the LLM's shape sits at the top level
        text = llava_next_text_config(raw, path)
        vision = raw.get("vision_config") or {"image_size": 384, "patch_size": 14}
        side = vision["image_size"] // vision["patch_size"]
        llm = LLMGeometry.from_config(text)
        heads = text.num_attention_heads
    elif family == "qwen2_5_vl":
        config = AutoConfig.from_pretrained(str(path))
        merged = QWEN_REFERENCE_PIXELS // (config.vision_config.patch_size * config.vision_config.spatial_merge_size)
        return ModelGeometry(name=name or str(path), family=family, llm=LLMGeometry.from_config(config.text_config),
                             heads=config.text_config.num_attention_heads, tokens_per_frame=merged * merged, frames=frames,
                             extra_slots=0, frames_per_group=config.vision_config.temporal_patch_size)
    else:
        config = AutoConfig.from_pretrained(str(path))
        side = config.vision_config.image_size // config.vision_config.patch_size
        llm = LLMGeometry.from_config(config)
        heads = config.text_config.num_attention_heads
    if family == "llava_video":
        pooled = PAPER_LAYOUT.pooled_side(side)
        return ModelGeometry(name=name or str(path), family=family, llm=llm, heads=heads, tokens_per_frame=pooled * pooled,
                             frames=frames, extra_slots=0, newlines_per_frame=pooled)
    pooled = -(-side // 2)  # LLaVA-OneVision: bilinear pooling to ceil(27 / 2) = 14 per side
    return ModelGeometry(name=name or str(path), family=family, llm=llm, heads=heads, tokens_per_frame=pooled * pooled,
                         frames=frames, extra_slots=1)


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
    from .settings import QWEN_FACTOR

    height, width = settings.pixels.frame_size(info.height, info.width, frames)
    return replace(geometry, frames=frames, tokens_per_frame=(height // QWEN_FACTOR) * (width // QWEN_FACTOR)), frames


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
