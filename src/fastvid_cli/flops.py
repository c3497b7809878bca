"""Analytic prefill FLOPs of the LLM, from its config alone.

Two conventions, each named in the output:

- ``table5``: FastVID's Table 5 (arXiv 2503.11187). Multiply-accumulates of the LLM on the video
  tokens only, full (non-causal) attention, per layer ``2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm``
  (q and o projections; k and v; attention scores and values; SwiGLU MLP). 48.82 TFLOPs for 6272
  tokens and 4.04 for 608 on LLaVA-OneVision-7B.
- ``causal_2mac``: FLOPs = 2 x multiply-accumulates of the whole prompt's prefill, causal attention
  (query i attends to i + 1 keys), projections, MLP and the LM head on the last position.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

TABLE5 = "table5"
CAUSAL_2MAC = "causal_2mac"
CONVENTIONS = {
    TABLE5: "FastVID Table 5: multiply-accumulates of the LLM on the video tokens only "
    "(per layer 2nD^2 + 2nD*Dkv + 2n^2*D + 3nDm)",
    CAUSAL_2MAC: "2 x multiply-accumulates of the prefill of the whole prompt, causal attention, "
    "LM head on the last token",
}


@dataclass(frozen=True)
class LLMGeometry:
    """Shape of a decoder-only LLM, as FLOPs need it.

    Attributes
    ----------
    hidden : int
        D, the model width.
    kv_dim : int
        D_kv = KV heads x head dim.
    intermediate : int
        m, the MLP width (SwiGLU: three D x m matrices).
    layers : int
    vocab : int
    """

    hidden: int
    kv_dim: int
    intermediate: int
    layers: int
    vocab: int

    @classmethod
    def from_config(cls, config) -> "LLMGeometry":
        """Geometry from a transformers config (its ``text_config`` when it has one)."""
        text = getattr(config, "text_config", None) or config
        heads = text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        return cls(
            hidden=text.hidden_size,
            kv_dim=kv_heads * head_dim,
            intermediate=text.intermediate_size,
            layers=text.num_hidden_layers,
            vocab=text.vocab_size,
        )

    def to_dict(self) -> dict:
        return asdict(self)


def table5_tflops(num_tokens: int, geometry: LLMGeometry) -> float:
    """FastVID Table 5 TFLOPs (multiply-accumulates, 1e12) of the LLM on ``num_tokens`` video tokens.

    Per layer: 2nD^2 + 2nD*D_kv + 2n^2*D + 3nDm, times the number of layers.
    """
    n, d = num_tokens, geometry.hidden
    per_layer = 2 * n * d * d + 2 * n * d * geometry.kv_dim + 2 * n * n * d + 3 * n * d * geometry.intermediate
    return per_layer * geometry.layers / 1e12


def causal_prefill_tflops(prompt_tokens: int, geometry: LLMGeometry) -> float:
    """TFLOPs (2 x multiply-accumulates, 1e12) of a causal prefill over ``prompt_tokens`` tokens.

    Per layer: q, o (2nD^2 MAC), k, v (2nD*D_kv), scores and values over n(n+1)/2 query-key
    pairs (n(n+1)D), SwiGLU (3nDm); plus the LM head for the last token (D*V).
    """
    n, d = prompt_tokens, geometry.hidden
    macs = 2 * n * d * d + 2 * n * d * geometry.kv_dim + n * (n + 1) * d + 3 * n * d * geometry.intermediate
    return (2 * macs * geometry.layers + 2 * d * geometry.vocab) / 1e12


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
    def of(cls, before: float, after: float) -> "BeforeAfter":
        return cls(before, after, after / before if before else 1.0)


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
    """

    unit: str
    conventions: dict
    table5: BeforeAfter
    causal_2mac: BeforeAfter
    geometry: LLMGeometry

    def convention(self, name: str) -> BeforeAfter:
        """The counts of a convention by its name (``table5`` or ``causal_2mac``)."""
        return {TABLE5: self.table5, CAUSAL_2MAC: self.causal_2mac}[name]

    def to_dict(self) -> dict:
        """``{"unit", "conventions", "table5": {"before", "after", "ratio"}, "causal_2mac": {...}, "geometry": {...}}``."""
        return asdict(self)


def flops_report(geometry: LLMGeometry, video_before: int, video_after: int, prompt_before: int, prompt_after: int) -> FlopsReport:
    """Prefill TFLOPs before and after pruning in both conventions, with their ratios.

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
    from .pruning.config import tokens_per_frame_kept

    full = frames * tokens_per_frame
    base_t5 = table5_tflops(full, geometry)
    extra_slots += frames * newlines_per_frame
    base_causal = causal_prefill_tflops(full + extra_slots, geometry)
    rows = []
    for r in [1.0, *retentions]:
        n = frames * tokens_per_frame_kept(tokens_per_frame, r)
        t5, causal = table5_tflops(n, geometry), causal_prefill_tflops(n + extra_slots, geometry)
        rows.append(FlopsRow(retention=r, video_tokens=n, table5=t5, table5_ratio=t5 / base_t5, causal_2mac=causal,
                             causal_2mac_ratio=causal / base_causal))
    return rows
