"""The pictures of terminal output in docs/commands.md are scripts/terminal_pictures.py's, made by
their commands, and show what the current code prints."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path

import pytest

from fastvid_cli.cli import run
from fastvid_cli.output.terminal import err_console, fmt_count, fmt_tflops

ROOT = Path(__file__).resolve().parents[1]
COMMANDS_MD = ROOT / "docs" / "commands.md"


def load_script():
    spec = importlib.util.spec_from_file_location("terminal_pictures", ROOT / "scripts" / "terminal_pictures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


pictures = load_script()
BY_NAME = {p.name: p for p in pictures.PICTURES}


def picture_text(name: str) -> tuple[list[str], list[str]]:
    """(the command's lines, the output's lines) of a picture."""
    lines = pictures.svg_lines(BY_NAME[name].path.read_text())
    command = re.sub(r"\s", "", BY_NAME[name].command)
    for k in range(1, len(lines) + 1):
        if re.sub(r"\s", "", "".join(lines[:k])) == command:
            return lines[:k], lines[k:]
    raise AssertionError(f"{name}.svg does not start with its command {BY_NAME[name].command!r}: {lines[:3]}")


def cells(lines: list[str]) -> set[str]:
    return {cell.strip() for line in lines if line[:1] in "│┃" for cell in re.split("[│┃]", line)}


def test_docs_show_exactly_the_pictures_the_script_makes():
    shown = set(re.findall(r"\]\(terminal/([\w-]+)\.svg\)", COMMANDS_MD.read_text()))
    assert shown == set(BY_NAME), "docs/commands.md shows a picture the script does not make, or misses one"
    on_disk = {p.stem for p in (ROOT / "docs" / "terminal").glob("*.svg")}
    assert on_disk == set(BY_NAME), "docs/terminal/ holds exactly the script's pictures"


@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_each_picture_was_made_by_its_command_at_80_columns(name):
    command, output = picture_text(name)
    assert output and max(len(line) for line in command + output) <= pictures.WIDTH
    assert any(line[:1] in "┏│" for line in output), "a table"


def test_the_flops_picture_is_what_the_code_prints_now(capsys, monkeypatch):
    """flops is analytic: the picture's every line is what the current code prints at 80 columns."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(err_console, "width", pictures.WIDTH)
    assert run(list(BY_NAME["flops"].argv)) == 0
    printed = capsys.readouterr()
    assert printed.out == ""
    assert [line.rstrip() for line in printed.err.splitlines()] == picture_text("flops")[1]


def test_the_tiny_model_pictures_show_the_codes_token_counts_and_flops():
    """ask, compare and batch time a model, so their times differ run to run; their tokens and TFLOPs
    do not: each must be what the current code counts for the picture's command."""
    from fastvid_cli.flops import flops_rows
    from fastvid_cli.models.geometry import model_geometry

    g = model_geometry("tiny-random")

    def rows(retentions):
        return flops_rows(g.llm, g.tokens_per_frame, g.extra_slots, g.token_frames(g.frames), retentions, g.newlines_per_frame)

    argv = BY_NAME["compare"].argv
    retentions = [float(r) for r in argv[argv.index("--retention") + 1 : argv.index("--model")]]
    shown = cells(picture_text("compare")[1])
    for row in rows(retentions):
        assert {fmt_count(row.video_tokens), fmt_tflops(row.table5)} <= shown, row

    vanilla, pruned = rows([0.1])  # ask: R = 0.1, LLaVA-OneVision's default
    shown = cells(picture_text("ask")[1])
    assert {fmt_count(vanilla.video_tokens), fmt_count(pruned.video_tokens)} <= shown
    assert {fmt_tflops(vanilla.table5), fmt_tflops(pruned.table5)} <= shown

    videos = len(list((ROOT / "sample_videos").glob("*.mp4")))
    shown = cells(picture_text("batch")[1])
    assert {str(videos), fmt_count(videos * vanilla.video_tokens), fmt_count(videos * pruned.video_tokens)} <= shown
    assert shlex.split(BY_NAME["batch"].command)[1:3] == ["fastvid", "batch"]
