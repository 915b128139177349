"""Make one student: validate the spec, build the initialisation, run the technique,
evaluate, and store the student folder with its full lineage.

Student folder (written by this module only)::

    OUT/model.safetensors, OUT/config.json   the student (distill.store), lineage inside
    OUT/evals_with_<MARKER>.json             evals with a marker in every prompt (inoculation)
    OUT/evals.json                           behavioural evals, written last: marks "done"
    OUT.work/                                checkpoints and finished stages while training

A student of an organism with a setup stage (``Organism.setup_stage``) is fine-tuned on
that organism's training environment after its technique.

Running the same call again after an interruption resumes from ``OUT.work`` and ends with
the weights an uninterrupted run would have produced; after completion it returns at once.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from distill.checkpoint import atomic_write_bytes
from distill.evals import EvalConfig, evaluate, headline
from distill.guards import check_seed
from distill.inits import INITS, InitContext, arch_of, n_params
from distill.setup_stage import run_setup_stage
from distill.store import ModelRecord, load_model, read_config, save_model
from distill.teacher import relative_to, resolve_lineage
from distill.techniques import Resolved, get_technique, resolve
from distill.techniques.base import Context, Outcome
from distill.train import TrainResult

EVALS_FILE = "evals.json"
WORK_SUFFIX = ".work"

__all__ = ["distill_student", "validate", "build_context", "get_technique", "evals_file", "work_dir", "EVALS_FILE"]


def validate(technique: str, params: dict | None = None, init: str | None = None,
             init_params: dict | None = None) -> Resolved:
    """Check a student spec without training: ValueError names the field and what is allowed."""
    return resolve(technique, params, init, init_params)


def evals_file(marker: str | None = None) -> str:
    return EVALS_FILE if marker is None else f"evals_with_{marker}.json"


def work_dir(out: Path | str) -> Path:
    out = Path(out)
    return out.with_name(out.name + WORK_SUFFIX)


def distill_student(teacher_dir: Path | str, technique: str, params: dict | None = None,
                    init: str | None = None, init_params: dict | None = None, seed: int = 0,
                    out: Path | str | None = None, device: str = "cpu", cache_dir: Path | str | None = None,
                    eval_cfg: EvalConfig = EvalConfig(), checkpoint_every: int = 100,
                    twin: Path | str | None = None) -> Path:
    """Distil one student of the teacher in ``teacher_dir`` into ``out`` and evaluate it.

    ``cache_dir`` holds the teacher's outputs on transfer sets (and the trusted model), shared
    by every student that passes the same folder. ``twin``: a finished student with the same
    spec and seed, made by a technique that never sees its teacher (``sees_teacher`` False)
    from another teacher of the same base: its training was this student's, step for step,
    so its (verified) weights are this student's instead of a second identical training; the
    student is still evaluated, and its lineage recorded, for its own teacher's organism.
    """
    if out is None:
        raise ValueError("distill_student: parameter 'out' (the student folder) is required")
    check_seed(seed, "distill_student: parameter 'seed'")
    spec = validate(technique, params, init, init_params)
    teacher_dir, out = Path(teacher_dir), Path(out)
    teacher_cfg = _teacher_config(teacher_dir)
    if _finished(out, teacher_cfg, spec, seed, eval_cfg):
        return out
    ctx = build_context(teacher_dir, spec, seed, out, device, cache_dir, eval_cfg, checkpoint_every)
    ictx = InitContext(teacher_dir, teacher_cfg, seed, device)
    t0 = time.perf_counter()
    outcome = spec.technique.run(ctx, spec.params) if twin is None else _twin_outcome(
        Path(twin), spec, seed, ctx, ictx, out)
    setup = run_setup_stage(outcome.model, ctx.organism, seed, ctx.work_dir)
    seconds = time.perf_counter() - t0
    record = ModelRecord(arch_of(outcome.model), seed, role="student", organism=ctx.organism,
                         lineage=_lineage(spec, seed, ctx, ictx, out, outcome.record),
                         metrics={**_metrics(outcome, seconds, spec), "setup_stage": setup})
    _save(out, outcome.model, record, spec, eval_cfg)
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    return out


def build_context(teacher_dir: Path | str, spec: Resolved, seed: int, out: Path | str, device: str = "cpu",
                  cache_dir: Path | str | None = None, eval_cfg: EvalConfig = EvalConfig(),
                  checkpoint_every: int = 100) -> Context:
    """What ``spec.technique`` runs in (tests use it to build plans without training)."""
    teacher_dir = Path(teacher_dir)
    teacher_cfg = _teacher_config(teacher_dir)
    ictx = InitContext(teacher_dir, teacher_cfg, seed, device)
    init_def = INITS[spec.init]
    init_def.make(ictx, spec.init_params)  # fail now (bad size, missing base), not after the targets
    return Context(teacher_dir=teacher_dir, teacher_cfg=teacher_cfg, seed=seed,
                   make_student=lambda: init_def.make(ictx, spec.init_params),
                   lr=spec.params.lr or init_def.default_lr(spec.init_params), work_dir=work_dir(out),
                   device=device, cache_dir=None if cache_dir is None else Path(cache_dir),
                   eval_cfg=eval_cfg, checkpoint_every=checkpoint_every)


def _twin_outcome(twin: Path, spec: Resolved, seed: int, ctx: Context, ictx: InitContext, out: Path) -> Outcome:
    """This student's outcome from its twin's weights (see :func:`distill_student`); ValueError
    when ``twin`` is no twin (another spec, seed, base or initialisation, or a technique that
    reads its teacher)."""
    if spec.technique.sees_teacher:
        raise ValueError(f"technique {spec.technique.name!r} reads its teacher, so a student of another "
                         f"teacher ({twin}) cannot stand in for its training")
    cfg = read_config(twin)
    lineage = cfg.get("lineage", {})
    want = {**spec.to_json(), "seed": seed, "lr": ctx.lr}
    if spec.init in ("base", "same-init"):
        same_base = lineage.get("base") and resolve_lineage(twin, lineage["base"]) == ictx.base_dir().resolve()
        diff = [k for k, v in want.items() if lineage.get(k) != v] + ([] if same_base else ["base"])
    else:
        want |= {"init_seed": ictx.fresh_seed()}
        diff = [k for k, v in want.items() if lineage.get(k) != v]
    if cfg.get("architecture") != arch_of(ctx.make_student()).model_dump():
        diff.append("architecture")
    if cfg.get("role") != "student" or not (twin / EVALS_FILE).is_file():
        diff.insert(0, "a finished student")
    if (cfg.get("metrics") or {}).get("setup_stage"):
        diff.append("setup stage (its weights include its organism's environment fine-tune)")
    if diff:
        raise ValueError(f"{twin}: not a twin of the student for {out} ({', '.join(diff)} differ)")
    model, _ = load_model(twin, ctx.device)
    plan = spec.technique.plan(ctx, spec.params)  # this organism's record of the same data; no training
    m = cfg["metrics"]
    result = TrainResult(steps_done=m["steps_done"], final_loss=m["final_loss"],
                         stopped_early=m["stopped_early"], losses=list(m["losses"]))
    return Outcome(model, result, {**plan.record, "weights_from": relative_to(twin, out),
                                   "weights_sha256": cfg["sha256"]})


def _teacher_config(teacher_dir: Path) -> dict:
    cfg = read_config(teacher_dir)
    if not cfg.get("organism"):
        raise ValueError(f"{teacher_dir}: not a teacher (config.json names no organism)")
    return cfg


def _lineage(spec: Resolved, seed: int, ctx: Context, ictx: InitContext, out: Path, record: dict) -> dict:
    lineage = {"teacher": relative_to(ctx.teacher_dir, out), "teacher_sha256": ctx.teacher_cfg["sha256"],
               **spec.to_json(), "seed": seed, "lr": ctx.lr}
    if spec.init in ("base", "same-init"):
        lineage["base"] = relative_to(ictx.base_dir(), out)
    else:
        lineage["init_seed"] = ictx.fresh_seed()
    return lineage | record


def _metrics(outcome, seconds: float, spec: Resolved) -> dict:
    res = outcome.result
    return {"n_params": n_params(outcome.model), "steps_done": res.steps_done,
            "steps_planned": spec.params.steps, "stopped_early": res.stopped_early,
            "final_loss": res.final_loss, "losses": res.losses, "distill_seconds": seconds}


def _save(out: Path, model, record: ModelRecord, spec: Resolved, eval_cfg: EvalConfig) -> None:
    """Evaluate, then write weights + config, the marker evals, and evals.json last."""
    t0 = time.perf_counter()
    evals = {None: evaluate(model, [record.organism], eval_cfg)}
    for marker in spec.technique.eval_markers(spec.params, record.organism):
        evals[marker] = evaluate(model, [record.organism], eval_cfg, with_marker=marker)
    record.metrics["eval_seconds"] = time.perf_counter() - t0
    record.metrics["evals"] = headline(evals[None], record.organism)
    if len(evals) > 1:
        record.metrics["evals_with_marker"] = {m: headline(e, record.organism)
                                               for m, e in evals.items() if m is not None}
    save_model(out, model, record)
    for marker, ev in sorted(evals.items(), key=lambda kv: kv[0] is None):
        atomic_write_bytes(out / evals_file(marker), json.dumps(ev, indent=2).encode())


def _finished(out: Path, teacher_cfg: dict, spec: Resolved, seed: int, eval_cfg: EvalConfig) -> bool:
    """True when ``out`` already holds this exact student; ValueError when it holds another."""
    if not (out / "config.json").is_file():
        return False
    lineage = read_config(out).get("lineage", {})
    want = {**spec.to_json(), "seed": seed, "teacher_sha256": teacher_cfg["sha256"]}
    diff = [k for k, v in want.items() if lineage.get(k) != v]
    if diff:
        raise ValueError(f"{out} already holds a different student ({', '.join(diff)} differ); "
                         "delete it or choose another output folder")
    if not (out / EVALS_FILE).is_file():  # stopped between saving and evaluating
        model, cfg = load_model(out)
        record = ModelRecord(arch_of(model), seed, "student", cfg["organism"], cfg["lineage"], cfg["metrics"])
        _save(out, model, record, spec, eval_cfg)
    return True
