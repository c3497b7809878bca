"""A GPU that torch cannot use is said, not skipped: ``--device auto``/``cuda`` with nvidia-smi and torch faked."""

from __future__ import annotations

import os
import stat
import warnings

import pytest
import torch

from fastvid_cli.errors import DeviceError
from fastvid_cli.models import gpu, resolve_device

TOO_OLD = (
    "The NVIDIA driver on your system is too old (found version 12040). Please update your GPU driver by "
    "downloading and installing a new version from the URL: http://www.nvidia.com/Download/index.aspx "
    "Alternatively, go to: https://pytorch.org to install a PyTorch version that has been compiled with your "
    "version of the CUDA driver. (Triggered internally at /pytorch/c10/cuda/CUDAFunctions.cpp:119.)"
)


def smi_header(driver: str, cuda: str) -> str:
    return (
        "+-----------------------------------------------------------------------------------------+\n"
        f"| NVIDIA-SMI {driver}              Driver Version: {driver}      CUDA Version: {cuda}     |\n"
        "|-----------------------------------------+------------------------+----------------------+\n"
        "|   0  NVIDIA A100-SXM4-80GB          On  |   00000000:07:00.0 Off |                    0 |\n"
    )


@pytest.fixture()
def machine(monkeypatch):
    """Fakes the two facts: what nvidia-smi says (``None``: not installed) and whether torch can use CUDA.

    Returns a setter ``machine(driver, cuda, torch_cuda, available)``; ``machine.calls`` lists the
    argument tuples nvidia-smi was run with.
    """
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    calls: list[tuple[str, ...]] = []
    facts: dict = {}

    def fake_smi(*args: str) -> str | None:
        calls.append(args)
        if facts["driver"] is None:
            return None
        if args == ("--query-gpu=driver_version", "--format=csv,noheader"):
            return f"{facts['driver']}\n{facts['driver']}\n"  # two GPUs
        assert args == (), args
        return smi_header(facts["driver"], facts["cuda"]) if facts["cuda"] else "no header here\n"

    def set_facts(
        driver: str | None, cuda: str | None, torch_cuda: str | None, available: bool, torch_says: str = TOO_OLD
    ) -> None:
        facts.update(driver=driver, cuda=cuda)

        def is_available() -> bool:
            if not available and driver is not None and torch_cuda:  # as torch does when cuInit fails
                warnings.warn(f"CUDA initialization: {torch_says}", UserWarning)
            return available

        monkeypatch.setattr(torch.cuda, "is_available", is_available)
        monkeypatch.setattr(torch.version, "cuda", torch_cuda)

    monkeypatch.setattr(gpu, "run_nvidia_smi", fake_smi)
    set_facts.calls = calls
    return set_facts


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_old_driver_for_the_cuda13_wheel_is_one_line_with_the_fix(cli_line, machine, sample_video, device):
    machine(driver="550.54.15", cuda="12.4", torch_cuda="13.0", available=False)
    status, line = cli_line("ask", sample_video, "q", "--model", "tiny-random", "--device", device)
    assert status == 2, line
    assert "NVIDIA GPU is here (driver 550.54.15, CUDA up to 12.4)" in line
    assert f"torch {torch.__version__} is built for CUDA 13.0, which needs driver 580 or newer" in line
    assert (
        "pip uninstall -y torch torchvision && pip install torch torchvision --index-url https://download.pytorch.org/whl/cu126"
    ) in line
    assert "update the NVIDIA driver to 580 or newer" in line
    assert machine.calls[0] == ("--query-gpu=driver_version", "--format=csv,noheader")


def test_driver_too_old_for_any_current_build_says_update(machine):
    machine(driver="470.82.01", cuda="11.4", torch_cuda="13.0", available=False)
    with pytest.raises(DeviceError) as err:
        resolve_device("auto")
    message = str(err.value)
    assert "driver 470.82.01, CUDA up to 11.4" in message and "built for CUDA 13.0" in message
    assert "update the NVIDIA driver to 580 or newer" in message and "525.60.13" in message
    assert "--index-url" not in message  # no CUDA 12 or 13 wheel runs on this driver


