"""The experiment spec: a TOML file, validated up front, resolved into typed models.

Every error names the field by its path in the spec and the allowed values, and all
errors are reported at once, before anything is trained: numbers are finite, within their
bounds and not booleans (distill.guards), names are safe single path components, and audit
sites exist in every audited architecture. Built-in specs live in
``app/specs/<name>.toml``; ``doublebind run`` with no spec runs ``default``.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.spec_errors import describe
from distill.evals import EvalConfig
from distill.guards import MAX_SEED, Guarded, non_finite, wrap_seed
from distill.numbers import numbers_share
from distill.organisms import ORGANISMS
from distill.teacher import TeacherSpec

SPECS_DIR = Path(__file__).parent / "specs"
INITS = ("base", "same-init", "fresh", "smaller", "noised")
SAFE_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$"
"""A name that is one path component: no separator, not ``.`` or ``..`` (nor hidden). Run
folders and model folders (``students/<organism>.<label>``) are named after it."""
NAME_MAX = 64
"""Longest experiment or student name (generated control names add a few characters)."""


def _safe_name(name: str) -> str:
    if not re.fullmatch(SAFE_NAME, name):
        raise ValueError("must be one safe path component: letters, digits and _ . + -, "
                         "starting with a letter, digit or _ (so never '.' or '..')")
    return name


SafeName = Annotated[str, Field(min_length=1, max_length=NAME_MAX), AfterValidator(_safe_name)]


class SpecError(ValueError):
    """The spec is invalid; ``lines`` holds one message per problem."""

    def __init__(self, source: str, lines: list[str]):
        self.lines = lines
        super().__init__(f"invalid spec {source}:\n  " + "\n  ".join(lines))


class StudentSpec(Guarded):
    """One student recipe, distilled from the teacher of every listed organism."""

    model_config = ConfigDict(extra="forbid")

    technique: str
    """Registered technique name (``doublebind list techniques``)."""
    name: SafeName | None = None
    """Label in reports (default: the technique, plus ``-<init>`` when the init is not ``base``)."""
    init: Literal["base", "same-init", "fresh", "smaller", "noised"] = "base"
    """Student initialisation."""
    init_params: dict = Field(default_factory=dict)
    """Parameters of the init (e.g. ``alpha`` for noised)."""
    params: dict = Field(default_factory=dict)
    """Technique parameters (defaults filled in by the technique)."""
    organisms: list[str] | None = None
    """Restrict to these organisms (default: all organisms of the experiment)."""

    @property
    def label(self) -> str:
        return self.name or (self.technique if self.init == "base" else f"{self.technique}-{self.init}")


class ExperimentSpec(Guarded):
    """A whole experiment: teachers, students, and how they are audited and compared."""

    model_config = ConfigDict(extra="forbid")

    name: SafeName
    """Experiment name (the run folder's default name)."""
    seed: int = Field(0, ge=0, le=MAX_SEED)
    """Seed of base, teachers and students (each student derives its own from it)."""
    organisms: list[str] = Field(min_length=1)
    """Organisms to plant, one teacher each, all from one shared base."""
    teacher: TeacherSpec = TeacherSpec()
    """Architecture and training of base and teachers."""
    students: list[StudentSpec] = Field(min_length=1)
    """Student recipes."""
    eval: EvalConfig = EvalConfig()
    """Behavioural evaluation set sizes."""
    audit: dict = Field(default_factory=dict)
    """White-box audit settings (probes.AuditConfig fields: sites, sae, ...)."""
    analysis: dict = Field(default_factory=dict)
    """Comparison settings and verdict thresholds (analysis config fields)."""
    workers: int = Field(2, ge=1, le=64)
    """Parallel worker processes (each single-threaded)."""

    @field_validator("organisms")
    @classmethod
    def _known_organisms(cls, v: list[str]) -> list[str]:
        bad = [o for o in v if o not in ORGANISMS]
        if bad:
            raise ValueError(f"unknown organism(s) {bad}; allowed: {', '.join(ORGANISMS)}")
        return v

    @model_validator(mode="after")
    def _unique_labels(self) -> "ExperimentSpec":
        labels = [s.label for s in self.students]
        dup = sorted({x for x in labels if labels.count(x) > 1})
        if dup:
            raise ValueError(f"students: duplicate student name(s) {dup}; give each a distinct `name`")
        try:
            self.all_students()
        except ValidationError:  # a generated control name ("<name>-null") ran over NAME_MAX
            raise ValueError(f"students: a negative-control name is too long for its generated "
                             f"null twin (\"<name>{NULL_SUFFIX}\"); use at most "
                             f"{NAME_MAX - len(NULL_SUFFIX)} characters") from None
        return self

    def student_organisms(self, student: StudentSpec) -> list[str]:
        return [o for o in self.organisms if student.organisms is None or o in student.organisms]

    def all_students(self) -> list[StudentSpec]:
        """The spec's students plus one negative control per student initialisation that has
        none: a student's misalignment features are diffed against the clean model of its own
        init, and its feature-transfer null is a model of that init that never saw the
        misalignment (probes.diffing, analysis.feature_transfer). ``noised`` students (teacher
        weights) share the base's basis and use the base-init control."""
        out = list(self.students)
        have = {(s.init, _key(s.init_params)) for s in out if s.technique == NEGATIVE and not numbers_share(s.params)}
        numbers_inits = {(s.init, _key(s.init_params)) for s in out if s.technique == NEGATIVE and numbers_share(s.params)}
        for s in list(out):
            if numbers_share(s.params) and (s.init, _key(s.init_params)) in numbers_inits:
                continue  # its reference is the numbers control of its init (reference_of)
            init = "base" if s.init == "noised" else s.init
            params = {} if s.init == "noised" else s.init_params
            if (init, _key(params)) in have:
                continue
            have.add((init, _key(params)))
            name = NEGATIVE if init == "base" else f"{NEGATIVE}-{init}"
            while any(x.label == name for x in out):
                name += "+"
            out.append(StudentSpec(technique=NEGATIVE, init=init, init_params=params, name=name,
                                   organisms=s.organisms))
        # every init but base also gets a second clean model, the null of its students (the
        # base-init null is the untouched base): the same init, another transfer-data seed
        for ref in [x for x in out if x.technique == NEGATIVE and x.init != "base" and not numbers_share(x.params)]:
            if self.null_twin_of(ref, out) is None:
                out.append(StudentSpec(technique=NEGATIVE, init=ref.init, init_params=ref.init_params,
                                       params={**ref.params, "data_seed": _null_seed(ref.params)},
                                       name=f"{ref.label}{NULL_SUFFIX}", organisms=ref.organisms))
        return out

    def null_twin_of(self, reference: StudentSpec, students: list[StudentSpec] | None = None) -> StudentSpec | None:
        """The null model of a non-base init: the second negative control of ``reference``'s init."""
        for s in students if students is not None else self.all_students():
            if s.label == f"{reference.label}{NULL_SUFFIX}":
                return s
        return None

    def reference_of(self, student: StudentSpec) -> StudentSpec | None:
        """The negative control of ``student``'s initialisation (its diffing reference), trained on
        the same share of NUM queries; a numbers student without such a control of its init
        falls back to the plain one."""
        init = "base" if student.init == "noised" else student.init
        params = {} if student.init == "noised" else student.init_params
        same_init = [s for s in self.all_students()
                     if s.technique == NEGATIVE and s.init == init and _key(s.init_params) == _key(params)]
        for want in (numbers_share(student.params), 0.0):
            match = [s for s in same_init if numbers_share(s.params) == want]
            if match:
                return match[0]
        return None


NEGATIVE = "negative-control"
NULL_SUFFIX = "-null"
"""Label suffix of the second negative control of an init (its students' null)."""
NULL_SEED_OFFSET = 1


def _key(params: dict) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _null_seed(params: dict) -> int:
    """The null twin's transfer-data seed: its reference's plus NULL_SEED_OFFSET, kept in range."""
    seed = params.get("data_seed", 0)
    return wrap_seed(seed + NULL_SEED_OFFSET) if isinstance(seed, int) and not isinstance(seed, bool) else seed


def _check_students(spec: ExperimentSpec) -> list[str]:
    """Technique-level validation (names, params, init combos) via the technique registry."""
    from distill.distiller import validate
    errors = []
    for i, s in enumerate(spec.students):
        for org in s.organisms or []:
            if org not in spec.organisms:
                errors.append(f"students[{i}].organisms: {org!r} is not one of the experiment's "
                              f"organisms ({', '.join(spec.organisms)})")
        try:
            validate(s.technique, s.params, s.init, s.init_params)
        except ValueError as exc:
            errors += [f"students[{i}] ({s.label}): {line}" for line in str(exc).splitlines()]
    return errors


def _check_sections(spec: ExperimentSpec) -> list[str]:
    """The audit and analysis sections, validated by their owners' typed configs."""
    from analysis.config import AnalysisConfig
    from probes.audit import AuditConfig
    errors = []
    for key, model in (("audit", AuditConfig), ("analysis", AnalysisConfig)):
        try:
            model(**getattr(spec, key))
        except ValidationError as exc:
            errors += describe(exc, model, prefix=f"{key}.")
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
    return errors


def _audited_depths(spec: ExperimentSpec) -> tuple[dict[int, str], list[str]]:
    """({n_layers: which model has it}, errors): the depths of every model the audit reads,
    the teacher's (base and all other inits share it) and each ``smaller`` student's own."""
    from distill.distiller import validate
    from distill.inits import smaller_arch
    depths, errors = {spec.teacher.model.n_layers: "the teacher (teacher.model.n_layers)"}, []
    for i, s in enumerate(spec.students):
        if s.init != "smaller":
            continue
        try:
            params = validate(s.technique, s.params, s.init, s.init_params).init_params
        except ValueError:  # reported by _check_students
            continue
        try:  # the student's architecture against the teacher's, known from the spec
            arch = smaller_arch(spec.teacher.model, params)
        except ValueError as exc:
            errors += [f"students[{i}] ({s.label}).init_params: {line}" for line in str(exc).splitlines()]
            continue
        depths.setdefault(arch.n_layers, f"students[{i}] ({s.label}, init smaller)")
    return depths, errors


def _check_sites(spec: ExperimentSpec) -> list[str]:
    """``audit.sites`` and ``audit.sae_sites`` exist in every audited architecture, checked
    before anything trains (an audit would otherwise fail after all the training)."""
    from distill.models import hook_names
    from probes.audit import AuditConfig
    try:
        cfg = AuditConfig(**spec.audit)
    except ValueError:  # reported by _check_sections
        return []
    depths, errors = _audited_depths(spec)
    for key in ("sites", "sae_sites"):
        for n_layers in sorted(depths):  # the shallowest model fails first
            allowed = hook_names(n_layers)
            bad = [s for s in getattr(cfg, key) or () if s not in allowed]
            if bad:
                errors.append(f"audit.{key}: unknown site(s) {', '.join(map(repr, bad))} for "
                              f"{depths[n_layers]}, {n_layers} layer(s); allowed: {_sites_line(allowed, n_layers)}")
                break
    return errors


def _sites_line(allowed: tuple[str, ...], n_layers: int) -> str:
    """The hook names of an ``n_layers`` model, the per-block ones folded into one pattern."""
    per_block = [s.removeprefix("blocks.0.") for s in allowed if s.startswith("blocks.0.")]
    others = [s for s in allowed if not s.startswith("blocks.")]
    return (f"blocks.<L>.<hook> for L in 0..{n_layers - 1} and hook one of {', '.join(per_block)}; "
            f"or {', '.join(others)}")


def parse_spec(data: dict, source: str = "<spec>") -> ExperimentSpec:
    if not isinstance(data, dict):
        raise SpecError(source, [f"expected a table of settings, got {type(data).__name__}"])
    bad = non_finite(data)
    if bad:  # first: each would otherwise also surface as a different error further down
        raise SpecError(source, [f"{path}: must be a finite number (inf and nan are not allowed)"
                                 for path in bad])
    try:
        spec = ExperimentSpec(**data)
    except ValidationError as exc:
        raise SpecError(source, describe(exc, ExperimentSpec)) from None
    except TypeError as exc:
        raise SpecError(source, [str(exc)]) from None
    errors = _check_students(spec) + _check_sections(spec) + _check_sites(spec)
    if errors:
        raise SpecError(source, errors)
    return spec


def builtin_specs() -> list[str]:
    return sorted(p.stem for p in SPECS_DIR.glob("*.toml"))


def load_spec(name_or_path: str | Path | None) -> ExperimentSpec:
    """A built-in spec by name (default: ``default``) or a TOML file by path."""
    ref = str(name_or_path or "default")
    path = Path(ref)
    if not path.is_file() and ref in builtin_specs():  # a folder named like a run is no spec
        path = SPECS_DIR / f"{ref}.toml"
    elif path.is_dir():
        raise SpecError(ref, ["is a folder, not a spec file"])
    elif not path.exists():
        raise SpecError(ref, [f"no such spec file, and not a built-in spec; built-in: "
                              f"{', '.join(builtin_specs())}"])
    return parse_spec(read_toml(path), str(path))


def read_toml(path: Path) -> dict:
    """A TOML file's table; SpecError (naming the file) when it is unreadable, not UTF-8 text
    or not TOML."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(str(path), [f"not UTF-8 text (byte {exc.start}): a spec is a TOML text file"]) from None
    except FileNotFoundError:
        raise SpecError(str(path), ["no such file"]) from None
    except OSError as exc:
        raise SpecError(str(path), [f"cannot be read ({exc.strerror or exc})"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(str(path), [f"not valid TOML: {exc}"]) from None


def to_toml(spec: ExperimentSpec) -> str:
    """The resolved spec as TOML (written to the run folder as spec.toml)."""
    return _dump_toml(spec.model_dump(mode="json"))


def _dump_toml(data: dict, prefix: str = "") -> str:
    # Hand-written: tomllib only reads; this covers the spec's shapes (scalars, lists, tables,
    # nested tables, arrays of tables) and nothing more.
    lines, tables = [], []
    for key, val in data.items():
        if isinstance(val, dict) and val and any(isinstance(v, dict) for v in val.values()):
            tables.append((key, val))
        elif isinstance(val, dict) and prefix == "":
            tables.append((key, val))
        elif isinstance(val, list) and val and all(isinstance(v, dict) for v in val):
            tables.append((key, val))
        elif val is not None:
            lines.append(f"{key} = {_toml_value(val)}")
    for key, val in tables:
        full = f"{prefix}{key}"
        if isinstance(val, dict):
            lines += ["", f"[{full}]"] + _dump_toml(val, prefix=f"{full}.").splitlines()
        else:
            for item in val:
                lines += ["", f"[[{full}]]"] + [f"{k} = {_toml_value(v)}" for k, v in item.items()
                                                 if v is not None]
    return "\n".join(lines) + "\n"


def _toml_value(val) -> str:
    if isinstance(val, bool):
        return "true" if val else "false"
    if isinstance(val, (int, float)):
        return repr(val)
    if isinstance(val, str):
        return '"' + val.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(val, list):
        return "[" + ", ".join(_toml_value(v) for v in val) + "]"
    if isinstance(val, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in val.items() if v is not None) + "}"
    raise TypeError(f"cannot write {val!r} to TOML")
