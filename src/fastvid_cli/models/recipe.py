"""How a family's random-weight checkpoint is built from its published files: data each adapter declares.

Every tiny checkpoint (``--model tiny-random*``, ``fastvid tiny-model --arch``, ``--config REAL_DIR``) is
written by one builder, :mod:`fastvid_cli.tiny`, with random weights from a real checkpoint's published
``config.json``, processor files and chat template. What differs between families is declared here,
on the adapter (``ModelAdapter.tiny_recipe``): the transformers class, the published fields that decide
the layout, the special tokens of the real tokenizer by id (its vocabulary files are not at hand), how
the config shrinks to test size, and, for a checkpoint format transformers does not read natively
(LLaVA-NeXT's, llava-hf's processor), the hooks that build its config and processor. The builder reads
these; no family module imports the builder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TINY_TEXT = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
}
"""Test-size LLM: widths, depth and heads (head_dim 16)."""
TINY_SIGLIP = {"hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 2}
"""Test-size SigLIP tower of the LLaVA families (image size and patch size stay as published: 384 px, 27 x 27 patches)."""

QWEN2_CHAT_TOKENS = {151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>"}
"""The added tokens of Qwen2's tokenizer (the LLM of every LLaVA family here)."""
QWEN2_VL_TOKENS = {
    **QWEN2_CHAT_TOKENS,
    151646: "<|object_ref_start|>",
    151647: "<|object_ref_end|>",
    151648: "<|box_start|>",
    151649: "<|box_end|>",
    151650: "<|quad_start|>",
    151651: "<|quad_end|>",
    151652: "<|vision_start|>",
    151653: "<|vision_end|>",
    151654: "<|vision_pad|>",
    151655: "<|image_pad|>",
    151656: "<|video_pad|>",
}
"""Qwen2-VL / Qwen2.5-VL / Qwen3-VL special tokens by id (their tokenizer.json; the realcfg folders lack it).
Checked against the role ids of the published config.json (``vision_start_token_id`` ...)."""
QWEN_VL_ROLES = {
    "vision_start_token_id": "<|vision_start|>",
    "vision_end_token_id": "<|vision_end|>",
    "vision_token_id": "<|vision_pad|>",
    "image_token_id": "<|image_pad|>",
    "video_token_id": "<|video_pad|>",
}
"""Config keys of the Qwen VL families and the token their id must be."""
QWEN_MEDIA_TOKENS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}


@dataclass(frozen=True)
class TinyRecipe:
    """What the random-weight builder needs to know of a family (see the module's docstring).

    Attributes
    ----------
    display_name : str
        For the builder's summary, e.g. ``Qwen3-VL``.
    model_class : str
        transformers class the checkpoint loads into, e.g. ``Qwen3VLForConditionalGeneration``; a
        callable of the published config for a family of several (dense and MoE).
    layout_fields : tuple of (str, str)
        Published (file, dotted field) pairs that decide layout, prompt or decoding: reported as kept.
    special_tokens : dict of int to str
        The real tokenizer's special tokens by id. Those a published ``tokenizer_config.json``
        (``added_tokens_decoder``) or ``added_tokens.json`` lists are added to them.
    role_ids : dict of str to str
        Config keys whose id must be a given token (a mismatch means a tokenizer this recipe does not know).
    media_tokens : dict
        ``image_token`` / ``video_token`` names for the processor.
    renames : tuple of (str, str)
        transformers 5 tensor names (regex) -> the published checkpoint's.
    shrink : callable
        (Published ``config.json`` (a copy), vocabulary size) -> its test-size version: widths, depths,
        heads, the vocabulary, and what depends on them (rope sections, DeepStack layers, experts),
        layout fields untouched. By default the config as it is.
    chat_template : str, optional
        The local chat template, for a family whose checkpoints publish none (llava-hf's).
    format_name : str
        Said after ``display_name`` in the builder's summary, e.g. ``LLaVA-NeXT format``; empty for
        transformers' own format.
    model_config : callable, optional
        (Written ``config.json``, local tokenizer, published folder) -> the transformers config the
        weights are drawn from, for a ``config.json`` transformers cannot read (LLaVA-NeXT's); raises
        ``ModelError`` for a config the family cannot map. Default: the config class of its ``model_type``.
    siglip_head : bool
        Write a SigLIP post_layernorm + pooling head in ``siglip_head/`` (the LLaVA families: their
        checkpoints drop it; FastVID's saliency needs it).
    write_processor : callable, optional
        (transformers config, output folder, written file names) -> names of the processor files it
        wrote, for a family whose published folder lacks them (llava-hf's LLaVA-OneVision).
    """

    display_name: str
    model_class: str | Callable[[dict], str]
    layout_fields: tuple[tuple[str, str], ...]
    special_tokens: dict[int, str] = field(default_factory=dict)
    role_ids: dict[str, str] = field(default_factory=dict)
    media_tokens: dict = field(default_factory=dict)
    renames: tuple[tuple[str, str], ...] = ()
    shrink: Callable[[dict, int], dict] = lambda config, vocab_size: config
    chat_template: str | None = None
    format_name: str = ""
    model_config: Callable[[dict, Any, Path], Any] | None = None
    siglip_head: bool = False
    write_processor: Callable[[Any, Path, set[str]], list[str]] | None = None

    def class_name(self, config: dict) -> str:
        """The transformers class of a (published or planned) config."""
        return self.model_class(config) if callable(self.model_class) else self.model_class


def scale_sections(sections: list[int], total: int) -> list[int]:
    """Split ``total`` into positive parts in the proportions of ``sections`` (largest remainder):
    M-RoPE's ``mrope_section`` for a test-size head.

    >>> scale_sections([16, 24, 24], 8)
    [2, 3, 3]
    """
    weight = sum(sections)
    raw = [s * total / weight for s in sections]
    parts = [max(1, int(r)) for r in raw]
    while sum(parts) < total:
        parts[max(range(len(parts)), key=lambda i: (raw[i] - parts[i], -i))] += 1
    while sum(parts) > total:
        parts[max(range(len(parts)), key=lambda i: (parts[i] - raw[i], parts[i]))] -= 1
    return parts


def scale_layers(published: list[int], depth: int, published_depth: int) -> list[int]:
    """Layer indexes of a ``published_depth``-layer tower mapped onto ``depth`` layers, in proportion and
    kept distinct where the depth allows (DeepStack's source blocks).

    >>> scale_layers([8, 16, 24], 4, 27)
    [1, 2, 3]
    """
    mapped = []
    for index in published:
        layer = min(depth - 1, round(index * depth / published_depth))
        while layer in mapped and layer < depth - 1:
            layer += 1
        mapped.append(layer)
    return mapped
