"""Timing, synchronised with the GPU when there is one: :func:`timed` for one call (a pipeline
stage), :func:`measure_ms` for repeated runs (benchmarks, CUDA events on a GPU)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it (no-op on the CPU)."""
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], T], device: torch.device | str | None = None) -> tuple[T, float]:
    """Call ``fn()`` and return ``(its result, wall-clock milliseconds)``, GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, (time.perf_counter() - start) * 1e3


def measure_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> list[float]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times; milliseconds of each timed run.

    On a GPU each run is timed with CUDA events (the GPU's own time of the queued work); on the CPU
    with ``time.perf_counter``.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return times
