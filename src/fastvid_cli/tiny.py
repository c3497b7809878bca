"""Tiny random-weight checkpoints with the real architectures and token geometry, built offline.

``fastvid ask ... --model tiny-random`` and the tests use them: everything runs with no Hub access
and no GPU. Their answers are noise; only shapes, token counts and the code paths are real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .models.llava_onevision import llava_processors
from .models.llava_video import TO_LLAVA_NEXT
from .models.tiny_names import is_tiny_random  # noqa: F401 (is_tiny_random: re-exported)
from .siglip_head import SIGLIP_HEAD_DIR

FORMAT_VERSION = 1

# Qwen2-style chat template with LLaVA-OneVision's placement of <image>/<video> before the text.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}"
    "{% endif %}{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"]


# Text the tiny tokenizer's merges are learned from, so that its noise reads as word pieces.
_CORPUS = (
    "A video language model answers questions about a video. The person walks to the door and opens it. "
    "A red car drives down the street while two bikes pass by. The camera pans left, then the scene changes. "
    "What happens in this video? Describe the main events in order. Who is talking, and what do they hold? "
    "FastVID prunes video tokens: dynamic segmentation splits the frames, salient tokens are kept, and "
    "density peaks merge the rest. The answer is short and clear."
)


def build_tokenizer(special_tokens: list[str] | None = None, media_tokens: dict[str, str] | None = None):
    """A byte-level BPE tokenizer with chat special tokens, built with no download.

    Its vocabulary is the 256 byte symbols, a few hundred merges learned from a fixed built-in
    English text (deterministic), and the special tokens.

    Parameters
    ----------
    special_tokens : list of str, optional
        Default :data:`SPECIAL_TOKENS` (Qwen2's chat tokens plus ``<image>`` and ``<video>``).
    media_tokens : dict, optional
        ``image_token`` / ``video_token`` names for the processors; default LLaVA's ``<image>`` and
        ``<video>``; ``{}`` for a tokenizer without them (a LLaVA-NeXT checkpoint's).

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=512, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    backend.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    backend.add_special_tokens(special_tokens or SPECIAL_TOKENS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens={"image_token": "<image>", "video_token": "<video>"} if media_tokens is None else media_tokens,
        model_max_length=131072,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def unprintable_token_ids(tokenizer) -> list[int]:
    """Ids of tokens that decode to control characters or partial UTF-8 (kept out of tiny answers)."""
    bad = []
    for token, index in tokenizer.get_vocab().items():
        if token in SPECIAL_TOKENS or token in QWEN_SPECIAL_TOKENS:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        if not text or any(not (ch.isprintable() or ch == " ") or ch == "\ufffd" for ch in text):
            bad.append(index)
    return sorted(bad)


def tiny_vision_config(**overrides):
    """SigLIP-so400m geometry (384 px, patch 14, 27x27 = 729 patches) at a tiny width; ``overrides``
    replace fields (e.g. the real width for a benchmark)."""
    from transformers import SiglipVisionConfig

    fields = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 384,
        "patch_size": 14,
        "vision_use_head": False,
    }
    return SiglipVisionConfig(**(fields | overrides))


def build_llava_onevision(
    out_dir: str | os.PathLike, seed: int = 0, text: dict | None = None, vision: dict | None = None
) -> Path:
    """Write a tiny random LLaVA-OneVision checkpoint, processor and SigLIP head to ``out_dir``.

    The checkpoint loads with ``LlavaOnevisionForConditionalGeneration.from_pretrained`` and has the
    real token geometry: 384 px frames, 27x27 patches pooled bilinearly to 14x14 = 196 tokens per
    frame, and one ``image_newline`` after the video. The SigLIP head (post_layernorm + attention
    pooling) lives in ``out_dir/siglip_head``.

    Parameters
    ----------
    out_dir : str or PathLike
        Folder to write (created if needed).
    seed : int
        Seed of the random weights; the same seed writes the same weights.
    text, vision : dict, optional
        Fields of the LLM's (Qwen2) and the vision tower's (SigLIP) configs replacing the tiny ones:
        a real model's widths at a few layers, for benchmarks of memory and time.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from transformers import LlavaOnevisionProcessor

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    vision_config = tiny_vision_config(**(vision or {}))
    model = _tiny_llava(tokenizer, len(tokenizer), vision_config, seed, text=text)
    model.save_pretrained(out)

    image_processor, video_processor = llava_processors()
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        num_image_tokens=(vision_config.image_size // vision_config.patch_size) ** 2,
        vision_feature_select_strategy="full",
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)

    write_siglip_head(out / SIGLIP_HEAD_DIR, vision_config, seed=seed + 1)
    (out / "fastvid.json").write_text(json.dumps({"tiny_random": True, "format_version": FORMAT_VERSION}) + "\n")
    return out


def _tiny_text_config(tokenizer, vocab_size: int, **overrides):
    from transformers import Qwen2Config

    fields = {
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "tie_word_embeddings": True,
        "initializer_range": 0.3,  # large enough that greedy answers depend on the input
        "eos_token_id": tokenizer.convert_tokens_to_ids("<|im_end|>"),
        "pad_token_id": tokenizer.pad_token_id,
    }
    return Qwen2Config(**(fields | overrides))


def _tiny_llava(
    tokenizer, vocab_size: int, vision, seed: int, media_ids: tuple[int, int] | None = None, text: dict | None = None
):
    """A tiny random LlavaOnevisionForConditionalGeneration; ``media_ids`` default to the tokenizer's."""
    from transformers import LlavaOnevisionConfig, LlavaOnevisionForConditionalGeneration

    text_config = _tiny_text_config(tokenizer, **({"vocab_size": vocab_size} | (text or {})))
    image_id, video_id = media_ids or tokenizer.convert_tokens_to_ids(["<image>", "<video>"])
    config = LlavaOnevisionConfig(  # type: ignore[call-arg]  # image/video_token_id: transformers maps them to *_index
        text_config=text_config,
        vision_config=vision,
        image_token_id=image_id,
        video_token_id=video_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaOnevisionForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = text_config.eos_token_id
    model.generation_config.pad_token_id = text_config.pad_token_id
    model.generation_config.suppress_tokens = unprintable_token_ids(tokenizer)
    return model


def build_llava_video(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random LLaVA-Video checkpoint in the LLaVA-NeXT format to ``out_dir``.

    Like lmms-lab/LLaVA-Video-7B-Qwen2: a ``LlavaQwenForCausalLM`` config.json with the ``mm_*``
    settings (average pooling, stride 2, grid newlines, 64 frames), tensors under LLaVA-NeXT's names
    (``model.layers.*``, ``model.vision_tower.vision_tower.vision_model.*``, ``model.mm_projector.*``),
    and a Qwen2-style tokenizer without ``<image>``/``<video>`` (spare embedding rows are left for
    them). Unlike the real one it carries its tiny ``vision_config`` and a ``siglip_head/``.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    import re

    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(SPECIAL_TOKENS[:3], media_tokens={})
    vision = tiny_vision_config()
    model = _tiny_llava(tokenizer, len(tokenizer) + 8, vision, seed, media_ids=(len(tokenizer), len(tokenizer) + 1))
    tensors = {}
    for name, value in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied to the embeddings
        for pattern, replacement in TO_LLAVA_NEXT:
            name, hits = re.subn(pattern, replacement, name)
            if hits:
                break
        tensors[name] = value.contiguous()
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    text = model.config.text_config
    config = {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava",
        **{
            k: getattr(text, k)
            for k in (
                "hidden_size",
                "intermediate_size",
                "num_hidden_layers",
                "num_attention_heads",
                "num_key_value_heads",
                "vocab_size",
                "rms_norm_eps",
                "max_position_embeddings",
                "initializer_range",
            )
        },
        "rope_theta": 1000000.0,
        "tie_word_embeddings": True,
        "mm_vision_tower": "google/siglip-so400m-patch14-384",
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": vision.hidden_size,
        "mm_spatial_pool_mode": "average",
        "mm_spatial_pool_stride": 2,
        "mm_newline_position": "grid",
        "frames_upbound": 64,
        "image_aspect_ratio": "anyres_max_9",
        "vision_config": {
            k: v
            for k, v in vision.to_dict().items()
            if k
            in (
                "hidden_size",
                "intermediate_size",
                "num_attention_heads",
                "image_size",
                "patch_size",
                "layer_norm_eps",
                "hidden_act",
            )
        },
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    write_siglip_head(out / SIGLIP_HEAD_DIR, vision, seed=seed + 1)
    (out / "fastvid.json").write_text(json.dumps({"tiny_random": True, "format_version": FORMAT_VERSION}) + "\n")
    return out


QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif content['type'] == 'video' %}{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TINY_QWEN_MAX_PIXELS = 224 * 224
"""Frame size cap of the tiny Qwen2.5-VL processor (the real one allows far more)."""


def build_qwen2_5_vl(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write a tiny random Qwen2.5-VL checkpoint and processor to ``out_dir``.

    The real geometry at a tiny width: 14 px patches, temporal patch 2, 2x2 merging, windowed
    attention with a full-attention last block, M-RoPE over (t, h, w); frames are capped at
    224 x 224 pixels so the tests stay fast.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(QWEN_SPECIAL_TOKENS, {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"})
    ids = dict(zip(QWEN_SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(QWEN_SPECIAL_TOKENS)))
    config = Qwen2_5_VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "initializer_range": 0.3,
            "tie_word_embeddings": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "bos_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": 64,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [1],
            "tokens_per_second": 2,
            "initializer_range": 0.3,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.suppress_tokens = unprintable_token_ids(tokenizer)
    model.save_pretrained(out)
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=TINY_QWEN_MAX_PIXELS),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(min_pixels=56 * 56, max_pixels=TINY_QWEN_MAX_PIXELS),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    processor.save_pretrained(out)
    (out / "fastvid.json").write_text(json.dumps({"tiny_random": True, "format_version": FORMAT_VERSION}) + "\n")
    return out


def write_siglip_head(out_dir: Path, vision_config, seed: int) -> None:
    """Write a random SigLIP post_layernorm + attention-pooling head under the checkpoint's key names."""
    from safetensors.torch import save_file
    from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

    torch.manual_seed(seed)
    head = SiglipMultiheadAttentionPoolingHead(vision_config)
    post_layernorm = torch.nn.LayerNorm(vision_config.hidden_size, eps=vision_config.layer_norm_eps)
    with torch.no_grad():
        post_layernorm.weight.normal_(1.0, 0.1)
        post_layernorm.bias.normal_(0.0, 0.1)
    tensors = {f"vision_model.head.{k}": v.contiguous() for k, v in head.state_dict().items()}
    tensors |= {f"vision_model.post_layernorm.{k}": v.contiguous() for k, v in post_layernorm.state_dict().items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out_dir / "model.safetensors"))
    config = vision_config.to_dict()
    config["model_type"] = "siglip_vision_model"
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")
