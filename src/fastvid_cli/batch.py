"""Answering questions about many videos with one loaded model, crash-safe and shardable.

- Items come from files, folders (recursed, video extensions only, sorted), a list of paths on
  stdin, or a JSON-lines file of ``{"video", "question", "id"}``.
- The questions of one video are answered together: one decode, vision pass, pruning and prefill
  of the video, then each question prefills only its own tokens (:func:`fastvid_cli.pipeline.iter_answers`).
- A prefetch thread decodes and preprocesses the next videos while the model works on the current
  one (decord and the processor run on the CPU, the model on the accelerator).
- Each finished item is one JSON line, appended and flushed at once: the fields of ``ask --json``
  plus ``id`` and ``video`` (the path as given; ask's video details move to ``video_info``), or
  ``error`` with its one-line message. ``resume`` skips the ids the
  output already holds; a stop request finishes the current item first.
- Under ``torchrun`` / ``accelerate launch`` (``RANK`` and ``WORLD_SIZE`` set) each process takes
  every WORLD_SIZE-th item and writes its own part; rank 0 merges the parts in input order.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .errors import FastVIDError, InputError, describe
from .pipeline import AskOptions, iter_answers, prepare_video

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".3gp", ".ogv"}
)


@dataclass(frozen=True)
class BatchItem:
    """One (video, question) to answer; ``index`` is its place in the input order."""

    id: str
    video: str
    question: str
    index: int


def collect_items(
    paths: Iterable[str], question: str | None, questions_file: Path | None, stdin_lines: Iterable[str] = ()
) -> list[BatchItem]:
    """The items of a batch, in input order.

    Parameters
    ----------
    paths : iterable of str
        Files (taken as they are), folders (recursed for :data:`VIDEO_EXTENSIONS`, sorted), or
        ``-`` for the paths in ``stdin_lines`` (one per line).
    question : str or None
        The question for every video of ``paths``.
    questions_file : Path or None
        JSON lines ``{"video": ..., "question": ..., "id": ...}`` (``id`` optional): one item each.
    stdin_lines : iterable of str

    Returns
    -------
    list of BatchItem
        Ids are unique: an item without one is named after its video, with ``#k`` added for repeats.

    Raises
    ------
    InputError
        No items, no question for the paths, or a malformed questions file (with its line number).
    """
    pairs: list[tuple[str | None, str, str]] = []
    videos = list(expand_paths(paths, stdin_lines))
    if videos:
        if not question or not question.strip():
            raise InputError("give `question` for the videos (or a `questions` FILE.jsonl)")
        pairs += [(None, video, question) for video in videos]
    if questions_file is not None:
        pairs += read_questions(questions_file)
    if not pairs:
        raise InputError("no videos to process: give files, folders, '-' (paths on stdin) or `questions` FILE.jsonl")
    items, seen = [], {}
    for index, (item_id, video, text) in enumerate(pairs):
        if item_id is None:
            count = seen.get(video, 0)
            item_id = video if count == 0 else f"{video}#{count}"
            seen[video] = count + 1
        items.append(BatchItem(id=item_id, video=video, question=text, index=index))
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"duplicate id {duplicate!r}: every item needs its own id")
    return items


def expand_paths(paths: Iterable[str], stdin_lines: Iterable[str]) -> Iterable[str]:
    """Files as given, folders recursed (video extensions only, sorted), ``-`` read from stdin."""
    for path in paths:
        if path == "-":
            for line in stdin_lines:
                if line.strip():
                    yield from expand_paths([line.strip()], ())
            continue
        folder = Path(path)
        if folder.is_dir():
            found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
            yield from (str(p) for p in found)
        else:
            yield path


def read_questions(path: Path) -> list[tuple[str | None, str, str]]:
    """(id, video, question) from a JSON-lines file; blank lines are skipped.

    Raises
    ------
    InputError
        Unreadable file, a line that is not a JSON object, or a missing ``video`` / ``question``.
    """
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror}") from None
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{number}: not valid JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("video"), str) or not isinstance(record.get("question"), str):
            raise InputError(f'{path}:{number}: each line needs "video" and "question" strings')
        item_id = record.get("id")
        out.append((None if item_id is None else str(item_id), record["video"], record["question"]))
    return out


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes of a multi-GPU launch."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Shard":
        """From ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by torchrun and accelerate launch)."""
        try:
            rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError:
            raise InputError("RANK, WORLD_SIZE and LOCAL_RANK must be integers") from None
        if world < 1 or not 0 <= rank < world:
            raise InputError(f"bad RANK={rank} for WORLD_SIZE={world}")
        return cls(rank, world, local)

    def take(self, items: list[BatchItem]) -> list[BatchItem]:
        """Every world-th item, starting at this rank."""
        return items[self.rank :: self.world]

    def part_path(self, output: Path) -> Path:
        """Where this process writes: the output itself for one process, else its own part file."""
        if self.world == 1:
            return output
        return output.with_name(f"{output.name}.part{self.rank}-of-{self.world}")


def read_records(path: Path) -> list[dict]:
    """The complete JSON lines of a results file (a torn last line from a crash is ignored)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "id" in record:
            records.append(record)
    return records


@dataclass
class BatchSummary:
    """Counts of one batch run (this process's share)."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0
    output: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def videos_per_second(self) -> float:
        done = self.answered + self.failed
        return done / self.elapsed_s if self.elapsed_s > 0 else 0.0


_DONE = object()


def group_by_video(items: list[BatchItem]) -> list[list[BatchItem]]:
    """Items grouped by video, in the order each video first appears; a group keeps its items' order."""
    groups: dict[str, list[BatchItem]] = {}
    for item in items:
        groups.setdefault(item.video, []).append(item)
    return list(groups.values())


