"""Finding, downloading and loading the supported Video LLMs.

``load_model(name)`` accepts a Hub repo id, a short alias, a local checkpoint folder, or
``tiny-random``; the family is detected from the checkpoint's ``config.json``.

Importing this package loads neither torch nor transformers (the command line checks a model's name,
:func:`resolve_model`, before they load): they load with the first call that needs them, and the adapter
classes (:class:`ModelAdapter`, :class:`LLMInputs`, :class:`VideoFeatures`) with their first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DeviceError, ModelError
from .hub import hub_offline, hub_unreachable
from .tiny_names import TINY_MODELS, TINY_RANDOM, is_tiny_random

if TYPE_CHECKING:
    import torch

    from .base import LLMInputs, ModelAdapter
    from .features import VideoFeatures
    from .registry import FAMILIES, SUPPORTED_FAMILIES, adapter_class, detect_family, family_of, paper_settings
    from .settings import RunSettings, SettingsOverrides

_LAZY = {
    "LLMInputs": ".features",
    "VideoFeatures": ".features",
    "ModelAdapter": ".base",
    "FAMILIES": ".registry",
    "SUPPORTED_FAMILIES": ".registry",
    "adapter_class": ".registry",
    "detect_family": ".registry",
    "family_of": ".registry",
    "paper_settings": ".registry",
    "RunSettings": ".settings",
    "SettingsOverrides": ".settings",
}
"""Names this package offers from its modules, imported on first use: the adapter types load torch and
transformers; the registry and the settings load numpy (through the frame sampling rules). A model's
name (``--model``'s help, :func:`resolve_model`) must wait for none of them."""


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY`, imported on first use (PEP 562)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


DEFAULT_MODEL = "llava-hf/llava-onevision-qwen2-7b-ov-hf"
ALIASES = {
    "llava-ov-0.5b": "llava-hf/llava-onevision-qwen2-0.5b-ov-hf",
    "llava-ov-7b": "llava-hf/llava-onevision-qwen2-7b-ov-hf",
    "llava-ov-72b": "llava-hf/llava-onevision-qwen2-72b-ov-hf",
    "llava-video-7b": "lmms-lab/LLaVA-Video-7B-Qwen2",
    "qwen2.5-vl-3b": "Qwen/Qwen2.5-VL-3B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen3-vl-2b": "Qwen/Qwen3-VL-2B-Instruct",
    "qwen3-vl-4b": "Qwen/Qwen3-VL-4B-Instruct",
    "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
    "qwen3-vl-32b": "Qwen/Qwen3-VL-32B-Instruct",
    "qwen3-vl-30b-a3b": "Qwen/Qwen3-VL-30B-A3B-Instruct",
    "qwen3-vl-235b-a22b": "Qwen/Qwen3-VL-235B-A22B-Instruct",
    **{
        f"qwen3.5-{size.lower()}": f"Qwen/Qwen3.5-{size}"
        for size in ("0.8B", "2B", "4B", "9B", "27B", "35B-A3B", "122B-A10B", "397B-A17B")
    },
}
LAYOUTS = ("auto", "onevision", "grid")
"""Video token layout of LLaVA checkpoints: from the config (auto), LLaVA-OneVision's, or LLaVA-Video's grid."""
_CHECKPOINT_FILES = ["*.json", "*.safetensors", "*.jinja", "*.txt", "*.model", "*.tiktoken"]


@dataclass
class ResolvedModel:
    """A checkpoint folder on disk and how the user named it."""

    name: str
    path: Path
    tiny_random: bool


def resolve_model(name: str, local_files_only: bool = False) -> ResolvedModel:
    """Find a checkpoint folder for ``name``, downloading it from the Hub if needed.

    Parameters
    ----------
    name : str
        ``tiny-random``, a local folder, an alias of :data:`ALIASES`, or a Hub repo id ``org/name``.
    local_files_only : bool
        Never go to the network.

    Raises
    ------
    ModelError
        Unknown name, unknown repo, or a repo neither cached nor reachable.
    """
    if name in TINY_MODELS:
        return ResolvedModel(name, tiny_model_dir(name), True)
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").exists():
            raise ModelError(f"{name} is a folder but has no config.json: not a model checkpoint")
        return ResolvedModel(name, local, is_tiny_random(local))
    repo_id = ALIASES.get(name, name)
    if repo_id.count("/") != 1 or name.startswith((".", "/", "~")):
        raise ModelError(
            f"unknown model {name!r}: pass a Hub repo id (e.g. {DEFAULT_MODEL}), an alias "
            f"({', '.join(ALIASES)}), a local checkpoint folder, or one of {', '.join(TINY_MODELS)}"
        )
    return ResolvedModel(name, _snapshot(repo_id, local_files_only), False)


def tiny_model_dir(name: str) -> Path:
    """The checkpoint folder of the tiny model ``name`` (:data:`.tiny_names.TINY_MODELS`), built offline on first use.

    The one place the product calls the tiny-model builder :mod:`fastvid_cli.tiny`.

    Raises
    ------
    KeyError
        If ``name`` is not a tiny model's.
    """
    # deferred: the tiny-model builder loads only when a tiny model is asked for (tests/test_import_rules.py)
    from ..tiny import tiny_random_dir

    return tiny_random_dir(name)


def _snapshot(repo_id: str, local_files_only: bool) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:  # a complete cached copy needs no network at all
        return Path(snapshot_download(repo_id, allow_patterns=_CHECKPOINT_FILES, local_files_only=True))
    except Exception:  # noqa: BLE001 - not (completely) cached: the network decides below
        if local_files_only or hub_offline():
            raise ModelError(_unreachable(repo_id, "offline mode")) from None
    why = hub_unreachable()  # fail at once rather than after the library's retries
    if why is not None:
        raise ModelError(_unreachable(repo_id, why))
    try:
        return Path(snapshot_download(repo_id, allow_patterns=_CHECKPOINT_FILES))
    except GatedRepoError:
        raise ModelError(f"{repo_id} is gated: accept its license on huggingface.co and run `hf auth login`") from None
    except RepositoryNotFoundError:
        raise ModelError(f"unknown model {repo_id!r}: no such repository on the Hugging Face Hub") from None
    except Exception as err:  # noqa: BLE001 - no network, proxy or TLS failure, Hub down: one line
        raise ModelError(_unreachable(repo_id, f"{type(err).__name__}: no connection")) from None


def _unreachable(repo_id: str, why: str) -> str:
    return (
        f"model {repo_id} is not in the local cache and the Hub cannot be reached ({why}); "
        f"give a local checkpoint folder as the `model`, or try {TINY_RANDOM}"
    )


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the first CUDA GPU if there is one, else the CPU.

    An NVIDIA GPU that torch cannot use (``nvidia-smi`` answers, but e.g. torch is built for a newer
    CUDA than the driver runs) is an error for ``auto`` and ``cuda``, not a silent fall back to the
    CPU. ``cpu`` never runs ``nvidia-smi``.

    Raises
    ------
    DeviceError
        If a GPU is asked for and none is usable, a GPU is here but torch cannot use it, or the name
        is not a device.
    """
    # deferred: torch, and nvidia-smi's runner, are needed only once a device is chosen
    import torch

    from .gpu import cuda_status, unusable_gpu

    if device == "auto":
        available, torch_says = cuda_status()
        if available:
            return torch.device("cuda")
        why = unusable_gpu(torch_says)
        if why is not None:
            raise DeviceError(why)
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda":
        available, torch_says = cuda_status()
        if not available:
            why = unusable_gpu(torch_says)
            if why is not None:
                raise DeviceError(why)
            raise DeviceError(f"`device` {device} asked for a GPU, but no CUDA GPU is available here; use `device` cpu")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(f"`device` {device}: only {torch.cuda.device_count()} GPU(s) here")
    elif resolved.type != "cpu":
        raise DeviceError(f"unsupported device {device!r}: use auto, cpu, cuda or cuda:N")
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bfloat16 on a GPU that has it (float16 otherwise), float32 on the CPU."""
    import torch

    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    table = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if dtype not in table:
        raise DeviceError(f"unknown dtype {dtype!r}: use auto, bfloat16, float16 or float32")
    return table[dtype]


def load_model(
    name: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    layout: str = "auto",
    overrides: SettingsOverrides | None = None,
) -> ModelAdapter:
    """Load a supported Video LLM with its processor and FastVID feature head.

    Parameters
    ----------
    name : str
        See :func:`resolve_model`.
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``auto`` with several GPUs spreads the model over
        them (accelerate's ``device_map="auto"``), which the 72B model needs.
    dtype : str
        ``auto``, ``bfloat16``, ``float16`` or ``float32``.
    attn_implementation : str
        ``sdpa``, ``eager`` or ``flash_attention_2`` (needs the flash-attn package).
    layout : str
        ``auto`` (from the config), ``onevision`` or ``grid`` (LLaVA-Video's, for a llava_onevision
        checkpoint holding LLaVA-Video weights).
    overrides : SettingsOverrides, optional
        What to change of the paper's settings of the model's family (frames, system prompt, ...).

    Returns
    -------
    ModelAdapter

    Raises
    ------
    ModelError, DeviceError
    """
    import torch

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if attn_implementation == "flash_attention_2":
        import importlib.util

        if importlib.util.find_spec("flash_attn") is None:
            raise DeviceError("`attn_implementation` flash_attention_2 needs flash-attn: pip install 'flash-attn>=2.6'")
        if torch_device.type != "cuda":
            raise DeviceError("`attn_implementation` flash_attention_2 runs on a GPU only")
    if layout not in LAYOUTS:
        raise ModelError(f"unknown layout {layout!r}: use {', '.join(LAYOUTS)}")
    # deferred: the registry loads numpy, which a check of a model's name must not wait for
    from .registry import adapter_class, detect_family

    resolved = resolve_model(name)
    family = detect_family(resolved.path, layout)
    if device == "auto" and torch_device.type == "cuda" and torch.cuda.device_count() > 1:
        device_map = "auto"
    else:
        device_map = str(torch_device)
    load_kwargs = {"dtype": torch_dtype, "device_map": device_map, "attn_implementation": attn_implementation}
    _check_overrides(family, overrides)  # before any weight loads
    return adapter_class(family).from_pretrained(resolved.path, model_id=resolved.name, overrides=overrides, **load_kwargs)


def model_family(name: str, layout: str = "auto") -> str | None:
    """The family of a model named as ``--model`` takes it, found without loading or downloading
    anything: tiny models, aliases, shipped repo ids and local folders; None for another repo id."""
    # deferred: the registry and the shipped configs load numpy, which `--model`'s help must not wait for
    from .geometry_base import shipped_config
    from .registry import detect_family, family_of

    shipped = shipped_config(ALIASES.get(name, name))
    if shipped is not None:
        return family_of(shipped[0], Path(name), layout)
    local = Path(name).expanduser()
    if name in TINY_MODELS or local.is_dir():
        return detect_family(resolve_model(name).path, layout)
    return None


def planned_settings(name: str, overrides: SettingsOverrides | None = None, layout: str = "auto") -> RunSettings | None:
    """The settings a model will run with, known before it loads (None when its family is not).

    Lets a caller read the video with the right frame sampling before the weights load. The
    decoding and the notes on the checkpoint are filled in at load time.

    Raises
    ------
    ModelError
        An override that does not apply to the model's family.
    """
    family = model_family(name, layout)
    return None if family is None else _check_overrides(family, overrides)


def _check_overrides(family: str, overrides: SettingsOverrides | None) -> RunSettings:
    # deferred: see _LAZY
    from .registry import paper_settings

    try:
        return paper_settings(family).with_overrides(overrides)
    except ValueError as err:
        raise ModelError(str(err)) from None


__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "FAMILIES",
    "SUPPORTED_FAMILIES",
    "LLMInputs",
    "ModelAdapter",
    "ResolvedModel",
    "RunSettings",
    "SettingsOverrides",
    "VideoFeatures",
    "adapter_class",
    "detect_family",
    "family_of",
    "load_model",
    "model_family",
    "paper_settings",
    "planned_settings",
    "resolve_device",
    "resolve_dtype",
    "resolve_model",
    "tiny_model_dir",
]
