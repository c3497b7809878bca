"""Where a benchmark runs: the device's name, its memory in use and at peak, and the environment record."""

from __future__ import annotations

import platform
import resource
import sys
import time

import torch

from .. import __version__
from .results import Environment


def device_name(device: torch.device) -> str:
    """Human name of the device: the GPU's model, or the CPU's model and core count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model} ({torch.get_num_threads()} threads)"


def device_slug(device: torch.device) -> str:
    """File-name form of :func:`device_name`, e.g. ``nvidia-h100-80gb-hbm3`` or ``cpu-2-threads``."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"cpu-{torch.get_num_threads()}-threads"
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-").replace("--", "-")


def peak_memory_mib(device: torch.device) -> float:
    """Peak memory since :func:`reset_peak`, in MiB.

    GPU: ``torch.cuda.max_memory_allocated``. CPU: the process's peak resident set (Linux: VmHWM,
    which :func:`reset_peak` resets to the current RSS; elsewhere the lifetime peak, which only grows).
    """
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    hwm = _proc_status_kib("VmHWM")
    if hwm is not None:
        return hwm / 2**10
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def memory_in_use_mib(device: torch.device) -> float | None:
    """Memory held now, in MiB: ``torch.cuda.memory_allocated`` on a GPU, the resident set on a CPU (Linux; else None)."""
    if device.type == "cuda":
        return torch.cuda.memory_allocated(device) / 2**20
    rss = _proc_status_kib("VmRSS")
    return None if rss is None else rss / 2**10


def reset_peak(device: torch.device) -> None:
    """Start a new peak for :func:`peak_memory_mib` (CPU: Linux only, writes 5 to /proc/self/clear_refs)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _proc_status_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field_name + ":"))
    except (OSError, StopIteration, ValueError):
        return None


def environment(device: torch.device, dtype: torch.dtype) -> Environment:
    """Device, dtype and versions, for the result file."""
    import transformers

    return Environment(
        device=device_name(device),
        device_type=device.type,
        dtype=str(dtype).removeprefix("torch."),
        fastvid=__version__,
        torch=torch.__version__,
        transformers=transformers.__version__,
        python=platform.python_version(),
        platform=platform.platform(),
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        cuda=torch.version.cuda if device.type == "cuda" else None,
    )


__all__ = ["device_name", "device_slug", "environment", "memory_in_use_mib", "peak_memory_mib", "reset_peak"]
