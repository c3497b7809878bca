"""Wall-clock timing of pipeline stages, synchronised with the GPU when there is one."""

from __future__ import annotations

import contextlib
import time

import torch


def synchronize(device: torch.device | str | None = None) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it (no-op on the CPU)."""
    if torch.cuda.is_available() and (device is None or torch.device(device).type == "cuda"):
        torch.cuda.synchronize()


class StageTimer:
    """Collects milliseconds per named stage.

    >>> timer = StageTimer("cpu")
    >>> with timer("pruning"):
    ...     pass
    >>> timer.ms["pruning"] >= 0
    True
    """

    def __init__(self, device: torch.device | str | None = None) -> None:
        self.device = device
        self.ms: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str):
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.ms[stage] = self.ms.get(stage, 0.0) + (time.perf_counter() - start) * 1e3


def timed(fn, device: torch.device | str | None = None) -> tuple[object, float]:
    """Call ``fn()`` and return ``(its result, wall-clock milliseconds)``, GPU work included."""
    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return out, (time.perf_counter() - start) * 1e3
