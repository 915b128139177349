"""doublebind app: serve the Streamlit app on a run folder or a folder of runs."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from app.cli import UserError

NAME = "app"
HELP = "start the Streamlit app on RUN_DIR (a run, or a folder of runs with a picker) and print its URL"

APP_FILE = Path(__file__).resolve().parents[1] / "streamlit_app.py"
DEFAULT_PORT = 8501


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", nargs="?", type=Path, default=Path("runs"),
                   help="a run folder, or a folder of runs (default: runs)")
    p.add_argument("--port", type=int, default=None,
                   help=f"port to serve on (default: the first free one from {DEFAULT_PORT})")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")


def free_port(host: str, start: int = DEFAULT_PORT, tries: int = 100) -> int:
    for port in range(start, start + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            if s.connect_ex((host if host != "0.0.0.0" else "127.0.0.1", port)) != 0:
                return port
    raise UserError(f"no free port in {start}..{start + tries - 1}; pass --port")


def root_and_run(path: Path) -> tuple[Path, str | None]:
    """(runs root, run name to open first): a run folder opens itself, under its parent."""
    from app.ui.runs import is_run
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise UserError(f"no such directory: {path} (make a run with `doublebind run tiny --out {path}`)")
    return (path.parent, path.name) if is_run(path) else (path, None)


def headless() -> bool:
    """No browser to open: Linux without a display (servers, containers, CI)."""
    return sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def streamlit_command(port: int, host: str) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP_FILE),
            "--server.port", str(port), "--server.address", host,
            "--server.headless", str(headless()).lower(),
            "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none",
            "--client.toolbarMode", "viewer",
            "--global.developmentMode", "false",
            # Streamlit's default full gc.collect() after every script run holds the GIL for
            # ~0.4 s with the model stack loaded, so the answers already sent wait for it in the
            # browser; Python's own collector still runs.
            "--runner.postScriptGC", "false"]


def run(args) -> int:
    from app.ui.runs import ROOT_ENV, RUN_ENV
    if args.port is not None and not 1 <= args.port <= 65535:
        raise UserError(f"--port must be in 1..65535 (got {args.port})")
    root, name = root_and_run(args.run_dir)
    port = args.port or free_port(args.host)
    # The package's parent on the path: pages import app.* whether or not it is pip-installed.
    path = os.pathsep.join(p for p in (str(APP_FILE.parents[1]), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, ROOT_ENV: str(root), "PYTHONPATH": path, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"}
    env.pop(RUN_ENV, None)
    if name:
        env[RUN_ENV] = name
    url_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    print(f"doublebind app: http://{url_host}:{port}/  (runs root {root}{', run ' + name if name else ''}; "
          "Ctrl+C stops it)", flush=True)
    proc = subprocess.Popen(streamlit_command(port, args.host), env=env)
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a terminated command stops its server too
    try:
        return proc.wait()
    except KeyboardInterrupt:
        stop(proc)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """Ask the server to stop; kill it when it does not within ``grace_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
