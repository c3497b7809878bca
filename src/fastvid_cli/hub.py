"""Small helpers around huggingface_hub."""

from __future__ import annotations

import os


def hub_offline() -> bool:
    """Whether the user asked for no Hub access (``HF_HUB_OFFLINE``), read at call time.

    huggingface_hub reads the variable once at import; reading it here lets a caller that sets it
    later (or a test) skip the network and its retries at once.
    """
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return constants.HF_HUB_OFFLINE or value in ("1", "true", "yes", "on")
