"""Qwen3.5, dense and MoE (Qwen/Qwen3.5-0.8B ... -27B; -35B-A3B, -122B-A10B, -397B-A17B), through
transformers' native classes (``models/qwen3_5``, ``models/qwen3_5_moe``).

Qwen3.5 is natively multimodal: every size takes video through Qwen3-VL's processor
(``Qwen3VLProcessor``, ``Qwen3VLVideoProcessor``) and a Qwen3-VL vision tower without DeepStack, so
the video layout, sampling, sizing, saliency and M-RoPE positions are Qwen3-VL's
(:class:`~.qwen3_vl.Qwen3VLAdapter`, reused, not copied). What differs:

- The language model is a hybrid: ``text_config.layer_types`` lists ``linear_attention`` (Gated
  DeltaNet) and ``full_attention`` layers, three of the first for every one of the second. A Gated
  DeltaNet layer keeps a recurrent state and a convolution state instead of a growing KV list, so a
  video prefix reused across questions cannot be cropped back: each question decodes on an exact
  copy of the cache after the prefix (KV, recurrent and convolution states alike), and every
  question sees the same state.
- The chat template has a thinking switch (``enable_thinking``): off by default for ``ask`` (short
  answers; the template then writes an empty think block), on with ``--thinking``, the reasoning
  then returned apart from the answer.
- Gated DeltaNet runs on transformers' torch fallback unless the optional kernels are installed
  (CUDA only: flash-linear-attention's ``fla``, the ``linear`` extra, and ``causal-conv1d``, built apart:
  ``pip install causal-conv1d --no-build-isolation``); transformers picks them itself, and a note says
  which path ran.

Detection and settings come from the config (``model_type``, ``layer_types``, sizes), never from a
list of repo names, so a later checkpoint of the same architecture runs without a code change.
"""

from __future__ import annotations

import copy
import importlib.util
from typing import ClassVar

import torch

from .qwen3_vl import QWEN3_SAMPLING, TINY_EXPERTS, TINY_VISION, VIDEO_LAYOUT_FIELDS, Qwen3VLAdapter, Qwen3VLPixels
from .recipe import QWEN2_VL_TOKENS, QWEN_MEDIA_TOKENS, QWEN_VL_ROLES, TINY_TEXT, TinyRecipe, scale_sections
from .settings import RunSettings

MODEL_TYPES = {"qwen3_5": "Qwen3_5ForConditionalGeneration", "qwen3_5_moe": "Qwen3_5MoeForConditionalGeneration"}
"""transformers model types of the family -> their model class."""
QWEN3_5_TOKENS = {token_id + 96401: token for token_id, token in QWEN2_VL_TOKENS.items()}
"""Qwen3.5's special tokens by id: Qwen2-VL's, in the same order, from 248044 (``<|endoftext|>``; ``<|im_end|>``
248046, ``<|vision_start|>`` 248053 ... ``<|video_pad|>`` 248057, as the published config.json's role ids say)."""
LINEAR_KERNELS = {"fla": "flash-linear-attention", "causal_conv1d": "causal-conv1d"}
"""Import name -> package of the optional Gated DeltaNet kernels transformers uses when they import (CUDA only)."""
TINY_LINEAR = {"linear_num_key_heads": 2, "linear_num_value_heads": 4, "linear_key_head_dim": 16, "linear_value_head_dim": 16}
"""Test-size Gated DeltaNet: 2 query/key heads, 4 value heads (the 9B's 1 : 2), head width 16."""
TINY_HEAD_DIM = 32
"""Test-size attention head width: with ``partial_rotary_factor`` 0.25, 8 rotary dims hold the three M-RoPE sections."""


def linear_attention_path(device: torch.device) -> str:
    """Which Gated DeltaNet implementation transformers runs on ``device``: the optional kernels where they
    import and the device is a GPU, else its torch fallback (``torch_chunk_gated_delta_rule``)."""
    found = [package for module, package in LINEAR_KERNELS.items() if importlib.util.find_spec(module) is not None]
    if torch.device(device).type == "cuda" and found:
        return f"Gated DeltaNet on the {' and '.join(found)} kernels"
    missing = "" if found else f" ({' and '.join(LINEAR_KERNELS.values())} not installed)"
    where = " on the CPU" if found and torch.device(device).type != "cuda" else missing
    return f"Gated DeltaNet on transformers' torch fallback{where}"