def test_cpu_only_torch_on_a_gpu_machine(machine):
    machine(driver="580.65.06", cuda="13.0", torch_cuda=None, available=False)
    with pytest.raises(
        DeviceError,
        match=r"is built without CUDA: install a CUDA build \(pip uninstall -y torch "
        r"torchvision && pip install torch torchvision "
        r"--index-url https://download.pytorch.org/whl/cu130\)",
    ):
        resolve_device("auto")


def test_matching_driver_but_unusable_points_at_the_environment(cli_line, machine, sample_video):
    machine(
        driver="580.65.06",
        cuda="13.0",
        torch_cuda="13.0",
        available=False,
        torch_says="CUDA unknown error - this may be due to an incorrectly set up environment. Setting the "
        "available devices to be zero.",
    )
    status, line = cli_line("ask", sample_video, "q", "--model", "tiny-random", "--device", "cuda")
    assert status == 2
    assert (
        "cannot use it (torch says: CUDA unknown error - this may be due to an incorrectly set up environment), "
        "although it is built for CUDA 13.0, which this driver runs"
    ) in line
    assert "CUDA_VISIBLE_DEVICES" in line


def test_driver_without_cuda_in_its_header_is_judged_by_its_branch(machine):
    machine(driver="535.104.05", cuda=None, torch_cuda="13.0", available=False)
    with pytest.raises(DeviceError) as err:
        resolve_device("auto")
    assert "(driver 535.104.05)" in str(err.value) and "whl/cu126" in str(err.value)


def test_no_nvidia_smi_means_cpu(machine):
    machine(driver=None, cuda=None, torch_cuda="13.0", available=False)
    assert resolve_device("auto") == torch.device("cpu")
    assert len(machine.calls) == 1
    with pytest.raises(DeviceError, match="no CUDA GPU is available here"):
        resolve_device("cuda")


def test_usable_gpu_is_used_without_asking_nvidia_smi(machine):
    machine(driver="580.65.06", cuda="13.0", torch_cuda="13.0", available=True)
    assert resolve_device("auto") == torch.device("cuda")
    assert machine.calls == []


def test_cpu_never_runs_nvidia_smi(machine):
    machine(driver="550.54.15", cuda="12.4", torch_cuda="13.0", available=False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert machine.calls == []


@pytest.mark.parametrize("hidden", ["", "-1", "-1,0"])
def test_gpus_hidden_on_purpose_mean_cpu(monkeypatch, machine, hidden):
    machine(driver="550.54.15", cuda="12.4", torch_cuda="13.0", available=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
    assert resolve_device("auto") == torch.device("cpu")
    assert machine.calls == []


def fake_binary(folder, script: str) -> None:
    exe = folder / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(os.name != "posix", reason="fake nvidia-smi is a shell script")
def test_real_nvidia_smi_runner(monkeypatch, tmp_path):
    """The runner itself: a missing binary, a failing one, a hanging one, and one that answers."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert gpu.run_nvidia_smi() is None and gpu.nvidia_driver() is None  # not installed
    fake_binary(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver'; exit 9\n")
    assert gpu.nvidia_driver() is None
    monkeypatch.setattr(gpu, "NVIDIA_SMI_TIMEOUT_S", 0.2)
    fake_binary(tmp_path, "exec sleep 30\n")
    assert gpu.run_nvidia_smi() is None
    header = smi_header("550.54.15", "12.4").replace("'", "")
    fake_binary(tmp_path, f"""if [ "$1" = "--query-gpu=driver_version" ]; then echo 550.54.15; else printf '{header}'; fi\n""")
    monkeypatch.setattr(gpu, "NVIDIA_SMI_TIMEOUT_S", 5.0)
    assert gpu.nvidia_driver() == gpu.NvidiaDriver("550.54.15", "12.4")


def test_torch_cuda_warning_gives_way_to_the_one_line(machine):
    """torch's multi-line "CUDA initialization" warning would print before the error; it is caught instead."""
    machine(driver="550.54.15", cuda="12.4", torch_cuda="13.0", available=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(DeviceError, match="built for CUDA 13.0"):
            resolve_device("auto")
    assert [str(w.message) for w in seen] == []
