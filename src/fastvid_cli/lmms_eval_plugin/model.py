"""lmms-eval's ``fastvid`` model: any model and pruning method of ``fastvid``, under the real harness.

``python -m lmms_eval --model fastvid --model_args pretrained=MODEL,retention=0.1[,method=...]``
answers each ``generate_until`` request with the same Python API as ``fastvid ask``: the video is
decoded and sampled as the model family does by default, encoded, pruned by the method, and the
task's context is asked as the question, decoded greedily (the paper's setting).

Requests on the same video (VideoMME asks three questions per video) share one decode, one vision
pass and one pruning; each question then gets its own prompt and prefill. Under
``accelerate launch --num_processes N -m lmms_eval ...`` lmms-eval gives each process its rank's
requests, and each process loads the model on its own GPU (``cuda:LOCAL_RANK``).
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass

import torch
from lmms_eval.api.instance import GenerationResult, Instance, TokenCounts
from lmms_eval.api.model import lmms
from loguru import logger as eval_logger
from tqdm import tqdm

from ..engine.pipeline import VideoSession, prepare_video
from ..errors import InputError
from ..models import DEFAULT_MODEL, load_model
from ..pruning import method_label
from .settings import parse_model_args, resolve_method

DEFAULT_DELIMITER = "\n\n"
"""lmms-eval's default ``until`` (the few-shot delimiter). The paper's wrappers never stopped at it
(the LLaVA ones ignore ``until``, the Qwen2.5-VL one drops this entry), and neither does this model."""


@dataclass
class _Question:
    """One request: where it sits in the batch, and what to ask."""

    index: int
    context: str
    gen_kwargs: dict
    task: str


class FastVIDLMM(lmms):
    """The ``fastvid`` model of lmms-eval (a "simple" model: a context string and the task's visuals).

    Parameters
    ----------
    pretrained : str
        Any model ``fastvid ask --model`` accepts: a Hub repo id, an alias (``llava-ov-7b``,
        ``llava-video-7b``, ``qwen2.5-vl-7b``...), a local folder, or a tiny random model.
    method : str
        Pruning method spec as ``fastvid compare --method`` takes it: ``fastvid`` (default),
        ``uniform``, ``visionzip``, ``dycoke``, ``fastvid:d=0``... Quote a spec with commas.
    retention : float, optional
        R in (0, 1]; 1 is the vanilla model (nothing pruned). Default: the family's (0.1; Qwen2.5-VL 0.27).
    frames : int, optional
        Frames sampled per video. Default: the model's.
    c, tau, d, p, beta, split_tau, segmentation, max_segment, dominant_share, window : optional
        Method hyperparameters, the fields of the method dataclasses
        (:data:`~fastvid_cli.lmms_eval_plugin.settings.HYPERPARAMETERS`; default: the family's
        release values); ``split_tau=none`` turns it off.
    device, dtype, attn_implementation, layout : str
        As for ``fastvid ask``. Under a multi-process launch, ``device=auto`` is this process's GPU.
    max_new_tokens : int
        Longest answer when the task sets none (default 128).
    batch_size, max_batch_size, **kwargs
        Passed by lmms-eval; questions are answered one at a time (see the module docstring).

    Raises
    ------
    ValueError
        An unknown or malformed model arg (before anything is loaded).
    fastvid_cli.errors.FastVIDError
        A model that cannot be found or loaded, or a device this machine lacks.
    """

    is_simple = True

    def __init__(self, pretrained: str = DEFAULT_MODEL, batch_size=1, max_batch_size=None, **model_args) -> None:
        super().__init__()
        self.settings = parse_model_args(pretrained=pretrained, **model_args)
        self._rank = int(os.environ.get("RANK", "0"))
        self._world_size = int(os.environ.get("WORLD_SIZE", "1"))
        if str(batch_size) != "1":
            eval_logger.warning(
                f"fastvid answers one question at a time: batch_size={batch_size} is ignored "
                "(questions on the same video share one decode, vision pass and pruning instead)"
            )
        s = self.settings
        self._adapter = load_model(
            s.pretrained, device=self._device_name(), dtype=s.dtype, attn_implementation=s.attn_implementation, layout=s.layout
        )
        self._device = self._adapter.device
        self.method = resolve_method(s, getattr(self._adapter, "fastvid_defaults", {}))
        self.frames = s.frames  # None: the paper's sampling of the family (Qwen2.5-VL: 2 fps)
        self.vanilla = self.method.retention_ratio == 1
        self._warned_sampling = False
        if self.rank == 0:
            eval_logger.info(f"fastvid settings: {json.dumps(self.run_settings())}")

    def _device_name(self) -> str:
        """``auto`` becomes this process's GPU under a multi-process launch; anything else is kept."""
        device = self.settings.device
        if self._world_size > 1 and device in ("auto", "cuda") and torch.cuda.is_available():
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
            return f"cuda:{local_rank % torch.cuda.device_count()}"
        return device

    def run_settings(self) -> dict:
        """Everything that decides the answers: model, family, method with all its fields, R, frames, decoding.

        Returns
        -------
        dict
            JSON-ready: ``model``, ``family``, ``method`` (label), ``method_spec``, ``vanilla``,
            ``retention``, ``frames``, ``method_config`` (every field), ``device``, ``dtype``,
            ``attn_implementation``, ``layout``, ``decoding`` and ``max_new_tokens_default``.
        """
        adapter = self._adapter
        return {
            "model": adapter.model_id,
            "family": adapter.family,
            "method": "vanilla" if self.vanilla else method_label(self.method),
            "method_spec": self.settings.method,
            "vanilla": self.vanilla,
            "retention": self.method.retention_ratio,
            "frames": self.frames or self._adapter.settings.sampling.describe(),
            "method_config": self.method.to_dict(),
            "device": str(self._device),
            "dtype": str(adapter.dtype).removeprefix("torch."),
            "attn_implementation": self.settings.attn_implementation,
            "layout": self.settings.layout,
            "decoding": "greedy",
            "max_new_tokens_default": self.settings.max_new_tokens,
            "settings": adapter.settings.to_dict(),
        }

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def adapter(self):
        """The loaded :class:`fastvid_cli.models.ModelAdapter`."""
        return self._adapter

    def generate_until(self, requests: list[Instance]) -> list[GenerationResult]:
        """Answer every request; those on the same video share one decode, vision pass and pruning.

        Parameters
        ----------
        requests : list of Instance
            ``args = (context, gen_kwargs, doc_to_visual, doc_id, task, split)``; ``doc_to_visual``
            of the document must give one video file.

        Returns
        -------
        list of GenerationResult
            In request order, with the tokens the LLM read (the pruned prompt) and wrote. A video
            that cannot be read gets empty answers, logged as errors and counted in the run's metrics.

        Raises
        ------
        ValueError
            A request whose visuals are not exactly one video file, or whose context is empty.
        """
        groups: dict[str, list[_Question]] = {}
        for index, request in enumerate(requests):  # check every request before any model work
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            path = _one_video(doc_to_visual(self.task_dict[task][split][doc_id]), task, doc_id)
            if not isinstance(context, str) or not context.strip():
                raise ValueError(f"fastvid: task {task}, doc {doc_id}: the context (question) is empty")
            groups.setdefault(path, []).append(_Question(index, context, dict(gen_kwargs or {}), task))

        results: list[GenerationResult | None] = [None] * len(requests)
        stats = _RunStats()
        progress = tqdm(total=len(requests), disable=self.rank != 0, desc="Model Responding")
        for path, questions in groups.items():
            for question, result in zip(questions, self._answer_video(path, questions, stats)):
                results[question.index] = result
                progress.update(1)
        progress.close()
        self._log_metrics(stats)
        return results

    def _answer_video(self, path: str, questions: list[_Question], stats: _RunStats) -> list[GenerationResult]:
        """Decode, encode, prune and prefill ``path``'s prompt prefix once; then each question prefills only
        its own tokens on that KV cache and is answered greedily (fastvid's one flow)."""
        adapter = self._adapter
        try:
            prepared = prepare_video(adapter, path, self.frames)
        except InputError as err:
            eval_logger.error(f"fastvid: {err}; its {len(questions)} question(s) get an empty answer")
            stats.failed_videos += 1
            return [GenerationResult(text="", token_counts=None) for _ in questions]
        session = VideoSession.open(adapter, prepared)
        pruned = session.prune(None if self.vanilla else self.method)
        stats.add_video(session.features, pruned.kept, {**session.ms, "pruning": pruned.pruning_ms})

        results = []
        for question in questions:
            answer = pruned.answer(question.context, self._max_new_tokens(question.gen_kwargs))
            stats.generation_s += (answer.prefill_ms + answer.generation_ms) / 1e3
            text = _cut(answer.text, question.gen_kwargs.get("until"))
            tokens = TokenCounts(
                input_tokens=pruned.inputs.length + answer.inputs.length, output_tokens=int(answer.token_ids.numel())
            )
            stats.add_answer(tokens)
            _log_usage(adapter.model_id, question.task, tokens)
            results.append(GenerationResult(text=text, token_counts=tokens))
        return results

    def _max_new_tokens(self, gen_kwargs: dict) -> int:
        """The task's ``max_new_tokens`` (else the model arg); sampling settings are reported, not used."""
        sampling = (
            gen_kwargs.get("do_sample") or (gen_kwargs.get("temperature") or 0) > 0 or (gen_kwargs.get("num_beams") or 1) > 1
        )
        if sampling and not self._warned_sampling:
            self._warned_sampling = True
            eval_logger.warning(
                f"fastvid decodes greedily (the paper's setting); the task's {gen_kwargs} sampling settings are ignored"
            )
        return int(gen_kwargs.get("max_new_tokens") or self.settings.max_new_tokens)

    def _log_metrics(self, stats: _RunStats) -> None:
        """The run's numeric settings and token counts into lmms-eval's ``throughput`` block of the results."""
        from lmms_eval.models.model_utils.gen_metrics import log_metrics

        numeric = {
            f"fastvid_{k}": v for k, v in self.method.to_dict().items() if isinstance(v, (int, float)) and not isinstance(v, bool)
        }
        numeric |= {
            "fastvid_frames": self.frames or 0,
            "fastvid_vanilla": int(self.vanilla),
            "fastvid_max_new_tokens_default": self.settings.max_new_tokens,
        }
        speed = stats.output_tokens / stats.generation_s if stats.generation_s > 0 else 0.0
        log_metrics(
            total_elapsed_time=stats.generation_s,
            total_gen_tokens=stats.output_tokens,
            avg_speed=speed,
            additional_metrics={**numeric, **stats.summary()},
        )

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "fastvid answers by generation only (generate_until); loglikelihood / multiple_choice tasks are not supported. "
            "The paper's benchmarks (videomme, mvbench, longvideobench_val_v, mlvu_dev) are generate_until tasks."
        )

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("fastvid answers one question per request; multi-round generation is not supported")

    def clean(self) -> None:
        """Free the model after lmms-eval's generation phase (it may load a judge model next)."""
        self._adapter = None  # type: ignore[assignment]  # freed: lmms-eval calls the model no more after clean()
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        super().clean()


