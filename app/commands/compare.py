"""doublebind compare: the transfer record of one model folder against a teacher.

Any model works: a student, the teacher's own base, the teacher itself (the known answers:
the teacher against itself transfers every feature, its base none). The roles follow the
pipeline's rules (app.pipeline.Pipeline.roles, analysis.transfer) unless a flag names them:

- the teacher's reference is its base (teacher config ``lineage.base``);
- the model's **reference** (its diffing reference, probes.diffing): ``--reference``; else the
  teacher -> its base; the base -> the base-init negative control of the teacher's run folder
  (as the pipeline's calibration), else itself; a student inside a run folder -> the negative control
  of its init beside it (``<org>.negative-control[-<init>]``); a base-init (or noised) student
  -> the teacher's base;
- the **null**: ``--null``; else the teacher's base when the reference is the base or starts
  from it, else the second negative control of the reference's init beside it
  (``<reference>-null``), else the reference itself;
- the **negative control** of the verdict: ``--negative``; else the reference when it is a
  negative-control student; else none, and the verdict is taken against the base.

Audits a run folder stored (``RUN/probes/<id>/``, ``RUN/acts/<id>/``) are reused, feature
records too when their reference is this one. Other models are audited into
``OUT/audits/<name>/`` (activations in ``OUT/audits/<name>/acts/``, cached by model hash,
organism and audit settings), their records written there (or to ``OUT/features/<name>/``
beside a stored audit), missing evals to ``OUT/evals/<name>/``. The result,
``OUT/compare.json``, is one analysis.schema.TransferRecord: the keys of a student record of
``report/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from app.cli import UserError
from app.commands.common import (add_device, choice, existing_dir, load_model_or_exit, out_dir,
                                 read_config_or_exit, resolve_device, table)
from app.runfolder import RunFolder, base_id, teacher_id
from app.spec import NEGATIVE, NULL_SUFFIX

NAME = "compare"
HELP = "transfer record of a model folder (a student, the teacher's base, the teacher) against a teacher"

COMPARE_FILE = "compare.json"
AUDITS_DIR = "audits"
ACTS_SUBDIR = "acts"
FEATURES_DIR = "features"
EVALS_DIR = "evals"
EVALS_FILE = "evals.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from distill.organisms import ORGANISMS
    p.add_argument("teacher_dir", type=existing_dir, help="teacher model folder")
    p.add_argument("model_dir", type=existing_dir,
                   help="model folder to measure: a student, the teacher's base, or the teacher itself")
    p.add_argument("--out", required=True, type=Path, help="folder for compare.json and the audits made here")
    p.add_argument("--reference", type=existing_dir, default=None,
                   help="the model's diffing reference, a clean model of its init (default: see the docs)")
    p.add_argument("--null", type=existing_dir, default=None,
                   help="the null model (default: the base for base-init references, else the reference)")
    p.add_argument("--negative", type=existing_dir, default=None,
                   help="negative control of the verdict (default: the reference if it is one, else the base)")
    p.add_argument("--organism", type=choice(list(ORGANISMS), "organism"), default=None,
                   help="ground truth to compare on (default: the teacher's)")
    p.add_argument("--audit-set", dest="audit_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="audit setting (probes.audit.AuditConfig; nested with a dot, e.g. n_pairs=256, "
                        "sae.d_sae=64) for models audited here; default: the stored audits' settings")
    add_device(p)


# ---- the models and their roles ------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    folder: Path
    cfg: dict
    name: str
    """Artifact name in this comparison: the run id inside a run folder (the base read on an
    organism is ``base@<organism>``), else the folder's name."""
    run: RunFolder | None = None
    run_id: str | None = None

    @property
    def role(self) -> str | None:
        return self.cfg.get("role")

    @property
    def lineage(self) -> dict:
        return self.cfg.get("lineage") or {}

    @property
    def init(self) -> str | None:
        return self.lineage.get("init") if self.role == "student" else None

    @property
    def is_negative(self) -> bool:
        return self.role == "student" and self.lineage.get("technique") == NEGATIVE


