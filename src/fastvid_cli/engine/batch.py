"""Answering questions about many videos with one loaded model, crash-safe and shardable.

- Items come from files, folders (recursed, video extensions only, sorted), a list of paths on
  stdin, or a JSON-lines file of ``{"video", "question", "id"}``.
- The questions of one video are answered together: one decode, vision pass, pruning and prefill
  of the video, then each question prefills only its own tokens (:func:`fastvid_cli.engine.pipeline.iter_answers`).
- A prefetch thread decodes and preprocesses the next videos while the model works on the current
  one (decord and the processor run on the CPU, the model on the accelerator).
- Each finished item is one JSON line, appended and flushed at once: the fields of ``ask --json``
  plus ``id`` and ``video`` (the path as given; ask's video details move to ``video_info``), or
  ``error`` with its one-line message. ``resume`` skips the ids the
  output already holds; a stop request finishes the current item first. ``output`` ``-``
  (:data:`STDOUT`) writes the lines to stdout instead, as shell tools take ``-``.
- What is wrong with the input (no videos, an output that exists, a malformed questions file) is said
  before torch loads, and a resumed batch with nothing left ends without loading it: this module
  imports the pipeline (torch, transformers) only to answer.
- Under ``torchrun`` / ``accelerate launch`` (:func:`run_job`) accelerate's ``PartialState`` splits
  the videos between the processes (``split_between_processes``); each process appends its lines
  to its own part file as they finish, the processes meet once at the end (``gather_object``,
  ``wait_for_everyone``: no polling) and the main process merges the output and the parts in
  input order. A process that fails still comes to that meeting, so none waits for it in vain.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ..errors import FastVIDError, InputError, describe
from ..models import DEFAULT_MODEL, load_model
from ..models.tiny_names import TINY_NOTE

if TYPE_CHECKING:
    from ..models.settings import SettingsOverrides
    from .pipeline import AskOptions

STDOUT = Path("-")
"""The ``output`` that writes the JSON lines to stdout (``fastvid batch -o -``), in one process, without resume."""

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
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
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
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("video"), str)
            or not isinstance(record.get("question"), str)
        ):
            raise InputError(f'{path}:{number}: each line needs "video" and "question" strings')
        item_id = record.get("id")
        out.append((None if item_id is None else str(item_id), record["video"], record["question"]))
    return out


def part_path(output: Path, rank: int, world: int) -> Path:
    """Where process ``rank`` of ``world`` appends its lines: its own part file beside ``output``."""
    return output.with_name(f"{output.name}.part{rank}-of-{world}")


def part_files(output: Path) -> list[Path]:
    """The part files beside ``output`` of any earlier or current run, whatever its process count."""
    if not output.parent.is_dir():
        return []
    prefix = f"{output.name}.part"
    return sorted(p for p in output.parent.iterdir() if p.name.startswith(prefix) and "-of-" in p.name)


def finished_ids(output: Path) -> set[str]:
    """The ids that ``output`` and its part files hold (what ``resume`` skips)."""
    return {r["id"] for path in [output, *part_files(output)] for r in read_records(path)}


def check_output(output: Path, resume: bool = False, overwrite: bool = False) -> None:
    """Check the results file before any work: one that exists needs ``resume`` or ``overwrite``;
    :data:`STDOUT` takes neither, and one process only (a launch's processes each need a file).

    Raises
    ------
    InputError
    """
    if output == STDOUT:
        if resume or overwrite:
            raise InputError("`resume` and `overwrite` need a results file: `output` - writes to stdout")
        if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
            raise InputError("`output` - (stdout) is for one process: under torchrun or accelerate launch give a file")
    elif output.is_dir():
        raise InputError(f"{output} is a folder: `output` takes a file")
    elif output.exists() and output.stat().st_size and not (resume or overwrite):
        raise InputError(f"{output} exists: pass `resume` to continue it or `overwrite` to start again")


def pending(items: list[BatchItem], output: Path, resume: bool) -> list[BatchItem]:
    """The items still to answer, in order: all of them, or with ``resume`` those whose ids neither
    ``output`` nor its part files hold."""
    if not resume or output == STDOUT:
        return list(items)
    done_ids = finished_ids(output)
    return [item for item in items if item.id not in done_ids]


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
    """Counts of one batch run: of this process's items from :func:`run_batch`, of the whole
    batch (every process) from :func:`run_job`."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0
    interrupted: bool = False
    elapsed_s: float = 0.0
    output: str = ""
    failures: list[str] = field(default_factory=list)
    processes: int = 1
    rank: int = 0
    errors: list[str] = field(default_factory=list)
    """Processes that failed as a whole (``rank k: message``), under a multi-process launch."""
    notes: list[str] = field(default_factory=list)
    video_tokens_before: int = 0
    """Video tokens of the answered items before pruning, summed (an item per question)."""
    video_tokens_after: int = 0
    """The same after pruning."""
    prefill_ms: list[float] = field(default_factory=list)
    """Each answered item's measured LLM prefill, in ms."""
    ttft_ms: list[float] = field(default_factory=list)
    """Each answered item's measured time to first token, in ms."""

    @property
    def videos_per_second(self) -> float:
        done = self.answered + self.failed
        return done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, record: dict) -> None:
        """Add one answered item's record (the fields of ``ask --json``) to the totals."""
        self.answered += 1
        self.video_tokens_before += record["tokens"]["video_before"]
        self.video_tokens_after += record["tokens"]["video_after"]
        self.prefill_ms.append(record["timing"]["prefill_ms"])
        self.ttft_ms.append(record["timing"]["ttft_ms"])


