"""A worker job for tests/test_faults_artifacts.py, in a module of its own so that the spawned
workers import nothing heavy but the executor."""

from __future__ import annotations

import os
import time
from pathlib import Path


def sleepy_job(folder: str, i: int) -> None:
    """Record this worker's pid, then write a file 20 s later (it must never get there)."""
    Path(folder, f"pid{i}").write_text(str(os.getpid()))
    time.sleep(20)
    Path(folder, f"late{i}").write_text("written after the parent died")