class _RunStats:
    """Counts of one ``generate_until`` call, reported as lmms-eval throughput metrics."""

    def __init__(self) -> None:
        self.videos = self.failed_videos = self.questions = 0
        self.video_tokens = self.kept_tokens = self.prompt_tokens = self.output_tokens = 0
        self.vision_ms = self.pruning_ms = self.generation_s = 0.0

    def add_video(self, features, kept, ms: dict) -> None:
        before = features.num_frames * features.tokens_per_frame
        self.videos += 1
        self.video_tokens += before
        self.kept_tokens += before if kept is None else int(kept.indices.numel())
        self.vision_ms += ms.get("vision", 0.0)
        self.pruning_ms += ms.get("pruning", 0.0)

    def add_answer(self, tokens: TokenCounts) -> None:
        self.questions += 1
        self.prompt_tokens += tokens.input_tokens
        self.output_tokens += tokens.output_tokens

    def summary(self) -> dict:
        per_video = max(self.videos, 1)
        return {
            "fastvid_videos": self.videos,
            "fastvid_failed_videos": self.failed_videos,
            "fastvid_questions": self.questions,
            "fastvid_video_tokens_per_video": self.video_tokens / per_video,
            "fastvid_video_tokens_kept_per_video": self.kept_tokens / per_video,
            "fastvid_video_tokens_kept_ratio": self.kept_tokens / self.video_tokens if self.video_tokens else 0.0,
            "fastvid_prompt_tokens_per_question": self.prompt_tokens / max(self.questions, 1),
            "fastvid_vision_ms_per_video": self.vision_ms / per_video,
            "fastvid_pruning_ms_per_video": self.pruning_ms / per_video,
        }


