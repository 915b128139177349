"""Driving the app in a real browser, shared by the browser tests and bench/app_browser.py:
Debian's chromium through Playwright, ``doublebind app`` in a subprocess on 127.0.0.1, and
waiting for Streamlit to settle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
PAGES = [("", "Overview"), ("probes", "Probes"), ("features", "Features"),
         ("playground", "Playground"), ("audit", "Audit")]
LOCAL_HOSTS = {"127.0.0.1", "localhost", ""}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"doublebind app exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@contextmanager
def serve(run_dir: Path | str):
    """``doublebind app RUN_DIR --port N`` in a subprocess on 127.0.0.1; yields its URL once it
    answers, and stops it (its whole process group) on exit."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "app", str(run_dir), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")},
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        first = proc.stdout.readline()
        if url not in first:
            raise RuntimeError(f"the command should print its URL first, got {first!r}")
        wait_http(url, proc)
        yield url
    finally:
        proc.terminate()  # the command forwards it to its streamlit server
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
        finally:
            try:  # backstop: the session this fixture started, server included
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit finished the script run (no running indicator, app rendered)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
               && document.querySelector('[data-testid="stApp"]')?.dataset.testScriptState !== "running"
               && document.querySelectorAll('[data-testid="stMainBlockContainer"] *').length > 20""",
        timeout=timeout_ms)
    # charts and tables draw after the script run ends, from lazily loaded bundles
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'))
               && [...document.querySelectorAll('[data-testid="stDataFrame"]')].every(d => d.querySelector('canvas'))""",
        timeout=timeout_ms)
    page.wait_for_timeout(1500)
