"""doublebind list: the registered organisms, tasks and techniques."""

from __future__ import annotations

import argparse
import importlib

from app.commands.common import choice

NAME = "list"
HELP = "list organisms, tasks or techniques"

KINDS = ["organisms", "tasks", "techniques"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", type=choice(KINDS, "kind"))


def _rows(kind: str) -> list[tuple[str, str]]:
    if kind == "organisms":
        from distill.organisms import ORGANISMS
        return [(o.name, f"{o.description} (base rate {o.base_rate:g})") for o in ORGANISMS.values()]
    if kind == "tasks":
        from distill.tasks import DOMAINS
        return [(d.name, f"[{d.marker}] {d.description}") for d in DOMAINS.values()]
    techniques = importlib.import_module("distill.techniques")
    return techniques.describe_all()


def run(args) -> int:
    for name, text in _rows(args.kind):
        print(f"{name:20s} {text}")
    return 0