def _run_slot(folder: Path, organism: str) -> tuple[RunFolder | None, str | None]:
    """(run folder, model id) when ``folder`` sits where a run folder keeps a model (app.runfolder)."""
    parent = folder.parent
    if parent.name == "students":
        rf, mid = RunFolder(parent.parent), folder.name
    elif parent.name == "teacher":
        rf, mid = RunFolder(parent.parent), teacher_id(folder.name)
    elif folder.name == "base":
        rf, mid = RunFolder(parent), base_id(organism)
    else:
        return None, None
    return (rf, mid) if rf.model_dir(mid).resolve() == folder else (None, None)


class Models:
    """Model folders by resolved path: the same folder always gets the same name."""

    def __init__(self, organism: str):
        self.organism, self.by_path = organism, {}

    def get(self, folder: Path) -> Model:
        key = Path(folder).resolve()
        if key not in self.by_path:
            cfg = read_config_or_exit(Path(folder))
            run, run_id = _run_slot(key, self.organism)
            raw = base_id(self.organism) if cfg.get("role") == "base" else run_id or key.name
            name = re.sub(r"[^A-Za-z0-9._+@-]", "-", raw).lstrip("._+@-") or "model"
            taken = {m.name for m in self.by_path.values()}
            stem, k = name, 2
            while name in taken:
                name, k = f"{stem}-{k}", k + 1
            self.by_path[key] = Model(key, cfg, name, run, run_id)
        return self.by_path[key]


def teacher_base(teacher: Path, cfg: dict) -> Path:
    """The teacher's base folder (its config's lineage.base, as distill.inits reads it)."""
    from distill.inits import InitContext
    try:
        return InitContext(teacher, cfg, seed=0).base_dir()
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _sibling_negative(m: Model, models: Models) -> Model | None:
    """The negative control of ``m``'s init beside it in its run folder (as app.spec adds it)."""
    init = "base" if m.init == "noised" else m.init
    params = {} if m.init == "noised" else m.lineage.get("init_params", {})
    org = m.cfg.get("organism")
    name = f"{org}.{NEGATIVE}" if init == "base" else f"{org}.{NEGATIVE}-{init}"
    folders = sorted(m.folder.parent.glob(f"{_glob_escape(name)}*"), key=lambda f: (f.name != name, f.name))
    for folder in folders:
        if (folder / "config.json").is_file():
            cand = models.get(folder)
            if cand.is_negative and cand.init == init and cand.lineage.get("init_params", {}) == params:
                return cand
    return None


def _glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


def _run_model(run: RunFolder | None, model_id: str, models: Models) -> Model | None:
    """A model of a run folder by id, when it is there."""
    if run is None or not (run.model_dir(model_id) / "config.json").is_file():
        return None
    return models.get(run.model_dir(model_id))


def reference_of(subject: Model, teacher: Model, base: Model, models: Models) -> Model:
    """The model's diffing reference when ``--reference`` is not given (module docstring)."""
    if subject.folder == teacher.folder:
        return base
    if subject.folder == base.folder:  # as the pipeline's calibration: the base-init control of its run
        nc = _run_model(teacher.run, f"{models.organism}.{NEGATIVE}", models)
        return nc if nc is not None and nc.is_negative and nc.init == "base" else base
    if subject.role == "student":
        if subject.run is not None:
            sibling = _sibling_negative(subject, models)
            if sibling is not None:
                return sibling
        if subject.init in ("base", "noised"):  # noised students share the base's basis (app.spec)
            return base
        raise UserError(f"{subject.folder}: a student with init {subject.init!r} needs a clean model of its "
                        "own init as reference; none beside it in a run folder: pass --reference")
    raise UserError(f"{subject.folder}: not the teacher, its base or a student: pass --reference")


def default_null(ref: Model, base: Model, models: Models) -> Model:
    """The base for base-init references; else the second clean model of the reference's init
    beside it (``<reference>-null``, as app.spec adds it); else the reference itself (then the
    null is 0 by construction)."""
    if ref is base or ref.init == "base":
        return base
    twin = ref.folder.with_name(ref.folder.name + NULL_SUFFIX)
    return models.get(twin) if (twin / "config.json").is_file() else ref