def shrink_config(config: dict, vocab_size: int) -> dict:
    """A published Qwen3.5 config at test size: the LLM's widths and heads, 4 layers keeping the published
    pattern of layer types (three Gated DeltaNet, then one full attention), small DeltaNet heads, M-RoPE
    sections in the same proportions over the rotary dims, 4 experts of which 2 active (MoE), a 4-block
    vision tower. Patch, merge and temporal patch sizes, the conv kernel and the rotary factor stay."""
    text = config["text_config"] | TINY_TEXT | TINY_LINEAR | {"vocab_size": vocab_size, "head_dim": TINY_HEAD_DIM}
    published = config["text_config"].get("layer_types") or []
    interval = int(config["text_config"].get("full_attention_interval", 4))
    text["num_hidden_layers"] = interval
    text["layer_types"] = (
        published[:interval] if len(published) >= interval else (["linear_attention"] * (interval - 1) + ["full_attention"])
    )
    rope_key = "rope_parameters" if "rope_parameters" in text else "rope_scaling"
    rope = text.get(rope_key) or {}
    if "mrope_section" in rope:
        factor = rope.get("partial_rotary_factor", text.get("partial_rotary_factor", 1.0))
        text[rope_key] = rope | {"mrope_section": scale_sections(rope["mrope_section"], int(TINY_HEAD_DIM * factor) // 2)}
    if "num_experts" in text:
        text |= TINY_EXPERTS
        if "shared_expert_intermediate_size" in text:
            text["shared_expert_intermediate_size"] = TINY_EXPERTS["moe_intermediate_size"]
    vision = config["vision_config"] | TINY_VISION | {"out_hidden_size": TINY_TEXT["hidden_size"]}
    return config | {"text_config": text, "vision_config": vision}


class Qwen3_5Adapter(Qwen3VLAdapter):
    """FastVID on Qwen3.5 (dense and MoE): Qwen3-VL's video path, a hybrid cache copied per question.

    Parameters
    ----------
    model : transformers.Qwen3_5ForConditionalGeneration or Qwen3_5MoeForConditionalGeneration
    processor : transformers.Qwen3VLProcessor
    model_id : str
    overrides : SettingsOverrides, optional
    notes : list of str
    tiny_random : bool
    """

    family = "qwen3_5"
    model_types = MODEL_TYPES
    paper = RunSettings(
        family="qwen3_5",
        sampling=QWEN3_SAMPLING,
        pixels=Qwen3VLPixels(),
        pooling="2x2 patch merge",
        newlines="none; a timestamp and start/end tokens around every temporal patch",
        system_prompt=None,
        thinking=False,
    )
    """Not a paper's run: the model's own sampling, sizing and chat template (no system turn), thinking off."""
    lmms_eval_model = "qwen3_5"  # lmms-eval's own Qwen3.5 wrapper (no paper run)
    lmms_eval_tasks: ClassVar[dict] = {}
    tiny_recipe = TinyRecipe(
        display_name="Qwen3.5",
        model_class=lambda config: MODEL_TYPES[config["model_type"]],
        layout_fields=(
            *VIDEO_LAYOUT_FIELDS,
            ("config.json", "vision_config.deepstack_visual_indexes"),
            ("config.json", "text_config.full_attention_interval"),
            ("config.json", "text_config.partial_rotary_factor"),
            ("config.json", "text_config.attn_output_gate"),
            ("config.json", "text_config.linear_conv_kernel_dim"),
        ),
        special_tokens=QWEN3_5_TOKENS,
        role_ids=QWEN_VL_ROLES,
        media_tokens=QWEN_MEDIA_TOKENS,
        shrink=shrink_config,
    )

    @classmethod
    def claims(cls, config: dict) -> bool:
        """transformers' ``qwen3_5`` and ``qwen3_5_moe`` checkpoints."""
        return config.get("model_type") in MODEL_TYPES

    def init_settings(self, overrides, notes=()) -> None:
        """Qwen3-VL's, with a note on the Gated DeltaNet implementation that runs (see :func:`linear_attention_path`)."""
        super().init_settings(overrides, (*notes, linear_attention_path(self.device)))

    @property
    def thinking(self) -> bool:
        """Whether the model reasons before it answers: the settings' switch (off by default, ``--thinking``)."""
        return bool(self.settings.thinking)

    def chat_template_kwargs(self) -> dict:
        """The template's thinking switch, as the settings say (``enable_thinking``)."""
        return {"enable_thinking": self.thinking}

    def generation_config(self, max_new_tokens: int):
        """The base's greedy config, also stopping at the end of the assistant's turn (``<|im_end|>``): the
        published Qwen3.5 repos ship no generation_config.json, and their config.json's ``eos_token_id`` is
        ``<|endoftext|>`` alone, which a chat answer is not followed by."""
        config = super().generation_config(max_new_tokens)
        turn_end = self.processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
        stops = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
        if isinstance(turn_end, int) and turn_end not in stops:
            config.eos_token_id = [stop for stop in stops if stop is not None] + [turn_end]
        return config

    def question_cache(self, cache):
        """An exact copy of the prefix's cache (KV, recurrent and convolution states): Gated DeltaNet's states
        cannot be cropped back to the prefix, so each question decodes on its own copy."""
        return copy.deepcopy(cache)
