"""The ``fastvid`` command line: parses options, calls the library, prints.

The answer (or ``--json``) goes to stdout; tables, notes, progress and errors go to stderr, for
every command: everything is printed through :mod:`fastvid_cli.output.terminal`, the one output sink.
Exit status: 0 success, 1 runtime failure, 2 bad usage or input.

One module per command (or pair of commands): :mod:`.ask` (ask, compare), :mod:`.measure` (flops,
bench), :mod:`.batch`, :mod:`.show`, :mod:`.tiny_model`; :mod:`.app` holds the Typer app, the options
they share and the early checks; :mod:`.click_types` the click machinery. Importing them registers the
commands; :data:`ORDER` is the order ``fastvid --help`` lists them in.
"""

from __future__ import annotations

import os
import sys
from typing import Any, cast

import typer

from ..errors import describe
from ..output.terminal import err_console
from ..streams import native_output_to_stderr
from . import ask, batch, measure, show, tiny_model  # noqa: F401  (each registers its commands on the app)
from .app import app

ORDER = ("ask", "compare", "flops", "bench", "batch", "show", "tiny-model")
"""The commands as ``fastvid --help`` and docs/commands.md list them: questions, measurements, scripting, the rest."""
app.registered_commands.sort(key=lambda command: ORDER.index(command.name or command.callback.__name__))  # type: ignore[union-attr]


def option_of(setting: str) -> str:
    """The option of a setting named in a library error (``attn_implementation`` ->
    ``--attn-implementation``); the name itself where no command has such an option."""
    for command in getattr(typer.main.get_command(app), "commands", {}).values():  # the app is a group
        for param in command.params:
            if param.name == setting and param.param_type_name == "option":
                return str(next((opt for opt in param.opts if opt.startswith("--")), param.opts[0]))
    return setting


REPORTED_AS_IS = ("FastVIDError", "ClickException", "KeyboardInterrupt", "Abort")
"""Errors whose one line is the whole story; any other gets a traceback under FASTVID_DEBUG=1."""


def run(argv: list[str] | None = None) -> int:
    """Run the CLI; every error becomes one line on stderr and an exit status (never a traceback),
    by the table of :mod:`fastvid_cli.errors`."""
    command = typer.main.get_command(app)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        status = command.main(args=argv, prog_name="fastvid", standalone_mode=False)
        if isinstance(status, int):  # a typer.Exit(code) raised inside a command comes back as its code
            return status
    except typer.Exit as done:
        return done.exit_code
    except BaseException as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            cast(Any, err).show()
            return 0
        if isinstance(err, (SystemExit, GeneratorExit)):
            raise
        as_is = any(c.__name__ in REPORTED_AS_IS for c in type(err).__mro__)
        if os.environ.get("FASTVID_DEBUG") and not as_is:
            raise
        failure = describe(err, option_of)
        hint = "" if as_is else " (set FASTVID_DEBUG=1 for the traceback)"
        err_console.print(f"fastvid: error: {failure.message}{hint}", style="red", soft_wrap=True)
        return failure.exit_code
    return 0


def main() -> None:
    """Console-script entry point: stdout carries only what the command prints; native libraries' own
    output goes to stderr (see :mod:`fastvid_cli.streams`)."""
    with native_output_to_stderr():
        status = run()
    sys.exit(status)


__all__ = ["app", "main", "option_of", "run"]