@dataclass(frozen=True)
class Cast:
    teacher: Model
    base: Model
    subject: Model
    reference: Model
    null: Model
    negative: Model | None

    def models(self) -> list[Model]:
        out = [self.teacher, self.base, self.subject, self.reference, self.null]
        return list({m.name: m for m in out}.values())


def cast(args, organism: str) -> Cast:
    """Who plays which role (module docstring); UserError on a missing base or a width mismatch."""
    models = Models(organism)
    teacher = models.get(args.teacher_dir)
    base = models.get(teacher_base(teacher.folder, teacher.cfg))
    subject = models.get(args.model_dir)
    ref = models.get(args.reference) if args.reference else reference_of(subject, teacher, base, models)
    null = models.get(args.null) if args.null else default_null(ref, base, models)
    neg = models.get(args.negative) if args.negative else ref if ref.is_negative else None
    for a, b, what in ((subject, ref, "reference"), (null, ref, "reference of the null")):
        wa, wb = (_arch(m) for m in (a, b))
        if wa != wb:
            raise UserError(f"{a.folder} (n_layers, d_model = {wa}) and its {what} {b.folder} ({wb}) differ in "
                            "architecture: one SAE reads both (probes.diffing); pass a --reference of its shape")
    return Cast(teacher, base, subject, ref, null, None if neg is subject else neg)


def _arch(m: Model) -> tuple:
    a = m.cfg.get("architecture", {})
    return a.get("n_layers"), a.get("d_model")


# ---- audits, evals and feature records -----------------------------------------------------

def _stored_audit(m: Model, organism: str) -> tuple[Path, Path] | None:
    from probes.activations import CACHE_FILE
    from probes.audit import AUDIT_FILE, load_audit
    from probes.pairs import PAIRS_FILE
    if m.run is None:
        return None
    probes, acts = m.run.probes(m.run_id), m.run.acts(m.run_id)
    if not all(f.is_file() for f in (probes / AUDIT_FILE, acts / CACHE_FILE, acts / PAIRS_FILE)):
        return None
    return (probes, acts) if load_audit(probes).organism == organism else None


def audit_config(sets: list[str], stored: list[Path]):
    """The stored audits' settings (the teacher's first), else the defaults, with ``--audit-set``."""
    from pydantic import BaseModel, ValidationError
    from distill.guards import problems
    from distill.techniques.params import parse_set
    from probes.audit import AuditConfig, load_audit
    data = dict(load_audit(stored[0]).config) if stored else {}
    try:
        top = [s for s in sets if "." not in s.partition("=")[0]]
        data.update(parse_set(AuditConfig, top, "--audit-set"))
        for s in sets:
            key, _, value = s.partition("=")
            if "." in key:
                head, sub = key.split(".", 1)
                kind = getattr(AuditConfig.model_fields.get(head), "annotation", None)
                if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
                    raise ValueError(f"--audit-set: {head!r} is not a nested audit setting")
                data[head] = {**dict(data.get(head) or {}), **parse_set(kind, [f"{sub}={value}"], f"--audit-set {head}")}
        return AuditConfig(**data)
    except ValidationError as exc:
        raise UserError("--audit-set: " + "; ".join(problems(exc))) from None
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _audit_here(m: Model, organism: str, cfg, out: Path, device: str) -> tuple[Path, Path]:
    from app.pipeline import audit_into
    from app.stages import content_hash, is_done, mark_done
    from probes.activations import SiteError
    probes = out / AUDITS_DIR / m.name
    acts = probes / ACTS_SUBDIR
    h = content_hash("compare-audit", m.cfg.get("sha256") or str(m.folder), organism, cfg.model_dump(mode="json"))
    if not is_done(probes, h):
        print(f"auditing {m.folder} on {organism} -> {probes}", file=sys.stderr)
        model, _ = load_model_or_exit(m.folder, device)
        t0 = time.perf_counter()
        try:
            audit_into(model, organism, cfg, probes, acts, m.name)
        except SiteError as exc:
            raise UserError(str(exc)) from None
        mark_done(probes, "audit", h, time.perf_counter() - t0, root=out, artifacts=[probes])
    return probes, acts


def _has_organism(path: Path, organism: str) -> bool:
    try:
        return organism in json.loads(path.read_text()).get("organisms", {})
    except (OSError, ValueError, AttributeError):
        return False


