"""Analytic prefill FLOPs of the LLM, from its config alone, each projection from its real shape.

Two conventions, each named in the output:

- ``table5``: FastVID's Table 5 (arXiv 2503.11187). Multiply-accumulates (MACs) of the LLM on the
  video tokens only, full (non-causal) attention. For a Qwen2 LLM (LLaVA-OneVision, LLaVA-Video,
  Qwen2.5-VL) this is the paper's per-layer ``2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm`` (q and o
  projections; k and v; attention scores and values; SwiGLU MLP): 48.82 TFLOPs for 6272 tokens and
  4.04 for 608 on LLaVA-OneVision-7B.
- ``causal_2mac``: FLOPs = 2 x MACs of the whole prompt's prefill, causal attention (query i
  attends to i + 1 keys), projections, MLP and the LM head on the last position.

Both count the same layers, generalized to the LLMs fastvid runs (the shapes are read off the
installed transformers 5.x modeling files named below; n tokens, D the model width):

- **Full-attention layer** (``Qwen2Attention``, ``Qwen3VLTextAttention``, ``Qwen3VLMoeTextAttention``,
  ``Qwen3_5Attention``, ``Qwen3_5MoeAttention``): per token ``D*q_out + 2*D*D_kv + q_dim*D``, where
  ``q_dim`` = heads x head_dim (which Qwen3 decouples from D: Qwen3-VL-4B 32 x 128 = 4096 against
  D 2560) and ``q_out`` = ``q_dim``, or ``2*q_dim`` with Qwen3.5's output gate (``q_proj`` returns the
  query and a sigmoid gate for the attention output); ``D_kv`` = KV heads x head_dim. Scores and
  values: ``2*q_dim`` MACs per query-key pair, ``n^2`` pairs in ``table5``, ``n(n+1)/2`` in
  ``causal_2mac``.
- **Gated DeltaNet layer** (``Qwen3_5GatedDeltaNet``, ``Qwen3_5MoeGatedDeltaNet``; Yang et al., Gated
  Delta Networks, arXiv 2412.06464): per token ``in_proj_qkv`` ``D*(2*K + V)``, ``in_proj_z`` ``D*V``,
  ``in_proj_b`` and ``in_proj_a`` ``D*H_v`` each, ``out_proj`` ``V*D`` (``K`` = key heads x key head
  dim, ``V`` = value heads x value head dim; Qwen3-Next fuses them as ``in_proj_qkvz`` and
  ``in_proj_ba``, same sizes), the depthwise causal ``conv1d`` of kernel k over the ``2K + V``
  q/k/v channels (``(2K + V)*k``), and the chunked delta rule (:func:`delta_rule_macs`), linear in n.
  The same count in both conventions: the delta rule is causal by construction.
- **MLP** (``Qwen2MLP``, ``Qwen3VLTextMLP``, ``Qwen3_5MLP``): SwiGLU, ``3*D*m`` per token. **MoE**
  (``Qwen3VLMoeTextSparseMoeBlock``, ``Qwen3_5MoeSparseMoeBlock``): the router ``D*E`` (``E``
  experts), the ``k`` = ``num_experts_per_tok`` active experts ``k*3*D*m_e``, and Qwen3.5-MoE's shared
  expert ``3*D*m_s`` with its 1-wide sigmoid gate ``D``.
- **LM head** (``causal_2mac`` only): ``D*V_ocab`` for the last position.

Not counted, in both conventions as in the paper: norms (RMSNorm, q/k norms, the gated RMSNorm),
RoPE, softmax, activations, biases, residual adds, Qwen3-VL's DeepStack additions, the delta
rule's elementwise decays and the top-k selection; Qwen3.5's multi-token-prediction layer
(``mtp_*``), which transformers does not load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from .budget import tokens_per_frame_kept

TABLE5 = "table5"
CAUSAL_2MAC = "causal_2mac"
CONVENTIONS = {
    TABLE5: "FastVID Table 5: multiply-accumulates of the LLM on the video tokens only, non-causal attention "
    "(per layer 2nD^2 + 2nD*Dkv + 2n^2*D + 3nDm for a Qwen2 LLM; in general each projection from its real shape, "
    "the active MoE experts and router, Gated DeltaNet layers linear in n)",
    CAUSAL_2MAC: "2 x multiply-accumulates of the prefill of the whole prompt, causal attention, LM head on the last token",
}

DELTA_RULE_CHUNK = 64
"""Chunk length of the chunked gated delta rule: ``chunk_size=64`` of transformers'
``torch_chunk_gated_delta_rule`` (models/qwen3_5/modeling_qwen3_5.py), and the chunk (``BT = 64``) of
flash-linear-attention's ``chunk_gated_delta_rule`` kernel that replaces it when installed."""

