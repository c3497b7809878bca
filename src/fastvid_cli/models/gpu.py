"""An NVIDIA GPU that torch cannot use: finding it with ``nvidia-smi`` and saying what to install.

PyPI's default torch wheel is built for a recent CUDA and needs a recent NVIDIA driver. On a machine
whose driver is older, ``torch.cuda.is_available()`` is simply False; :func:`unusable_gpu` tells that
case apart from a machine without a GPU, so a run can stop with the fix instead of quietly going to
the CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import warnings
from dataclasses import dataclass

NVIDIA_SMI_TIMEOUT_S = 5.0
"""Longest wait for ``nvidia-smi`` (it can take a second or two to wake a driver without persistence mode)."""
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580"}
"""Oldest Linux driver that runs a CUDA major version (NVIDIA's minor version compatibility table)."""
TORCH_INDEX = "https://download.pytorch.org/whl"
TORCH_CUDA12_WHEEL = "cu126"
"""PyTorch's CUDA 12 build to suggest: it runs on any driver with CUDA 12 (>= 525.60.13)."""


@dataclass(frozen=True)
class NvidiaDriver:
    """What ``nvidia-smi`` says about the driver.

    Attributes
    ----------
    version : str
        Driver version, e.g. ``"550.54.15"``.
    cuda : str or None
        Newest CUDA version the driver supports (``"CUDA Version"`` in ``nvidia-smi``'s header), e.g. ``"12.4"``.
    """

    version: str
    cuda: str | None

    @property
    def cuda_major(self) -> int | None:
        """Newest CUDA major version the driver runs: from its header, else from the version's branch."""
        if self.cuda:
            return int(self.cuda.split(".")[0])
        try:
            branch = int(self.version.split(".")[0])
        except ValueError:
            return None
        return max((major for major, oldest in MIN_DRIVER.items() if branch >= int(oldest.split(".")[0])), default=None)


def run_nvidia_smi(*args: str) -> str | None:
    """The stdout of ``nvidia-smi ARGS``, or None if it is not installed, fails, or hangs.

    Cheap where there is no NVIDIA driver: the binary is looked up on ``PATH`` first.
    """
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def nvidia_driver() -> NvidiaDriver | None:
    """The NVIDIA driver if ``nvidia-smi`` answers with at least one GPU, else None (no NVIDIA GPU here)."""
    out = run_nvidia_smi("--query-gpu=driver_version", "--format=csv,noheader")
    versions = [line.strip() for line in (out or "").splitlines() if line.strip()]
    if not versions:
        return None
    header = run_nvidia_smi() or ""
    cuda = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", header)
    return NvidiaDriver(versions[0], cuda.group(1) if cuda else None)


def gpus_hidden() -> bool:
    """Whether ``CUDA_VISIBLE_DEVICES`` hides every GPU on purpose (empty, or starting with -1)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    return value is not None and value.split(",")[0].strip() in ("", "-1")


def cuda_status() -> tuple[bool, str | None]:
    """``torch.cuda.is_available()``, and what torch said when it is False.

    torch reports a failed CUDA start (e.g. a driver too old for its build) as a multi-line
    "CUDA initialization" warning on stderr; it is caught here so that an error can stay one line.

    Returns
    -------
    available : bool
    torch_says : str or None
        The first sentence of torch's warning, if it gave one.
    """
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    torch_says = None
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if text.startswith("CUDA initialization:"):
            torch_says = torch_says or text.removeprefix("CUDA initialization:").strip().split(". ")[0].rstrip(".")
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return available, torch_says


def unusable_gpu(torch_says: str | None = None) -> str | None:
    """Why an NVIDIA GPU here cannot be used by this torch, or None if there is none to explain.

    Call it only when ``torch.cuda.is_available()`` is False. None means no NVIDIA GPU answers
    ``nvidia-smi`` (or ``CUDA_VISIBLE_DEVICES`` hides them all on purpose): the CPU is all there is.

    Parameters
    ----------
    torch_says : str, optional
        torch's own reason (see :func:`cuda_status`), quoted when the versions do not explain it.

    Returns
    -------
    str or None
        One line naming the driver, the CUDA version torch is built for, and the fix.
    """
    import torch

    if gpus_hidden():
        return None
    driver = nvidia_driver()
    if driver is None:
        return None
    supports = f", CUDA up to {driver.cuda}" if driver.cuda else ""
    here = f"an NVIDIA GPU is here (driver {driver.version}{supports}) but torch {torch.__version__}"
    cpu = "; or run on the CPU (device 'cpu')"
    wheel = _wheel_for(driver.cuda_major)
    install = torch_install_command(wheel) if wheel else None
    built = torch.version.cuda
    if not built:
        fix = f"install a CUDA build ({install})" if install else _update_driver(MIN_DRIVER[12])
        return f"{here} is built without CUDA: {fix}{cpu}"
    torch_major = int(built.split(".")[0])
    needs = MIN_DRIVER.get(torch_major)
    if driver.cuda_major is not None and driver.cuda_major >= torch_major:
        said = f" (torch says: {torch_says})" if torch_says else ""
        return (
            f"{here} cannot use it{said}, although it is built for CUDA {built}, which this driver runs: check "
            f"CUDA_VISIBLE_DEVICES, that the GPU is passed into this container, or reboot after a driver update{cpu}"
        )
    needs_text = f", which needs driver {needs} or newer" if needs else ""
    if install:
        fix = f"install the torch build that matches the driver ({install}) or {_update_driver(needs)}"
    elif torch_major > 12:
        fix = f"{_update_driver(needs)} (or to {MIN_DRIVER[12]} or newer and install torch's CUDA 12 build, {TORCH_CUDA12_WHEEL})"
    else:
        fix = _update_driver(needs)
    return f"{here} is built for CUDA {built}{needs_text}: {fix}{cpu}"


def torch_install_command(wheel: str) -> str:
    """The pip command that replaces the installed torch with the build from PyTorch's index ``wheel`` (e.g. cu126).

    The uninstall comes first because pip keeps an installed torch that already satisfies ``torch``,
    whatever CUDA it is built for.
    """
    return f"pip uninstall -y torch torchvision && pip install torch torchvision --index-url {TORCH_INDEX}/{wheel}"


def _update_driver(version: str | None) -> str:
    return f"update the NVIDIA driver to {version} or newer" if version else "update the NVIDIA driver"


def _wheel_for(cuda_major: int | None) -> str | None:
    """PyTorch's wheel index tag for a driver that runs CUDA up to ``cuda_major``; None if it is older than 12."""
    if cuda_major is None or cuda_major < 12:
        return None
    return TORCH_CUDA12_WHEEL if cuda_major == 12 else f"cu{cuda_major}0"
