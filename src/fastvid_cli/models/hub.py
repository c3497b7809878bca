"""Small helpers around huggingface_hub."""

from __future__ import annotations

import functools
import os
import threading

PROBE_TIMEOUT_S = 3.0
"""How long :func:`hub_unreachable` waits for the Hub to answer, unless ``HF_HUB_ETAG_TIMEOUT`` is set."""


def hub_offline() -> bool:
    """Whether the user asked for no Hub access (``HF_HUB_OFFLINE``), read at call time.

    huggingface_hub reads the variable once at import; reading it here lets a caller that sets it
    later (or a test) skip the network and its retries at once.
    """
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return constants.HF_HUB_OFFLINE or value in ("1", "true", "yes", "on")


def hub_unreachable() -> str | None:
    """Why the Hub cannot be reached, or None if it answers; asked at most once per process.

    Call it only when a download is actually needed, after the local cache has missed. Without a
    network, huggingface_hub retries a failed request with backoff (about 25 s for a file, and a
    silent network can hang a metadata request much longer); one quick request first turns that
    into an immediate, clear error. Any HTTP answer counts as reachable, so the library's own
    errors (gated or unknown repo) are unchanged when the network is up.

    The request is a ``HEAD`` of the Hub endpoint (``huggingface_hub.constants.ENDPOINT``, i.e.
    ``HF_ENDPOINT``) through huggingface_hub's shared HTTP client, so proxies and certificates are
    honoured, without retries. It waits :data:`PROBE_TIMEOUT_S` seconds, or ``HF_HUB_ETAG_TIMEOUT``
    if that is set, in all (a name lookup that hangs included).

    Returns
    -------
    str or None
        A short reason (no line breaks), e.g. ``"https://huggingface.co: ConnectError: [Errno -2]
        Name or service not known"``, or None.
    """
    from huggingface_hub import constants

    return _probe(constants.ENDPOINT.rstrip("/"), _probe_timeout())


def _probe_timeout() -> float:
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return PROBE_TIMEOUT_S
    return value if value > 0 else PROBE_TIMEOUT_S


@functools.cache
def _probe(endpoint: str, timeout: float) -> str | None:
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            _head(endpoint, timeout)
        except Exception as err:  # noqa: BLE001 - any failure to get an HTTP answer means unreachable
            outcome.append(err)
        else:
            outcome.append(None)

    # The client's timeouts do not cover the name lookup (getaddrinfo blocks), so the request runs
    # in a daemon thread and is given up after `timeout` seconds in all.
    worker = threading.Thread(target=attempt, name="fastvid-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer from {endpoint} within {timeout:g} s"
    err = outcome[0]
    if err is None:
        return None
    if "Timeout" in type(err).__name__:
        return f"no answer from {endpoint} within {timeout:g} s"
    detail = " ".join(str(err).split())[:120]
    return f"{endpoint}: {type(err).__name__}" + (f": {detail}" if detail else "")


def _head(endpoint: str, timeout: float) -> None:
    """One ``HEAD`` of ``endpoint`` with huggingface_hub's shared client; raises if no HTTP answer comes."""
    from huggingface_hub.utils import get_session

    get_session().head(endpoint + "/", timeout=timeout, follow_redirects=False)