def evals_of(m: Model, organism: str, out: Path, device: str) -> Path:
    """The model's stored evals (run folder, then model folder), else evaluated here (EvalConfig())."""
    from app.commands.common import write_json
    from app.stages import content_hash, is_done, mark_done
    from distill.evals import EvalConfig, evaluate
    stored = [m.run.evals("base" if m.run_id.startswith("base@") else m.run_id)] if m.run else []
    for path in stored + [m.folder / EVALS_FILE]:
        if _has_organism(path, organism):
            return path
    folder = out / EVALS_DIR / m.name
    h = content_hash("compare-evals", m.cfg.get("sha256") or str(m.folder), organism, EvalConfig().model_dump())
    if not is_done(folder, h):
        print(f"evaluating {m.folder} on {organism}", file=sys.stderr)
        t0 = time.perf_counter()
        write_json(folder / EVALS_FILE, evaluate(load_model_or_exit(m.folder, device)[0], [organism], EvalConfig()))
        mark_done(folder, "evals", h, time.perf_counter() - t0, root=out, artifacts=[folder])
    return folder / EVALS_FILE


def prepare(c: Cast, organism: str, sets: list[str], out: Path, device: str) -> dict:
    """ModelArtifacts of every model of the cast, by name (audited and evaluated when needed)."""
    from analysis.compare import ModelArtifacts
    stored = {m.name: _stored_audit(m, organism) for m in c.models()}
    order = sorted(stored, key=lambda n: n != c.teacher.name)
    cfg = audit_config(sets, [stored[n][0] for n in order if stored[n]])
    arts = {}
    for m in c.models():
        probes, acts = stored[m.name] or _audit_here(m, organism, cfg, out, device)
        arts[m.name] = ModelArtifacts(name=m.name, model_dir=m.folder, evals_file=evals_of(m, organism, out, device),
                                      audit_dir=probes, acts_dir=acts)
    _check_audits(arts)
    return arts


def _check_audits(arts: dict) -> None:
    from probes.audit import load_audit
    keys = {}
    for name, art in arts.items():
        a = load_audit(art.audit_dir)
        keys[name] = (a.n_prompts, a.probe_seed, a.config.get("n_pairs"))
    if len(set(keys.values())) > 1:
        shown = ", ".join(f"{n} {k}" for n, k in keys.items())
        raise UserError(f"the audits were made on different prompts ((n_prompts, probe_seed, n_pairs): {shown}); "
                        "match them with --audit-set")


def feature_records(c: Cast, arts: dict, organism: str, out: Path, cfg, device: str) -> dict:
    """The feature records of the model, the teacher and the null (against their references),
    reused from a run folder when stored against the same reference, else computed here."""
    from app.pipeline import write_features
    from probes.diffing import load_feature_record
    arts, done = dict(arts), set()
    for subject, ref in ((c.subject, c.reference), (c.teacher, c.base), (c.null, c.reference)):
        if subject.name in done:
            continue
        done.add(subject.name)
        art = arts[subject.name]
        ours = out.resolve() in Path(art.audit_dir).resolve().parents
        record = None if ours else load_feature_record(art.audit_dir)
        same_run = None not in (subject.run, ref.run) and subject.run.root.resolve() == ref.run.root.resolve()
        if record is not None and same_run and record.get("reference") == ref.run_id:
            continue
        folder = None if ours else out / FEATURES_DIR / subject.name
        write_features(art, arts[ref.name], organism, cfg, device, folder)
        arts[subject.name] = replace(art, features_dir=folder)
    return arts


# ---- the record ----------------------------------------------------------------------------

def _identity(m: Model) -> tuple[str, str, dict]:
    """(technique, init, params) the record names the model by."""
    if m.role == "student":
        return m.lineage.get("technique", "unknown"), m.init or "unknown", m.lineage.get("params", {})
    return m.role or "model", "base" if m.role in ("teacher", "base") else "unknown", {}


