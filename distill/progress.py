"""The one progress helper: library code reports progress here and never prints.

Bars go to stderr and switch themselves off when stderr is not a terminal (CI, tests),
unless DOUBLEBIND_PROGRESS=1 forces them on.
"""

from __future__ import annotations

import logging
import os
import sys

from tqdm.auto import tqdm

log = logging.getLogger("doublebind")


def progress(total: int | None = None, desc: str = "", initial: int = 0, **kw) -> tqdm:
    forced = os.environ.get("DOUBLEBIND_PROGRESS")
    disable = (forced == "0") or (forced != "1" and not sys.stderr.isatty())
    return tqdm(total=total, desc=desc, initial=initial, disable=disable, leave=False,
                dynamic_ncols=True, **kw)
