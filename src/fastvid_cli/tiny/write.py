"""Writing a planned tiny checkpoint (:mod:`.plan`) with random weights: safetensors shards,
the published files, the local tokenizer and processor files, the SigLIP head and the ``fastvid.json`` marker.

>>> from fastvid_cli.tiny.write import build_from_config
>>> build_from_config("tests/realcfg/LLaVA-Video-7B-Qwen2", "/tmp/tiny-llava-video")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from ..errors import InputError
from ..models.siglip_head import SIGLIP_HEAD_DIR
from ..models.tiny_names import MARKER
from .plan import TinyPlan, head_config, head_shapes, meta_state, plan_from_config
from .tokenizer import unprintable_token_ids

FORMAT_VERSION = 2
"""Version of what a tiny checkpoint holds; the cache folder of a ``tiny-random*`` model carries it, so a
change here builds them anew. 2: every family built from its published files (1: hand-written builders
for the paper's three families)."""

DEFAULT_SHARD_BYTES = 5 * 1024**3
"""Largest safetensors shard written by default (5 GiB, as transformers' ``save_pretrained``)."""


def build_from_config(
    real_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    full_size: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
) -> Path:
    """Write a random-weight checkpoint built from a real checkpoint's published files.

    Kept as published: every field of ``config.json`` that decides the video layout (LLaVA-Video's
    ``mm_*`` fields, ``force_sample``, ``add_time_instruction``, ``image_aspect_ratio``; LLaVA-OneVision's
    image size, patch size, vision feature layer and strategy, aspect ratio, grid pinpoints, newline
    parameter; Qwen2.5-VL's patch, merge, temporal patch, window, tokens per second, full-attention
    pattern), ``tie_word_embeddings``, positions (rope, max positions), the processor configs
    (Qwen's ``preprocessor_config.json`` and LLaVA-OneVision's ``processor_config.json`` verbatim; no
    ``video_preprocessor_config.json`` where the real repo has none), the chat template, the special
    tokens and their roles, and the generation config (sampling fields verbatim). Tensor names are the
    published checkpoint's (LLaVA-NeXT's for LLaVA-Video, llava-hf's, Qwen's).

    Shrunk unless ``full_size``: the LLM's width, MLP width, depth, heads and KV heads, the vocabulary
    (the local tokenizer's size plus spare rows), the vision tower's width, depth and heads (image
    size and patch size stay), Qwen's M-RoPE sections (same proportions, sum = head_dim / 2) and
    full-attention block indexes (the last block stays full, some windowed blocks remain), and
    ``mm_hidden_size`` / ``out_hidden_size`` accordingly. Tiny LLaVA-Video checkpoints also get a
    ``vision_config`` (the real one has none: its tower is google/siglip-so400m-patch14-384's).

    Always local: the tokenizer (byte-level BPE, :func:`.tokenizer.build_tokenizer`, with the
    published special tokens, roles and chat template), so every token id in the configs is remapped
    to it; the SigLIP pooling head in ``siglip_head/`` (random, real shapes at full size), so no
    download is needed. ``fastvid.json`` marks the folder as tiny-random (answers are noise) and
    records where it was built from.

    Parameters
    ----------
    real_dir : str or PathLike
        Folder of the real checkpoint's published files (``config.json`` at least).
    out_dir : str or PathLike
        Folder to write; must not exist or be empty.
    full_size : bool
        Keep every dimension and the real ``vocab_size``: weights in the config's dtype, built on
        the GPU if there is one (else the CPU: slow, and a 7B model writes about 15 GB).
    seed : int
        Seed of the random weights (the same seed and device write the same weights).
    device : str or torch.device, optional
        Where the weights are drawn; default: the CPU for tiny checkpoints, the GPU if any at full size.
    max_shard_bytes : int
        Largest safetensors shard; more shards come with a ``model.safetensors.index.json``.

    Returns
    -------
    pathlib.Path
        ``out_dir``.

    Raises
    ------
    InputError
        ``real_dir`` is not a folder, or ``out_dir`` exists and is not empty.
    ModelError
        No readable ``config.json`` in ``real_dir``, an unsupported family, or a published file that
        cannot be mapped (see :func:`plan_from_config`).
    """
    out = Path(out_dir)
    _check_empty(out)
    plan = plan_from_config(real_dir, full_size)
    return write_plan(plan, out, seed=seed, device=device, max_shard_bytes=max_shard_bytes)


def _check_empty(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"{out} exists and is not empty")


def default_device(full_size: bool) -> torch.device:
    """The GPU for full-size weights if there is one; the CPU otherwise."""
    return torch.device("cuda" if full_size and torch.cuda.is_available() else "cpu")


def write_plan(
    plan: TinyPlan,
    out_dir: str | os.PathLike,
    seed: int = 0,
    device: str | torch.device | None = None,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    weights: bool = True,
) -> Path:
    """Write ``plan`` (from :func:`plan_from_config`) with random weights to ``out_dir``.

    See :func:`build_from_config` for what is written. ``weights=False`` writes every file but the
    model's weights (the SigLIP head is still written: 60 MB at full size), for a caller that builds
    the model from ``plan.model_config`` in memory (``benchmarks/gpu_suite.py``: 16 GB of a 7B model
    never touch the disk).

    Raises
    ------
    InputError
        ``out_dir`` exists and is not empty.
    """
    out = Path(out_dir)
    _check_empty(out)
    out.mkdir(parents=True, exist_ok=True)
    target = torch.device(device) if device is not None else default_device(plan.full_size)
    generator = torch.Generator(device=target).manual_seed(seed)
    if weights:
        state = meta_state(plan)
        tensors = (
            (name, _random_tensor(name, meta.shape, plan.dtype, target, generator, plan.init_std)) for name, meta in state.items()
        )
        _save_sharded(tensors, out, max_shard_bytes)
    files = dict(plan.files)
    local_files = []
    if not plan.full_size:  # keep the tiny model's noise printable
        generation = files.get("generation_config.json")
        if generation is None:
            from transformers import GenerationConfig

            generation = json.loads(GenerationConfig.from_model_config(plan.model_config).to_json_string(use_diff=True))
            local_files.append("generation_config.json")
        files["generation_config.json"] = generation | {"suppress_tokens": unprintable_token_ids(plan.tokenizer)}
    for name, content in files.items():
        (out / name).write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    if _write_tokenizer(plan, out):
        local_files.append("chat_template.jinja")
    if plan.recipe.write_processor is not None:
        local_files += plan.recipe.write_processor(plan.model_config, out, set(plan.files))
    if plan.head_config is not None:
        _write_siglip_head(plan, out / SIGLIP_HEAD_DIR, seed + 1, target)
    marker = {
        "tiny_random": True,
        "format_version": FORMAT_VERSION,
        "built_from": {"path": str(plan.real_dir.resolve()), "family": plan.family},
        "full_size": plan.full_size,
        "tokenizer": "local",
        "seed": seed,
        "dtype": str(plan.dtype).removeprefix("torch."),
        "init_std": plan.init_std,
        "shrunk": {k: list(v) for k, v in plan.shrunk.items()},
        "token_ids": {k: list(v) for k, v in plan.token_ids.items()},
        "published_files": sorted(plan.files),
        "local_files": sorted(["tokenizer.json", "tokenizer_config.json", *local_files]),
        "notes": plan.notes,
    }
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


def _random_tensor(name: str, shape, dtype, device, generator, std: float) -> torch.Tensor:
    """Norm weights 1, biases 0, everything else N(0, std): cheap, seeded, drawn on ``device``."""
    tensor = torch.empty(tuple(shape), dtype=dtype, device=device)
    leaf = name.rsplit(".", 2)[-2:]
    if name.endswith(".weight") and len(shape) == 1 and ("norm" in leaf[0] or leaf[0] in ("ln_q",)):
        return tensor.fill_(1.0)
    if name.endswith(("bias", "_bias")):
        return tensor.zero_()
    return tensor.normal_(0.0, std, generator=generator)


def _save_sharded(tensors: Iterator[tuple[str, torch.Tensor]], out: Path, max_shard_bytes: int) -> None:
    """Stream tensors into safetensors shards of at most ``max_shard_bytes`` (one file if they fit)."""
    from safetensors.torch import save_file

    parts: list[tuple[Path, list[str]]] = []
    current: dict[str, torch.Tensor] = {}
    size = total = 0

    def flush():
        path = out / f".shard-{len(parts):05d}.safetensors"
        save_file(current, str(path), metadata={"format": "pt"})
        parts.append((path, list(current)))

    for name, tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if current and size + nbytes > max_shard_bytes:
            flush()
            current, size = {}, 0
        current[name] = tensor.detach().to("cpu").contiguous()
        size += nbytes
        total += nbytes
    flush()
    if len(parts) == 1:
        parts[0][0].rename(out / "model.safetensors")
        return
    weight_map: dict[str, str] = {}
    for i, (path, names) in enumerate(parts):
        final = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
        path.rename(out / final)
        weight_map |= dict.fromkeys(names, final)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _write_tokenizer(plan: TinyPlan, out: Path) -> bool:
    """The local tokenizer, with the published tokenizer_config fields (roles, template) merged in.

    A published chat template stays where the real checkpoint has it (``chat_template.json``, a verbatim
    ``chat_template.jinja``, or ``tokenizer_config.json``); a local one (:attr:`TinyRecipe.chat_template`)
    is saved as the tokenizer saves it (``chat_template.jinja``). Returns whether it wrote a local template.
    """
    plan.tokenizer.save_pretrained(str(out))
    config_path = out / "tokenizer_config.json"
    saved = json.loads(config_path.read_text()) | plan.tokenizer_config
    template = out / "chat_template.jinja"
    published = plan.real_dir / "chat_template.jinja"
    if published.exists() or "chat_template.json" in plan.files or "chat_template" in plan.tokenizer_config:
        saved.setdefault("chat_template", plan.tokenizer.chat_template)
        template.unlink(missing_ok=True)
        if published.exists():  # verbatim, where the processor reads it
            template.write_text(published.read_text())
        local = False
    else:
        local = template.exists()
    config_path.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
    return local


def _write_siglip_head(plan: TinyPlan, folder: Path, seed: int, device: torch.device) -> None:
    """SigLIP post_layernorm + pooling head (random, float32) under google's key names, with its config."""
    from transformers import SiglipVisionConfig

    config = SiglipVisionConfig(**head_config(plan))
    shapes = head_shapes(plan)
    generator = torch.Generator(device=device).manual_seed(seed)
    std = plan.init_std if not plan.full_size else 0.02
    folder.mkdir(parents=True, exist_ok=True)
    _save_sharded(
        ((k, _random_tensor(k, s, torch.float32, device, generator, std)) for k, s in shapes.items()), folder, DEFAULT_SHARD_BYTES
    )
    written = config.to_dict() | {"model_type": "siglip_vision_model"}
    (folder / "config.json").write_text(json.dumps(written, indent=2) + "\n")
