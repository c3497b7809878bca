"""Shared fixtures: a tiny random LLaVA-OneVision built offline, sample videos, broken files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_videos"


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
    from fastvid_cli.tiny_models import tiny_random_dir

    return tiny_random_dir()


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    """The tiny-random adapter on the CPU in float32."""
    from fastvid_cli.models import load_model

    return load_model("tiny-random", device="cpu", dtype="float32")


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
