"""Stdout carries results only: what native libraries print goes to stderr.

Code in C and C++ (decord and the FFmpeg under it, CUDA and its libraries) prints to file descriptor 1,
whatever Python's ``sys.stdout`` is, so its log lines would reach ``fastvid batch -o - | jq`` as if they
were results. :func:`native_output_to_stderr` points fd 1 at stderr for the whole run and gives Python's
``sys.stdout`` its own copy of the real stdout: what the command prints (answers, JSON, ``--help``) is
all that reaches stdout, from every thread, whatever a library does underneath.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
from collections.abc import Iterator


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (``fflush(NULL)``), so native output written before a switch of fd 1 leaves first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


@contextlib.contextmanager
def native_output_to_stderr() -> Iterator[None]:
    """While inside: fd 1 is a copy of fd 2, and ``sys.stdout`` writes to the real stdout (a copy of the old fd 1).

    Python code that prints through ``sys.stdout`` (``print``, click, Rich) reaches stdout as before;
    whatever writes to fd 1 directly (native libraries, child processes that inherit it) reaches
    stderr. On exit C's stdio buffers are flushed (to stderr), fd 1 and ``sys.stdout`` are restored.
    Nothing changes when ``sys.stdout`` is not fd 1 (a test's captured output) or fd 1 or 2 is closed.
    """
    results = sys.stdout
    try:
        if results is None or results.fileno() != 1:
            raise ValueError
        results.flush()
        real = os.dup(1)
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        yield
        return
    try:
        os.dup2(2, 1)
    except OSError:  # no fd 2 to send native output to: leave fd 1 as it is
        os.close(real)
        yield
        return
    own = os.fdopen(real, "w", buffering=1 if results.line_buffering else -1, encoding=results.encoding, errors=results.errors)
    sys.stdout = own
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`): nothing to flush to
            own.flush()
        _flush_c_stdio()
        sys.stdout = results
        os.dup2(own.fileno(), 1)
        with contextlib.suppress(OSError, ValueError):
            own.close()