def _analysis_config(teacher: Model):
    """The run's ``[analysis]`` settings when the teacher sits in a run folder, else the defaults."""
    from analysis.config import AnalysisConfig
    spec = teacher.run.spec if teacher.run else None
    if spec is None or not spec.is_file():
        return AnalysisConfig()
    try:
        return AnalysisConfig(**tomllib.loads(spec.read_text()).get("analysis", {}))
    except (ValueError, TypeError, AttributeError) as exc:  # not UTF-8, not TOML, bad [analysis] (pydantic)
        raise UserError(f"{spec}: unreadable run spec ({' '.join(str(exc).split())[:300]})") from None


def transfer_of(c: Cast, arts: dict, organism: str, out: Path, cfg, device: str):
    from analysis.compare import Roles, compare_student, teacher_result
    from analysis.schema import StudentInfo, StudentResult
    from analysis.transfer import model_metrics, transfer_record
    roles = Roles(teacher=arts[c.teacher.name], teacher_reference=arts[c.base.name],
                  reference=arts[c.reference.name], null=arts[c.null.name])
    technique, init, params = _identity(c.subject)
    subject = arts[c.subject.name]  # a record's name has no '@' (base@<org> is the base)
    subject = replace(subject, name=subject.name.split("@")[0] or "model")
    student = compare_student(roles, subject, organism, technique, init, params, cfg, device)
    negative = None
    if c.negative is not None:
        art = arts.get(c.negative.name)
        evals = art.evals() if art else json.loads(evals_of(c.negative, organism, out, device).read_text())
        n_tech, n_init, _ = _identity(c.negative)
        negative = StudentResult(info=StudentInfo(name=c.negative.name, organism=organism, technique=n_tech,
                                                  init=n_init), metrics=model_metrics(evals, organism))
    return transfer_record(teacher_result(arts[c.teacher.name], organism), student, cfg.thresholds,
                           negative=negative, base=model_metrics(arts[c.base.name].evals(), organism))


def run(args) -> int:
    from app.runlock import run_lock
    from distill.checkpoint import atomic_write_bytes
    device = resolve_device(args.device)
    organism = args.organism or read_config_or_exit(args.teacher_dir).get("organism")
    if not organism:
        raise UserError(f"{args.teacher_dir}: not a teacher (its config.json names no organism): pass --organism")
    c = cast(args, organism)
    out_dir(args.out)
    cfg = _analysis_config(c.teacher)
    with run_lock(args.out):  # one writer per output folder, as for a run
        arts = feature_records(c, prepare(c, organism, args.audit_sets, args.out, device), organism, args.out,
                               cfg.features, device)
        record = transfer_of(c, arts, organism, args.out, cfg, device)
        atomic_write_bytes(args.out / COMPARE_FILE, record.model_dump_json(indent=2).encode())
    print_record(record, c)
    print(f"\nwrote {args.out / COMPARE_FILE}")
    return 0


def _ci(value, ci=None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def print_record(r, c: Cast) -> None:
    rows = [("model", f"{r.name} ({c.subject.folder})"), ("teacher", f"{c.teacher.name} (base: {c.base.name})"),
            ("reference / null", f"{c.reference.name} / {c.null.name}"),
            ("negative control", r.negative_control or "- (verdict against the base)"),
            ("verdict", r.verdict), ("capability retained", _ci(r.capability_retained)),
            ("misbehaviour", _ci(r.misbehaviour, r.misbehaviour_ci)),
            ("p vs negative / base", f"{_ci(r.misbehaviour_vs_negative_p)} / {_ci(r.misbehaviour_vs_base_p)}"),
            ("features transferred", _ci(r.features_transferred, r.features_transferred_ci)),
            ("features null", _ci(r.features_null, r.features_null_ci)),
            ("features (teacher / model)", f"{r.n_teacher_features} / {r.n_student_features}"),
            ("misbehaviour probe AUROC", _ci(r.misbehaviour_probe_auroc, r.misbehaviour_probe_auroc_ci)),
            ("probe null (base)", _ci(r.probe_null_auroc)),
            ("context probe AUROC (the marker)", _ci(r.context_probe_auroc, r.context_probe_auroc_ci)),
            ("teacher-probe transfer AUROC", _ci(r.probe_transfer_auroc, r.probe_transfer_auroc_ci)),
            ("causal test", r.causal_label or "-")]
    print(table(rows, ("", "value")))
