"""Errors, and the one table that turns any exception into one line and an exit status.

Library errors name the *settings* they are about (```frames```, ```device```), never a
command-line flag: :func:`describe` takes a ``flag`` function, and the CLI passes one that turns a
setting's name into its option (``attn_implementation`` -> ``--attn-implementation``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SETTING = re.compile(r"`([a-z][a-z0-9_]*)`")
"""How a message names a setting: its Python name in backquotes."""


class FastVIDError(Exception):
    """Base of the errors ``fastvid`` reports as one line; ``exit_code`` is the process status.

    The message names the settings it is about by their Python names in backquotes
    (``"`frames` must be at least 1"``): ``str(err)`` shows the bare name, the CLI the option
    (``--frames``), so the library never names a command-line flag.
    """

    exit_code = 1

    def __str__(self) -> str:
        return self.describe()

    @property
    def settings(self) -> list[str]:
        """The settings the message names, in order."""
        return SETTING.findall(super().__str__())

    def describe(self, flag: Callable[[str], str] = str) -> str:
        """The one-line message, each `setting` written as ``flag(setting)``."""
        return SETTING.sub(lambda m: flag(m.group(1)), super().__str__())


class InputError(FastVIDError):
    """Bad usage or input: a missing or unreadable video, an option out of range (exit status 2)."""

    exit_code = 2


class ModelError(FastVIDError):
    """A model that is unknown, not cached and unreachable, or of an unsupported architecture (exit 2)."""

    exit_code = 2


class DeviceError(FastVIDError):
    """A device or dtype that this machine cannot provide, e.g. ``cuda`` without a GPU (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class Failure:
    """An exception as the CLI reports it: one line and an exit status."""

    message: str
    exit_code: int


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message, at most ``limit`` characters."""
    return (str(err).strip().splitlines() or [""])[0][:limit]


Handler = Callable[[Any, Callable[[str], str]], Failure]
"""Renders an exception of :data:`ERRORS` (matched by its class name, so typed Any: click's and decord's
are not imported here) given the flag-naming function."""


def _unexpected(err: BaseException, flag: Callable[[str], str]) -> Failure:
    return Failure(f"{type(err).__name__}: {first_line(err)}", 1)


def _os_error(err: BaseException, flag: Callable[[str], str]) -> Failure:
    filename, strerror = getattr(err, "filename", None), getattr(err, "strerror", None)
    if strerror and filename:
        return Failure(f"cannot use {filename}: {strerror}", 1)
    return _unexpected(err, flag)


def _out_of_memory(where: str) -> Handler:
    return lambda err, flag: Failure(
        f"out of memory{where}: try fewer {flag('frames')}, a lower {flag('retention')} or a smaller {flag('model')}", 1
    )


ERRORS: tuple[tuple[str, Handler], ...] = (
    ("FastVIDError", lambda err, flag: Failure(err.describe(flag), err.exit_code)),
    ("KeyboardInterrupt", lambda err, flag: Failure("interrupted", 130)),
    ("Abort", lambda err, flag: Failure("interrupted", 130)),  # click's, after Ctrl-C at a prompt
    # click's usage errors: bad option values, unknown options, missing arguments
    ("ClickException", lambda err, flag: Failure(" ".join(err.format_message().split()), err.exit_code)),
    ("OutOfMemoryError", _out_of_memory(" on the GPU")),  # torch's, a RuntimeError
    ("MemoryError", _out_of_memory("")),
    ("DECORDError", lambda err, flag: Failure(f"cannot decode the video: {first_line(err)}", 2)),
    ("OSError", _os_error),
    ("Exception", _unexpected),
)
"""Exception class (by name, matched along the exception's MRO, so click, torch and decord need
not be imported here) -> its one line and exit status; the first match wins."""


def describe(err: BaseException, flag: Callable[[str], str] = str) -> Failure:
    """The one line and exit status of ``err``, by :data:`ERRORS`.

    Parameters
    ----------
    err : BaseException
    flag : callable, optional
        Turns a setting's name into what the user typed for it (the CLI: its option); by default
        the name itself.
    """
    names = [cls.__name__ for cls in type(err).__mro__]
    for name, render in ERRORS:
        if name in names:
            return render(err, flag)
    return _unexpected(err, flag)
