"""Errors the CLI maps to one line on stderr and an exit status."""

from __future__ import annotations


class FastVIDError(Exception):
    """Base of the errors ``fastvid`` reports as one line; ``exit_code`` is the process status."""

    exit_code = 1


class InputError(FastVIDError):
    """Bad usage or input: a missing or unreadable video, an option out of range (exit status 2)."""

    exit_code = 2


class ModelError(FastVIDError):
    """A model that is unknown, not cached and unreachable, or of an unsupported architecture (exit 2)."""

    exit_code = 2


class DeviceError(FastVIDError):
    """A device or dtype that this machine cannot provide, e.g. ``--device cuda`` without a GPU (exit 2)."""

    exit_code = 2
