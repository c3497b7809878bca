"""The local tokenizer of every tiny checkpoint: a byte-level BPE built offline, with the real one's special tokens.

The real vocabulary files are not at hand (nothing downloads), so every tiny checkpoint gets this
tokenizer with its family's published special tokens, roles and chat template
(:class:`fastvid_cli.models.recipe.TinyRecipe`); the token ids of the published configs are remapped to it
(:mod:`.plan`).
"""

from __future__ import annotations

# Text the tiny tokenizer's merges are learned from, so that its noise reads as word pieces.
_CORPUS = (
    "A video language model answers questions about a video. The person walks to the door and opens it. "
    "A red car drives down the street while two bikes pass by. The camera pans left, then the scene changes. "
    "What happens in this video? Describe the main events in order. Who is talking, and what do they hold? "
    "FastVID prunes video tokens: dynamic segmentation splits the frames, salient tokens are kept, and "
    "density peaks merge the rest. The answer is short and clear."
)
VOCAB_SIZE = 512
"""Byte symbols plus learned merges, before the special tokens."""


def build_tokenizer(special_tokens: list[str], media_tokens: dict[str, str] | None = None, chat_template: str | None = None):
    """A byte-level BPE tokenizer with a checkpoint's special tokens, built with no download.

    Its vocabulary is the 256 byte symbols, merges learned from a fixed built-in English text up to
    :data:`VOCAB_SIZE` (deterministic), then ``special_tokens`` in their order. The first of them is the
    padding token, ``<|im_end|>`` (Qwen's end of turn) the end-of-sequence token when present.

    Parameters
    ----------
    special_tokens : list of str
        In id order (the published tokenizer's).
    media_tokens : dict, optional
        ``image_token`` / ``video_token`` names for the processors (``{}`` or None for a tokenizer
        without them, such as a LLaVA-NeXT checkpoint's).
    chat_template : str, optional
        Jinja chat template.

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    backend.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, initial_alphabet=alphabet, show_progress=False)
    backend.train_from_iterator([_CORPUS] * 4, trainer=trainer)
    backend.add_special_tokens(special_tokens)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>" if "<|im_end|>" in special_tokens else special_tokens[-1],
        pad_token=special_tokens[0],
        extra_special_tokens=dict(media_tokens or {}),
        model_max_length=131072,
    )
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    return tokenizer


def unprintable_token_ids(tokenizer) -> list[int]:
    """Ids of the learned tokens that decode to control characters or partial UTF-8: the tiny models'
    ``generation_config.suppress_tokens``, so that their noise prints (special tokens are never listed).

    Returns
    -------
    list of int
        Sorted.
    """
    added = set(tokenizer.get_added_vocab())
    bad = []
    for token, index in tokenizer.get_vocab().items():
        if token in added:
            continue
        text = tokenizer.convert_tokens_to_string([token])
        if not text or any(not (ch.isprintable() or ch == " ") or ch == "\ufffd" for ch in text):
            bad.append(index)
    return sorted(bad)
