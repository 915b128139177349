"""The hub switches that keep transformers and huggingface_hub from touching the network.

Set by the CLI before anything imports transformers and by every loader here, so a local
folder is read from disk or not at all: a missing file is an error naming it, never a
download."""

from __future__ import annotations

import os
import sys

FORCED = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
          "HF_HUB_DISABLE_TELEMETRY": "1"}
DEFAULTS = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TOKENIZERS_PARALLELISM": "false"}


def go_offline() -> None:
    """Set the offline switches (forced) and quiet defaults (a user's setting kept). Imports
    nothing: modules already imported get their cached constants patched."""
    os.environ.update(FORCED)
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
    hub = sys.modules.get("huggingface_hub.constants")
    if hub is not None:  # read its switches at import time
        hub.HF_HUB_OFFLINE = True
    tlog = sys.modules.get("transformers.utils.logging")
    if tlog is not None:
        tlog.disable_progress_bar()
        tlog.set_verbosity_error()
