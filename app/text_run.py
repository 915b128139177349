"""``doublebind run text-tiny``: the text world end to end, resumable.

Stages: the world (``distill.text.world``: base, one teacher per organism, organism files),
then per organism every student of the spec (``distill.text.students``), then every model's
audit on that organism (``analysis.text_models.audit_text_model``), then the report
(``analysis.text_report``). A finished student (its sidecar's lineage matches the spec) and a
finished audit (it records the sha256 of the weights it read) are kept; everything else is
redone. Run folder::

    text-spec.json                    the validated spec (marks a text run)
    world/                            base/, teacher-<organism>/, organisms/, world.json
    students/<organism>/<id>/         HF folder + doublebind.json (id: technique-init[-variant])
    audits/<organism>/<model id>.json audit records (behaviour + probes, with nulls)
    report/summary.json, index.html
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from pydantic import ConfigDict, Field, ValidationError, field_validator

from distill.checkpoint import atomic_write_bytes
from distill.guards import MAX_SEED, Guarded
from distill.text.world import WorldConfig

SPEC_FILE = "text-spec.json"
SPECS_DIR = Path(__file__).parent / "specs" / "text"
"""Built-in text specs (apart from the synthetic world's, which app.spec lists)."""


class TextStudentSpec(Guarded):
    model_config = ConfigDict(extra="forbid", frozen=True)

    technique: str
    init: str = "base"
    params: dict = Field(default_factory=dict, validate_default=True)
    """distill.text.students.TextDistillParams fields."""

    @field_validator("technique", "init")
    @classmethod
    def _known(cls, v: str, info) -> str:
        from distill.text.students import TEXT_INITS, TEXT_TECHNIQUES
        registry = {"technique": TEXT_TECHNIQUES, "init": TEXT_INITS}[info.field_name]
        if v not in registry:
            raise ValueError(f"unknown text {info.field_name} {v!r}; allowed: {', '.join(registry)}")
        return v

    @field_validator("params")
    @classmethod
    def _params(cls, v: dict) -> dict:
        from distill.text.students import TextDistillParams
        return TextDistillParams(**v).model_dump()

    @property
    def id(self) -> str:
        from distill.text.students import TextDistillParams
        default = TextDistillParams().model_dump()
        changed = {k: v for k, v in self.params.items() if default.get(k) != v}
        tail = "".join(f"-{k}-{v}" for k, v in sorted(changed.items()))
        return f"{self.technique}-{self.init}{tail}"


class TextRunSpec(Guarded):
    """A text experiment: the world and the students of every organism's teacher."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: str = "text"
    seed: int = Field(0, ge=0, le=MAX_SEED)
    world: WorldConfig = WorldConfig()
    students: tuple[TextStudentSpec, ...]

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v != "text":
            raise ValueError(f"kind must be 'text' for a text run (got {v!r})")
        return v

    @field_validator("students")
    @classmethod
    def _unique(cls, v):
        ids = [s.id for s in v]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"students listed twice: {', '.join(dup)}")
        if not v:
            raise ValueError("at least one student is needed")
        return v


class TextSpecError(ValueError):
    """A text spec is missing or invalid (the message names the field)."""


def _spec_path(name_or_path: str) -> Path:
    """A TOML file by path, else the built-in text spec of that name."""
    path = Path(name_or_path)
    return path if path.is_file() else SPECS_DIR / f"{name_or_path}.toml"


def is_text_spec(name_or_path: str) -> bool:
    """A built-in text spec name or a TOML file with ``kind = "text"``."""
    try:
        return tomllib.loads(_spec_path(name_or_path).read_text()).get("kind") == "text"
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def load_text_spec(name_or_path: str, sets: list[str] | None = None) -> TextRunSpec:
    from app.spec_errors import describe
    from app.sweep import apply_sets
    path = _spec_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TextSpecError(f"{path}: {exc}") from None
    data = apply_sets(data, sets or [])
    try:
        spec = TextRunSpec(**data)
    except ValidationError as exc:
        raise TextSpecError(f"{path}: " + "; ".join(describe(exc, TextRunSpec))) from None
    # the world's seed is the run's
    return spec.model_copy(update={"world": spec.world.model_copy(update={"seed": spec.seed})})


def _sha(folder: Path) -> str:
    return json.loads((folder / "doublebind.json").read_text())["sha256"]["model.safetensors"]


def _student_done(folder: Path, teacher_sha: str, org, st: TextStudentSpec, seed: int) -> bool:
    try:
        side = json.loads((folder / "doublebind.json").read_text())
    except (OSError, ValueError):
        return False
    lin = side.get("lineage", {})  # teacher and rows by content, so a moved or copied run folder is still done
    return (lin.get("technique"), lin.get("init"), lin.get("params"), lin.get("teacher_sha256"),
            lin.get("organism_sha256"), side.get("seed")) == \
        (st.technique, st.init, st.params, teacher_sha, org.sha256, seed)


def run_text_experiment(spec: TextRunSpec, out: Path | str, log=print) -> dict:
    from analysis.text_models import AUDIT_FORMAT, BaseReading, audit_text_model
    from analysis.text_report import build_summary, write_report
    from distill.text.folder import load_text_model
    from distill.text.organism import load_organism
    from distill.text.students import TextDistillParams, distill_text
    from distill.text.world import build_world
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / SPEC_FILE, spec.model_dump_json(indent=2).encode())
    world_dir = out / "world"
    facts = build_world(world_dir, spec.world, log=log)
    base = load_text_model(world_dir / "base")
    base_sha = _sha(world_dir / "base")
    audits: dict[str, dict[str, dict]] = {}
    for org_name, toml in facts["organisms"].items():
        org = load_organism(world_dir / toml)
        teacher_dir = world_dir / f"teacher-{org_name}"
        teacher = load_text_model(teacher_dir)
        teacher_sha = _sha(teacher_dir)
        models = {"base": world_dir / "base", "teacher": teacher_dir}
        for st in spec.students:
            folder = out / "students" / org_name / st.id
            if not _student_done(folder, teacher_sha, org, st, spec.seed):
                log(f"{org_name}: student {st.id}")
                distill_text(teacher, org, st.technique, TextDistillParams(**st.params), st.init, base,
                             spec.seed, folder)
            models[st.id] = folder
        audits[org_name] = {}
        base_reading = None
        for model_id, folder in models.items():
            path = out / "audits" / org_name / f"{model_id}.json"
            # an audit is what it read: the weights, the base (the probes' null) and the rows
            inputs = {"weights_sha256": _sha(folder), "base_sha256": base_sha,
                      "organism_sha256": org.sha256, "format": AUDIT_FORMAT}
            try:
                record = json.loads(path.read_text())
                if any(record.get(k) != v for k, v in inputs.items()):
                    raise ValueError("stale")
            except (OSError, ValueError):
                log(f"{org_name}: audit {model_id}")
                model = load_text_model(folder)
                if model_id != "base" and base_reading is None:
                    base_reading = BaseReading(base, org)
                record = audit_text_model(model, None if model_id == "base" else base_reading, org)
                record.update(inputs)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, json.dumps(record, indent=2).encode())
            audits[org_name][model_id] = record
    summary = build_summary(spec.model_dump(mode="json"), facts, audits,
                            {st.id: st.model_dump(mode="json") for st in spec.students})
    write_report(out / "report", summary)
    return summary

