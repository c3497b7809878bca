"""Checkpoints built from real checkpoints' published files (tests/realcfg, see its PROVENANCE.md).

Every expected value is read from the published JSON; nothing about the real models is typed in here.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import pytest
import torch

from fastvid_cli.cli import run
from fastvid_cli.models import adapter_class
from fastvid_cli.tiny.plan import TOKEN_ID_KEYS, _diff, _has, head_shapes, plan_from_config
from fastvid_cli.tiny.write import write_plan

REALCFG = Path(__file__).parent / "realcfg"
REAL = {
    "LLaVA-Video-7B-Qwen2": "llava_video",
    "llava-onevision-qwen2-7b-ov-hf": "llava_onevision",
    "Qwen2.5-VL-3B-Instruct": "qwen2_5_vl",
    "Qwen2.5-VL-7B-Instruct": "qwen2_5_vl",
    "Qwen3-VL-8B-Instruct": "qwen3_vl",
    "Qwen3-VL-30B-A3B-Instruct": "qwen3_vl",
    "Qwen3.5-0.8B": "qwen3_5",
    "Qwen3.5-35B-A3B": "qwen3_5",
}
_TEXT = {"hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"}
SHRINKABLE = {
    "llava_video": _TEXT | {"mm_hidden_size", "vision_config"},
    "llava_onevision": {f"text_config.{k}" for k in _TEXT}
    | {f"vision_config.{k}" for k in ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers")},
    "qwen2_5_vl": _TEXT
    | {"rope_scaling.mrope_section"}
    | {
        f"vision_config.{k}"
        for k in ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size", "fullatt_block_indexes")
    },
}
_QWEN3_TEXT = {
    f"text_config.{k}"
    for k in (
        *_TEXT,
        "head_dim",
        "rope_scaling.mrope_section",
        "rope_parameters.mrope_section",
        "num_experts",
        "num_experts_per_tok",
        "moe_intermediate_size",
    )
}
_QWEN3_VISION = {f"vision_config.{k}" for k in ("depth", "hidden_size", "intermediate_size", "num_heads", "out_hidden_size")}
SHRINKABLE["qwen3_vl"] = _QWEN3_TEXT | _QWEN3_VISION | {"vision_config.deepstack_visual_indexes"}
SHRINKABLE["qwen3_5"] = (
    _QWEN3_TEXT
    | _QWEN3_VISION
    | {
        f"text_config.{k}"
        for k in (
            "layer_types",
            "linear_num_key_heads",
            "linear_num_value_heads",
            "linear_key_head_dim",
            "linear_value_head_dim",
            "shared_expert_intermediate_size",
        )
    }
)
"""Config paths allowed to change in tiny mode (names only; the published values are read from realcfg)."""
NOT_COPIED = {"config.json", "generation_config.json", "tokenizer_config.json", "added_tokens.json", "expected_weight_names.txt"}
"""Published files written with changes (ids remapped, sizes shrunk) or not as files (they shape the local tokenizer)."""


def published(name: str, file: str = "config.json") -> dict:
    return json.loads((REALCFG / name / file).read_text())


def _is_token_id(path: str) -> bool:
    return path.rsplit(".", 1)[-1] in TOKEN_ID_KEYS


@pytest.fixture(scope="module")
def built(tmp_path_factory, isolated_cache) -> dict[str, tuple[Path, int, str]]:
    """Each real folder built once with ``fastvid tiny-model DIR --config REAL``: (DIR, exit status, stderr)."""
    results = {}
    for name in REAL:
        out = tmp_path_factory.mktemp("from-config") / name
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            code = run(["tiny-model", str(out), "--config", str(REALCFG / name)])
        results[name] = (out, code, stderr.getvalue())
    return results


@pytest.mark.parametrize("full_size", [False, True], ids=["tiny", "full-size"])
@pytest.mark.parametrize("name", list(REAL))
def test_config_changes_only_sizes_and_token_ids(name, full_size):
    plan = plan_from_config(REALCFG / name, full_size=full_size)
    assert plan.family == REAL[name] and plan.full_size == full_size
    changed = {path for path in _diff(published(name), plan.config) if not _is_token_id(path)}
    assert changed <= (SHRINKABLE[plan.family] if not full_size else set()), changed
    for file, path in adapter_class(
        plan.family
    ).tiny_recipe.layout_fields:  # layout/prompt/decoding fields: as published, where published
        if file in plan.files and (REALCFG / name / file).exists() and _has(published(name, file), path):
            source = published(name, file)
            for part in path.split("."):
                source = source[part]
            value = plan.files[file]
            for part in path.split("."):
                value = value[part]
            assert value == source, (file, path)


def test_llava_video_tensor_names_are_published(built):
    expected = (REALCFG / "LLaVA-Video-7B-Qwen2" / "expected_weight_names.txt").read_text().split()
    full = plan_from_config(REALCFG / "LLaVA-Video-7B-Qwen2", full_size=True)
    assert sorted(full.tensor_shapes()) == sorted(expected)  # meta device: nothing allocated

    from safetensors import safe_open

    folder = built["LLaVA-Video-7B-Qwen2"][0]
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        names = list(f.keys())

    def modulo_layers(keys):
        return {re.sub(r"\.layers\.\d+\.", ".layers.N.", k) for k in keys}

    assert modulo_layers(names) == modulo_layers(expected)
    config = json.loads((folder / "config.json").read_text())
    llm_layers = {m.group(1) for k in names if (m := re.match(r"model\.layers\.(\d+)\.", k))}
    assert len(llm_layers) == config["num_hidden_layers"]
    assert "lm_head.weight" in names and config["tie_word_embeddings"] is False


def test_siglip_geometry_matches_published_so400m():
    from transformers import SiglipVisionConfig

    from fastvid_cli.models.llava_video import SO400M_VISION

    siglip = published("siglip-so400m-patch14-384")["vision_config"]
    defaults = SiglipVisionConfig()
    for key, value in SO400M_VISION.items():  # the converter's assumption = google's config (or its defaults)
        assert siglip.get(key, getattr(defaults, key)) == value, key
    tensors = published("siglip-so400m-patch14-384", "head_tensors.json")
    for name in ("LLaVA-Video-7B-Qwen2", "llava-onevision-qwen2-7b-ov-hf"):
        shapes = head_shapes(plan_from_config(REALCFG / name, full_size=True))
        assert shapes == {k: tuple(v) for k, v in tensors["tensors"].items()}
        assert sum(math.prod(s) for s in shapes.values()) == tensors["total_params"]


@pytest.mark.parametrize("name", [n for n, f in REAL.items() if f == "qwen2_5_vl"])
def test_qwen_mrope_and_full_attention_scaled(built, name):
    source, config = published(name), json.loads((built[name][0] / "config.json").read_text())
    sections, real_sections = config["rope_scaling"]["mrope_section"], source["rope_scaling"]["mrope_section"]
    head_dim = config["hidden_size"] // config["num_attention_heads"]
    assert sum(sections) == head_dim // 2 and min(sections) >= 1
    scale = sum(sections) / sum(real_sections)
    assert all(abs(s - r * scale) < 1 for s, r in zip(sections, real_sections))
    vision = config["vision_config"]
    full = vision["fullatt_block_indexes"]
    assert full and full[-1] == vision["depth"] - 1 and len(full) < vision["depth"] and full == sorted(set(full))
    assert vision["out_hidden_size"] == config["hidden_size"]


@pytest.mark.parametrize("name", list(REAL))
def test_cli_writes_published_files(built, name):
    folder, code, err = built[name]
    assert code == 0, err
    family = REAL[name]
    assert "kept as published" in err and "shrunk to test size" in err and "local byte-level BPE" in err
    for file, path in adapter_class(family).tiny_recipe.layout_fields:
        if (REALCFG / name / file).exists() and _has(published(name, file), path):  # a checkpoint's files may lack a field
            assert path.rsplit(".", 1)[-1] + "=" in err, path
    for file in sorted(p.name for p in (REALCFG / name).iterdir()):
        if file.endswith(".jinja"):  # a chat template as text: verbatim
            assert (folder / file).read_text() == (REALCFG / name / file).read_text(), file
        elif file not in NOT_COPIED:  # processor configs, chat templates: verbatim
            assert json.loads((folder / file).read_text()) == published(name, file), file
    if family == "qwen2_5_vl":
        assert not (folder / "video_preprocessor_config.json").exists()  # the real repos ship none
    changed = {p for p in _diff(published(name), json.loads((folder / "config.json").read_text())) if not _is_token_id(p)}
    assert changed <= SHRINKABLE[family]
    if (REALCFG / name / "generation_config.json").exists():
        generation, source = (
            json.loads((folder / "generation_config.json").read_text()),
            published(name, "generation_config.json"),
        )
        for key in ("do_sample", "temperature", "top_k", "top_p", "repetition_penalty"):
            assert generation[key] == source[key], key
        # as published but the token ids, and the suppressed tokens of a tiny model (its noise stays printable)
        assert {k for k in _diff(source, generation) if not _is_token_id(k)} == {"suppress_tokens"}
        assert generation["suppress_tokens"] and "suppress_tokens" not in source
    marker = json.loads((folder / "fastvid.json").read_text())
    assert marker["tiny_random"] is True and marker["full_size"] is False and marker["tokenizer"] == "local"
    assert marker["built_from"] == {"path": str((REALCFG / name).resolve()), "family": family}


@pytest.mark.parametrize("name", list(REAL))
def test_tokenizer_keeps_published_template_and_roles(built, name):
    from transformers import AutoTokenizer

    folder = built[name][0]
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    config = json.loads((folder / "config.json").read_text())
    if REAL[name] == "llava_video":
        source = published(name, "tokenizer_config.json")
        assert tokenizer.chat_template == source["chat_template"]
        assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.bos_token) == (
            source["eos_token"],
            source["pad_token"],
            source["bos_token"],
        )
        assert tokenizer.model_max_length == source["model_max_length"]
        added = published(name, "added_tokens.json")
        local = tokenizer.convert_tokens_to_ids(sorted(added, key=added.get))
        assert local == sorted(local) and None not in local  # every published added token, in the published order
        assert "<video>" not in tokenizer.get_vocab()  # like the real one: the converter adds it
        assert config["vocab_size"] > len(tokenizer) + 1  # room for it
    elif REAL[name] == "qwen2_5_vl":
        assert tokenizer.chat_template == published(name, "chat_template.json")["chat_template"]
    source = published(name)
    for key in (
        "eos_token_id",
        "image_token_index",
        "video_token_index",
        "image_token_id",
        "video_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
    ):
        if key in source:  # the same role, at the local tokenizer's id
            assert config[key] < len(tokenizer) and config[key] != source[key]


@pytest.mark.parametrize("name", list(REAL))
def test_loads_every_written_tensor(built, name):
    from safetensors.torch import load_file

    from fastvid_cli.models import load_model

    folder = built[name][0]
    adapter = load_model(str(folder), device="cpu", dtype="float32")
    assert adapter.family == REAL[name] and adapter.tiny_random
    written = list(load_file(str(folder / "model.safetensors")).values())
    by_shape = {}
    for tensor in written:
        by_shape.setdefault(tuple(tensor.shape), []).append(tensor)
        if tensor.dim() == 3:  # fused experts: published (E, D, 2I), transposed by transformers as it loads them
            by_shape.setdefault(tuple(tensor.transpose(1, 2).shape), []).append(tensor.transpose(1, 2))
    state = adapter.model.state_dict()
    for key, value in state.items():  # no parameter left to the loader's own random init
        assert any(torch.equal(value, t) for t in by_shape.get(tuple(value.shape), [])), key
    tied = bool(getattr(adapter.model.config, "tie_word_embeddings", False))
    assert len(written) == len(state) - tied


@pytest.mark.parametrize("name", list(REAL))
def test_ask_answers_with_real_config_checkpoint(built, name, sample_video, capsys):
    folder = built[name][0]
    code = run(
        [
            "ask",
            str(sample_video),
            "q",
            "--model",
            str(folder),
            "--frames",
            "4",
            "--json",
            "--no-baseline",
            "--max-new-tokens",
            "4",
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["model"]["family"] == REAL[name] and data["model"]["tiny_random"] is True
    assert data["tokens"]["video_after"] < data["tokens"]["video_before"]


def test_sharded_weights_load_and_match_one_file(built, tmp_path):
    from safetensors.torch import load_file

    from fastvid_cli.models import load_model

    name = "LLaVA-Video-7B-Qwen2"
    plan = plan_from_config(REALCFG / name)
    sharded = write_plan(plan, tmp_path / "sharded", seed=0, max_shard_bytes=64 * 1024)
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and not (sharded / "model.safetensors").exists()
    whole = load_file(str(built[name][0] / "model.safetensors"))  # the same seed, one file
    parts = {}
    for shard in shards:
        parts |= load_file(str(sharded / shard))
    assert parts.keys() == whole.keys() and all(torch.equal(parts[k], whole[k]) for k in whole)
    assert load_model(str(sharded), device="cpu", dtype="float32").family == "llava_video"


def _bad(tmp_path, kind: str) -> list[str]:
    real = REALCFG / "Qwen2.5-VL-3B-Instruct"
    if kind == "missing folder":
        return ["tiny-model", str(tmp_path / "out"), "--config", str(tmp_path / "nowhere")]
    if kind == "no config.json":
        (tmp_path / "empty").mkdir()
        return ["tiny-model", str(tmp_path / "out"), "--config", str(tmp_path / "empty")]
    if kind == "unsupported family":
        (tmp_path / "bert").mkdir()
        (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
        return ["tiny-model", str(tmp_path / "out"), "--config", str(tmp_path / "bert")]
    if kind == "DIR not empty":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "keep.txt").write_text("mine")
        return ["tiny-model", str(tmp_path / "out"), "--config", str(real)]
    if kind == "--full-size without --config":
        return ["tiny-model", str(tmp_path / "out"), "--full-size"]
    return ["tiny-model", str(tmp_path / "out"), "--config", str(real), "--arch", "qwen2.5-vl"]


@pytest.mark.parametrize(
    "kind",
    [
        "missing folder",
        "no config.json",
        "unsupported family",
        "DIR not empty",
        "--full-size without --config",
        "--arch with --config",
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, kind):
    code = run(_bad(tmp_path, kind))
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("fastvid: error:") and len(err.strip().splitlines()) == 1, err
    if kind == "DIR not empty":
        assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]
    elif kind != "--arch with --config":
        assert not (tmp_path / "out").exists()


PUBLISHED = Path(__file__).resolve().parents[1] / "src" / "fastvid_cli" / "models" / "published"


@pytest.mark.parametrize("name", sorted(p.name for p in PUBLISHED.iterdir() if p.is_dir()))
def test_each_shipped_folder_builds_a_tiny_model_with_its_template_and_processors(name):
    """`tiny-model --config` on a folder fastvid ships (the MoE ones too) finds its chat template and
    processor files there; the files are tests/realcfg's. Only where the real folder has none (llava-hf's
    LLaVA-OneVision here) does the family's recipe give a local template and processors, and a note says so."""
    folder = PUBLISHED / name
    for file in (REALCFG / name).iterdir():
        if file.suffix in (".json", ".jinja"):  # the published files (not the derived weight-name list)
            assert (folder / file.name).read_bytes() == file.read_bytes(), file.name
    plan = plan_from_config(folder, False)
    template = [note for note in plan.notes if "no chat template" in note]
    if any((folder / f).exists() for f in ("chat_template.json", "chat_template.jinja", "tokenizer_config.json")):
        assert not template
    else:
        assert plan.recipe.chat_template and template == [f"no chat template published: {plan.recipe.display_name}'s local one"]
    processors = [note for note in plan.notes if "no preprocessor" in note]
    assert bool(processors) == (not (folder / "preprocessor_config.json").exists())
    assert not processors or plan.recipe.write_processor is not None
    assert plan.tokenizer.chat_template
