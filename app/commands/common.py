"""Argument types and helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.cli import UserError


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


seed_int = int_at_least(0, "seed ")
"""A seed: an integer >= 0 (numpy's generators reject negative seeds)."""


def existing_dir(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {value}")
    return path


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", type=choice(["auto", "cpu", "cuda"], "device"), default="auto",
                        help="where to compute (auto: cuda if available)")


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
