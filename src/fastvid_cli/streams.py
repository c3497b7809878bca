"""Stdout carries results only, and native libraries' log lines stay off the terminal where they can.

Code in C and C++ (decord and the FFmpeg under it, CUDA and its libraries) prints to file descriptors
1 and 2, whatever Python's ``sys.stdout`` and ``sys.stderr`` are, so its log lines would reach ``fastvid
batch -o - | jq`` as if they were results. :func:`native_output_to_stderr` points fd 1 at stderr for the
whole run and gives Python's ``sys.stdout`` and ``sys.stderr`` their own copies of the real streams: what
the command prints (answers, JSON, ``--help``; tables, notes, errors) goes where it did, from every
thread, and only native output goes through fds 1 and 2. :func:`quiet_native_stderr` then silences fd 2
around a library call that is known to log what the caller reports better itself (decord opening a
damaged file), from any thread, without hiding anything Python prints.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import threading
from collections.abc import Iterator
from typing import TextIO


def _flush_c_stdio() -> None:
    """Flush C's stdio buffers (``fflush(NULL)``), so native output written before a switch of fd 1 leaves first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def _own_copy(stream: TextIO, fd: int, line_buffering: bool) -> TextIO:
    """A text stream on a duplicate of ``fd``, with ``stream``'s encoding and errors."""
    return io.TextIOWrapper(
        io.FileIO(os.dup(fd), "w", closefd=True),
        encoding=stream.encoding,
        errors=stream.errors,
        line_buffering=line_buffering,
        write_through=fd == 2,  # as Python's stderr: nothing waits in a buffer
    )


def _is_fd(stream: TextIO | None, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


@contextlib.contextmanager
def native_output_to_stderr() -> Iterator[None]:
    """While inside: fd 1 is a copy of fd 2; ``sys.stdout`` and ``sys.stderr`` write to copies of the real ones.

    Python code that prints (``print``, click, Rich, warnings, tracebacks) reaches stdout and stderr as
    before; whatever writes to fd 1 directly (native libraries, child processes that inherit it) reaches
    stderr. On exit C's stdio buffers are flushed (to stderr), the fds and the streams are restored.
    Nothing changes when ``sys.stdout`` is not fd 1 or ``sys.stderr`` not fd 2 (a test's captured
    output), or an fd cannot be copied.
    """
    out, err = sys.stdout, sys.stderr
    if not (_is_fd(out, 1) and _is_fd(err, 2)):
        yield
        return
    out.flush()
    err.flush()
    try:
        own_out = _own_copy(out, 1, bool(getattr(out, "line_buffering", False)))
        own_err = _own_copy(err, 2, True)
        os.dup2(2, 1)
    except OSError:
        yield
        return
    sys.stdout, sys.stderr = own_out, own_err
    try:
        yield
    finally:
        for stream in (own_out, own_err):
            with contextlib.suppress(OSError, ValueError):  # a reader that went away (`| head`): nothing to flush to
                stream.flush()
        _flush_c_stdio()
        sys.stdout, sys.stderr = out, err
        os.dup2(own_out.fileno(), 1)
        for stream in (own_out, own_err):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved: int | None = None


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """While inside, fd 2 goes to /dev/null: a native library's own log lines (decord's "ERROR opening" on
    a damaged file) are not shown; the caller reports the failure itself.

    Redirecting fd 2 is process-wide. Under :func:`native_output_to_stderr` Python's ``sys.stderr`` is a
    copy of the real stderr, so this works from any thread (batch's prefetch thread) and hides nothing
    Python prints; otherwise only on the main thread (elsewhere it does nothing), so that a background
    decode cannot swallow what the main thread prints meanwhile. Nested and concurrent uses share one
    redirection, undone when the last one ends.
    """
    global _quiet_depth, _quiet_saved
    if _is_fd(sys.stderr, 2) and threading.current_thread() is not threading.main_thread():
        yield
        return
    with _quiet_lock:
        if _quiet_depth == 0:
            try:
                saved = os.dup(2)
            except OSError:  # no usable fd 2: nothing to silence
                saved = None
            if saved is not None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 2)
                os.close(devnull)
            _quiet_saved = saved
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0 and _quiet_saved is not None:
                os.dup2(_quiet_saved, 2)
                os.close(_quiet_saved)
                _quiet_saved = None