_DONE = object()


def group_by_video(items: list[BatchItem]) -> list[list[BatchItem]]:
    """Items grouped by video, in the order each video first appears; a group keeps its items' order."""
    groups: dict[str, list[BatchItem]] = {}
    for item in items:
        groups.setdefault(item.video, []).append(item)
    return list(groups.values())


def _prefetch(
    model, groups: list[list[BatchItem]], frames: int | None, depth: int, stop: threading.Event, stream: bool = False
) -> Generator[tuple, None, None]:
    """Yield ``(group, PreparedVideo or error)`` in order; with ``depth`` > 0 a thread works ahead.

    With ``stream`` it reads each video's header only (a SampledVideo whose frames the session then
    decodes and encodes chunk by chunk), so no video's pixels are held ahead.
    """

    # deferred: the pipeline loads torch and transformers, which collecting and checking a batch must not wait for
    from .pipeline import prepare_video, read_for

    def prepare(group):
        try:
            if stream:
                return group, read_for(model, group[0].video, frames, decode=False)
            return group, prepare_video(model, group[0].video, frames)
        except Exception as err:  # noqa: BLE001 - reported as the error of each of the group's items
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
    resume: bool = False,
    prefetch: int = 2,
    stop: threading.Event | None = None,
    on_item: Callable[[BatchItem, dict], None] | None = None,
    part: Path | None = None,
) -> BatchSummary:
    """Answer ``items`` in one process, appending one JSON line per item as it finishes.

    Parameters
    ----------
    model : ModelAdapter
    items : list of BatchItem
        In input order; the questions of one video are answered together.
    output : Path
        The results file.
    options : AskOptions
    resume : bool
        Skip the ids already in the output (and in its part files).
    prefetch : int
        Videos decoded and preprocessed ahead of the model (0: none).
    stop : threading.Event, optional
        When set, the run ends after the current item.
    on_item : callable, optional
        Called with each item and its record (for progress).
    part : Path, optional
        Append here instead of to ``output`` (a process's part file under :func:`run_job`).

    Returns
    -------
    BatchSummary
        This call's counts.
    """
    # deferred: the pipeline loads torch and transformers, which collecting and checking a batch must not wait for
    from .pipeline import iter_answers

    stop = stop or threading.Event()
    part = part or output
    todo = pending(items, output, resume)
    summary = BatchSummary(skipped=len(items) - len(todo), output=str(output))
    start = time.perf_counter()
    prepared_groups = _prefetch(
        model, group_by_video(todo), options.frames, prefetch, stop, stream=options.vision_batch is not None
    )
    with _open_sink(part) as sink, contextlib.closing(prepared_groups):

        def write(item: BatchItem, result: dict | None, error: BaseException | None) -> None:
            record: dict = {"id": item.id, "video": item.video}
            if error is None:
                assert result is not None  # an answer, or an error
                result["video_info"] = result.pop("video")  # "video" stays the path as given
                record |= result
                summary.count(record)
            else:
                record |= {"question": item.question, "error": error_message(error)}
                summary.failed += 1
                summary.failures.append(f"{item.id}: {record['error']}")
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            if part != STDOUT:
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
            except Exception as err:  # noqa: BLE001 - one bad video must not end the batch
                for item in group[done:]:
                    write(item, None, err)
                done = len(group)
            if stop.is_set():
                summary.interrupted = summary.answered + summary.failed < len(todo)
                break
    summary.elapsed_s = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def _open_sink(path: Path) -> Generator[TextIO, None, None]:
    """Where the JSON lines go: ``path`` opened for appending (its folder made), or stdout for :data:`STDOUT`."""
    if path == STDOUT:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as sink:
        yield sink


BARRIER_TIMEOUT = timedelta(days=2)
"""How long a process that is done waits at the end for the others (a collective's timeout)."""


