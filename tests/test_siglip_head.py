"""The SigLIP head: reading only its tensors, and saliency / frame features from it."""

import io

import pytest
import torch
from safetensors.torch import save

from fastvid_cli.errors import ModelError
from fastvid_cli.models.siglip_head import KEY_PREFIXES, load_siglip_head, read_safetensors_subset


def test_reads_only_the_head_byte_ranges():
    tensors = {
        "vision_model.encoder.layers.0.w": torch.randn(64, 64),
        "vision_model.head.probe": torch.randn(1, 1, 8),
        "vision_model.post_layernorm.weight": torch.randn(8).to(torch.bfloat16),
        "text_model.x": torch.randn(3),
    }
    blob = save(tensors)

    class CountingStream(io.BytesIO):
        read_bytes = 0

        def read(self, n=-1):
            out = super().read(n)
            CountingStream.read_bytes += len(out)
            return out

    stream = CountingStream(blob)
    got = read_safetensors_subset(stream, KEY_PREFIXES)
    assert set(got) == {"vision_model.head.probe", "vision_model.post_layernorm.weight"}
    assert torch.equal(got["vision_model.head.probe"], tensors["vision_model.head.probe"])
    assert got["vision_model.post_layernorm.weight"].dtype == torch.bfloat16
    assert CountingStream.read_bytes < len(blob) - 64 * 64 * 4, "the big tensor was not read"


def test_head_saliency_matches_plain_attention(tiny_dir):
    head = load_siglip_head(tiny_dir / "siglip_head")
    hidden = torch.randn(3, 729, head.post_layernorm.normalized_shape[0])
    features, saliency = head(hidden)
    assert features.shape == (3, hidden.shape[-1]) and saliency.shape == (3, 729)
    torch.testing.assert_close(saliency.sum(-1), torch.ones(3))
    # by hand: per-head softmax(q k^T / sqrt(dh)) of the probe over the normed patches, mean over heads
    mha = head.head.attention
    x = head.post_layernorm(hidden)
    dim, heads = x.shape[-1], mha.num_heads
    wq, wk, _ = mha.in_proj_weight.chunk(3)
    bq, bk, _ = mha.in_proj_bias.chunk(3)
    q = (head.head.probe @ wq.T + bq).view(1, heads, dim // heads)
    k = (x @ wk.T + bk).view(3, 729, heads, dim // heads)
    logits = torch.einsum("hd,fphd->fhp", q[0], k) / (dim // heads) ** 0.5
    torch.testing.assert_close(saliency, logits.softmax(-1).mean(1), atol=1e-6, rtol=1e-5)
    # frame features are the head's own output
    torch.testing.assert_close(features, head.head(x))


def test_offline_hub_gives_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("FASTVID_CACHE", str(tmp_path / "fv"))
    with pytest.raises(ModelError, match="cannot fetch the SigLIP head"):
        load_siglip_head("google/siglip-so400m-patch14-384")
