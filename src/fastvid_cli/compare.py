"""Side-by-side runs: the vanilla model and every (method, retention) pair on one encoded video.

The model and the video are loaded and encoded once; each row prunes the same features, times
its pruning and its prefill, and generates its own answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

from .errors import InputError
from .flops import causal_prefill_tflops, table5_tflops
from .models.base import LLMInputs, ModelAdapter
from .pipeline import encode_video, model_info, video_info
from .pruning import make_method, method_label
from .timing import StageTimer, timed
from .tiny import TINY_NOTE
from .video import SampledVideo


@dataclass
class CompareRow:
    """One line of the comparison (the vanilla model has method ``vanilla`` and retention 1).

    Attributes
    ----------
    method : str
        Label, e.g. ``fastvid`` or ``fastvid (segmentation=fixed)``.
    spec : str
        The method spec as given (``NAME[:FIELD=VALUE,...]``).
    retention : float
    video_tokens : int
        Video tokens kept (newline slots not counted).
    prompt_tokens : int
        Tokens the LLM reads.
    tflops : float
        Prefill TFLOPs, FastVID Table 5 convention (MACs, video tokens only).
    tflops_ratio : float
        ``tflops`` / vanilla's.
    causal_tflops : float
        2 x MACs of the whole prompt's causal prefill.
    pruning_ms, prefill_ms : float
        Measured; pruning is 0 for vanilla.
    speedup : float
        Vanilla prefill ms / this row's.
    answer : str
    same_as_vanilla : bool
    note : str or None
        Set when the method could not keep the budget asked.
    config : dict
        The method's full config.
    """

    method: str
    spec: str
    retention: float
    video_tokens: int
    prompt_tokens: int
    tflops: float
    tflops_ratio: float
    causal_tflops: float
    pruning_ms: float
    prefill_ms: float
    speedup: float
    answer: str
    same_as_vanilla: bool
    note: str | None = None
    config: dict = field(default_factory=dict)


@dataclass
class CompareResult:
    """Everything ``fastvid compare`` reports; ``to_dict()`` is its ``--json`` object."""

    model: dict
    video: dict
    question: str
    frames: int
    tokens_per_frame: int
    settings: dict
    rows: list[CompareRow]
    timing: dict
    notes: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


def compare(
    model: ModelAdapter,
    video: str | SampledVideo,
    question: str,
    methods: list[str],
    retentions: list[float],
    frames: int | None = None,
    max_new_tokens: int = 128,
    method_defaults: dict | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> CompareResult:
    """Run vanilla and every (method, retention) pair on one video; rows in that order.

    Parameters
    ----------
    model : ModelAdapter
    video : str or SampledVideo
    question : str
    methods : list of str
        Method specs ``NAME[:FIELD=VALUE,...]``, e.g. ``fastvid``, ``visionzip``,
        ``fastvid:segmentation=fixed`` (see :func:`fastvid_cli.pruning.make_method`).
    retentions : list of float
        Retention ratios in (0, 1].
    frames, max_new_tokens : int
    method_defaults : dict, optional
        Field values for the methods that have them (e.g. FastVID's c, tau, d, p, beta).
    on_stage : callable, optional
        Called with a description of each step as it starts.

    Returns
    -------
    CompareResult

    Raises
    ------
    InputError
        Unknown method or bad field, a retention outside (0, 1], or a bad video.
    """
    notify = on_stage or (lambda stage: None)
    try:  # check every spec before any model work
        configs = [make_method(spec, r, **(method_defaults or {})) for spec in methods for r in retentions]
    except ValueError as err:
        raise InputError(str(err)) from None
    if not configs:
        raise InputError("nothing to compare: give at least one --method and one --retention")
    specs = [spec for spec in methods for _ in retentions]

    timer = StageTimer(model.device)
    encoded = encode_video(model, video, question, frames, timer, notify)
    features, full = encoded.features, encoded.full_inputs
    geometry = model.llm_geometry()
    video_before = features.num_frames * features.tokens_per_frame
    device = model.device

    notify("vanilla prefill")
    first = configs[0](features.video_tokens, features.frame_features, features.saliency)
    model.prefill(model.build_inputs(encoded.inputs, features, first))  # warm-up of the prefill path
    _, vanilla_ms = timed(lambda: model.prefill(full), device)
    notify("vanilla answer")
    vanilla_answer = model.decode(model.generate(full, max_new_tokens))
    vanilla_tflops = table5_tflops(video_before, geometry)

    def row(method: str, spec: str, retention: float, video_tokens: int, inputs: LLMInputs, pruning_ms: float,
            prefill_ms: float, answer: str, note=None, config=None) -> CompareRow:
        tflops = table5_tflops(video_tokens, geometry)
        return CompareRow(
            method=method, spec=spec, retention=retention, video_tokens=video_tokens, prompt_tokens=inputs.length,
            tflops=tflops, tflops_ratio=tflops / vanilla_tflops, causal_tflops=causal_prefill_tflops(inputs.length, geometry),
            pruning_ms=pruning_ms, prefill_ms=prefill_ms, speedup=vanilla_ms / prefill_ms, answer=answer,
            same_as_vanilla=answer == vanilla_answer, note=note, config=config or {},
        )

    rows = [row("vanilla", "vanilla", 1.0, video_before, full, 0.0, vanilla_ms, vanilla_answer)]
    warmed = set()
    for spec, config in zip(specs, configs):
        label = method_label(config)
        notify(f"{label}, R = {config.retention_ratio:g}")
        prune = lambda: config(features.video_tokens, features.frame_features, features.saliency)  # noqa: E731
        if type(config) not in warmed:  # first call of a method pays one-off costs (kernels, caches)
            prune()
            warmed.add(type(config))
        kept, pruning_ms = timed(prune, device)
        pruned = model.build_inputs(encoded.inputs, features, kept)
        _, prefill_ms = timed(lambda: model.prefill(pruned), device)
        answer = model.decode(model.generate(pruned, max_new_tokens))
        rows.append(row(label, spec, config.retention_ratio, int(kept.indices.numel()), pruned, pruning_ms,
                        prefill_ms, answer, kept.note, config.to_dict()))

    notes = [*model.settings.notes, *encoded.notes]
    notes += sorted({r.note for r in rows if r.note})
    if model.tiny_random:
        notes.append(TINY_NOTE)
    timing = {f"{k}_ms": v for k, v in timer.ms.items()}
    return CompareResult(
        model=model_info(model),
        video=video_info(encoded.video),
        question=question,
        frames=encoded.video.num_frames,
        tokens_per_frame=features.tokens_per_frame,
        settings=model.settings.to_dict(),
        rows=rows,
        timing=timing,
        notes=notes,
    )
