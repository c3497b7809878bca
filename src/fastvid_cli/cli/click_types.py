"""Click machinery of the ``fastvid`` command line: options that take several values, and help
text that never wraps inside a name.

Click gives ``nargs=-1`` to arguments only; an option declared with a list type (``multiple=True``)
takes one value per occurrence. :class:`MultiValueCommand` lets such an option also take the
words that follow it while they are values of its kind, so ``--retention 0.1 0.25`` and
``--retention 0.1 --retention 0.25`` mean the same. argv is not rewritten: the option's entry in
click's parser takes the extra words from the parser's remaining arguments as it parses.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import typer.core

from ..budget import METHOD_NAMES

_Context = typer.core.TyperCommand.context_class
"""The click ``Context`` that typer uses (typer vendors its click)."""


LAZY_HELP: dict[str, Callable[[], str]] = {}
"""Placeholders in help text (``{tiny_architectures}``) -> what fills them when that help is shown: text
read from modules that ``fastvid --help`` must not wait for."""


class HelpFormatter(_Context.formatter_class):  # type: ignore[name-defined]  # typer's vendored click class
    """Click's help formatter, but an option's help wraps at spaces only: never at a hyphen or inside
    a word, so a model name (``qwen3-vl-30b-a3b``, ``tiny-random-qwen3.5``) stays whole on its line; and
    the placeholders of :data:`LAZY_HELP` are filled."""

    def write_dl(self, rows, col_max: int = 30, col_spacing: int = 2) -> None:
        rows = [(first, fill_help(second)) for first, second in rows]
        first_col = min(max((len(first) for first, _ in rows), default=0), col_max) + col_spacing
        for first, second in rows:
            self.write(f"{'':>{self.current_indent}}{first}")
            if not second:
                self.write("\n")
                continue
            if len(first) <= first_col - col_spacing:
                self.write(" " * (first_col - len(first)))
            else:
                self.write("\n" + " " * (first_col + self.current_indent))
            width = max(self.width - first_col - 2, 10)
            lines = textwrap.wrap(second, width, break_on_hyphens=False, break_long_words=False) or [""]
            self.write(f"{lines[0]}\n")
            for line in lines[1:]:
                self.write(f"{'':>{first_col + self.current_indent}}{line}\n")


def fill_help(text: str) -> str:
    """``text`` with the placeholders of :data:`LAZY_HELP` filled."""
    for placeholder, make in LAZY_HELP.items():
        if placeholder in text:
            text = text.replace(placeholder, make())
    return text


class HelpContext(_Context):  # type: ignore[valid-type,misc]  # typer's vendored click class
    formatter_class = HelpFormatter


class Command(typer.core.TyperCommand):
    """A ``fastvid`` command: its help wraps at spaces only (:class:`HelpFormatter`)."""

    context_class = HelpContext


class Group(typer.core.TyperGroup):
    """The ``fastvid`` group: its help wraps at spaces only (:class:`HelpFormatter`)."""

    context_class = HelpContext


def is_number(word: str) -> bool:
    """A word that reads as a number (its range is checked later, so ``--frames 4 0`` reports the 0 as out of range)."""
    try:
        float(word)
    except ValueError:
        return False
    return True


def is_method_spec(word: str) -> bool:
    """A pruning method spec ``NAME[:FIELD=VALUE,...]`` with a known NAME (fields are checked later)."""
    return word.partition(":")[0] in METHOD_NAMES


VALUE_KINDS: dict[str, Callable[[str], bool]] = {"retention": is_number, "frames": is_number, "method": is_method_spec}
"""What a further value of a list option looks like, by parameter name; other list options take
every following word that does not start with ``-``."""


class MultiValueCommand(Command):
    """A command whose list options (``multiple=True``) also take the values that follow them.

    Typer builds the parameters; this class only changes how click's parser consumes their words
    (``make_parser``), which works the same with click and with the click that typer vendors.
    """

    def make_parser(self, ctx):
        """Click's parser, with each list option's entry taking following words while they are values."""
        parser = super().make_parser(ctx)
        for param in self.get_params(ctx):
            if param.param_type_name != "option" or not param.multiple or getattr(param, "is_flag", False):
                continue
            entries = {id(e): e for e in (parser._long_opt.get(o) or parser._short_opt.get(o) for o in param.opts) if e}
            accepts = VALUE_KINDS.get(param.name, lambda word: not word.startswith("-"))
            for entry in entries.values():
                entry.process = _greedy(entry.process, accepts)  # type: ignore[method-assign]  # click's parser entry, rewired
        return parser


def _greedy(process, accepts: Callable[[str], bool]):
    """Wrap a parser entry's ``process(value, state)``: after the value, each following word of
    ``state.rargs`` that ``accepts`` takes counts as one more occurrence of the option."""

    def take_values(value, state) -> None:
        process(value, state)
        while state.rargs and not state.rargs[0].startswith("--") and accepts(state.rargs[0]):
            process(state.rargs.pop(0), state)

    return take_values
