"""SigLIP's post_layernorm and attention-pooling head, re-attached for FastVID's features.

The LLaVA checkpoints drop SigLIP's last layer and its pooling head. FastVID's release re-attaches
``post_layernorm`` and ``head`` of the pretrained google/siglip-so400m-patch14-384 (about 15.2 M
parameters) and applies them to the vision-tower output the LLM uses: the head's output is the frame
feature g_i of DySeg, and its attention over the patches (mean over heads) is the ATS saliency.

Only those tensors are read. From the Hub they are fetched as byte ranges of the safetensors file
(``huggingface_hub.HfFileSystem``), so the 3.5 GB checkpoint is never downloaded whole, and cached
as a small safetensors file after the first use.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from .hub import hub_offline, hub_unreachable

SIGLIP_REPO = "google/siglip-so400m-patch14-384"
SIGLIP_HEAD_DIR = "siglip_head"
"""Sub-folder of a checkpoint that holds its own SigLIP post_layernorm + pooling head (tiny checkpoints do)."""
KEY_PREFIXES = ("vision_model.head.", "vision_model.post_layernorm.")
_SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
}


class SiglipHead(nn.Module):
    """SigLIP ``post_layernorm`` followed by the multi-head attention-pooling head.

    Parameters
    ----------
    vision_config : transformers.SiglipVisionConfig
        Gives the width, heads, MLP size and layer-norm epsilon of the head.
    """

    def __init__(self, vision_config) -> None:
        super().__init__()
        from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

        self.post_layernorm = nn.LayerNorm(vision_config.hidden_size, eps=vision_config.layer_norm_eps)
        self.head = SiglipMultiheadAttentionPoolingHead(vision_config)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame features and patch saliency.

        Parameters
        ----------
        hidden_states : torch.Tensor
            (F, P, Dv) raw last-layer vision-tower output (before any layer norm), P = 729 for SigLIP.

        Returns
        -------
        frame_features : torch.Tensor
            (F, Dv) pooled head output g_i.
        saliency : torch.Tensor
            (F, P) attention of the head's probe over the patches, averaged over heads (rows sum to 1).
        """
        hidden = self.post_layernorm(hidden_states)
        probe = self.head.probe.expand(hidden.shape[0], -1, -1)
        pooled, weights = self.head.attention(probe, hidden, hidden, need_weights=True, average_attn_weights=True)
        pooled = pooled + self.head.mlp(self.head.layernorm(pooled))
        return pooled[:, 0], weights[:, 0]


def head_cache_dir() -> Path:
    """Where extracted head tensors are cached: ``$FASTVID_CACHE`` or ``~/.cache/fastvid``."""
    return Path(os.environ.get("FASTVID_CACHE") or Path.home() / ".cache" / "fastvid")


def load_siglip_head(source: str | os.PathLike = SIGLIP_REPO, revision: str | None = None) -> SiglipHead:
    """Load the SigLIP head from a local folder or a Hub repository, reading only its tensors.

    Parameters
    ----------
    source : str or PathLike
        A folder with ``config.json`` and ``*.safetensors`` holding ``vision_model.head.*`` and
        ``vision_model.post_layernorm.*``, or a Hub repo id (default google/siglip-so400m-patch14-384).
    revision : str, optional
        Hub revision.

    Returns
    -------
    SiglipHead
        In float32 on the CPU, in eval mode.

    Raises
    ------
    ModelError
        If the tensors are missing, or the repository is neither cached nor reachable.
    """
    from transformers import SiglipVisionConfig

    folder = Path(source)
    if folder.is_dir():
        config_path, tensors = folder / "config.json", _read_local(folder)
    else:
        config_path, tensors = _fetch_remote(str(source), revision)
    config = json.loads(Path(config_path).read_text())
    config = config.get("vision_config", config)
    vision_config = SiglipVisionConfig(**{k: v for k, v in config.items() if k != "model_type"})
    head = SiglipHead(vision_config)
    state = {key.removeprefix("vision_model."): value.float() for key, value in tensors.items()}
    missing, unexpected = head.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelError(
            f"SigLIP head in {source} does not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return head.eval()


def _read_local(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    tensors: dict[str, torch.Tensor] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - a safetensors file, not a dict: it has keys(), no iteration
                if key.startswith(KEY_PREFIXES):
                    tensors[key] = f.get_tensor(key)
    if not tensors:
        raise ModelError(f"no SigLIP head tensors (vision_model.head.*) in {folder}")
    return tensors


def _fetch_remote(repo_id: str, revision: str | None) -> tuple[Path, dict[str, torch.Tensor]]:
    """Cached head tensors of a Hub repo; on a miss, read their byte ranges and cache them."""
    from huggingface_hub import HfFileSystem, hf_hub_download
    from safetensors.torch import load_file, save_file

    cache = head_cache_dir() / "siglip-head" / repo_id.replace("/", "--") / (revision or "main")
    if (cache / "model.safetensors").exists() and (cache / "config.json").exists():
        return cache / "config.json", load_file(str(cache / "model.safetensors"))
    if hub_offline():
        raise ModelError(_head_unreachable(repo_id, "HF_HUB_OFFLINE is set"))
    why = hub_unreachable()
    if why is not None:
        raise ModelError(_head_unreachable(repo_id, why))
    try:
        config_path = hf_hub_download(repo_id, "config.json", revision=revision)
        fs = HfFileSystem()
        with fs.open(f"{repo_id}@{revision or 'main'}/model.safetensors", "rb", block_size=0) as remote:
            tensors = read_safetensors_subset(remote, KEY_PREFIXES)
    except Exception as err:  # noqa: BLE001 - offline, unknown repo, no access: one clear line
        raise ModelError(_head_unreachable(repo_id, type(err).__name__)) from None
    if not tensors:
        raise ModelError(f"no SigLIP head tensors (vision_model.head.*) in {repo_id}")
    cache.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(cache / "model.safetensors"))
    (cache / "config.json").write_text(Path(config_path).read_text())
    return cache / "config.json", tensors


def _head_unreachable(repo_id: str, why: str) -> str:
    return (
        f"cannot fetch the SigLIP head from {repo_id} ({why}); FastVID needs it once for saliency and "
        f"frame features (about 60 MB, cached after that). Connect to the Hub once, or put its "
        f"config.json and model.safetensors in a siglip_head/ folder inside the model's checkpoint folder"
    )


def read_safetensors_subset(stream, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Read only the tensors whose names start with ``prefixes`` from a seekable safetensors stream.

    The safetensors layout is an 8-byte little-endian header length, a JSON header mapping names to
    dtype, shape and byte offsets, then the data. Only the header and the wanted byte ranges are read.

    Parameters
    ----------
    stream : binary file object
        Seekable, e.g. ``open(path, "rb")`` or an ``HfFileSystem`` file.
    prefixes : tuple of str
        Name prefixes to keep.

    Returns
    -------
    dict of str to torch.Tensor
    """
    (header_len,) = struct.unpack("<Q", stream.read(8))
    header = json.loads(stream.read(header_len))
    data_start = 8 + header_len
    tensors = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0] if kv[0] != "__metadata__" else -1):
        if name == "__metadata__" or not name.startswith(prefixes):
            continue
        begin, end = info["data_offsets"]
        stream.seek(data_start + begin)
        raw = bytearray(stream.read(end - begin))
        dtype = _SAFETENSORS_DTYPES[info["dtype"]]
        tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(info["shape"]).clone()
    return tensors
