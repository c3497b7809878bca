"""Side-by-side runs: the vanilla model and every (method, retention) pair on one encoded video.

The model and the video are loaded and encoded once (one :class:`~fastvid_cli.engine.pipeline.VideoSession`);
each row prunes the same features, prefills its own prefix once (timed) and answers on that KV cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import InputError
from ..flops import causal_prefill_tflops, table5_tflops
from ..models.base import ModelAdapter
from ..models.settings import RunSettings
from ..pruning import PruningMethod, method_for_family, method_label
from ..video import SampledVideo
from .pipeline import ModelInfo, VideoSession, VideoSource, model_info, video_info


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

    model: ModelInfo
    video: VideoSource
    question: str
    frames: int
    tokens_per_frame: int
    settings: RunSettings
    rows: list[CompareRow]
    timing: dict
    notes: list[str]

    def to_dict(self) -> dict:
        return {**asdict(self), "settings": self.settings.to_dict()}


COMPARE_MAX_NEW_TOKENS = 64
"""Longest answer of a ``compare`` row by default: short, so the table stays readable."""


def compare(
    model: ModelAdapter,
    video: str | SampledVideo,
    question: str,
    methods: list[str],
    retentions: list[float],
    frames: int | None = None,
    max_new_tokens: int | None = None,
    method_overrides: dict | None = None,
    on_stage: Callable[[str], None] | None = None,
    vision_batch: int | None = None,
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
    frames : int, optional
    max_new_tokens : int, optional
        Longest answer per row; default :data:`COMPARE_MAX_NEW_TOKENS`, or the model's own default for a
        model that reasons before it answers.
    method_overrides : dict, optional
        Field values for the methods that have them (e.g. FastVID's c, tau, d, p, beta); the model
        family's defaults (``model.fastvid_defaults``) fill the rest, and a spec's own pairs win
        (see :func:`fastvid_cli.pruning.method_for_family`).
    on_stage : callable, optional
        Called with a description of each step as it starts.
    vision_batch : int, optional
        Frames per chunk of the streaming encode (see :func:`fastvid_cli.engine.pipeline.encode_video`).

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
        configs = [method_for_family(model.fastvid_defaults, method_overrides, spec, r) for spec in methods for r in retentions]
    except ValueError as err:
        raise InputError(str(err)) from None
    if not configs:
        raise InputError("nothing to compare: give at least one `method` and one `retention`")
    specs = [spec for spec in methods for _ in retentions]

    session = VideoSession.open(model, video, frames, notify, vision_batch)
    features = session.features
    geometry = model.llm_geometry()
    video_before = features.num_frames * features.tokens_per_frame
    vanilla_tflops = table5_tflops(video_before, geometry)
    rows: list[CompareRow] = []
    cut_off: list[str] = []

    def run(label: str, spec: str, retention: float, method: PruningMethod | None) -> None:
        notify(f"{label}, R = {retention:g}" if method is not None else "vanilla")
        pruned = session.prune(method)
        pruned.prefill()
        answer = pruned.answer(
            question, max_new_tokens or (model.default_max_new_tokens if model.thinking else COMPARE_MAX_NEW_TOKENS)
        )
        prefill_ms = pruned.prefill_ms + answer.prefill_ms
        kept = pruned.kept
        video_tokens = int(kept.indices.numel()) if kept is not None else video_before
        prompt_tokens = pruned.inputs.length + answer.inputs.length
        tflops = table5_tflops(video_tokens, geometry)
        vanilla = rows[0] if rows else None
        if answer.cut_off_reasoning:
            cut_off.append(f"{label} R = {retention:g}" if method is not None else "vanilla")
        rows.append(
            CompareRow(
                method=label,
                spec=spec,
                retention=retention,
                video_tokens=video_tokens,
                prompt_tokens=prompt_tokens,
                tflops=tflops,
                tflops_ratio=tflops / vanilla_tflops,
                causal_tflops=causal_prefill_tflops(prompt_tokens, geometry),
                pruning_ms=pruned.pruning_ms,
                prefill_ms=prefill_ms,
                speedup=(vanilla.prefill_ms if vanilla else prefill_ms) / prefill_ms,
                answer=answer.text,
                same_as_vanilla=vanilla is None or answer.text == vanilla.answer,
                note=kept.note if kept is not None else None,
                config=method.to_dict() if method is not None else {},
            )
        )

    run("vanilla", "vanilla", 1.0, None)
    warmed = set()
    for spec, config in zip(specs, configs):
        if type(config) not in warmed:  # the first call of a method pays one-off costs (kernels, caches)
            session.prune(config)
            warmed.add(type(config))
        run(method_label(config), spec, config.retention_ratio, config)

    notes = list(session.notes)
    notes += sorted({r.note for r in rows if r.note})
    if cut_off:
        notes.append(
            f"the {'answer' if len(cut_off) == 1 else 'answers'} of {', '.join(cut_off)} "
            f"{'was' if len(cut_off) == 1 else 'were'} cut off while the model was reasoning: every new token went "
            "to its reasoning and no answer came (a longer answer length, max new tokens, lets it finish)"
        )
    timing = {f"{k}_ms": v for k, v in session.ms.items()}
    return CompareResult(
        model=model_info(model),
        video=video_info(session.video),
        question=question,
        frames=session.video.num_frames,
        tokens_per_frame=features.tokens_per_frame,
        settings=model.settings,
        rows=rows,
        timing=timing,
        notes=notes,
    )
