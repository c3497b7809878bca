"""Video-token pruning at the LLM input, pure torch: FastVID and the baselines it is compared with.

Every method is a frozen dataclass config (validated on creation) that prunes when called::

    from fastvid_cli.pruning import FastVIDConfig, fastvid_prune
    result = fastvid_prune(video_tokens, frame_features, saliency, FastVIDConfig(retention_ratio=0.1))
    result = make_method("visionzip", 0.1)(video_tokens, frame_features, saliency)

with ``video_tokens`` (F, N, D), ``frame_features`` (F, Dg) and ``saliency`` (F, N); each returns a
:class:`PruneResult` of exactly F * max(1, floor(N * R)) tokens (DyCoke below its 25 % floor excepted,
with a note).
"""

from __future__ import annotations

import dataclasses

from .ats import select_salient
from .base import PruneResult, check_inputs
from .config import FastVIDConfig, FrameBudget, tokens_per_frame_kept
from .dtm import anchor_counts, density_merge, density_scores
from .dycoke import DyCokeConfig
from .fastvid import fastvid_prune, segment, spatiotemporal_prune
from .segmentation import Segmentation, cluster_segments, dyseg, fixed_segments, transition_similarity
from .uniform import UniformConfig
from .visionzip import VisionZipConfig

METHODS = {cls.name: cls for cls in (FastVIDConfig, UniformConfig, VisionZipConfig, DyCokeConfig)}
"""Pruning methods by name: fastvid, uniform, visionzip, dycoke."""


def make_method(spec: str, retention_ratio: float, **defaults):
    """A method's config from a spec ``NAME[:FIELD=VALUE,...]`` at retention ``retention_ratio``.

    ``defaults`` set fields of the method that has them (e.g. FastVID's c, tau); the spec's own
    ``FIELD=VALUE`` pairs win, e.g. ``fastvid:segmentation=fixed`` or ``fastvid:d=0``.

    Raises
    ------
    ValueError
        Unknown method or field, a value of the wrong type, or a field out of range.
    """
    name, _, overrides = spec.partition(":")
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    cls = METHODS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in defaults.items() if k in fields}
    for pair in filter(None, overrides.split(",")):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in fields or key == "retention_ratio":
            settable = ", ".join(f for f in fields if f != "retention_ratio")
            raise ValueError(f"bad option {pair!r} for {name}: use FIELD=VALUE with FIELD one of {settable}")
        kwargs[key] = _convert(raw.strip(), _kind(fields[key]), pair)
    return cls(retention_ratio=retention_ratio, **kwargs)


def method_label(config) -> str:
    """Short name of a configured method: its name plus the fields that differ from the defaults."""
    defaults = type(config)()
    changed = [
        f"{f.name}={getattr(config, f.name):g}" if isinstance(getattr(config, f.name), float) else f"{f.name}={getattr(config, f.name)}"
        for f in dataclasses.fields(config)
        if f.name != "retention_ratio" and getattr(config, f.name) != getattr(defaults, f.name)
    ]
    return config.name + (f" ({', '.join(changed)})" if changed else "")


def _kind(field: dataclasses.Field) -> type:
    """The value type of a config field; an optional one (default None) by its annotation: ``float | None`` -> float."""
    if field.default is not None:
        return type(field.default)
    annotation = str(field.type)
    return int if annotation.startswith("int") else float if annotation.startswith("float") else str


def _convert(raw: str, kind: type, pair: str):
    if raw.lower() in ("none", "off") and kind in (int, float):
        return None
    try:
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError:
        raise ValueError(f"bad value in {pair!r}: expected {kind.__name__}") from None


__all__ = [
    "METHODS",
    "DyCokeConfig",
    "FastVIDConfig",
    "FrameBudget",
    "PruneResult",
    "Segmentation",
    "UniformConfig",
    "VisionZipConfig",
    "anchor_counts",
    "check_inputs",
    "cluster_segments",
    "density_merge",
    "density_scores",
    "dyseg",
    "fastvid_prune",
    "fixed_segments",
    "make_method",
    "method_label",
    "segment",
    "select_salient",
    "spatiotemporal_prune",
    "tokens_per_frame_kept",
    "transition_similarity",
]
