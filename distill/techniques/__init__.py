"""Distillation techniques: named, composable plug-ins (a registry by name).

A technique composes shared parts -- a transfer set (``transfer``), teacher targets
(``targets``, ``monitors``, ``trusted``), a loss and schedule (``fit``) and a student
initialisation (``distill.inits``) -- see ``base.Technique``. One file per technique;
importing this package registers them all. ``distill.distiller`` makes a student.
"""

from __future__ import annotations

from distill.techniques.base import TECHNIQUES, Resolved, Technique, get_technique, register, resolve
from distill.techniques import (  # noqa: F401  (imported to register)
    logit_kd, sampled_sft, filter, iterative_filter, inoculation, slack, jam, domain,
    few_examples, targeted, audit_preserving, positive_control, negative_control,
)

__all__ = ["TECHNIQUES", "Technique", "Resolved", "get_technique", "register", "resolve", "describe_all"]


def describe_all() -> list[tuple[str, str]]:
    """(name, one-line description with its parameters and defaults) for every technique."""
    return [(name, t.describe()) for name, t in TECHNIQUES.items()]
