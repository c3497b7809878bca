"""Shared fixtures: a tiny random LLaVA-OneVision built offline, sample videos, broken files."""

from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

import fastvid_cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_videos"
PACKAGE = str(Path(fastvid_cli.__file__).resolve().parent) + os.sep


def fastvid_caller(frame) -> str | None:
    """``file:line`` of the innermost fastvid_cli frame at or above ``frame``; None when there is none, or
    when an import stands between (a library's import-time warning is the library's, not a call of ours)."""
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(PACKAGE):
            return f"{name}:{frame.f_lineno}"
        if name.startswith("<frozen importlib"):
            return None
        frame = frame.f_back
    return None


@contextmanager
def deprecations_through_fastvid_are_errors():
    """pyproject's ``filterwarnings`` fails a FutureWarning or DeprecationWarning attributed to fastvid_cli.
    One raised deeper down a call that fastvid_cli made is attributed to the library's wrapper instead
    (transformers' ``past_key_values`` on a model's forward pointed at transformers/utils/generic.py):
    this fails those too. It wraps the function that pytest's warning capture records with, so a warning
    that a test expects (``pytest.warns``, ``recwarn``) or a filter ignores never gets here."""
    record = warnings._showwarnmsg_impl

    def show(message: warnings.WarningMessage) -> None:
        if issubclass(message.category, (FutureWarning, DeprecationWarning)):
            caller = fastvid_caller(sys._getframe(1))
            if caller:
                raise message.category(f"{message.message} (raised through fastvid_cli at {caller})")
        record(message)

    warnings._showwarnmsg_impl = show
    try:
        yield
    finally:
        warnings._showwarnmsg_impl = record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with deprecations_through_fastvid_are_errors():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with deprecations_through_fastvid_are_errors():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    with deprecations_through_fastvid_are_errors():
        return (yield)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Keep the tiny checkpoint and head caches of the test run out of the user's ~/.cache."""
    cache = tmp_path_factory.mktemp("fastvid-cache")
    old = os.environ.get("FASTVID_CACHE")
    os.environ["FASTVID_CACHE"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("FASTVID_CACHE", None)
    else:
        os.environ["FASTVID_CACHE"] = old


@pytest.fixture(scope="session")
def sample_video() -> Path:
    return SAMPLES / "bikes.mp4"


@pytest.fixture(scope="session")
def tiny_dir(isolated_cache) -> Path:
    from fastvid_cli.tiny import tiny_random_dir

    return tiny_random_dir()


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    """The tiny-random adapter on the CPU in float32."""
    from fastvid_cli.models import load_model

    return load_model("tiny-random", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def realcfg_checkpoint(tmp_path_factory):
    """``realcfg_checkpoint(name)``: the tiny checkpoint built once per session from ``tests/realcfg/NAME``
    through the CLI (``fastvid tiny-model DIR --config tests/realcfg/NAME``), its folder."""
    from fastvid_cli.cli import run

    built: dict[str, Path] = {}

    def build(name: str) -> Path:
        if name not in built:
            target = tmp_path_factory.mktemp("realcfg") / name
            assert run(["tiny-model", str(target), "--config", str(ROOT / "tests" / "realcfg" / name)]) == 0
            built[name] = target
        return built[name]

    return build


@pytest.fixture()
def broken_files(tmp_path, sample_video) -> dict[str, Path]:
    """A text file named .mp4, random bytes named .mp4, and the first half of a real video."""
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(20000))
    data = sample_video.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    return {"text": text, "corrupt": corrupt, "truncated": truncated}


@pytest.fixture()
def cli_line(capsys):
    """Run the CLI in-process: ``cli_line(*args)`` returns its exit status and its single stderr line
    (no traceback, and nothing on stdout)."""
    from fastvid_cli.cli import run

    def run_cli(*args) -> tuple[int, str]:
        status = run([str(a) for a in args])
        out = capsys.readouterr()
        lines = [line for line in out.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in out.err, out.err
        assert out.out == ""
        return status, lines[0]

    return run_cli
