"""Functions of the offline test task ``fastvid_local_mcq`` (lmms-eval imports them from the YAML)."""

import re
from pathlib import Path

VIDEOS = Path(__file__).resolve().parents[2] / "sample_videos"


def doc_to_visual(doc):
    """The question's clip from the repository's ``sample_videos/``, as a one-element list of paths."""
    return [str(VIDEOS / doc["video"])]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """Question, one option per line, then the post prompt (VideoMME's layout)."""
    kwargs = lmms_eval_specific_kwargs or {}
    options = "\n".join(doc["options"])
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}\n{options}\n{kwargs.get('post_prompt', '')}"


def process_results(doc, results):
    """1.0 if the first option letter of the answer is the right one, else 0.0."""
    found = re.search(r"\b([ABCD])\b", results[0])
    return {"accuracy": float(found is not None and found.group(1) == doc["answer"])}
