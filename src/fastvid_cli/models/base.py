"""What every model adapter gives the pipeline: video features to prune, and LLM calls on kept tokens."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

import torch

from ..errors import ModelError
from ..flops import LLMGeometry
from ..pruning import PruneResult
from .features import KeptSlots, LLMInputs, Prefill, VideoFeatures, VisionBench
from .settings import RunSettings, SettingsOverrides, checkpoint_decoding

if TYPE_CHECKING:
    from .geometry_base import ModelGeometry
    from .recipe import TinyRecipe


class AnswerRepetitionPenalty:
    """transformers' repetition penalty over the generated tokens only (ids after ``prompt_length``).

    As the paper's LLaVA runs: LLaVA-NeXT's ``generate`` gives transformers ``inputs_embeds`` alone,
    so the checkpoint's ``repetition_penalty`` saw no prompt token. A seen token's logit is divided
    by the penalty when positive and multiplied when negative.
    """

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty, self.prompt_length = penalty, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        picked = scores.gather(1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)


class ModelAdapter(abc.ABC):
    """Interface of a model family: the pipeline calls these in order.

    ``prepare`` (processor) -> ``encode`` (vision tower, features to prune) -> ``build_inputs``
    (prompt with the kept tokens at their original positions) -> ``prefill`` / ``generate``.

    A family implements :meth:`from_pretrained`, :meth:`claims` and :meth:`geometry_from_config`
    (what a checkpoint is and its geometry, without weights), :attr:`video_token_id`,
    :meth:`prompt_inputs`, :meth:`preprocess` and :meth:`encode`. :meth:`prepare` and
    :meth:`build_inputs` are shared, with hooks for the family's slot layout (:meth:`kept_slots`),
    positions (:meth:`prompt_positions`) and feature format (:meth:`video_encoder_output`). The
    registry (:mod:`.registry`) maps family names to adapters.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    processor : transformers.ProcessorMixin
    model_id : str
        Name shown in the output.
    overrides : SettingsOverrides, optional
        What the user changed of the paper's settings (frames, system prompt, ...).
    notes : list of str
        Where the checkpoint differs from the paper's run.
    tiny_random : bool
        Whether the checkpoint is a tiny random-weight model (its answers are noise).
    """

    family: ClassVar[str] = ""
    paper: ClassVar[RunSettings]
    """The paper's run of this family: frames, pixels, layout, prompt (see :mod:`.settings` for the sources)."""
    penalize_prompt: ClassVar[bool] = True
    """Whether the checkpoint's repetition penalty sees the prompt (the paper's LLaVA runs: no)."""
    fastvid_defaults: ClassVar[dict] = {}
    """FastVID settings of the authors' release for this family (e.g. Qwen2.5-VL's R, tau, split_tau)."""
    tiny_recipe: ClassVar[TinyRecipe]
    """How the tiny builder (:mod:`fastvid_cli.tiny`) makes this family's random-weight checkpoints (:mod:`.recipe`)."""
    lmms_eval_model: ClassVar[str | None] = None
    """The lmms-eval model that runs this family (the authors' fork's wrapper for the paper's families):
    ``--model fastvid`` evaluations use the tasks that give its prompts (see :mod:`fastvid_cli.lmms_eval_plugin`)."""
    lmms_eval_tasks: ClassVar[dict] = {}
    """Benchmark -> task, where the wrapper's prompt needs a task of its own (LLaVA-Video's VideoMME)."""
    model_id: str = ""
    model: Any = None
    """The transformers model (``PreTrainedModel`` of the family's class)."""
    processor: Any = None
    """The transformers processor (tokenizer, image and video processors, chat template)."""
    tiny_random: bool = False
    settings: RunSettings
    """How this model is run: the paper's settings of its family, with the user's overrides."""

    def __init__(
        self,
        model,
        processor,
        model_id: str,
        overrides: SettingsOverrides | None = None,
        notes: list[str] | tuple = (),
        tiny_random: bool = False,
    ) -> None:
        self.model = model
        self.processor = processor
        self.model_id = model_id
        self.tiny_random = tiny_random
        self.init_settings(overrides, notes)

    @classmethod
    @abc.abstractmethod
    def from_pretrained(
        cls, path: str | Path, model_id: str, overrides: SettingsOverrides | None = None, **load_kwargs
    ) -> ModelAdapter:
        """Load model, processor and whatever else the family needs from a checkpoint folder.

        Parameters
        ----------
        path : str or Path
            The checkpoint folder (its ``config.json`` is one :meth:`claims`).
        model_id : str
            Name shown in the output.
        overrides : SettingsOverrides, optional
        **load_kwargs
            Passed to transformers' ``from_pretrained``: ``dtype``, ``device_map``, ``attn_implementation``.

        Returns
        -------
        ModelAdapter
            With :attr:`tiny_random` from the folder's marker (:func:`.tiny_names.is_tiny_random`).
        """

    @classmethod
    def tiny_recipe_for(cls, config: dict) -> TinyRecipe | None:
        """The recipe of a published ``config.json`` this family claims: :attr:`tiny_recipe`, unless the family
        has checkpoints in several formats; None for a family that declares none."""
        recipe: TinyRecipe | None = getattr(cls, "tiny_recipe", None)
        return recipe

    @classmethod
    @abc.abstractmethod
    def claims(cls, config: dict) -> bool:
        """Whether a checkpoint with this ``config.json`` belongs to this family.

        Parameters
        ----------
        config : dict
            The parsed ``config.json``, with the user's choice of video layout as ``fastvid_layout``
            where one was asked for (see :func:`.registry.family_of_config`).
        """

    @classmethod
    @abc.abstractmethod
    def geometry_from_config(cls, config: dict, name: str, path: Path | None = None) -> ModelGeometry:
        """The geometry ``fastvid ask`` runs this family's checkpoint with, from its ``config.json`` alone.

        The video layout and frame count are the paper's for the family (as the adapter runs them
        unless overridden); no weight is read.

        Parameters
        ----------
        config : dict
            The parsed ``config.json`` (or an equivalent dict, as the shipped table of known models).
        name : str
            Name of the model, for the geometry and messages.
        path : Path, optional
            Its folder, for messages.

        Raises
        ------
        ModelError
            If the config lacks what the geometry needs.
        """

    @classmethod
    def vision_benchmark(cls, frames: int, layers: int | None, scale: float, device, dtype) -> VisionBench | None:
        """The family's vision tower with random weights for a benchmark, or None where none is built here.

        Parameters
        ----------
        frames : int
            Frames of one video.
        layers : int or None
            Layers to build; None: the full depth / ``scale`` (at least one).
        scale : float
            The LLM's layers over those the benchmark builds.
        """
        return None

    @property
    @abc.abstractmethod
    def video_token_id(self) -> int:
        """Token id of a video slot in the processed prompt."""

    @classmethod
    def paper_frames(cls) -> int:
        """Frames of the family's paper run (a time-based sampling: 32, its geometry's reference)."""
        return cls.paper.sampling.frames or 32

    @property
    def default_frames(self) -> int:
        """Frames of the fixed-count sampling (the time-based one gives its maximum)."""
        return self.settings.sampling.frames or self.settings.sampling.max_frames

    @property
    def device(self) -> torch.device:
        return cast(torch.device, next(self.model.parameters()).device)

    @property
    def dtype(self) -> torch.dtype:
        return cast(torch.dtype, next(self.model.parameters()).dtype)

    frames_per_chunk: int = 1
    """A chunk of the streaming encode holds a multiple of this many frames (Qwen2.5-VL: its temporal patch, 2)."""

    @abc.abstractmethod
    def prompt_inputs(self, video, question: str | None = None) -> dict:
        """The prompt's tensors for ``video`` (SampledVideo; its frames need not be decoded): ``input_ids``
        (1, L) with the video placeholder expanded to all its slots, ``attention_mask`` (1, L), and
        what the model needs besides to place the video (Qwen2.5-VL: its grid and M-RoPE inputs).
        ``question`` None gives the prefix only (system turn and video)."""

    @abc.abstractmethod
    def preprocess(self, frames, video) -> dict:
        """Pixel inputs of the vision encoder for ``frames`` ((k, H, W, 3) uint8, consecutive sampled
        frames of ``video``), on the model's device in its dtype; :meth:`encode` takes them."""

    def expanded_prompt(self, question: str | None, slots: int) -> dict:
        """``input_ids`` (1, L) and ``attention_mask`` (1, L) of :meth:`prompt_text` with its video
        placeholder expanded to ``slots`` video slots, on the model's device.

        The placeholder is a special token, so the text around it tokenizes the same as when the
        processor expands it before tokenizing.
        """
        ids = self.processor.tokenizer(self.prompt_text(question), return_tensors="pt")["input_ids"][0]
        at = int((ids == self.video_token_id).nonzero()[0, 0])
        ids = torch.cat([ids[:at], torch.full((slots,), self.video_token_id), ids[at + 1 :]])[None].to(self.device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def prepare(self, video, question: str | None = None) -> dict:
        """The prompt's tensors and the pixel inputs of every frame (:meth:`prompt_inputs` and
        :meth:`preprocess`): what :meth:`encode` and :meth:`build_inputs` need."""
        return {**self.prompt_inputs(video, question), **self.preprocess(video.frames, video)}

    @abc.abstractmethod
    def encode(self, inputs: dict) -> VideoFeatures:
        """Vision tower once over :meth:`preprocess`'s frames (one chunk, or all): the tokens to prune and
        the features FastVID needs."""

    def concat_features(self, parts: list[VideoFeatures]) -> VideoFeatures:
        """One video's features from those of its consecutive chunks of frames (the streaming encode).

        Tokens, frame features and saliency are concatenated over frames; the slots besides the
        tokens are the family's for the whole video (:meth:`extra_slots`); the family's state joins
        itself (:meth:`EncoderState.concat`).
        """
        if len(parts) == 1:
            return parts[0]
        first = parts[0]
        tokens = torch.cat([p.video_tokens for p in parts])
        return VideoFeatures(
            video_tokens=tokens,
            frame_features=torch.cat([p.frame_features for p in parts]),
            saliency=torch.cat([p.saliency for p in parts]),
            grid=first.grid,
            extra_slots=self.extra_slots(int(tokens.shape[0]), first.grid),
            state=first.state.concat([p.state for p in parts]),
        )

    def extra_slots(self, num_frames: int, grid: tuple[int, int]) -> int:
        """Video slots of the unpruned prompt besides the F x N tokens (newlines); none by default."""
        return 0

    def build_inputs(self, inputs: dict, features: VideoFeatures, kept: PruneResult | None) -> LLMInputs:
        """The prompt with only the kept video slots, each at its original position.

        Text tokens are always kept; which video slots are kept and what fills them is the family's
        :meth:`kept_slots`. ``position_ids`` are the columns of the kept tokens in the unpruned
        prompt's positions (:meth:`prompt_positions`, with gaps), so generation continues at the
        original length; ``attention_mask`` is always given (gapped positions are not packing).

        Parameters
        ----------
        inputs : dict
            Output of :meth:`prepare`: ``input_ids`` (1, L).
        features : VideoFeatures
            Output of :meth:`encode`.
        kept : PruneResult or None
            Kept tokens; None keeps every token (the vanilla model).

        Returns
        -------
        LLMInputs
            ``input_ids``, ``attention_mask`` (1, L'), ``position_ids`` (..., L'), and the kept slots'
            features as ``mm_encoder_outputs``.

        Raises
        ------
        RuntimeError
            If the prompt's video slots do not match the features' F * N + extra slots.
        """
        input_ids = inputs["input_ids"]
        video_slots = (input_ids[0] == self.video_token_id).nonzero().flatten()
        expected = features.num_frames * features.tokens_per_frame + features.extra_slots
        if video_slots.numel() != expected:
            raise RuntimeError(
                f"{self.family}: the prompt has {video_slots.numel()} video slots, the features need {expected} "
                f"({features.num_frames} x {features.tokens_per_frame} tokens + {features.extra_slots} more)"
            )
        kept_slots = self.kept_slots(features, kept).in_order()
        keep = input_ids[0] != self.video_token_id
        keep[video_slots[kept_slots.slots.to(video_slots.device)]] = True
        positions, next_position = self.prompt_positions(inputs)
        kept_ids = input_ids[:, keep]
        kwargs = {
            "input_ids": kept_ids,
            "attention_mask": torch.ones_like(kept_ids),
            "position_ids": positions[..., keep],
            "mm_encoder_outputs": {"video": self.video_encoder_output(kept_slots)},
        }
        slots = kept_slots.slots
        return LLMInputs(
            kwargs=kwargs,
            original_length=int(input_ids.shape[1]),
            video_slots=int(slots.numel()),
            next_position=next_position.to(input_ids.device),
        )

    def kept_slots(self, features: VideoFeatures, kept: PruneResult | None) -> KeptSlots:
        """The video slots to keep and what fills them: by default the kept tokens at their own slots
        (token i at slot i). A family with slots besides the tokens (``extra_slots``: newlines) or
        further per-token features (DeepStack) extends this.

        Parameters
        ----------
        features : VideoFeatures
        kept : PruneResult or None
            None keeps every token (the vanilla model).

        Returns
        -------
        KeptSlots
            Any order; :meth:`build_inputs` sorts them.

        Raises
        ------
        NotImplementedError
            For features with extra slots, which the family must fill.
        """
        if features.extra_slots:
            raise NotImplementedError(f"{self.family}: {features.extra_slots} extra video slots and no rule to fill them")
        total = features.num_frames * features.tokens_per_frame
        device = features.video_tokens.device
        if kept is None:
            return KeptSlots(torch.arange(total, device=device), features.video_tokens.reshape(total, -1))
        return KeptSlots(kept.indices.to(device), kept.tokens)

    def prompt_positions(self, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Position ids of the unpruned prompt, and those of a token that would follow it.

        Returns
        -------
        positions : torch.LongTensor
            (1, L) = [[0 .. L-1]] (a family with several rows, as Qwen2.5-VL's M-RoPE: (R, 1, L)).
        next_position : torch.LongTensor
            (1, 1) = [[L]], shaped like ``positions`` with a last dimension of 1.
        """
        length = inputs["input_ids"].shape[1]
        device = inputs["input_ids"].device
        return torch.arange(length, device=device)[None], torch.full((1, 1), length, device=device)

    def video_encoder_output(self, kept: KeptSlots):
        """The kept slots' features as the model takes them in ``mm_encoder_outputs["video"]``: by default
        ``pooler_output`` (1, K, D) in the model's dtype."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        return BaseModelOutputWithPooling(pooler_output=kept.values.to(self.dtype)[None])

    @torch.inference_mode()
    def prefill(self, llm_inputs: LLMInputs, keep_cache: bool = True) -> Prefill:
        """Run the LLM once over the prompt (the prefill).

        Parameters
        ----------
        llm_inputs : LLMInputs
            From :meth:`build_inputs` (or text only: ``input_ids`` and ``attention_mask``).
        keep_cache : bool
            Keep the prompt's cache, to decode or answer questions from (default); False runs without one.

        Returns
        -------
        Prefill
            The last position's logits, (V,) float32, and the cache.
        """
        out = self.model(**llm_inputs.kwargs, use_cache=keep_cache, logits_to_keep=1)
        return Prefill(out.logits[0, -1].float(), out.cache if keep_cache else None)

    @torch.inference_mode()
    def generate(self, llm_inputs: LLMInputs, max_new_tokens: int, cache=None, streamer=None) -> torch.Tensor:
        """Greedy decoding from the prompt, whatever the checkpoint's generation config asks.

        Parameters
        ----------
        llm_inputs : LLMInputs
            The whole prompt.
        max_new_tokens : int
        cache : transformers.Cache, optional
            The cache of a prefix of the prompt (:meth:`prefill`): only the rest is prefilled, and the
            multimodal features (already in the cache) are not passed again. It is left as it was
            found (:meth:`rewind_cache`), so the next question starts from the same prefix.
        streamer : optional
            transformers' streamer (``put`` / ``end``), e.g. to note the first token's time.

        Returns
        -------
        torch.Tensor
            (T,) int64 new token ids, on the CPU.
        """
        kwargs = dict(llm_inputs.kwargs)
        prefix, working = 0, None
        if cache is not None:
            kwargs.pop("mm_encoder_outputs", None)  # the video is in the cache
            prefix = cache.get_seq_length()
            working = kwargs["cache"] = self.question_cache(cache)
        try:
            out: torch.Tensor = self.model.generate(
                **kwargs, streamer=streamer, **self.generate_kwargs(max_new_tokens, llm_inputs.length)
            )
        finally:
            if working is not None and working is cache:
                self.rewind_cache(cache, prefix)
        return out[0, llm_inputs.length :].cpu()

    def question_cache(self, cache):
        """The cache a question decodes on, given the prefix's: the prefix's own (cropped back afterwards by
        :meth:`rewind_cache`) by default; a family whose cache cannot be cropped returns a copy."""
        return cache

    def rewind_cache(self, cache, length: int) -> None:
        """Bring ``cache`` back to its first ``length`` tokens after a question decoded on it (a KV cache is cropped)."""
        extra = cache.get_seq_length() - length
        if extra > 0:
            cache.crop(-extra)  # transformers 5 crops by a count of tokens to drop

    def generate_kwargs(self, max_new_tokens: int, prompt_length: int) -> dict:
        """``generation_config`` (greedy) and, where the penalty skips the prompt, its ``logits_processor``."""
        decoding = self.settings.decoding
        if decoding.penalize_prompt or decoding.repetition_penalty in (None, 1.0):
            return {"generation_config": self.generation_config(max_new_tokens)}
        from transformers import LogitsProcessorList

        config = self.generation_config(max_new_tokens)
        config.repetition_penalty = 1.0
        penalty = AnswerRepetitionPenalty(decoding.repetition_penalty, prompt_length)
        return {"generation_config": config, "logits_processor": LogitsProcessorList([penalty])}

    def generation_config(self, max_new_tokens: int):
        """The checkpoint's generation config made greedy (see :class:`~.settings.Decoding`)."""
        config = self.model.generation_config.to_dict()
        for sampling_only in ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff"):
            config.pop(sampling_only, None)
        config |= {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": max_new_tokens,
            "repetition_penalty": self.settings.decoding.repetition_penalty or 1.0,
        }
        from transformers import GenerationConfig

        return GenerationConfig(**config)

    def decode(self, token_ids: torch.Tensor) -> str:
        """Text of the generated token ids, special tokens dropped."""
        return cast(str, self.processor.batch_decode(token_ids[None], skip_special_tokens=True)[0].strip())

    def decode_answer(self, token_ids: torch.Tensor) -> tuple[str, str | None]:
        """(answer, reasoning) of the generated token ids: a model that reasons before it answers
        (a Thinking checkpoint) returns its reasoning apart; None for the others."""
        return self.decode(token_ids), None

    @property
    def default_max_new_tokens(self) -> int:
        """Longest answer when none is asked for, in tokens (a model that reasons first needs more)."""
        return 128

    @property
    def thinking(self) -> bool:
        """Whether the model reasons before it answers (a Thinking checkpoint, or a switch turned on); no by default."""
        return False

    def init_settings(self, overrides: SettingsOverrides | None, notes: list[str] | tuple = ()) -> None:
        """Set :attr:`settings`: the family's paper settings, greedy decoding from the checkpoint's
        generation config, then the user's ``overrides``; ``notes`` say where the checkpoint differs."""
        from dataclasses import replace

        decoding, decoding_notes = checkpoint_decoding(self.model.generation_config, self.penalize_prompt)
        paper = replace(self.paper, decoding=decoding, notes=(*notes, *decoding_notes))
        self.settings = paper.with_overrides(overrides)

    @property
    def media_token(self) -> str:
        """The video placeholder of the prompt text (expanded into the video slots)."""
        return cast(str, self.processor.tokenizer.convert_ids_to_tokens(self.video_token_id))

    def full_prompt(self, question: str) -> str:
        """The whole prompt text with one video placeholder: the checkpoint's chat template with the
        settings' system turn (none when ``system_prompt`` is None), the video, then the question."""
        system = [{"role": "system", "content": self.settings.system_prompt}] if self.settings.system_prompt is not None else []
        user = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
        return cast(
            str, self.processor.apply_chat_template(system + user, add_generation_prompt=True, **self.chat_template_kwargs())
        )

    def chat_template_kwargs(self) -> dict:
        """Switches the chat template takes besides the conversation (Qwen3.5's ``enable_thinking``); none by default."""
        return {}

    def prompt_parts(self, question: str) -> tuple[str, str]:
        """The prompt split right after the video: (prefix, suffix).

        The prefix (system turn and video) is the same for every question, so one prefill of it
        serves them all; the suffix holds the question and the assistant turn.

        Raises
        ------
        ModelError
            If the template puts text of the question before the video.
        """
        text = self.full_prompt(question)
        end = text.rindex(self.media_token) + len(self.media_token)
        if question and text.find(question) < end:
            raise ModelError(
                f"{self.family}'s prompt puts the question before the video: one prefix cannot serve several questions"
            )
        return text[:end], text[end:]

    def prompt_text(self, question: str | None) -> str:
        """The whole prompt for ``question``, or only its prefix (system turn and video) for None."""
        return self.prompt_parts("?")[0] if question is None else self.full_prompt(question)

    def question_ids(self, question: str) -> torch.Tensor:
        """(S,) int64 token ids of the prompt after the video for ``question`` (the question and the assistant turn).

        The video placeholder is a special token, so the text after it tokenizes the same alone as in
        the whole prompt.
        """
        suffix = self.prompt_parts(question)[1]
        return torch.tensor(self.processor.tokenizer(suffix, add_special_tokens=False)["input_ids"], dtype=torch.long)

    def llm_geometry(self):
        """The LLM's geometry for analytic FLOPs (see :mod:`fastvid_cli.flops`)."""
        return LLMGeometry.from_config(self.model.config)