def process_state(device: str = "auto", timeout: timedelta = BARRIER_TIMEOUT):
    """accelerate's ``PartialState``: the launch's processes (one, without a launcher).

    A single process needs no ``torch.distributed``; under ``torchrun`` / ``accelerate launch``
    the process group is made with ``timeout`` (gloo where ``device`` is ``cpu`` or there is no
    GPU: accelerate would otherwise see no launch at all and every process would do everything).

    Raises
    ------
    FastVIDError
        ``WORLD_SIZE`` says several processes but accelerate set up fewer.
    """
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=device == "cpu" or not torch.cuda.is_available(), timeout=timeout)
    launched = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if state.num_processes != launched:
        raise FastVIDError(f"WORLD_SIZE is {launched} but accelerate set up {state.num_processes} process(es)")
    return state


def process_device(state, device: str) -> str:
    """The device of this process: under a multi-process launch ``auto`` and ``cuda`` mean the
    process's own GPU (``cuda:LOCAL_RANK``); a single process keeps ``device``."""
    if state.num_processes > 1 and device in ("auto", "cuda"):
        return str(state.device) if state.device.type == "cuda" else "cpu"
    return device


@contextlib.contextmanager
def stop_on_sigint(stop: threading.Event, on_stop: Callable[[], None] | None = None):
    """While inside: the first Ctrl-C sets ``stop`` (the batch ends after the current item, with
    ``on_stop`` called); a second one raises KeyboardInterrupt. Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        if on_stop:
            on_stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_job(
    items: list[BatchItem],
    output: Path,
    *,
    model: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str = "sdpa",
    layout: str = "auto",
    settings: SettingsOverrides | None = None,
    fastvid: dict | None = None,
    max_new_tokens: int | None = None,
    baseline: bool = False,
    vision_batch: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    prefetch: int = 2,
    stop: threading.Event | None = None,
    catch_sigint: bool = False,
    on_stage: Callable[[str], None] | None = None,
    on_start: Callable[[int, int, int], None] | None = None,
    on_item: Callable[[BatchItem, dict], None] | None = None,
    on_stop: Callable[[], None] | None = None,
) -> BatchSummary:
    """Answer a whole batch: load the model, answer, and under a multi-process launch share the
    work and merge the results. The same call in every process of a ``torchrun`` or
    ``accelerate launch`` (or alone).

    Each process loads the model on its own device (:func:`process_device`), takes its share of
    the unfinished videos (``PartialState.split_between_processes``; a video's questions stay
    together) and appends its lines to its part file (:func:`part_path`) as they finish. At the
    end every process reports to the others (``gather_object``), also one that failed, and the
    main process merges the output and every part file in input order (``--resume`` input
    included) and removes the parts.

    Parameters
    ----------
    items : list of BatchItem
        Every item, in input order (the same list in every process).
    output : Path
        The results file, one JSON line per item; :data:`STDOUT` (``-``) writes them to stdout (one process,
        neither ``resume`` nor ``overwrite``).
    model, device, dtype, attn_implementation, layout, settings
        As :func:`fastvid_cli.models.load_model` takes them.
    fastvid : dict, optional
        FastVID settings (``retention_ratio``, ``c``, ...) over the model family's defaults.
    max_new_tokens, baseline, vision_batch
        As :class:`fastvid_cli.engine.pipeline.AskOptions` takes them. With ``vision_batch`` each video is
        streamed in chunks of that many frames, and the prefetch thread reads headers only.
    resume : bool
        Skip the items that the output and its part files already hold.
    overwrite : bool
        Start the output afresh (and drop old part files).
    prefetch : int
        Videos decoded and preprocessed ahead of the model.
    stop : threading.Event, optional
        When set, each process ends after its current item.
    catch_sigint : bool
        Ctrl-C sets ``stop`` (see :func:`stop_on_sigint`).
    on_stage : callable, optional
        Called with ``"loading"`` before the model loads, ``"answering"`` after.
    on_start : callable, optional
        Called with (this process's item count, its rank, the process count) before answering.
    on_item : callable, optional
        Called in this process with each of its items and its record.
    on_stop : callable, optional
        Called at the first Ctrl-C under ``catch_sigint``.

    Returns
    -------
    BatchSummary
        The whole batch's counts, the same in every process; ``errors`` names the processes that
        failed as a whole, ``failures`` the items that failed (from the merged output). With ``resume``
        and nothing left to answer (and no part file to merge), the counts come back at once: no model
        loads, torch does not even import.

    Raises
    ------
    InputError
        The output exists and neither ``resume`` nor ``overwrite`` is given, or ``output`` is
        :data:`STDOUT` with either or under a multi-process launch (see :func:`check_output`; in every
        process, before any work).
    Exception
        What made this process fail (loading the model, say), once every process has reported;
        the other processes raise :class:`FastVIDError` naming it.
    """
    check_output(output, resume, overwrite)
    if resume and not pending(items, output, resume) and not part_files(output):  # nothing to answer or merge
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        rank = int(os.environ.get("RANK", "0") or 0)
        return BatchSummary(skipped=len(items), output=str(output), processes=world, rank=rank)
    # deferred: the pipeline loads torch and transformers, which collecting and checking a batch must not wait for
    from ..pruning import method_for_family
    from .pipeline import AskOptions

    state = process_state(device)
    rank, world = state.process_index, state.num_processes
    if overwrite and state.is_main_process:
        for path in [output, *part_files(output)]:
            path.unlink(missing_ok=True)
    state.wait_for_everyone()  # nobody reads the output before it is cleared
    todo = pending(items, output, resume)
    state.wait_for_everyone()  # nobody writes before every process has read what is done
    with state.split_between_processes(group_by_video(todo)) as groups:
        mine = [item for group in groups for item in group]
    stop = stop or threading.Event()
    summary, error, adapter = BatchSummary(output=str(output)), None, None
    try:
        (on_stage or (lambda stage: None))("loading")
        adapter = load_model(
            model,
            device=process_device(state, device),
            dtype=dtype,
            attn_implementation=attn_implementation,
            layout=layout,
            overrides=settings,
        )
        config = method_for_family(adapter.fastvid_defaults, fastvid)
        options = AskOptions(config=config, max_new_tokens=max_new_tokens, baseline=baseline, vision_batch=vision_batch)
        (on_stage or (lambda stage: None))("answering")
        if on_start:
            on_start(len(mine), rank, world)
        sink = output if world == 1 else part_path(output, rank, world)
        with stop_on_sigint(stop, on_stop) if catch_sigint else contextlib.nullcontext():
            summary = run_batch(adapter, mine, output, options, prefetch=prefetch, stop=stop, on_item=on_item, part=sink)
    except Exception as err:  # noqa: BLE001 - reported to the others at the meeting below, then raised
        error = err
    report = {"rank": rank, "summary": summary, "error": None if error is None else describe(error).message}
    reports = gather_reports(state, report)
    try:
        if state.is_main_process and output != STDOUT and (world > 1 or part_files(output)):
            merge_records(output, part_files(output), items)
    finally:
        state.wait_for_everyone()  # the merged output is there for every process after this
    total = _whole_batch(output, reports, len(items) - len(todo), world)
    total.rank = rank
    if adapter is not None and adapter.tiny_random:
        total.notes.append(TINY_NOTE)
    if error is not None:
        raise error
    if total.errors:
        raise FastVIDError(f"{'; '.join(total.errors)} (finished items are in {output}: rerun with `resume`)")
    return total


def gather_reports(state, report: dict) -> list[dict]:
    """Every process's ``report``, in rank order, in every process (``gather_object``)."""
    if state.num_processes == 1:
        return [report]
    from accelerate.utils import gather_object

    return sorted(gather_object([report]), key=lambda r: r["rank"])


def _whole_batch(output: Path, reports: list[dict], skipped: int, world: int) -> BatchSummary:
    """The counts of every process together (``skipped``: what an earlier run had finished)."""
    parts = [r["summary"] for r in reports]
    return BatchSummary(
        answered=sum(p.answered for p in parts),
        failed=sum(p.failed for p in parts),
        skipped=skipped,
        interrupted=any(p.interrupted for p in parts),
        elapsed_s=max(p.elapsed_s for p in parts),
        output=str(output),
        failures=[f for p in parts for f in p.failures],
        processes=world,
        errors=[f"rank {r['rank']}: {r['error']}" for r in reports if r["error"] is not None],
        video_tokens_before=sum(p.video_tokens_before for p in parts),
        video_tokens_after=sum(p.video_tokens_after for p in parts),
        prefill_ms=[ms for p in parts for ms in p.prefill_ms],
        ttft_ms=[ms for p in parts for ms in p.ttft_ms],
    )


def merge_records(output: Path, parts: list[Path], items: list[BatchItem]) -> None:
    """Write ``output`` with the records of ``output`` and ``parts``, one per id, in input order
    (ids of other inputs last), then remove the parts. The new output replaces the old at once."""
    order = {item.id: item.index for item in items}
    records = {}
    for path in [output, *parts]:
        for record in read_records(path):
            records[record["id"]] = record
    ranked = sorted(records.values(), key=lambda r: order.get(r["id"], len(order)))
    tmp = output.with_name(output.name + ".merging")
    with open(tmp, "w", encoding="utf-8") as sink:
        sink.write("".join(json.dumps(r) + "\n" for r in ranked))
        sink.flush()
        os.fsync(sink.fileno())
    tmp.replace(output)
    for path in parts:
        path.unlink(missing_ok=True)