PARTS = ("full_attention", "linear_attention", "mlp", "lm_head")
"""The layer types of the split (:class:`LayerTypeSplit`): full-attention layers' attention blocks,
Gated DeltaNet (linear-attention) blocks, the MLP / MoE blocks of all layers, the LM head."""

_GATED_ATTENTION = ("qwen3_5", "qwen3_next")
"""``model_type`` prefixes whose attention always has the output gate: transformers' ``Qwen3_5Attention``
(and Qwen3-Next's) builds ``q_proj`` as ``D x 2*heads*head_dim`` whatever the config says."""
_ALWAYS_MOE = ("qwen3_5_moe",)
"""``model_type`` prefixes whose every layer is a sparse MoE block (``Qwen3_5MoeDecoderLayer`` reads neither
``mlp_only_layers`` nor ``decoder_sparse_step``)."""


def _get(config: Any, key: str, default: Any = None) -> Any:
    """``config.key`` of a transformers config, or ``config[key]`` of a ``config.json`` dict."""
    if isinstance(config, dict):
        value = config.get(key, default)
    else:
        value = getattr(config, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class LLMGeometry:
    """Shape of a decoder-only LLM, as FLOPs need it.

    The first five fields are a Qwen2 LLM's whole shape; the others default to "as Qwen2" (no output
    gate, a dense MLP in every layer, full attention in every layer), so ``LLMGeometry(hidden, kv_dim,
    intermediate, layers, vocab)`` still describes LLaVA-OneVision, LLaVA-Video and Qwen2.5-VL.

    Attributes
    ----------
    hidden : int
        D, the model width.
    kv_dim : int
        D_kv = KV heads x head dim (the width of k_proj and v_proj).
    intermediate : int
        m, the dense SwiGLU MLP width (three D x m matrices), used by the layers that are not MoE
        (0 when every layer is MoE and the config has none).
    layers : int
        Decoder layers, of every type.
    vocab : int
    q_dim : int
        Attention width, heads x head dim (q_proj's query part, o_proj's input; 0 given: D, as in Qwen2).
    attn_output_gate : bool
        q_proj also returns a gate of width q_dim for the attention output (Qwen3.5, Qwen3-Next).
    moe_layers : int
        Layers whose MLP is a sparse MoE block; the other ``layers - moe_layers`` have the dense MLP.
    experts, experts_per_token : int
        E (``num_experts``, the router's width) and k (``num_experts_per_tok``, the active experts).
    expert_intermediate : int
        m_e, one expert's SwiGLU width (``moe_intermediate_size``).
    shared_expert_intermediate : int
        m_s, the shared expert's SwiGLU width (``shared_expert_intermediate_size``; 0: none); it
        comes with a D x 1 sigmoid gate.
    linear_layers : int
        Gated DeltaNet (``linear_attention``) layers; the other ``layers - linear_layers`` are full attention.
    linear_key_heads, linear_key_head_dim, linear_value_heads, linear_value_head_dim : int
        Gated DeltaNet's q/k heads and their width, v heads and their width.
    linear_conv_kernel : int
        Kernel of its depthwise causal conv1d over the q/k/v channels.
    """

    hidden: int
    kv_dim: int
    intermediate: int
    layers: int
    vocab: int
    q_dim: int = 0
    attn_output_gate: bool = False
    moe_layers: int = 0
    experts: int = 0
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_expert_intermediate: int = 0
    linear_layers: int = 0
    linear_key_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_heads: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel: int = 0

    def __post_init__(self) -> None:
        if not self.q_dim:
            object.__setattr__(self, "q_dim", self.hidden)

    @classmethod
    def from_config(cls, config: Any) -> LLMGeometry:
        """Geometry from a transformers config or a ``config.json`` dict: its ``text_config`` when it has one.

        Reads Qwen2 (flat, as LLaVA-Video's and Qwen2.5-VL's legacy configs, or a ``text_config``),
        Qwen3-VL (``qwen3_vl_text``), Qwen3-VL-MoE (``qwen3_vl_moe_text``: ``mlp_only_layers`` and
        ``decoder_sparse_step`` pick the MoE layers), Qwen3.5 (``qwen3_5_text``) and Qwen3.5-MoE
        (``qwen3_5_moe_text``: every layer MoE, with a shared expert). Layer types come from
        ``layer_types`` (a dict without it: every ``full_attention_interval``-th layer, default 4, is full
        attention for the hybrid model types, as the configs' ``__post_init__`` builds it); any type but
        ``linear_attention`` counts as full attention.
        """
        text = _get(config, "text_config", None) or config
        model_type = str(_get(text, "model_type", "") or _get(config, "model_type", ""))
        heads = _get(text, "num_attention_heads")
        hidden = _get(text, "hidden_size")
        head_dim = _get(text, "head_dim", None) or hidden // heads
        kv_heads = _get(text, "num_key_value_heads", None) or heads
        layers = _get(text, "num_hidden_layers")

        layer_types = _get(text, "layer_types", None)
        if layer_types is None and model_type.startswith(_GATED_ATTENTION):
            interval = _get(text, "full_attention_interval", 4)
            layer_types = ["linear_attention" if (i + 1) % interval else "full_attention" for i in range(layers)]
        linear = sum(1 for t in layer_types or [] if t == "linear_attention")

        experts = _get(text, "num_experts", 0)
        if not experts:
            moe = 0
        elif model_type.startswith(_ALWAYS_MOE):
            moe = layers
        else:  # Qwen3VLMoeTextDecoderLayer / Qwen3NextDecoderLayer / Qwen2MoeDecoderLayer
            dense_only = set(_get(text, "mlp_only_layers", []))
            step = _get(text, "decoder_sparse_step", 1)
            moe = sum(1 for i in range(layers) if i not in dense_only and (i + 1) % step == 0)
        gated = model_type.startswith(_GATED_ATTENTION) or bool(_get(text, "attn_output_gate", False))
        return cls(
            hidden=hidden,
            kv_dim=kv_heads * head_dim,
            intermediate=_get(text, "intermediate_size", 0),
            layers=layers,
            vocab=_get(text, "vocab_size"),
            q_dim=heads * head_dim,
            attn_output_gate=gated,
            moe_layers=moe,
            experts=experts if moe else 0,
            experts_per_token=_get(text, "num_experts_per_tok", 0) if moe else 0,
            expert_intermediate=_get(text, "moe_intermediate_size", 0) if moe else 0,
            shared_expert_intermediate=_get(text, "shared_expert_intermediate_size", 0) if moe else 0,
            linear_layers=linear,
            linear_key_heads=_get(text, "linear_num_key_heads", 0) if linear else 0,
            linear_key_head_dim=_get(text, "linear_key_head_dim", 0) if linear else 0,
            linear_value_heads=_get(text, "linear_num_value_heads", 0) if linear else 0,
            linear_value_head_dim=_get(text, "linear_value_head_dim", 0) if linear else 0,
            linear_conv_kernel=_get(text, "linear_conv_kernel_dim", 0) if linear else 0,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def full_attention_layers(self) -> int:
        return self.layers - self.linear_layers

    @property
    def dense_mlp_layers(self) -> int:
        return self.layers - self.moe_layers

    def projection_macs(self) -> dict[str, dict[str, int]]:
        """MACs per token of each weight matrix of one layer, by block: each equals that matrix's weight count.

        ``full_attention`` (q_proj, k_proj, v_proj, o_proj), ``linear_attention`` (in_proj_qkv,
        in_proj_z, in_proj_b, in_proj_a, conv1d, out_proj), ``mlp`` (the dense SwiGLU's gate_proj,
        up_proj, down_proj), ``moe`` (router, one expert, shared_expert, shared_expert_gate: the
        per-token cost is router + k x expert + shared), ``lm_head``; a block the model lacks is empty.
        Shapes: transformers' ``Qwen3_5Attention`` / ``Qwen3VLTextAttention``, ``Qwen3_5GatedDeltaNet``,
        ``Qwen3VLTextMLP``, ``Qwen3_5MoeSparseMoeBlock`` / ``Qwen3VLMoeTextSparseMoeBlock``.
        """
        d = self.hidden
        out = {"full_attention": {}, "linear_attention": {}, "mlp": {}, "moe": {}, "lm_head": {"lm_head": d * self.vocab}}
        if self.full_attention_layers:
            out["full_attention"] = {
                "q_proj": d * self.q_dim * (2 if self.attn_output_gate else 1),
                "k_proj": d * self.kv_dim,
                "v_proj": d * self.kv_dim,
                "o_proj": self.q_dim * d,
            }
        if self.linear_layers:
            keys = self.linear_key_heads * self.linear_key_head_dim
            values = self.linear_value_heads * self.linear_value_head_dim
            out["linear_attention"] = {
                "in_proj_qkv": d * (2 * keys + values),
                "in_proj_z": d * values,
                "in_proj_b": d * self.linear_value_heads,
                "in_proj_a": d * self.linear_value_heads,
                "conv1d": (2 * keys + values) * self.linear_conv_kernel,
                "out_proj": values * d,
            }
        if self.dense_mlp_layers:
            out["mlp"] = {
                "gate_proj": d * self.intermediate,
                "up_proj": d * self.intermediate,
                "down_proj": self.intermediate * d,
            }
        if self.moe_layers:
            out["moe"] = {"router": d * self.experts, "expert": 3 * d * self.expert_intermediate}
            if self.shared_expert_intermediate:
                out["moe"] |= {"shared_expert": 3 * d * self.shared_expert_intermediate, "shared_expert_gate": d}
        return out

    def describe(self) -> str:
        """One line: the widths and layer types the counts use."""
        gate = ", q_proj x2 (output gate)" if self.attn_output_gate else ""
        text = f"D {self.hidden}, attention width {self.q_dim}{gate}, D_kv {self.kv_dim}"
        if self.moe_layers:
            shared = f" + shared expert {self.shared_expert_intermediate}" if self.shared_expert_intermediate else ""
            where = f" in {self.moe_layers} layers, MLP {self.intermediate} in the rest" if self.dense_mlp_layers else ""
            text += f", MoE {self.experts_per_token} of {self.experts} experts x {self.expert_intermediate}{shared}{where}"
        else:
            text += f", MLP {self.intermediate}"
        text += f", {self.layers} layers"
        if self.linear_layers:
            text += (
                f" ({self.full_attention_layers} full attention + {self.linear_layers} Gated DeltaNet: "
                f"q/k {self.linear_key_heads} x {self.linear_key_head_dim}, v {self.linear_value_heads} x "
                f"{self.linear_value_head_dim}, conv {self.linear_conv_kernel})"
            )
        return text


def delta_rule_macs(n: int, geometry: LLMGeometry, chunk: int = DELTA_RULE_CHUNK) -> int:
    """MACs of the chunked gated delta rule of one Gated DeltaNet layer over ``n`` tokens.

    As transformers' ``torch_chunk_gated_delta_rule`` (models/qwen3_5/modeling_qwen3_5.py, called by
    ``Qwen3_5GatedDeltaNet.forward`` for a prefill) computes it: q and k repeated to the H_v value
    heads, the sequence padded to ``ceil(n / C)`` chunks of C = 64. Per value head and chunk, with
    d_k, d_v the key and value head dims:

    - ``k_beta @ key^T`` (the UT system) and ``query @ key^T`` (intra-chunk attention): ``2 C^2 d_k``;
    - the two unitriangular solves (``solve_triangular(ut_system, v_beta)`` and ``(..., decayed_k_beta)``):
      ``C(C-1)/2 (d_v + d_k)``;
    - ``intra_chunk_attn @ v_new``: ``C^2 d_v``;
    - ``k_cumdecay @ state``, ``query @ state`` and the state update ``key^T @ v_new``: ``3 C d_k d_v``.

    Elementwise work (l2norm, decays, beta) is not counted. Linear in n: ``H_v ceil(n/C) (...)``.
    """
    if n <= 0 or not geometry.linear_layers:
        return 0
    dk, dv = geometry.linear_key_head_dim, geometry.linear_value_head_dim
    per_chunk = 2 * chunk * chunk * dk + chunk * (chunk - 1) // 2 * (dk + dv) + chunk * chunk * dv + 3 * chunk * dk * dv
    return geometry.linear_value_heads * (-(-n // chunk)) * per_chunk


@dataclass(frozen=True)
class PrefillMacs:
    """Multiply-accumulates of one prefill, by layer type (all layers of that type together).

    Attributes
    ----------
    full_attention : int
        The attention blocks of the full-attention layers: projections, scores and values.
    linear_attention : int
        The Gated DeltaNet blocks: projections, conv1d, delta rule.
    mlp : int
        The MLP / MoE blocks of every layer.
    lm_head : int
        The LM head on the last position (the causal count only).
    """

    full_attention: int
    linear_attention: int
    mlp: int
    lm_head: int

    @property
    def total(self) -> int:
        return self.full_attention + self.linear_attention + self.mlp + self.lm_head


def prefill_macs(n: int, geometry: LLMGeometry, causal: bool) -> PrefillMacs:
    """MACs of a prefill over ``n`` tokens, by layer type (formulas: the module docstring).

    ``causal=False`` is Table 5's count (``n^2`` query-key pairs, no LM head); ``causal=True`` the real
    prefill's (``n(n+1)/2`` pairs, the LM head on the last position).
    """
    if n <= 0:
        return PrefillMacs(0, 0, 0, 0)
    shapes = geometry.projection_macs()
    pairs = n * (n + 1) // 2 if causal else n * n
    full = geometry.full_attention_layers * (n * sum(shapes["full_attention"].values()) + 2 * pairs * geometry.q_dim)
    linear = geometry.linear_layers * (n * sum(shapes["linear_attention"].values()) + delta_rule_macs(n, geometry))
    moe = shapes["moe"]
    moe_token = (
        (
            moe["router"]
            + geometry.experts_per_token * moe["expert"]
            + moe.get("shared_expert", 0)
            + moe.get("shared_expert_gate", 0)
        )
        if moe
        else 0
    )
    mlp = n * (geometry.dense_mlp_layers * sum(shapes["mlp"].values()) + geometry.moe_layers * moe_token)
    return PrefillMacs(full, linear, mlp, shapes["lm_head"]["lm_head"] if causal else 0)


def table5_tflops(num_tokens: int, geometry: LLMGeometry) -> float:
    """FastVID Table 5 TFLOPs (multiply-accumulates, 1e12) of the LLM on ``num_tokens`` video tokens.

    Qwen2: per layer 2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm, times the number of layers; in general
    :func:`prefill_macs` with non-causal attention.
    """
    return prefill_macs(num_tokens, geometry, causal=False).total / 1e12


def causal_prefill_tflops(prompt_tokens: int, geometry: LLMGeometry) -> float:
    """TFLOPs (2 x multiply-accumulates, 1e12) of a causal prefill over ``prompt_tokens`` tokens.

    Qwen2, per layer: q, o (2nD^2 MAC), k, v (2nD*D_kv), scores and values over n(n+1)/2 query-key
    pairs (n(n+1)D), SwiGLU (3nDm); plus the LM head for the last token (D*V). In general
    :func:`prefill_macs` with causal attention.
    """
    return 2 * prefill_macs(prompt_tokens, geometry, causal=True).total / 1e12


@dataclass(frozen=True)
class BeforeAfter:
    """TFLOPs of one convention before and after pruning.

    Attributes
    ----------
    before, after : float
        TFLOPs (1e12) of the unpruned and the pruned prompt.
    ratio : float
        ``after / before`` (1.0 when ``before`` is 0).
    """

    before: float
    after: float
    ratio: float

    @classmethod
    def of(cls, before: float, after: float) -> BeforeAfter:
        return cls(before, after, after / before if before else 1.0)


@dataclass(frozen=True)
class PartCounts:
    """TFLOPs of one layer type before and after pruning, and its shares.

    Attributes
    ----------
    before, after : float
        TFLOPs (1e12) of this layer type in the unpruned and the pruned prompt.
    ratio : float
        ``after / before`` (1.0 when ``before`` is 0).
    share_before, share_after : float
        Its share of all the prefill's TFLOPs before and after (0 when there are none).
    share_of_saving : float
        ``(before - after)`` over the whole prefill's saving (0 when nothing is saved).
    """

    before: float
    after: float
    ratio: float
    share_before: float
    share_after: float
    share_of_saving: float


@dataclass(frozen=True)
class LayerTypeSplit:
    """One convention's TFLOPs by layer type, before and after pruning: where the FLOPs and the saving are.

    Every key is always there (a model without Gated DeltaNet layers has ``linear_attention`` all 0;
    Table 5 has no LM head), so the JSON is the same for every model.

    Attributes
    ----------
    full_attention, linear_attention, mlp, lm_head : PartCounts
        See :data:`PARTS`.
    """

    full_attention: PartCounts
    linear_attention: PartCounts
    mlp: PartCounts
    lm_head: PartCounts

    @classmethod
    def of(cls, before: PrefillMacs, after: PrefillMacs, scale: float) -> LayerTypeSplit:
        """The split of two counts; ``scale`` turns MACs into the convention's TFLOPs (1e-12 or 2e-12)."""
        saved = before.total - after.total
        parts = {}
        for name in PARTS:
            b, a = getattr(before, name), getattr(after, name)
            parts[name] = PartCounts(
                before=b * scale,
                after=a * scale,
                ratio=a / b if b else 1.0,
                share_before=b / before.total if before.total else 0.0,
                share_after=a / after.total if after.total else 0.0,
                share_of_saving=(b - a) / saved if saved else 0.0,
            )
        return cls(**parts)

    def parts(self) -> dict[str, PartCounts]:
        """Layer type -> its counts, in :data:`PARTS` order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class FlopsSplit:
    """Both conventions' TFLOPs by layer type, before and after pruning.

    Attributes
    ----------
    table5, causal_2mac : LayerTypeSplit
    """

    table5: LayerTypeSplit
    causal_2mac: LayerTypeSplit

    @classmethod
    def of(cls, geometry: LLMGeometry, video_before: int, video_after: int, prompt_before: int, prompt_after: int) -> FlopsSplit:
        return cls(
            table5=LayerTypeSplit.of(
                prefill_macs(video_before, geometry, False), prefill_macs(video_after, geometry, False), 1e-12
            ),
            causal_2mac=LayerTypeSplit.of(
                prefill_macs(prompt_before, geometry, True), prefill_macs(prompt_after, geometry, True), 2e-12
            ),
        )

    def convention(self, name: str) -> LayerTypeSplit:
        return {TABLE5: self.table5, CAUSAL_2MAC: self.causal_2mac}[name]

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FlopsReport:
    """Prefill TFLOPs before and after pruning in both conventions; ``to_dict()`` is its ``--json`` object.

    Attributes
    ----------
    unit : str
        ``TFLOPs``.
    conventions : dict
        Convention name -> what it counts (:data:`CONVENTIONS`).
    table5 : BeforeAfter
        FastVID's Table 5 convention (video tokens only).
    causal_2mac : BeforeAfter
        2 x multiply-accumulates of the whole prompt's causal prefill.
    geometry : LLMGeometry
        The LLM the counts are for.
    split : FlopsSplit
        Both conventions by layer type: full attention, linear attention, MLP / MoE, LM head.
    """

    unit: str
    conventions: dict
    table5: BeforeAfter
    causal_2mac: BeforeAfter
    geometry: LLMGeometry
    split: FlopsSplit

    def convention(self, name: str) -> BeforeAfter:
        """The counts of a convention by its name (``table5`` or ``causal_2mac``)."""
        return {TABLE5: self.table5, CAUSAL_2MAC: self.causal_2mac}[name]

    def to_dict(self) -> dict:
        """``{"unit", "conventions", "table5": {"before", "after", "ratio"}, "causal_2mac": {...}, "geometry": {...},
        "split": {"table5": {"full_attention": {...}, ...}, "causal_2mac": {...}}}``."""
        return asdict(self)


def flops_report(
    geometry: LLMGeometry, video_before: int, video_after: int, prompt_before: int, prompt_after: int
) -> FlopsReport:
    """Prefill TFLOPs before and after pruning in both conventions, with their ratios and the split by layer type.

    Parameters
    ----------
    geometry : LLMGeometry
    video_before, video_after : int
        Video tokens of the unpruned and the pruned prompt (Table 5 counts these only).
    prompt_before, prompt_after : int
        Tokens of the whole unpruned and pruned prompt (the causal count).

    Returns
    -------
    FlopsReport
    """
    return FlopsReport(
        unit="TFLOPs",
        conventions=dict(CONVENTIONS),
        table5=BeforeAfter.of(table5_tflops(video_before, geometry), table5_tflops(video_after, geometry)),
        causal_2mac=BeforeAfter.of(causal_prefill_tflops(prompt_before, geometry), causal_prefill_tflops(prompt_after, geometry)),
        geometry=geometry,
        split=FlopsSplit.of(geometry, video_before, video_after, prompt_before, prompt_after),
    )


@dataclass(frozen=True)
class FlopsRow:
    """One row of the analytic prefill table (``fastvid flops``); ``to_dict()`` is its ``--json`` object.

    Attributes
    ----------
    retention : float
        R (1 for vanilla).
    video_tokens : int
        F * max(1, floor(N R)).
    table5 : float
        TFLOPs, FastVID's Table 5 convention.
    table5_ratio : float
        ``table5`` / vanilla's.
    causal_2mac : float
        TFLOPs, 2 x MACs of a causal prefill over the video slots (text excluded).
    causal_2mac_ratio : float
        ``causal_2mac`` / vanilla's.
    """

    retention: float
    video_tokens: int
    table5: float
    table5_ratio: float
    causal_2mac: float
    causal_2mac_ratio: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FlopsSplitRow:
    """One retention ratio's split by layer type against vanilla (``fastvid flops``; ``to_dict()`` is its JSON).

    Attributes
    ----------
    retention : float
        R (1 for vanilla, whose ``after`` equals its ``before``).
    video_tokens : int
    split : FlopsSplit
        ``before``: vanilla; ``after``: this ratio's budget; Table 5 on the video tokens, the causal
        count over the video slots, as in :class:`FlopsRow`.
    """

    retention: float
    video_tokens: int
    split: FlopsSplit

    def to_dict(self) -> dict:
        return asdict(self)


def _budgets(
    tokens_per_frame: int, extra_slots: int, frames: int, retentions: list[float], newlines_per_frame: int
) -> list[tuple[float, int, int]]:
    """(R, video tokens, video slots) for vanilla, then each retention ratio."""
    slots = extra_slots + frames * newlines_per_frame
    out = []
    for r in [1.0, *retentions]:
        n = frames * tokens_per_frame_kept(tokens_per_frame, r)
        out.append((r, n, n + slots))
    return out


def flops_rows(
    geometry: LLMGeometry,
    tokens_per_frame: int,
    extra_slots: int,
    frames: int,
    retentions: list[float],
    newlines_per_frame: int = 0,
) -> list[FlopsRow]:
    """The analytic prefill table: vanilla, then FastVID's budget at each retention ratio.

    Parameters
    ----------
    geometry : LLMGeometry
    tokens_per_frame : int
        N, prunable video tokens per frame.
    extra_slots : int
        Video slots never pruned (e.g. one newline); counted in ``causal_2mac`` only.
    frames : int
        F.
    retentions : list of float
        Retention ratios R in (0, 1].
    newlines_per_frame : int
        Row newlines per frame (LLaVA-Video: 13), counted in ``causal_2mac`` as if every row kept a
        token (an upper bound for pruned prompts).

    Returns
    -------
    list of FlopsRow
        Vanilla (R = 1) first, then one per retention ratio.
    """
    budgets = _budgets(tokens_per_frame, extra_slots, frames, retentions, newlines_per_frame)
    _, full, full_slots = budgets[0]
    base_t5, base_causal = table5_tflops(full, geometry), causal_prefill_tflops(full_slots, geometry)
    rows = []
    for r, n, slots in budgets:
        t5, causal = table5_tflops(n, geometry), causal_prefill_tflops(slots, geometry)
        rows.append(
            FlopsRow(
                retention=r,
                video_tokens=n,
                table5=t5,
                table5_ratio=t5 / base_t5,
                causal_2mac=causal,
                causal_2mac_ratio=causal / base_causal,
            )
        )
    return rows


def flops_split_rows(
    geometry: LLMGeometry,
    tokens_per_frame: int,
    extra_slots: int,
    frames: int,
    retentions: list[float],
    newlines_per_frame: int = 0,
) -> list[FlopsSplitRow]:
    """The split by layer type of each row of :func:`flops_rows` (same parameters, same token counts):
    vanilla first, then each retention ratio against vanilla."""
    budgets = _budgets(tokens_per_frame, extra_slots, frames, retentions, newlines_per_frame)
    _, full, full_slots = budgets[0]
    return [
        FlopsSplitRow(retention=r, video_tokens=n, split=FlopsSplit.of(geometry, full, n, full_slots, slots))
        for r, n, slots in budgets
    ]
