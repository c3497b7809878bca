"""The ``--model_args`` of lmms-eval's ``fastvid`` model: checked, converted, and resolved per model.

lmms-eval splits ``--model_args a=1,b=x`` at commas and converts each value (``true``/``false`` to
bool, digits to int, other numbers to float, the rest stays a string) before calling the model's
``__init__``; :func:`parse_model_args` takes those keyword arguments. Nothing here needs lmms-eval.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..pruning import METHODS, PruningMethod, field_kind, make_method, method_for_family

OWNERS: dict[str, type[PruningMethod]] = {name: cls for cls in reversed(list(METHODS.values())) for name in cls.hyperparameters()}
"""Each method field settable as a model arg -> the method that declares it (the first one, if several do)."""
HYPERPARAMETERS = tuple(name for cls in METHODS.values() for name in cls.hyperparameters() if OWNERS[name] is cls)
"""Method fields settable as model args: every method's dataclass fields but ``retention_ratio`` (FastVID's
c, tau, d, p, beta, segmentation, split_tau, max_segment, VisionZip's dominant_share, DyCoke's window).
They apply to the method that has them (as in ``fastvid compare``)."""

OFF = ("none", "off")
"""Values of an optional number field that turn it off (``split_tau=none``: a Qwen2.5-VL run without the second threshold)."""


@dataclass(frozen=True)
class EvalSettings:
    """What ``--model_args`` asked for; None means "the model family's default".

    Attributes
    ----------
    pretrained : str
        Anything ``fastvid ask --model`` accepts: Hub repo id, alias, local folder, ``tiny-random``...
    method : str
        Method spec ``NAME[:FIELD=VALUE,...]`` as ``fastvid compare --method`` takes it.
    retention : float or None
        R in (0, 1]; 1 runs the vanilla model (no pruning). None: the family's default.
    frames : int or None
        Frames sampled per video. None: the model's default.
    hyperparameters : dict
        Given values of :data:`HYPERPARAMETERS` (an optional one, ``split_tau``, may be None: off).
    device, dtype, attn_implementation, layout : str
        As for :func:`fastvid_cli.models.load_model`.
    max_new_tokens : int
        Longest answer when the task sets no ``max_new_tokens`` (a task's value wins).
    """

    pretrained: str
    method: str = "fastvid"
    retention: float | None = None
    frames: int | None = None
    hyperparameters: dict = field(default_factory=dict)
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str = "sdpa"
    layout: str = "auto"
    max_new_tokens: int = 128

    def to_dict(self) -> dict:
        return asdict(self)


def parse_model_args(
    pretrained: str,
    method: str = "fastvid",
    retention: object = None,
    frames: object = None,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    layout: str = "auto",
    max_new_tokens: object = 128,
    **rest: object,
) -> EvalSettings:
    """Check the model args and convert them to :class:`EvalSettings`, before any model is loaded.

    Parameters
    ----------
    pretrained, method, retention, frames, device, dtype, attn_implementation, layout, max_new_tokens
        See :class:`EvalSettings`. ``method`` may be quoted (``method='fastvid:p=2,beta=0.8'``) to
        keep lmms-eval from splitting it at its commas.
    **rest
        The method hyperparameters of :data:`HYPERPARAMETERS`; nothing else.

    Returns
    -------
    EvalSettings

    Raises
    ------
    ValueError
        An unknown argument (the message lists the accepted ones), a value of the wrong type or out
        of range, or a method spec ``make_method`` rejects.
    """
    unknown = sorted(set(rest) - set(HYPERPARAMETERS))
    if unknown:
        accepted = [
            "pretrained",
            "method",
            "retention",
            "frames",
            *HYPERPARAMETERS,
            "device",
            "dtype",
            "attn_implementation",
            "layout",
            "max_new_tokens",
        ]
        raise ValueError(f"fastvid: unknown model_args {', '.join(unknown)}; accepted: {', '.join(accepted)}")
    if not isinstance(pretrained, str) or not pretrained.strip():
        raise ValueError("fastvid: model_args pretrained=MODEL is required (a Hub repo id, alias, folder or tiny-random)")
    method = _unquote(str(method))
    if method.partition(":")[0] not in METHODS:
        raise ValueError(f"fastvid: unknown method {method!r}; choose from {', '.join(METHODS)} (NAME[:FIELD=VALUE,...])")
    if retention is not None:
        retention = _number("retention", retention)
        if not 0 < retention <= 1:
            raise ValueError(f"fastvid: retention must be in (0, 1], got {retention!r}")
    if frames is not None:
        frames = _integer("frames", frames, minimum=1)
    max_new_tokens = _integer("max_new_tokens", max_new_tokens, minimum=1)
    hyper = {name: _hyperparameter(name, value) for name, value in rest.items()}
    try:  # the spec and the values, checked by the method's own config
        make_method(method, retention if retention is not None else PruningMethod.retention_ratio, **hyper)
    except ValueError as err:
        raise ValueError(f"fastvid: {err}") from None
    for name, value in (("device", device), ("dtype", dtype), ("attn_implementation", attn_implementation), ("layout", layout)):
        if not isinstance(value, str):
            raise ValueError(f"fastvid: {name} must be a name, got {value!r}")  # noqa: TRY004 - every bad model arg is a ValueError
    return EvalSettings(
        pretrained=pretrained.strip(),
        method=method,
        retention=retention,
        frames=frames,
        hyperparameters=hyper,
        device=device,
        dtype=dtype,
        attn_implementation=attn_implementation,
        layout=layout,
        max_new_tokens=max_new_tokens,
    )


def resolve_method(settings: EvalSettings, family_defaults: dict) -> PruningMethod:
    """The configured pruning method: the family's release defaults, then what the model args gave.

    Parameters
    ----------
    settings : EvalSettings
    family_defaults : dict
        ``ModelAdapter.fastvid_defaults`` (e.g. Qwen2.5-VL's R 0.27, tau 0.84, split_tau 0.95).

    Returns
    -------
    FastVIDConfig, UniformConfig, VisionZipConfig or DyCokeConfig
        Its ``retention_ratio`` is the run's R; R = 1 means the vanilla model.
    """
    return method_for_family(family_defaults, settings.hyperparameters, settings.method, settings.retention)


def _hyperparameter(name: str, value: object) -> object:
    """A method field's model arg as its dataclass field takes it, checked by the method that declares it.

    Raises
    ------
    ValueError
        A value of the wrong type or out of range (the message names the field).
    """
    kind = field_kind(OWNERS[name].hyperparameters()[name])
    if kind in (int, float) and isinstance(value, str) and value.lower() in OFF:
        value = None  # an optional field off; a required one is refused below
    elif kind is str:
        value = str(value)
    elif kind is float:
        value = _number(name, value)
    try:
        field_value: dict[str, Any] = {name: value}
        OWNERS[name](**field_value)
    except ValueError as err:
        raise ValueError(f"fastvid: {err}") from None
    return value


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1].strip()
    return text


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"fastvid: {name} must be a number, got {value!r}")
    return value


def _integer(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"fastvid: {name} must be an integer >= {minimum}, got {value!r}")
    return value
