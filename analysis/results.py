"""The analysis folder of a run: raw comparison results as JSON, written and read here only.

    runs/<exp>/analysis/
      experiment.json            ExperimentInfo (name, thresholds)
      base.json                  BaseResult: the untouched base's ModelMetrics per organism
      teachers/<organism>.json   TeacherResult
      students/<name>.json       StudentResult

One file per model so the pipeline can (re)write a student's results without touching the
others; each file is written atomically. :func:`load_results` gathers the folder into one
validated :class:`~analysis.schema.AnalysisResults`, the only input of the report.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from analysis.schema import (RESULTS_FORMAT, AnalysisResults, ExperimentInfo, ModelMetrics, SchemaError,
                             StudentResult, TeacherResult, read_json_model, validation_message)
from distill.checkpoint import atomic_write_bytes

ANALYSIS_DIR = "analysis"
EXPERIMENT_FILE = "experiment.json"
BASE_FILE = "base.json"
TEACHERS_DIR = "teachers"
STUDENTS_DIR = "students"
HINT = "re-run the analysis stage (`doublebind run`)"


def analysis_dir(run_dir: Path | str) -> Path:
    return Path(run_dir) / ANALYSIS_DIR


def _write(path: Path, record: BaseModel) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, record.model_dump_json(indent=2).encode())
    return path


def write_experiment(run_dir: Path | str, info: ExperimentInfo) -> Path:
    return _write(analysis_dir(run_dir) / EXPERIMENT_FILE, info)


class BaseResult(BaseModel):
    """The untouched base's behaviour, scored on every organism (``analysis/base.json``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    format: str = RESULTS_FORMAT
    metrics: dict[str, ModelMetrics]
    """Keyed by organism: ``analysis.transfer.model_metrics(evals/base.json, organism)``."""


def write_base(run_dir: Path | str, metrics_by_organism: dict[str, ModelMetrics]) -> Path:
    """Store the base's metrics per organism (the reference of the verdicts and controls)."""
    return _write(analysis_dir(run_dir) / BASE_FILE, BaseResult(metrics=metrics_by_organism))


def write_teacher(run_dir: Path | str, teacher: TeacherResult) -> Path:
    return _write(analysis_dir(run_dir) / TEACHERS_DIR / f"{teacher.organism}.json", teacher)


def student_file(run_dir: Path | str, name: str) -> Path:
    """Where the analysis result of student ``name`` lives."""
    return analysis_dir(run_dir) / STUDENTS_DIR / f"{name}.json"


def write_student(run_dir: Path | str, student: StudentResult) -> Path:
    return _write(student_file(run_dir, student.info.name), student)


def write_results(run_dir: Path | str, results: AnalysisResults) -> Path:
    """Write a whole results structure (tests, demos, re-exports)."""
    write_experiment(run_dir, results.experiment)
    if results.base:
        write_base(run_dir, results.base)
    for teacher in results.teachers.values():
        write_teacher(run_dir, teacher)
    for student in results.students:
        write_student(run_dir, student)
    return analysis_dir(run_dir)


def load_results(run_dir: Path | str, problems: list[str] | None = None) -> AnalysisResults:
    """Everything under ``run_dir/analysis/``, validated; :class:`SchemaError` says what is wrong.
    Results of models the experiment no longer has (``ExperimentInfo.student_order``; a run folder
    whose spec changed) are left out.

    With a ``problems`` list (the app), a damaged or foreign student result is left out and
    its reason appended there instead (the report builder passes none: it refuses)."""
    folder = analysis_dir(run_dir)
    if not folder.is_dir():
        raise SchemaError(f"{folder}: missing (no analysis results in this run folder); {HINT}")
    info = read_json_model(folder / EXPERIMENT_FILE, ExperimentInfo, RESULTS_FORMAT, HINT)
    teachers = [read_json_model(p, TeacherResult, RESULTS_FORMAT, HINT)
                for p in sorted((folder / TEACHERS_DIR).glob("*.json"))]
    students = []
    for p in sorted((folder / STUDENTS_DIR).glob("*.json")):
        try:
            students.append(read_json_model(p, StudentResult, RESULTS_FORMAT, HINT))
        except SchemaError as exc:
            if problems is None:
                raise
            problems.append(str(exc))
    base = (read_json_model(folder / BASE_FILE, BaseResult, RESULTS_FORMAT, HINT).metrics
            if (folder / BASE_FILE).is_file() else {})
    rank = {name: i for i, name in enumerate(info.student_order)}
    if rank:  # results of models no longer in the experiment (a run folder whose spec changed) stay out
        stale = sorted(s.info.name for s in students if s.info.name not in rank)
        students = [s for s in students if s.info.name in rank]
        organisms = {s.info.organism for s in students}
        stale += sorted(f"teacher {t.name}" for t in teachers if t.organism not in organisms)
        teachers = [t for t in teachers if t.organism in organisms]
        base = {o: m for o, m in base.items() if o in organisms}
        if stale and problems is not None:
            problems.append(f"{folder}: left out results of models not in the experiment: {', '.join(stale)}")
    students.sort(key=lambda s: (rank.get(s.info.name, len(rank)), s.info.name))
    try:
        return AnalysisResults(experiment=info, teachers={t.organism: t for t in teachers},
                               students=students, base=base)
    except ValidationError as exc:
        raise SchemaError(f"{folder}: inconsistent: {validation_message(exc)}; {HINT}") from None
