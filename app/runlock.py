"""One writer per run folder: an OS lock held for the life of a run.

``run_lock(root)`` takes an exclusive ``flock`` on ``root/.lock`` without waiting and writes
the holder's PID into it. The kernel releases the lock when the holder exits, however it
exits (``kill -9`` included), so a stale lock file never blocks a later run; a second writer
meanwhile gets :class:`RunLocked`, which names the holder's PID (exit code 2 in the CLI).
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

from app.cli import UserError

LOCK_FILE = ".lock"


class RunLocked(UserError):
    """Another process is writing this run folder."""


@contextmanager
def run_lock(root: Path | str):
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise RunLocked(f"{root}: in use by another doublebind process (pid {holder}); "
                            "wait for it to finish or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
