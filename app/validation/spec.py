"""The validation suite's specs: the experiment run once per seed, the relearning plan, the findings.

Files (``app/specs/validate/``)::

    default.toml   mode, seeds, [relearn] and [experiment] (an ordinary ExperimentSpec)
    quick.toml     the same for ``--quick``: tiny models, few steps, small eval sets
    findings.toml  [[findings]]: analysis.findings.FindingDef entries (claims and thresholds)

Per seed ``s`` the experiment is resolved with ``seed = s`` and, for every student that
does not set them, ``student_defaults`` and ``params.data_seed = s`` (the transfer set and the teacher's sampling are
redrawn too, so seeds are full replicates). Every finding term must name a model the
experiment makes and a metric :mod:`app.validation.measure` knows; all problems are
reported at once, before anything is trained.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, ValidationError

from analysis.findings import FindingDef
from app.runfolder import student_id, teacher_id
from app.spec import ExperimentSpec, SpecError, parse_spec, read_toml
from app.spec_errors import describe
from distill.evals import EvalConfig
from distill.guards import Guarded
from distill.relearn import RelearnConfig

VALIDATE_DIR = Path(__file__).resolve().parent.parent / "specs" / "validate"
FINDINGS_FILE = "findings.toml"
MODES = ("default", "quick")


class RelearnPlan(Guarded):
    """Which models get the relearning test (finding 5) and how."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    models: list[str] = []
    """Model ids (``teacher-<organism>`` or ``<organism>.<label>``)."""
    config: RelearnConfig = RelearnConfig()
    """The short fine-tune on eliciting data."""
    eval: EvalConfig = EvalConfig(n_clean=200, n_eliciting=200, n_queries=50)
    """Evaluation set of the relearning curve (smaller than the students' own evals)."""


class ValidationSpec(Guarded):
    """One mode of the validation suite."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    mode: Literal["default", "quick"]
    """default: the full claims; quick: tiny models and looser bars (CI)."""
    seeds: int = Field(3, ge=1, le=50)
    """Seeds run when ``--seeds`` is not given."""
    relearn: RelearnPlan = RelearnPlan()
    """The relearning test."""
    student_defaults: dict = {}
    """Technique parameters given to every student that does not set them (quick: fewer steps)."""
    experiment: dict
    """An ExperimentSpec (its seed is replaced per seed)."""

    def seed_spec(self, seed: int) -> ExperimentSpec:
        """The experiment of one seed (see the module docstring)."""
        data = copy.deepcopy(self.experiment)
        data["seed"] = seed
        data["name"] = f"{data.get('name', 'validate')}-seed{seed}"
        for st in data.get("students", []):
            params = st.setdefault("params", {})
            for key, value in {**self.student_defaults, "data_seed": seed}.items():
                params.setdefault(key, value)
        return parse_spec(data, f"validate/{self.mode}.toml (seed {seed})")


def model_ids(spec: ExperimentSpec) -> list[str]:
    """Every model the experiment makes: teachers, then students."""
    return [teacher_id(o) for o in spec.organisms] + [
        student_id(o, st.label) for st in spec.students for o in spec.student_organisms(st)]


def load_validation(mode: str, folder: Path = VALIDATE_DIR) -> ValidationSpec:
    if mode not in MODES:
        raise SpecError(mode, [f"unknown validation mode; allowed: {', '.join(MODES)}"])
    path = folder / f"{mode}.toml"
    try:
        return ValidationSpec(**read_toml(path))
    except ValidationError as exc:
        raise SpecError(str(path), describe(exc, ValidationSpec)) from None


def load_findings(folder: Path = VALIDATE_DIR) -> list[FindingDef]:
    path = folder / FINDINGS_FILE
    entries = read_toml(path).get("findings", [])
    defs, errors = [], []
    for i, entry in enumerate(entries):
        try:
            defs.append(FindingDef(**entry))
        except ValidationError as exc:
            errors += describe(exc, FindingDef, prefix=f"findings[{i}].")
        except TypeError as exc:
            errors.append(f"findings[{i}]: {exc}")
    ids = [d.id for d in defs]
    errors += [f"findings: duplicate id {i!r}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    if not entries:
        errors.append("findings: none defined")
    if errors:
        raise SpecError(str(path), errors)
    return defs


def check_plan(vspec: ValidationSpec, defs: list[FindingDef], metrics: list[str]) -> ExperimentSpec:
    """Seed-0 experiment, after checking every finding term and relearn model against it."""
    spec = vspec.seed_spec(0)
    known, errors = set(model_ids(spec)), []
    for d in defs:
        for term in d.terms:
            model, sep, metric = term.rpartition(":")
            if not sep or model not in known:
                errors.append(f"finding {d.id}: term {term!r} names no model of the {vspec.mode} experiment "
                              f"(models: {', '.join(sorted(known))})")
            elif metric not in metrics:
                errors.append(f"finding {d.id}: term {term!r}: unknown metric {metric!r}; "
                              f"allowed: {', '.join(metrics)}")
    for m in vspec.relearn.models:
        if m not in known:
            errors.append(f"relearn.models: {m!r} is not a model of the {vspec.mode} experiment")
    if errors:
        raise SpecError(f"validate/{vspec.mode}.toml + {FINDINGS_FILE}", errors)
    return spec
