"""Thread count for the white-box instruments' tiny tensor ops.

Audits run thousands of small ops ([1024, 64] x [64, 128]); on CPU, intra-op threads add
synchronisation and little else. Measured on the shared 2-core machine (load ~9) for one
default audit: 1 thread 20.7 s wall / 3.3 s CPU, 2 threads 59 s wall / 16.3 s CPU
(the extra CPU is OpenMP spin-waiting for descheduled threads).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None):
    """Run a block with ``n`` torch intra-op threads (None: unchanged), restoring the count after."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
