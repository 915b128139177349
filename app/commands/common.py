"""Argument types and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path

from app.cli import UserError
from distill.guards import MAX_SEED


def choice(allowed: list[str], what: str):
    """An argparse type accepting one of ``allowed``; the error lists them."""
    def parse(value: str) -> str:
        if value not in allowed:
            raise argparse.ArgumentTypeError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
        return value
    parse.__name__ = what
    return parse


def int_at_least(minimum: int, what: str = ""):
    """An argparse type: an integer >= ``minimum``; the error says so (``what`` names it)."""
    def parse(value: str) -> int:
        try:
            n = int(value)
        except ValueError:
            n = None
        if n is None or n < minimum:
            raise argparse.ArgumentTypeError(f"{what}must be an integer >= {minimum} (got {value!r})")
        return n
    return parse


def seed_int(value: str) -> int:
    """An argparse type: a seed, an integer in [0, MAX_SEED] (numpy's generators reject negative
    seeds, its legacy seeding any >= 2**32)."""
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or not 0 <= n <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"seed must be an integer >= 0 and <= {MAX_SEED} (got {value!r})")
    return n


def existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {value}")
    return path


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=choice(["auto", "cpu", "cuda"], "device"), default="auto",
                        help="where to compute (auto: cuda if available)")


def add_executor(parser: argparse.ArgumentParser) -> None:
    from app.executor import EXECUTORS
    parser.add_argument("--executor", type=choice(list(EXECUTORS), "executor"), default="local",
                        help="where the jobs run: local (a pool of single-threaded processes here) or ray "
                             "(a Ray instance started for the run, or the cluster at --ray-address)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="join this running Ray cluster (e.g. 10.0.0.5:6379; needs --executor ray)")


def make_executor_or_exit(args, workers: int):
    """The executor backend the flags ask for, ``workers`` wide where it starts its own."""
    from app.executor import make_executor
    try:
        return make_executor(args.executor, workers, args.ray_address)
    except ValueError as exc:
        raise UserError(str(exc)) from None


@contextmanager
def executor_from_args(args, workers: int):
    """:func:`make_executor_or_exit`, closed (its pool or Ray instance stopped) on leaving."""
    executor = make_executor_or_exit(args, workers)
    try:
        yield executor
    finally:
        executor.close()


def resolve_device(name: str) -> str:
    from distill.models import pick_device
    try:
        return pick_device(name)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def read_config_or_exit(folder: Path) -> dict:
    from distill.store import StoreError, read_config
    try:
        return read_config(folder)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def load_model_or_exit(folder: Path, device: str = "cpu"):
    from distill.store import StoreError, load_model
    try:
        return load_model(folder, device)
    except StoreError as exc:
        raise UserError(str(exc)) from None


def out_dir(path: Path) -> Path:
    """``path`` as a folder this command may write into, created now. Called before any work,
    so a user's mistake (a file there, a read-only or impossible place) is one line at once,
    not a traceback after minutes of training."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{path}: cannot create this folder ({exc.strerror or exc})") from None
    try:  # an existing folder can still be read-only (an unnamed temp file: nothing is left behind)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot write into this folder ({exc.strerror or exc})") from None
    return path


def out_file(path: Path) -> Path:
    """``path`` as a file this command may write (replaced atomically, so its folder must be writable)."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory (give the path of a file to write)")
    out_dir(path.parent)
    return path


def model_of_role(folder: Path, role: str, flag: str, force: bool = False) -> dict:
    """The config of the model ``flag`` names, which must be a ``role`` model (config.json
    ``role``, distill.store): a student given as a teacher is a mistake far more often than a
    choice, so only ``--force`` accepts it."""
    cfg = read_config_or_exit(folder)
    held = cfg.get("role")
    if held != role and not force:
        what = f"a {held!r} model (its config.json role)" if held else "a model with no role in its config.json"
        raise UserError(f"{flag} {folder}: {what}, not a {role}; pass --force to use it anyway")
    return cfg


def _left_by_a_model_write(name: str) -> bool:
    """A name distill.store and the trainers leave in a model folder whose config.json is not
    written yet: the weights, temp files, a base's init/, evals."""
    from distill.store import WEIGHTS_FILE
    return (name in (WEIGHTS_FILE, "init") or name.endswith(".tmp")
            or (name.startswith("evals") and name.endswith(".json")))


def new_model_folder(folder: Path, role: str, flag: str) -> None:
    """Check (not create) that a ``role`` model may be trained into ``folder``: new, empty, an
    interrupted write, or a model of that role (resumed or replaced). Never someone else's folder
    or a model of another kind: those are not overwritten, not even with --force."""
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{folder}: exists and is not a directory")
    if not folder.is_dir():
        return
    from distill.store import CONFIG_FILE
    if (folder / CONFIG_FILE).is_file():
        held = read_config_or_exit(folder).get("role")
        if held != role:
            raise UserError(f"{flag} {folder}: holds a {held!r} model, not a {role}; choose another folder")
        return
    foreign = sorted(p.name for p in folder.iterdir() if not _left_by_a_model_write(p.name))
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UserError(f"{flag} {folder}: not a model folder (no {CONFIG_FILE}; it holds {shown}); "
                        "give a new or empty folder")


def write_json(path: Path, data) -> None:
    from distill.checkpoint import atomic_write_bytes
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())


def table(rows: list[tuple], header: tuple) -> str:
    """A plain fixed-width text table."""
    cells = [tuple(str(c) for c in header)] + [tuple(_fmt(c) for c in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(c) -> str:
    return f"{c:.3f}" if isinstance(c, float) else str(c)
