"""Planning a random-weight checkpoint from a real checkpoint's published files, before any weight exists.

Tiny checkpoints whose configs are written to agree with this project's code hide the bugs that only
the real configs trigger (LLaVA-Video's published ``mm_spatial_pool_mode`` is ``bilinear``; a
hand-written tiny config once said ``average``). So every tiny checkpoint starts from the files a real
checkpoint publishes: ``config.json``, processor and tokenizer configs, chat template, added tokens,
generation config. Every field that decides the video layout, the prompt or the decoding is written as
published; only widths, depths and the vocabulary shrink to test size (or nothing shrinks, with
``full_size``, for benchmarks on a GPU). The weights are random; the tokenizer is a local byte-level BPE
(:func:`.tokenizer.build_tokenizer`) with the published special tokens and chat template, since the real
vocabulary files are not at hand, and every token id in the configs is remapped to it.

This module plans such a checkpoint: its configs, tokenizer and tensor layout (:func:`plan_from_config`,
enough for tests of full-size configs); :mod:`.write` writes a plan with random weights. What differs
between families comes from their adapter's :class:`~fastvid_cli.models.recipe.TinyRecipe`.

>>> from fastvid_cli.tiny.plan import plan_from_config, summary_lines
>>> summary_lines(plan_from_config("tests/realcfg/LLaVA-Video-7B-Qwen2"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from ..errors import InputError, ModelError
from ..models.recipe import TinyRecipe
from ..models.registry import adapter_class, family_of
from .tokenizer import build_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

TINY_INIT_STD = 0.3
"""Weight std of tiny checkpoints: large enough that greedy answers depend on the input."""
VOCAB_MULTIPLE = 64
"""Tiny vocabularies are the local tokenizer's size plus 2 spare rows, rounded up to this (the real ones are padded too)."""

TOKEN_ID_KEYS = (
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "decoder_start_token_id",
    "image_token_index",
    "video_token_index",
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "vision_token_id",
)
"""Config keys holding token ids: remapped to the local tokenizer's ids, wherever they sit."""
PUBLISHED_FILES = (
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "processor_config.json",
    "chat_template.json",
)
"""Published processor files written verbatim where the real folder has them."""
SIGLIP_HEAD_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_attention_heads",
    "image_size",
    "patch_size",
    "layer_norm_eps",
    "hidden_act",
)
"""Vision config fields of the SigLIP head a LLaVA checkpoint gets (``siglip_head/config.json``)."""


