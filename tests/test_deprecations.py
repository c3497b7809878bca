"""A deprecation that fastvid_cli's own calls trigger fails the test run (pyproject's ``filterwarnings`` and
the hook in conftest.py), and a plain ``fastvid ask`` prints no Python warning.

Each test here passes only while its mechanism is in place: without it the warning is merely recorded,
nothing is raised, and ``pytest.raises`` fails."""

from __future__ import annotations

import warnings

import pytest

from fastvid_cli.engine.timing import timed


@pytest.mark.parametrize("category", [FutureWarning, DeprecationWarning])
def test_a_deprecation_attributed_to_fastvid_cli_is_an_error(category):
    """What transformers' ``deprecate_kwarg`` does for ``generate(past_key_values=...)``: the warning points
    at its caller, a fastvid_cli module. No fastvid_cli frame is on the stack here, so only pyproject's
    ``error::...:fastvid_cli`` entries can raise it."""
    with pytest.raises(category, match="old argument"):
        warnings.warn_explicit("old argument", category, "pipeline.py", 397, module="fastvid_cli.engine.pipeline")


def test_a_deprecation_elsewhere_stays_a_warning():
    """The entries are keyed on fastvid_cli: under the same filters, the warning attributed to a library's
    module (a library's own business) is only recorded."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.warn_explicit("old argument", FutureWarning, "utils.py", 1, module="transformers.generation.utils")
    assert [str(w.message) for w in seen] == ["old argument"]


@pytest.mark.parametrize("category", [FutureWarning, DeprecationWarning])
def test_a_deprecation_deeper_down_a_fastvid_cli_call_is_an_error(category):
    """A model's forward behind torch's and transformers' wrappers: the warning is attributed to the wrapper
    (here: this test's function), not to fastvid_cli, but fastvid_cli made the call (``timed``). Only the
    hook in conftest.py can raise it."""

    def library_wrapper():
        warnings.warn("old argument", category, stacklevel=1)

    with pytest.raises(category, match=r"old argument \(raised through fastvid_cli at .*timing\.py:\d+\)"):
        timed(library_wrapper)
