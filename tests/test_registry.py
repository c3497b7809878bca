"""The registry is the one source of the supported families: their adapters, detection and geometry."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from fastvid_cli.models import SUPPORTED_FAMILIES, ModelAdapter, detect_family
from fastvid_cli.models.geometry import geometry_from_folder, known_geometry
from fastvid_cli.models.geometry_base import KNOWN_CONFIGS
from fastvid_cli.models.registry import FAMILIES, adapter_class, family_of_config, read_config

REALCFG = Path(__file__).parent / "realcfg"
REAL = {  # realcfg folder -> (family, the shipped repo id it was published as)
    "llava-onevision-qwen2-7b-ov-hf": ("llava_onevision", "llava-hf/llava-onevision-qwen2-7b-ov-hf"),
    "LLaVA-Video-7B-Qwen2": ("llava_video", "lmms-lab/LLaVA-Video-7B-Qwen2"),
    "Qwen2.5-VL-3B-Instruct": ("qwen2_5_vl", "Qwen/Qwen2.5-VL-3B-Instruct"),
    "Qwen2.5-VL-7B-Instruct": ("qwen2_5_vl", "Qwen/Qwen2.5-VL-7B-Instruct"),
}


def test_the_base_is_abstract():
    assert inspect.isabstract(ModelAdapter)
    assert {
        "from_pretrained",
        "claims",
        "geometry_from_config",
        "video_token_id",
        "prompt_inputs",
        "preprocess",
        "encode",
    } <= ModelAdapter.__abstractmethods__
    with pytest.raises(TypeError):
        ModelAdapter(None, None, "x")


@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_has_a_complete_adapter(family):
    cls = adapter_class(family)
    assert issubclass(cls, ModelAdapter) and not inspect.isabstract(cls), cls.__abstractmethods__
    assert cls.family == family and SUPPORTED_FAMILIES[family] == FAMILIES[family].description
    base = inspect.signature(ModelAdapter.from_pretrained.__func__)
    assert list(inspect.signature(cls.from_pretrained.__func__).parameters) == list(base.parameters)
    assert "build_inputs" not in vars(cls)  # the slot keeping is the base's; families give hooks


@pytest.mark.parametrize("folder", list(REAL))
def test_realcfg_geometry_comes_from_its_adapter(folder):
    family, repo_id = REAL[folder]
    path = REALCFG / folder
    config = read_config(path)
    claimed = [name for name in FAMILIES if adapter_class(name).claims(config)]
    assert claimed == [family] and detect_family(path) == family
    geometry = geometry_from_folder(path, folder)
    assert geometry == adapter_class(family).geometry_from_config(config, folder, path)
    # the shipped table goes through the same adapter code and agrees with the published config
    assert known_geometry(repo_id).to_dict() | {"name": folder} == geometry.to_dict()


def test_shipped_table_covers_only_registered_families():
    for repo_id, config in KNOWN_CONFIGS.items():
        assert family_of_config(config) in FAMILIES, repo_id
        assert known_geometry(repo_id).name == repo_id


def test_layout_picks_between_the_llava_families():
    config = read_config(REALCFG / "llava-onevision-qwen2-7b-ov-hf")
    assert family_of_config(config, "auto") == "llava_onevision"
    assert family_of_config(config, "grid") == "llava_video"
    assert family_of_config({"model_type": "mllama"}) is None
