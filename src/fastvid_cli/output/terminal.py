"""What ``fastvid`` prints, and where: the one output sink, the number formats, and tables that fit.

The rule, for every command: **stdout carries only answers, or one JSON object with** ``--json``
(``batch -o -``: its JSON lines, written by :mod:`fastvid_cli.engine.batch` as items finish);
every table, note, progress bar and error goes to stderr. So ``answer=$(fastvid ask ...)`` captures
the answer alone, and ``fastvid flops ... > f.txt`` writes nothing but what ``--json`` would print.
The CLI prints through :func:`print_answer`, :func:`print_json`, :func:`print_tables` and
:func:`print_notes` only, and its stderr console is :data:`err_console`.

Tables are :class:`FitTable`: a number is never cut or wrapped, at any width. Free text (an answer,
a question) is cut with an ellipsis (its full text is on stdout and in ``--json``), labels wrap at
spaces, and a table too wide for the terminal is split into several, each repeating the row's key
columns. Numbers are formatted by the ``fmt_*`` helpers here, one format per kind of quantity.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text

NOT_A_TERMINAL_WIDTH = 120
"""Width of the stderr console off a terminal (a pipe, a log file) when ``COLUMNS`` is not set."""


def make_console() -> Console:
    """The stderr console: the terminal's width on a terminal; off one, ``COLUMNS`` if set, else
    :data:`NOT_A_TERMINAL_WIDTH` columns, without colour."""
    wide = sys.stderr.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(stderr=True, highlight=False, width=None if wide else NOT_A_TERMINAL_WIDTH)


err_console = make_console()
"""Where every table, note, status line and error goes (stderr)."""


def print_answer(line: str) -> None:
    """One line of the result on stdout (an answer, or ``k<TAB>answer``), flushed at once."""
    print(line, flush=True)


def print_json(data: object) -> None:
    """The ``--json`` result: one JSON object (or list) on stdout, one line."""
    print(json.dumps(data), flush=True)


def print_tables(*renderables: RenderableType) -> None:
    """Tables (and their Settings lines) on stderr."""
    err_console.print(*renderables)


def print_notes(notes: Iterable[str]) -> None:
    """One ``note: ...`` line each on stderr, soft-wrapped by the terminal (never cut)."""
    for note in notes:
        err_console.print(f"note: {note}", style="yellow", soft_wrap=True, markup=False)


# ---------------------------------------------------------------------------------------------
# Numbers: one format per kind of quantity, in every table


def fmt_count(value: int) -> str:
    """A count (tokens, frames), with thousands separators: ``6,272``."""
    return f"{value:,}"


def fmt_ms(value: float | None) -> str:
    """Milliseconds: one decimal with thousands separators (``1,952.1``), 2 significant digits below
    1 ms (``0.061``), ``-`` for a time not measured."""
    if value is None:
        return "-"
    return f"{value:,.1f}" if value >= 1 or value == 0 else f"{value:.2g}"


def fmt_tflops(value: float) -> str:
    """TFLOPs with 4 significant digits: ``48.82``, ``4.042``, ``0.6183``, ``2.79e-05`` (tiny models)."""
    return f"{value:.4g}"


def fmt_percent(value: float, decimals: int = 1) -> str:
    """A share as a percentage: ``9.7%`` (``decimals=0``: ``10%``)."""
    return f"{value:.{decimals}%}"


def fmt_speedup(value: float | None) -> str:
    """A speedup (a ratio of times): ``4.40x``; ``-`` when not measured."""
    return "-" if value is None else f"{value:,.2f}x"


def fmt_retention(value: float) -> str:
    """A retention ratio R as given: ``0.1``, ``0.25``, ``1``."""
    return f"{value:g}"


def fmt_rate(value: float) -> str:
    """A rate (videos per second): two decimals, ``2.75``."""
    return f"{value:,.2f}"


def fmt_mib(value: float | None) -> str:
    """Memory in MiB, whole, with thousands separators; ``-`` when not measured."""
    return "-" if value is None else f"{value:,.0f}"


# ---------------------------------------------------------------------------------------------
# Tables that fit

Kind = Literal["number", "label", "text"]
PADDING = 2
"""Columns of padding per cell (Rich's default: one each side)."""
TEXT_MIN = 12
"""Least width of a free-text column (an answer) before a table is split instead."""


def _wrapped_lines(text: str, width: int) -> int:
    """Lines ``text`` takes wrapped at spaces to ``width`` columns (a longer word alone on its line)."""
    count = 0
    for line in text.splitlines() or [""]:
        used = -1
        count += 1
        for word in line.split():
            size = cell_len(word)
            if used >= 0 and used + 1 + size > width:
                count += 1
                used = -1
            used = size if used < 0 else used + 1 + size
    return count


@dataclass
class FitColumn:
    """One column of a :class:`FitTable`.

    Attributes
    ----------
    header : str
        May hold ``\\n``; it wraps at spaces, never inside a word.
    kind : {"number", "label", "text"}
        ``number``: right-aligned, never narrower than its widest cell (numbers are never cut or
        wrapped). ``label``: left-aligned, wraps at spaces. ``text``: free text on one line, cut
        with an ellipsis when the table must shrink (never below :data:`TEXT_MIN` columns).
    """

    header: str
    kind: Kind = "number"


@dataclass
class FitTable:
    """A table whose numbers always show in full: a Rich renderable that lays itself out for the
    width it is given (:meth:`tables`).

    Attributes
    ----------
    title, caption : str or None
        Above and below the table (the parts of a split table), wrapped at the console's width.
    keys : int
        Leading columns that name a row (``method``, ``R``): repeated in every part of a split table.
    columns : list of FitColumn
    rows : list of (list of str, dict)
        Each row's cells and its Rich ``add_row`` options (``style``, ``end_section``).
    show_header : bool
        False for a table of named values (the first column names each row).
    """

    title: str | None = None
    caption: str | None = None
    keys: int = 1
    show_header: bool = True
    columns: list[FitColumn] = field(default_factory=list)
    rows: list[tuple[list[str], dict]] = field(default_factory=list)

    def add_column(self, header: str, kind: Kind = "number") -> None:
        self.columns.append(FitColumn(header, kind))

    def add_row(self, *cells: str, style: str | None = None, end_section: bool = False) -> None:
        """Add a row of plain-text cells (no Rich markup), one per column.

        Raises
        ------
        ValueError
            If the row has not one cell per column.
        """
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells in a table of {len(self.columns)} columns")
        self.rows.append((list(cells), {"style": style, "end_section": end_section}))

    def column_cells(self, index: int) -> list[str]:
        """The cells of column ``index``, top to bottom."""
        return [cells[index] for cells, _ in self.rows]

    def _widths(self, index: int) -> tuple[int, int]:
        """(least, natural) content width of column ``index``."""
        column = self.columns[index]
        cells = self.column_cells(index)
        lines = [line for cell in cells for line in cell.splitlines()] or [""]
        header_lines = column.header.splitlines() or [""]
        header_words = max((cell_len(w) for line in header_lines for w in line.split()), default=0)
        natural = max(max(cell_len(line) for line in lines), max(cell_len(line) for line in header_lines))
        if column.kind == "number":
            least = max(max(cell_len(line) for line in lines), header_words)
        elif column.kind == "label":
            least = max(max((cell_len(w) for line in lines for w in line.split()), default=0), header_words)
        else:
            least = max(min(natural, TEXT_MIN), header_words)
        return least, natural

    @staticmethod
    def _overhead(count: int) -> int:
        return count * PADDING + count + 1  # padding, and one border left of each column plus the last

    def _fit(self, indices: list[int], width: int) -> list[int]:
        """Content widths of ``indices`` within ``width``: natural widths, shrunk toward the least
        widths: free text first (widest first), then numbers' headers (they wrap), then labels."""
        sizes = {i: self._widths(i) for i in indices}
        widths = {i: sizes[i][1] for i in indices}

        def excess() -> int:
            return sum(widths.values()) + self._overhead(len(indices)) - width

        def shrink(kind: str) -> None:
            while excess() > 0:
                shrinkable = [i for i in indices if self.columns[i].kind == kind and widths[i] > sizes[i][0]]
                if not shrinkable:
                    return
                widths[max(shrinkable, key=lambda i: widths[i])] -= 1

        shrink("text")
        numbers = [i for i in indices if self.columns[i].kind == "number"]
        if excess() > 0 and numbers:
            # start each at its least width, then widen, cheapest first, the columns whose header
            # then takes fewer lines, while the room lasts
            room = sum(widths[i] for i in numbers) - excess()
            for i in numbers:
                widths[i] = sizes[i][0]
            room -= sum(widths[i] for i in numbers)
            while room > 0:
                steps = [(self._next_width(i, widths[i], sizes[i][1]) - widths[i], i) for i in numbers]
                steps = [(cost, i) for cost, i in steps if 0 < cost <= room]
                if not steps:
                    break
                cost, i = min(steps)
                widths[i] += cost
                room -= cost
        shrink("label")
        return [widths[i] for i in indices]

    def _next_width(self, index: int, width: int, natural: int) -> int:
        """The least width above ``width`` (at most ``natural``) at which column ``index``'s header
        takes fewer lines; ``width`` itself when there is none."""
        lines = _wrapped_lines(self.columns[index].header, width)
        for wider in range(width + 1, natural + 1):
            if _wrapped_lines(self.columns[index].header, wider) < lines:
                return wider
        return width

    def parts(self, width: int) -> list[list[int]]:
        """Column indices of each part: one part when the least widths fit in ``width``, else the
        key columns plus as many of the others (in order) as fit, part after part."""
        every = list(range(len(self.columns)))
        least = {i: self._widths(i)[0] for i in every}
        if sum(least.values()) + self._overhead(len(every)) <= width:
            return [every]
        keys = every[: self.keys]
        parts: list[list[int]] = []
        current: list[int] = []
        for i in every[self.keys :]:
            trial = keys + current + [i]
            if current and sum(least[j] for j in trial) + self._overhead(len(trial)) > width:
                parts.append(keys + current)
                current = []
            current.append(i)
        parts.append(keys + current)
        return parts

    def tables(self, width: int) -> list[Table]:
        """The Rich table(s), without title and caption, for a console ``width`` columns wide."""
        out = []
        for indices in self.parts(width):
            table = Table(show_header=self.show_header)
            for i, w in zip(indices, self._fit(indices, width)):
                column = self.columns[i]
                if column.kind == "text":
                    table.add_column(column.header, width=w, no_wrap=True, overflow="ellipsis")
                else:
                    justify: Literal["left", "right"] = "right" if column.kind == "number" else "left"
                    table.add_column(column.header, width=w, justify=justify, overflow="fold")
            for cells, options in self.rows:
                table.add_row(*(Text(cells[i]) for i in indices), **options)
            out.append(table)
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """The title, the table (or its parts, one under the other) and the caption; title and
        caption wrap at the console's width."""
        if self.title:
            yield Text(self.title, style="table.title")
        yield from self.tables(options.max_width)
        if self.caption:
            yield Text(self.caption, style="table.caption")