def _one_video(visuals, task: str, doc_id) -> str:
    """The single video path of a request's visuals, else a clear error."""
    if isinstance(visuals, (str, os.PathLike)):
        visuals = [visuals]
    if not isinstance(visuals, (list, tuple)) or len(visuals) != 1 or not isinstance(visuals[0], (str, os.PathLike)):
        kinds = ", ".join(type(v).__name__ for v in visuals) if isinstance(visuals, (list, tuple)) else type(visuals).__name__
        raise ValueError(
            f"fastvid answers questions about one video file per request; task {task}, doc {doc_id} "
            f"gave visuals of type [{kinds or 'none'}]"
        )
    return os.fspath(visuals[0])


def _cut(text: str, until) -> str:
    """``text`` up to the first stop string of ``until`` (lmms-eval's default delimiter excepted)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop and stop != DEFAULT_DELIMITER:
            text = text.split(stop)[0]
    return text


def _log_usage(model_id: str, task: str, tokens: TokenCounts) -> None:
    """The tokens the LLM read and wrote, into lmms-eval's ``usage`` block (per task)."""
    from lmms_eval.models.model_utils.usage_metrics import log_usage

    log_usage(model_name=model_id, task_name=task, input_tokens=tokens.input_tokens, output_tokens=tokens.output_tokens)
