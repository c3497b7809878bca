"""``fastvid tiny-model``: a random-weight checkpoint built offline from published files (:mod:`fastvid_cli.tiny`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InputError
from ..output.terminal import err_console
from .app import app
from .click_types import LAZY_HELP, Command


def _tiny_architectures() -> str:
    """``tiny-model --arch``'s choices for its help: each with the published checkpoint it is built from."""
    # deferred: read when this help is shown, not by `fastvid --help`
    from ..models.tiny_names import TINY_ARCHITECTURES

    choices = [f"{arch} ({folder})" for arch, folder in TINY_ARCHITECTURES.items()]
    return f"{choices[0]} [default], " + ", ".join(choices[1:])


LAZY_HELP["{tiny_architectures}"] = _tiny_architectures


@app.command("tiny-model", no_args_is_help=True, cls=Command)
def tiny_model(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint to.")],
    arch: Annotated[
        str | None,
        typer.Option(
            help="Architecture, built from the published files fastvid ships of the checkpoint named: {tiny_architectures}."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Build from a real checkpoint's published files in this folder (config.json, processor/tokenizer configs, chat template, generation config) instead of --arch.",
        ),
    ] = None,
    full_size: Annotated[
        bool,
        typer.Option(
            "--full-size",
            help="With --config: keep the real widths, depths and vocabulary (benchmarks on a GPU; a 7B model writes about 15 GB).",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Write a random-weight checkpoint (offline) to OUT_DIR; --model OUT_DIR loads it.

    It is built from a real checkpoint's published files (--arch: those fastvid ships; --config: a folder of them): every layout, prompt and decoding field is the real checkpoint's, so it has the real architecture and token geometry; only widths, depths and the vocabulary shrink to test size (none with --full-size). Its answers are noise.
    """
    if config is not None and arch is not None:
        raise InputError("--arch and --config exclude each other: --config takes the architecture from REAL_DIR/config.json")
    if config is None:
        if full_size:
            raise InputError("--full-size needs --config REAL_DIR (the real checkpoint's published files)")
        # deferred: `fastvid --help` imports none of the library (see the docstring of cli/app.py)
        from ..tiny import ARCHITECTURES

        arch = arch or next(iter(ARCHITECTURES))
        if arch not in ARCHITECTURES:
            raise InputError(f"unknown --arch {arch!r}: choose from {', '.join(ARCHITECTURES)}")
        config = ARCHITECTURES[arch]
    _tiny_from_config(out_dir, config, full_size, seed, summary=arch is None)


def _tiny_from_config(out_dir: Path, real_dir: Path, full_size: bool, seed: int, summary: bool = True) -> None:
    """Plan, say what stays and what shrinks (``summary``: for the files the user gave), then write (see
    :mod:`fastvid_cli.tiny`)."""
    # deferred: `fastvid --help` imports none of the library (see the docstring of cli/app.py)
    from ..tiny.plan import plan_from_config, summary_lines
    from ..tiny.write import default_device, write_plan

    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not empty")
    plan = plan_from_config(real_dir, full_size)
    for line in summary_lines(plan) if summary else []:
        err_console.print(line, markup=False, soft_wrap=True)
    if full_size:
        device = default_device(True)
        slow = "" if device.type == "cuda" else " (no GPU: on the CPU this is slow and needs that much memory and disk)"
        err_console.print(
            f"drawing {plan.weight_bytes() / 1e9:.1f} GB of random weights on {device}{slow}", markup=False, soft_wrap=True
        )
    with err_console.status(f"writing {out_dir}..."):
        write_plan(plan, out_dir, seed=seed)
    kind = "full-size" if full_size else "tiny"
    source = real_dir if summary else f"{real_dir.name}'s published files"
    err_console.print(
        f"wrote {kind} random {plan.family} built from {source} to {out_dir}; use it with --model {out_dir}",
        markup=False,
        soft_wrap=True,
    )
