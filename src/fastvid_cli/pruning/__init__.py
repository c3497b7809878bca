"""Video-token pruning at the LLM input, pure torch: FastVID and the baselines it is compared with.

Every method is a frozen dataclass config, a :class:`PruningMethod` (which holds R and its check),
validated on creation, that prunes when called::

    from fastvid_cli.pruning import FastVIDConfig, fastvid_prune
    result = fastvid_prune(video_tokens, frame_features, saliency, FastVIDConfig(retention_ratio=0.1))
    result = make_method("visionzip", 0.1)(video_tokens, frame_features, saliency)

with ``video_tokens`` (F, N, D), ``frame_features`` (F, Dg) and ``saliency`` (F, N); each returns a
:class:`PruneResult` of exactly F * max(1, floor(N * R)) tokens (DyCoke below its 25 % floor excepted,
with a note).
A model family's defaults and the user's values meet in one place, :func:`method_for_family`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal, overload

from ..budget import check_retention, tokens_per_frame_kept
from .ats import select_salient
from .base import PruneResult, PruningMethod, check_inputs
from .dtm import anchor_counts, density_merge, density_scores
from .dycoke import DyCokeConfig
from .fastvid import FastVIDConfig, FrameBudget, fastvid_prune, segment, spatiotemporal_prune
from .segmentation import Segmentation, cluster_segments, dyseg, fixed_segments, transition_similarity
from .uniform import UniformConfig
from .visionzip import VisionZipConfig

METHODS: dict[str, type[PruningMethod]] = {cls.name: cls for cls in (FastVIDConfig, UniformConfig, VisionZipConfig, DyCokeConfig)}
"""Pruning methods by name: fastvid, uniform, visionzip, dycoke (:data:`..budget.METHOD_NAMES`, torch-free, lists them too)."""


def make_method(spec: str, retention_ratio: float, **defaults: Any) -> PruningMethod:
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
    fields = cls.hyperparameters()
    kwargs = {k: v for k, v in defaults.items() if k in fields}
    for pair in filter(None, overrides.split(",")):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"bad option {pair!r} for {name}: use FIELD=VALUE with FIELD one of {', '.join(fields)}")
        kwargs[key] = parse_value(raw.strip(), field_kind(fields[key]), pair)
    return cls(retention_ratio=retention_ratio, **kwargs)


@overload
def method_for_family(
    family_defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    spec: Literal["fastvid"] = "fastvid",
    retention_ratio: float | None = None,
) -> FastVIDConfig: ...


@overload
def method_for_family(
    family_defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    spec: str = "fastvid",
    retention_ratio: float | None = None,
) -> PruningMethod: ...


def method_for_family(
    family_defaults: Mapping[str, Any],
    overrides: Mapping[str, Any] | None = None,
    spec: str = "fastvid",
    retention_ratio: float | None = None,
) -> PruningMethod:
    """A method as a model family runs it: the family's defaults, then the user's overrides, then the spec's pairs.

    The one place where "family defaults + the user's overrides" is merged (``ask``, ``compare``,
    ``batch``, ``bench --video`` and the lmms-eval plugin all come here).

    Parameters
    ----------
    family_defaults : mapping
        The model family's values (``ModelAdapter.fastvid_defaults``, e.g. Qwen2.5-VL's R 0.27,
        tau 0.84, split_tau 0.95); ``{}`` for none.
    overrides : mapping, optional
        The fields the user gave (``retention_ratio`` among them, or not); they win over the family's.
    spec : str
        Method spec ``NAME[:FIELD=VALUE,...]`` (see :func:`make_method`); its pairs win over both. Default ``fastvid``.
    retention_ratio : float, optional
        R, winning over the overrides' and the family's (a sweep over R). Without any, the method's default (0.1).

    Returns
    -------
    PruningMethod
        The configured method (a :class:`FastVIDConfig` for the default spec). Defaults and
        overrides set only the fields the method has (a family's tau does not reach ``uniform``).

    Raises
    ------
    ValueError
        Unknown method or field, a value of the wrong type, or a field out of range.
    """
    given = {**family_defaults, **(overrides or {})}
    if retention_ratio is None:
        retention_ratio = given.get("retention_ratio", PruningMethod.retention_ratio)
    fields = {k: v for k, v in given.items() if k != "retention_ratio"}
    return make_method(spec, retention_ratio, **fields)


def method_label(config: PruningMethod) -> str:
    """Short name of a configured method: its name plus the fields that differ from the defaults."""
    defaults = type(config)()
    changed = [
        f"{name}={getattr(config, name):g}" if isinstance(getattr(config, name), float) else f"{name}={getattr(config, name)}"
        for name in config.hyperparameters()
        if getattr(config, name) != getattr(defaults, name)
    ]
    return config.name + (f" ({', '.join(changed)})" if changed else "")


def field_kind(field: dataclasses.Field[Any]) -> type:
    """The value type of a method's field: int, float or str; an optional one (default None) by its
    annotation: ``float | None`` -> float."""
    if field.default is not None:
        return type(field.default)
    annotation = str(field.type)
    return int if annotation.startswith("int") else float if annotation.startswith("float") else str


def parse_value(raw: str, kind: type, pair: str) -> Any:
    """A field's value from its text in a spec: ``none`` or ``off`` (a number field) is None.

    Raises
    ------
    ValueError
        Text that is not of ``kind`` (``pair`` names it in the message).
    """
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
    "PruningMethod",
    "Segmentation",
    "UniformConfig",
    "VisionZipConfig",
    "anchor_counts",
    "check_inputs",
    "check_retention",
    "cluster_segments",
    "density_merge",
    "density_scores",
    "dyseg",
    "fastvid_prune",
    "field_kind",
    "fixed_segments",
    "make_method",
    "method_for_family",
    "method_label",
    "parse_value",
    "segment",
    "select_salient",
    "spatiotemporal_prune",
    "tokens_per_frame_kept",
    "transition_similarity",
]