@dataclass
class TinyPlan:
    """Everything a checkpoint built from published files will hold, before any weight exists.

    Attributes
    ----------
    family : str
        The family (``ModelAdapter.family``) whose adapter claims the published config.
    recipe : TinyRecipe
        The family's for this config (``ModelAdapter.tiny_recipe_for``).
    real_dir : pathlib.Path
    full_size : bool
    files : dict
        File name -> JSON object, written as is: ``config.json``, and the published files that are
        kept (verbatim or with token ids remapped).
    tokenizer : transformers.PreTrainedTokenizerFast
        The local tokenizer, with the published special tokens, roles and chat template.
    tokenizer_config : dict
        Published ``tokenizer_config.json`` fields merged into the saved one (never its ids).
    model_config : transformers.PretrainedConfig
        The transformers model whose state dict gives the tensor names and shapes.
    renames : list of (str, str)
        Regex renames from transformers names to the published checkpoint's names.
    head_config : dict or None
        SigLIP vision config of the ``siglip_head/`` to write (LLaVA families), else None.
    dtype : torch.dtype
        Weights dtype: float32 for tiny, the config's ``torch_dtype`` at full size.
    init_std : float
    shrunk : dict
        Dotted config path -> (published, written), for every dimension that shrank.
    token_ids : dict
        Dotted path (``file:path``) -> (published id, local id).
    kept : list of (str, object)
        ``file:field`` -> published value, for the recipe's ``layout_fields``.
    notes : list of str
        What was not published (and what was written instead).
    """

    family: str
    recipe: TinyRecipe
    real_dir: Path
    full_size: bool
    files: dict[str, dict]
    tokenizer: Any
    tokenizer_config: dict
    model_config: Any
    renames: list[tuple[str, str]]
    head_config: dict | None
    dtype: torch.dtype
    init_std: float
    shrunk: dict[str, tuple] = field(default_factory=dict)
    token_ids: dict[str, tuple] = field(default_factory=dict)
    kept: list[tuple[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    drop: tuple[str, ...] = ()
    """transformers names not written (a tied ``lm_head.weight``)."""

    @property
    def config(self) -> dict:
        """The ``config.json`` that is written."""
        return self.files["config.json"]

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """Published tensor name -> shape of the model's weights, from a model built on the meta device."""
        return {name: tuple(t.shape) for name, t in meta_state(self).items()}

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.tensor_shapes().values())

    def weight_bytes(self) -> int:
        """Size of the weights as written (without the SigLIP head)."""
        return self.parameter_count() * torch.empty((), dtype=self.dtype).element_size()


def _read_json(path: Path) -> dict | None:
    try:
        content: dict = json.loads(path.read_text())
        return content
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot read {path}: {err}") from None


def plan_from_config(real_dir: str | os.PathLike, full_size: bool = False) -> TinyPlan:
    """The configs, tokenizer and tensor layout of a checkpoint built from ``real_dir``; no weights.

    One path for every family: the family's recipe (``ModelAdapter.tiny_recipe_for``) says what differs.
    Tests of full-size configs use this: it allocates nothing (tensor shapes come from the meta device).

    Parameters
    ----------
    real_dir : str or PathLike
        A real checkpoint's folder of published files (at least ``config.json``).
    full_size : bool
        Keep every dimension and the real vocabulary size.

    Returns
    -------
    TinyPlan

    Raises
    ------
    InputError
        ``real_dir`` is not a folder.
    ModelError
        No readable ``config.json``, an unsupported family, or a published file the family's recipe cannot
        map (a token id of unknown role, a LLaVA-NeXT vision tower other than SigLIP so400m).
    """
    real = Path(real_dir)
    if not real.is_dir():
        raise InputError(f"no such folder: {real}")
    source = _read_json(real / "config.json")
    if source is None:
        raise ModelError(f"{real} has no config.json: not a checkpoint folder")
    family = family_of(source, real)
    recipe = adapter_class(family).tiny_recipe_for(source)
    if recipe is None:
        raise ModelError(f"{real}: the {family} family declares no tiny recipe (ModelAdapter.tiny_recipe)")
    for key, token in recipe.role_ids.items():
        found = _find(source, key)
        if found is not None and recipe.special_tokens.get(int(found)) != token:
            raise ModelError(f"{real}/config.json: {key} {found} is not {token} in {recipe.display_name}'s tokenizer")

    notes: list[str] = []
    tok_config = _read_json(real / "tokenizer_config.json")
    added = _read_json(real / "added_tokens.json") or {}
    id_to_token = dict(recipe.special_tokens)
    if tok_config:
        id_to_token |= {int(i): t["content"] for i, t in (tok_config.get("added_tokens_decoder") or {}).items()}
    id_to_token |= {int(i): t for t, i in added.items()}
    tokenizer = _local_tokenizer([id_to_token[i] for i in sorted(id_to_token)], recipe.media_tokens, tok_config)
    template = _read_json(real / "chat_template.json")
    jinja = real / "chat_template.jinja"
    if template is not None:
        tokenizer.chat_template = template["chat_template"]
    elif jinja.exists():
        tokenizer.chat_template = jinja.read_text()
    elif not (tok_config or {}).get("chat_template"):
        if recipe.chat_template is None:
            raise ModelError(
                f"{real} publishes no chat template (chat_template.json, chat_template.jinja or tokenizer_config.json) "
                f"and {recipe.display_name} has no local one: add the checkpoint's"
            )
        tokenizer.chat_template = recipe.chat_template
        notes.append(f"no chat template published: {recipe.display_name}'s local one")
    if not tok_config and not added and not recipe.role_ids:  # nothing published says the special tokens' ids
        notes.append(f"no tokenizer_config.json / added_tokens.json: {recipe.display_name}'s special tokens assumed")

    config = copy.deepcopy(source)
    if not full_size:
        config = recipe.shrink(config, _tiny_vocab(len(tokenizer)))
    token_ids = _remap_ids(config, id_to_token, tokenizer, "config.json")
    files = {"config.json": config}
    for name in PUBLISHED_FILES:
        published = _read_json(real / name)
        if published is not None:
            files[name] = published
    if "preprocessor_config.json" not in files:
        notes.append(
            f"no preprocessor configs published: {recipe.display_name}'s processors, written locally"
            if recipe.write_processor
            else "no preprocessor_config.json: the image processor's defaults"
        )
    generation = _read_json(real / "generation_config.json")
    if generation is not None:
        generation = copy.deepcopy(generation)
        token_ids |= _remap_ids(generation, id_to_token, tokenizer, "generation_config.json")
        files["generation_config.json"] = generation
    else:
        notes.append("no generation_config.json: transformers' defaults from config.json's token ids")

    if recipe.model_config is not None:
        model_config = recipe.model_config(config, tokenizer, real)
    else:
        import transformers

        config_class = transformers.CONFIG_MAPPING[config["model_type"]]
        model_config = config_class.from_dict(copy.deepcopy(config))  # from_dict edits nested dicts
    text = source.get("text_config", source)
    written_text = config.get("text_config", config)
    tied = bool(config.get("tie_word_embeddings", written_text.get("tie_word_embeddings", False)))
    head = None
    if recipe.siglip_head:
        vision = cast("PreTrainedConfig", model_config.vision_config).to_dict()
        head = {k: v for k, v in vision.items() if k in SIGLIP_HEAD_FIELDS}
    plan = TinyPlan(
        family=family,
        recipe=recipe,
        real_dir=real,
        full_size=full_size,
        files=files,
        tokenizer=tokenizer,
        tokenizer_config=_portable_tokenizer_config(tok_config),
        model_config=model_config,
        renames=list(recipe.renames),
        head_config=head,
        dtype=_dtype(source, full_size),
        init_std=_std(text, full_size),
        shrunk=_diff(source, config, skip=TOKEN_ID_KEYS),
        token_ids=token_ids,
        notes=notes,
        drop=("lm_head.weight",) if tied else (),
    )
    read: dict[str, dict] = {}
    for file, path in recipe.layout_fields:
        if file not in read:
            read[file] = _read_json(real / file) or {}
        if _has(read[file], path):
            plan.kept.append((f"{file}:{path}", _get(read[file], path)))
    return plan


def summary_lines(plan: TinyPlan) -> list[str]:
    """What stayed as published, what shrank, and the tokenizer: one line each, for the CLI."""
    family = plan.recipe.display_name + (f" ({plan.recipe.format_name})" if plan.recipe.format_name else "")
    kept = ", ".join(f"{name.split(':', 1)[1]}={_short(value)}" for name, value in plan.kept)
    lines = [f"{family}: kept as published: {kept}"]
    if plan.full_size:
        lines.append(
            f"{family}: full size: every width, depth and vocab_size as published "
            f"({plan.parameter_count() / 1e9:.2f} B parameters, {str(plan.dtype).removeprefix('torch.')})"
        )
    else:
        shrunk = ", ".join(
            f"{path} added" if b == "added" else f"{path} {_short(a)}->{_short(b)}" for path, (a, b) in plan.shrunk.items()
        )
        lines.append(f"{family}: shrunk to test size: {shrunk}")
    ids = ", ".join(
        f"{path.split(':', 1)[1]} {_short(a)}->{_short(b)}"
        for path, (a, b) in plan.token_ids.items()
        if path.startswith("config.json:")
    )
    lines.append(
        f"{family}: tokenizer: the local byte-level BPE ({len(plan.tokenizer)} tokens), not the real "
        f"vocabulary; published special tokens and chat template where given; token ids remapped: {ids}"
    )
    return lines + [f"note: {note}" for note in plan.notes]


def _short(value) -> str:
    if isinstance(value, str) and len(value) > 48:
        return "<published text>" if "{%" in value else json.dumps(value[:45] + "...")
    if isinstance(value, list) and len(value) > 4:
        return f"[{len(value)} items]"
    return json.dumps(value) if isinstance(value, str) else str(value)


def _find(node: dict, key: str):
    """The value of ``key`` at the top of a config or in one of its nested configs (None if absent)."""
    if key in node:
        return node[key]
    for value in node.values():
        if isinstance(value, dict) and (found := _find(value, key)) is not None:
            return found
    return None


# --- helpers --------------------------------------------------------------------------------------


def _tiny_vocab(tokens: int) -> int:
    return -(-(tokens + 2) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE


def _dtype(source: dict, full_size: bool) -> torch.dtype:
    if not full_size:
        return torch.float32
    name = source.get("torch_dtype") or source.get("dtype") or "bfloat16"
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(name, torch.bfloat16)


def _std(source: dict, full_size: bool) -> float:
    return float(source.get("initializer_range", 0.02)) if full_size else TINY_INIT_STD


def _local_tokenizer(specials: list[str], media_tokens: dict | None, published: dict | None):
    """The local byte-level BPE with ``specials`` (in this order) and the published roles."""
    tokenizer = build_tokenizer(specials, media_tokens)
    if published:
        for role in ("eos_token", "pad_token", "bos_token"):
            if role in published:
                setattr(tokenizer, role, published[role])
        if "chat_template" in published:
            tokenizer.chat_template = published["chat_template"]
        for key in ("model_max_length", "padding_side", "clean_up_tokenization_spaces"):
            if key in published:
                setattr(tokenizer, key, published[key])
    return tokenizer


def _portable_tokenizer_config(published: dict | None) -> dict:
    """The published tokenizer_config.json less what names the real vocabulary (ids, tokenizer class)."""
    if not published:
        return {}
    return {k: v for k, v in published.items() if k not in ("added_tokens_decoder", "tokenizer_class")}


def _remap_ids(node, id_to_token: dict[int, str], tokenizer, where: str, prefix: str = "") -> dict[str, tuple]:
    """Replace every token id under :data:`TOKEN_ID_KEYS` in ``node`` (in place) by the local tokenizer's."""
    changes: dict[str, tuple] = {}
    if not isinstance(node, dict):
        return changes
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            changes |= _remap_ids(value, id_to_token, tokenizer, where, path + ".")
        elif key in TOKEN_ID_KEYS and value is not None:
            local = [_local_id(v, id_to_token, tokenizer, where, path) for v in (value if isinstance(value, list) else [value])]
            node[key] = local if isinstance(value, list) else local[0]
            changes[f"{where}:{path}"] = (value, node[key])
    return changes


def _local_id(token_id: int, id_to_token: dict[int, str], tokenizer, where: str, path: str) -> int:
    token = id_to_token.get(int(token_id))
    local = tokenizer.convert_tokens_to_ids(token) if token is not None else None
    if local is None or local == tokenizer.unk_token_id:
        raise ModelError(f"{where}: {path} = {token_id} is not a token this module knows the role of")
    return int(local)


def _diff(published, written, skip=(), prefix="") -> dict[str, tuple]:
    """Dotted paths whose values differ between two configs (nested dicts recursed), skipping ``skip`` keys."""
    changes: dict[str, tuple] = {}
    for key in sorted(set(published) | set(written), key=str):
        if key in skip:
            continue
        a, b = published.get(key, None), written.get(key, None)
        if isinstance(a, dict) and isinstance(b, dict):
            changes |= _diff(a, b, skip, f"{prefix}{key}.")
        elif a != b or (key in published) != (key in written):
            changes[f"{prefix}{key}"] = (a, b) if not isinstance(b, dict) else (a, "added")
    return changes


def _get(node: dict, path: str):
    for part in path.split("."):
        node = node[part]
    return node


def _has(node: dict, path: str) -> bool:
    try:
        _get(node, path)
        return True
    except (KeyError, TypeError):
        return False


def _published_name(name: str, renames: list[tuple[str, str]]) -> str:
    for pattern, replacement in renames:
        name, hits = re.subn(pattern, replacement, name)
        if hits:
            break
    return name


def meta_state(plan: TinyPlan) -> dict[str, torch.Tensor]:
    """Published name -> meta tensor of every weight written (no memory allocated), in the published layout.

    Names: transformers' renamed by the recipe's ``renames``. Layout: a tensor that transformers transposes
    when it loads a published checkpoint (a ``Transpose`` of its conversion mapping,
    ``transformers/conversion_mapping.py``: Qwen3-VL MoE's fused experts) is written transposed back, as the
    real checkpoint stores it, so other readers (vLLM) load it too.
    """
    import transformers

    with torch.device("meta"):
        model = getattr(transformers, plan.recipe.class_name(plan.config))(plan.model_config)
    transposed = _transposed_on_load(plan.config.get("model_type", ""))
    state = {}
    for name, tensor in model.state_dict().items():
        if name in plan.drop:
            continue
        for pattern, (dim0, dim1) in transposed.items():
            if name.endswith(pattern):
                tensor = tensor.transpose(dim0, dim1)
        state[_published_name(name, plan.renames)] = tensor
    return state


def _transposed_on_load(model_type: str) -> dict[str, tuple[int, int]]:
    """Tensor name endings that transformers transposes when it loads a ``model_type`` checkpoint -> the dims."""
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping

    found: dict[str, tuple[int, int]] = {}
    for converter in get_checkpoint_conversion_mapping(model_type) or []:
        operations = getattr(converter, "operations", [])
        if [type(op).__name__ for op in operations] == ["Transpose"]:
            found |= dict.fromkeys(converter.source_patterns, (operations[0].dim0, operations[0].dim1))
    return found


def head_config(plan: TinyPlan) -> dict:
    """The SigLIP vision config of the ``siglip_head/`` a plan writes.

    Raises
    ------
    ValueError
        For a plan that writes no SigLIP head (a family without one: ``head_config`` is None).
    """
    if plan.head_config is None:
        raise ValueError(f"a {plan.recipe.display_name} plan writes no SigLIP head")
    return plan.head_config


def head_shapes(plan: TinyPlan) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the SigLIP head a plan writes (meta device; for tests of full-size plans)."""
    from transformers import SiglipVisionConfig
    from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

    config = SiglipVisionConfig(**head_config(plan))
    with torch.device("meta"):
        head = SiglipMultiheadAttentionPoolingHead(config)
    shapes = {f"vision_model.head.{k}": tuple(v.shape) for k, v in head.state_dict().items()}
    return shapes | {f"vision_model.post_layernorm.{k}": (config.hidden_size,) for k in ("weight", "bias")}