def _prefetch(model, groups: list[list[BatchItem]], frames: int | None, depth: int, stop: threading.Event) -> Iterable[tuple]:
    """Yield ``(group, PreparedVideo or error)`` in order; with ``depth`` > 0 a thread works ahead."""

    def prepare(group):
        try:
            return group, prepare_video(model, group[0].video, frames)
        except Exception as err:  # reported as the error of each of the group's items
            return group, err

    if depth <= 0:
        for group in groups:
            if stop.is_set():
                return
            yield prepare(group)
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    cancel = threading.Event()

    def worker():
        for group in groups:
            if stop.is_set() or cancel.is_set():
                break
            ready.put(prepare(group))
        ready.put(_DONE)

    thread = threading.Thread(target=worker, name="fastvid-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            got = ready.get()
            if got is _DONE:
                break
            yield got
            if stop.is_set():
                break
    finally:  # also when the consumer stops early: let the worker finish its item and end before we return
        cancel.set()
        while thread.is_alive():
            try:
                ready.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


def error_message(err: BaseException) -> str:
    """One line for an item's failure (see :data:`fastvid_cli.errors.ERRORS`)."""
    return describe(err).message


def run_batch(
    model,
    items: list[BatchItem],
    output: Path,
    options: AskOptions,
    shard: Shard = Shard(),
    resume: bool = False,
    prefetch: int = 2,
    stop: threading.Event | None = None,
    on_item: Callable[[BatchItem, dict], None] | None = None,
) -> BatchSummary:
    """Answer every item of this process's shard, appending one JSON line per item as it finishes.

    Parameters
    ----------
    model : ModelAdapter
    items : list of BatchItem
        All items, in input order (the shard is taken here).
    output : Path
        The results file (this process writes its part file when sharded).
    options : AskOptions
    shard : Shard
    resume : bool
        Skip the ids already in the output (and in this process's part).
    prefetch : int
        Videos decoded and preprocessed ahead of the model (0: none).
    stop : threading.Event, optional
        When set, the run ends after the current item.
    on_item : callable, optional
        Called with each item and its record (for progress).

    Returns
    -------
    BatchSummary
    """
    stop = stop or threading.Event()
    part = shard.part_path(output)
    done_ids = set()
    if resume:
        done_ids = {r["id"] for r in read_records(output)} | {r["id"] for r in read_records(part)}
    mine = shard.take(items)
    todo = [item for item in mine if item.id not in done_ids]
    summary = BatchSummary(skipped=len(mine) - len(todo), output=str(output))
    part.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    prepared_groups = _prefetch(model, group_by_video(todo), options.frames, prefetch, stop)
    with open(part, "a", encoding="utf-8") as sink, contextlib.closing(prepared_groups):

        def write(item: BatchItem, result: dict | None, error: BaseException | None) -> None:
            record: dict = {"id": item.id, "video": item.video}
            if error is None:
                result["video_info"] = result.pop("video")  # "video" stays the path as given
                record |= result
                summary.answered += 1
            else:
                record |= {"question": item.question, "error": error_message(error)}
                summary.failed += 1
                summary.failures.append(f"{item.id}: {record['error']}")
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            if on_item:
                on_item(item, record)

        for group, prepared in prepared_groups:
            done = 0
            try:
                if isinstance(prepared, BaseException):
                    raise prepared
                for item, result in zip(group, iter_answers(model, prepared, [i.question for i in group], options)):
                    write(item, result.to_dict(), None)
                    done += 1
                    if stop.is_set():
                        break
            except Exception as err:  # one bad video must not end the batch
                for item in group[done:]:
                    write(item, None, err)
                done = len(group)
            if stop.is_set():
                summary.interrupted = summary.answered + summary.failed < len(todo)
                break
    summary.elapsed_s = time.perf_counter() - start
    return summary


def finish_shard(output: Path, shard: Shard, items: list[BatchItem], interrupted: bool, timeout_s: float = 86400) -> bool:
    """Mark this process's part as complete; on rank 0, wait for every part and merge them.

    The merged output holds every record of the output and the parts, one per id, in input order;
    the parts are then removed. Returns True when this process merged.
    """
    if shard.world == 1:
        return False
    part = shard.part_path(output)
    if not interrupted:
        part.with_name(part.name + ".done").write_text("done\n")
    if shard.rank != 0 or interrupted:
        return False
    others = [Shard(r, shard.world).part_path(output) for r in range(shard.world)]
    deadline = time.monotonic() + timeout_s
    while not all(p.with_name(p.name + ".done").exists() for p in others):
        if time.monotonic() > deadline:
            raise FastVIDError("timed out waiting for the other processes' parts; rerun resuming")
        time.sleep(0.2)
    merge_records(output, others, items)
    for p in others:
        p.unlink(missing_ok=True)
        p.with_name(p.name + ".done").unlink(missing_ok=True)
    return True


def merge_records(output: Path, parts: list[Path], items: list[BatchItem]) -> None:
    """Write ``output`` with the records of ``output`` and ``parts``, one per id, in input order."""
    order = {item.id: item.index for item in items}
    records = {}
    for path in [output, *parts]:
        for record in read_records(path):
            records[record["id"]] = record
    ranked = sorted(records.values(), key=lambda r: order.get(r["id"], len(order)))
    tmp = output.with_name(output.name + ".merging")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in ranked))
    tmp.replace(output)
