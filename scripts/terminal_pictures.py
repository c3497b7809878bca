#!/usr/bin/env python3
"""Pictures of what ``fastvid`` prints at an 80-column terminal, for docs/commands.md.

Runs each command of :data:`PICTURES` as a user would (``python -m fastvid_cli ...`` in a fresh
process, offline, on the tiny random model and the sample clips), with stdout and stderr on one
stream as a terminal shows them, and writes what it printed as an SVG (Rich's ``save_svg``) to
``docs/terminal/NAME.svg``. The first line of each picture is the command itself.

    python scripts/terminal_pictures.py            # every picture (a few minutes on a CPU)
    python scripts/terminal_pictures.py flops ask  # some

``tests/test_terminal_pictures.py`` checks that the pictures docs/commands.md shows are this list's,
that each was made by its command here, and that their numbers are the current code's.
"""

from __future__ import annotations

import html
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "terminal"
WIDTH = 80


@dataclass(frozen=True)
class Picture:
    """One command and the picture of its output, ``docs/terminal/{name}.svg``."""

    name: str
    argv: tuple[str, ...]

    @property
    def path(self) -> Path:
        return OUT / f"{self.name}.svg"

    @property
    def command(self) -> str:
        """The first line of the picture."""
        return "$ fastvid " + shlex.join(self.argv)


PICTURES = [
    Picture(
        "ask",
        ("ask", "sample_videos/bikes.mp4", "What happens in this video?", "--model", "tiny-random", "--max-new-tokens", "24"),
    ),
    Picture(
        "compare",
        (
            "compare",
            "sample_videos/bikes.mp4",
            "What happens?",
            "--retention",
            "0.1",
            "0.25",
            "1.0",
            "--model",
            "tiny-random",
            "--max-new-tokens",
            "24",
        ),
    ),
    Picture("flops", ("flops", "--model", "llava-ov-7b", "--retention", "0.25", "0.1")),
    Picture(
        "batch", ("batch", "sample_videos", "-q", "What happens in this video?", "--model", "tiny-random", "-o", "results.jsonl")
    ),
]
"""Every picture docs/commands.md shows, and the command that makes it."""


def terminal_output(picture: Picture, workdir: Path) -> str:
    """What ``fastvid ARGV`` prints on an 80-column terminal (stdout and stderr as they come, with
    colour, no animation), run in ``workdir`` (which holds ``sample_videos``)."""
    env = os.environ | {
        "COLUMNS": str(WIDTH),
        "TTY_COMPATIBLE": "1",  # Rich: colours, as on a terminal
        "TTY_INTERACTIVE": "0",  # Rich: no spinner frames
        "HF_HUB_OFFLINE": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "fastvid_cli", *picture.argv],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{picture.command} failed ({proc.returncode}):\n{proc.stdout}")
    return proc.stdout


def svg(picture: Picture, output: str) -> str:
    """The SVG of a terminal that ran ``picture``'s command and printed ``output``."""
    console = Console(record=True, width=WIDTH, file=io.StringIO(), force_terminal=True, color_system="truecolor")
    console.print(Text(picture.command, style="bold"), soft_wrap=False)
    console.print(Text.from_ansi(output.rstrip("\n")), soft_wrap=False)
    return console.export_svg(title=f"fastvid {picture.argv[0]}")


SVG_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')
CHAR_WIDTH = 20 * 0.61
"""Rich's ``export_svg``: a character cell is 20 px high and 0.61 of that wide."""


def svg_lines(svg_text: str) -> list[str]:
    """The terminal lines of a picture, as text (trailing spaces dropped)."""
    rows: dict[float, list[tuple[float, str]]] = {}
    for x, y, text in SVG_TEXT.findall(svg_text):
        rows.setdefault(float(y), []).append((float(x), html.unescape(text).replace("\xa0", " ")))
    lines = []
    for y in sorted(rows):
        line = ""
        for x, text in sorted(rows[y]):
            line = line.ljust(round(x / CHAR_WIDTH)) + text
        lines.append(line.rstrip())
    return lines


def main(names: list[str]) -> None:
    chosen = [p for p in PICTURES if not names or p.name in names]
    unknown = set(names) - {p.name for p in PICTURES}
    if unknown:
        raise SystemExit(f"unknown pictures {sorted(unknown)}: choose from {[p.name for p in PICTURES]}")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "sample_videos").symlink_to(ROOT / "sample_videos")
        for picture in chosen:
            (workdir / "results.jsonl").unlink(missing_ok=True)
            picture.path.write_text(svg(picture, terminal_output(picture, workdir)))
            print(f"wrote {picture.path.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
