"""FastVID's settings inside vLLM: the per-family defaults, the user's overrides, and the checks (torch-free).

vLLM chooses the retention through its own ``video_pruning_rate`` q (R = 1 - q); FastVID's other
hyperparameters come from, in this order (later wins):

1. the family's defaults, the same as ``fastvid ask`` uses (:data:`FAMILY_DEFAULTS`; for the Qwen
   families FastVID's Qwen2.5-VL release values, tau 0.84 and split_tau 0.95);
2. the ``FASTVID_VLLM`` environment variable, ``FIELD=VALUE[,FIELD=VALUE...]`` (every vLLM process
   reads it: set it where ``vllm serve`` starts);
3. the checkpoint config's ``fastvid`` entry, set with vLLM's ``--hf-overrides``:
   ``'{"architectures": ["FastVIDQwen3VLForConditionalGeneration"], "fastvid": {"tau": 0.8}}'``.

FIELD is any field of :class:`~fastvid_cli.pruning.FastVIDConfig` but ``retention_ratio`` (c, tau,
d, p, beta, segmentation, split_tau, max_segment); a bad name or value stops the engine at start-up
with one line naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..pruning import FastVIDConfig, field_kind, parse_value

ENV_VAR = "FASTVID_VLLM"
"""Environment variable with FastVID's fields for every vLLM process: ``FIELD=VALUE[,FIELD=VALUE...]``."""
CONFIG_KEY = "fastvid"
"""Key of the checkpoint config (``--hf-overrides``) whose mapping sets FastVID's fields."""

QWEN_RELEASE = {"tau": 0.84, "split_tau": 0.95}
"""FastVID's Qwen2.5-VL release values (R comes from vLLM's rate): what ``fastvid`` runs the Qwen families
with (``ModelAdapter.fastvid_defaults``, without R; a test keeps the two equal)."""
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {"qwen2_5_vl": QWEN_RELEASE, "qwen3_vl": QWEN_RELEASE, "qwen3_5": QWEN_RELEASE}
"""Model family (fastvid's names) -> FastVID's defaults there, without the retention ratio."""


def parse_fields(text: str, source: str = ENV_VAR) -> dict[str, Any]:
    """``FIELD=VALUE[,FIELD=VALUE...]`` -> FastVID's fields, typed as the config declares them.

    Raises
    ------
    ValueError
        An unknown field, ``retention_ratio`` (vLLM's rate sets it), or a value of the wrong type;
        the message names ``source``.
    """
    fields = FastVIDConfig.hyperparameters()
    out: dict[str, Any] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise ValueError(f"{source}: bad entry {pair!r}; use FIELD=VALUE with FIELD one of {', '.join(fields)}")
        out[key] = parse_value(raw.strip(), field_kind(fields[key]), pair)
    return out


def fastvid_config(
    family: str, pruning_rate: float, config_fields: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> FastVIDConfig:
    """FastVID's config for one engine: R = 1 - ``pruning_rate`` and the family's defaults, overridden by
    :data:`ENV_VAR`, then by the checkpoint config's :data:`CONFIG_KEY` mapping (``config_fields``).

    Raises
    ------
    ValueError
        An unknown family, a rate outside (0, 1), or a bad field or value (the message says where it came from).
    """
    if family not in FAMILY_DEFAULTS:
        raise ValueError(f"FastVID in vLLM supports {', '.join(FAMILY_DEFAULTS)}, not {family!r}")
    if not 0 < pruning_rate < 1:
        raise ValueError(f"video_pruning_rate must be in (0, 1) for FastVID, got {pruning_rate!r}")
    environ = os.environ if environ is None else environ
    given = dict(FAMILY_DEFAULTS[family]) | parse_fields(environ.get(ENV_VAR, ""))
    fields = FastVIDConfig.hyperparameters()
    for key, value in (config_fields or {}).items():
        if key not in fields:
            raise ValueError(f"hf_overrides {CONFIG_KEY!r}: unknown field {key!r}; use one of {', '.join(fields)}")
        given[key] = value
    try:
        return FastVIDConfig(retention_ratio=round(1.0 - pruning_rate, 12), **given)  # 1 - 0.9 = 0.0999...98
    except (TypeError, ValueError) as error:
        raise ValueError(f"FastVID settings ({ENV_VAR} / hf_overrides {CONFIG_KEY!r}): {error}") from None
