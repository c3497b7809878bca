"""The retention ratio R, the per-frame token budget it gives, and the methods' names: no torch.

The pruning methods (:mod:`fastvid_cli.pruning`), the analytic FLOPs (:mod:`fastvid_cli.flops`) and the
command line's checks of its input, made before torch loads, share these.
"""

from __future__ import annotations

import math

METHOD_NAMES = ("fastvid", "uniform", "visionzip", "dycoke")
"""The pruning methods' names, in :data:`fastvid_cli.pruning.METHODS`' order (its keys, checked there), for
the command line to tell a method spec from the next argument before torch loads."""


def check_retention(value: object) -> None:
    """Raise ValueError unless ``value`` is a retention ratio in (0, 1] (an int or a finite float, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 < value <= 1:
        raise ValueError(f"retention ratio must be in (0, 1], got {value!r}")


def tokens_per_frame_kept(tokens_per_frame: int, retention_ratio: float) -> int:
    """max(1, floor(N * R)): the per-frame budget every method keeps on average (project rule)."""
    return max(1, math.floor(tokens_per_frame * retention_ratio))
