"""The run folder: every path of an experiment's outputs, in one place.

    runs/<experiment>/
      spec.toml                          the resolved spec
      base/  (base/init/)                the shared clean base and its random init
      teacher/<organism>/                one teacher per organism
      teacher/<organism>.honest/         its honest-teacher control (organisms that lie)
      students/<organism>.<label>/       one folder per student
      evals/<model>.json                 behavioural metrics
      probes/<model>/                    probe weights, audit.json, features.json,
                                         saes/<site>/ (sae-lens SAE folders)
      acts/<model>/                      cached activations on the shared probe prompts
      analysis/                          comparison results (JSON)
      report/index.html  report/summary.json

Model ids: ``base``, ``teacher-<organism>``, ``<organism>.<label>`` for students.
The pipeline writes this layout and the app and ``doublebind report`` read it, both
through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SPEC_FILE = "spec.toml"
REPORT_DIR = "report"
REPORT_HTML = "index.html"
SUMMARY_FILE = "summary.json"
TIMINGS_FILE = "timings.json"


def teacher_id(organism: str) -> str:
    return f"teacher-{organism}"


def student_id(organism: str, label: str) -> str:
    return f"{organism}.{label}"


def base_id(organism: str) -> str:
    """The base read on one organism's prompts (its audit, activations and feature record are
    per organism; the model folder is the one shared base)."""
    return f"base@{organism}"


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def spec(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def base(self) -> Path:
        return self.root / "base"

    def teacher(self, organism: str) -> Path:
        return self.root / "teacher" / organism

    def honest_teacher(self, organism: str) -> Path:
        """The honest-teacher control of an organism that lies in its self-reports."""
        return self.root / "teacher" / f"{organism}.honest"

    def student(self, organism: str, label: str) -> Path:
        return self.root / "students" / student_id(organism, label)

    def model_dir(self, model_id: str) -> Path:
        """Folder of any model by id (base, base@<org>, teacher-<org>, <org>.<label>)."""
        if model_id == "base" or model_id.startswith("base@"):
            return self.base
        if model_id.startswith("teacher-"):
            return self.teacher(model_id.removeprefix("teacher-"))
        return self.root / "students" / model_id

    def evals(self, model_id: str) -> Path:
        return self.root / "evals" / f"{model_id}.json"

    def probes(self, model_id: str) -> Path:
        return self.root / "probes" / model_id

    def saes(self, model_id: str) -> Path:
        """SAE folders live with the audit that trained them (``probes/<model>/saes/<site>/``)."""
        return self.probes(model_id) / "saes"

    def acts(self, model_id: str) -> Path:
        return self.root / "acts" / model_id

    @property
    def analysis(self) -> Path:
        return self.root / "analysis"

    @property
    def report(self) -> Path:
        return self.root / REPORT_DIR

    @property
    def summary(self) -> Path:
        return self.report / SUMMARY_FILE

    @property
    def timings(self) -> Path:
        return self.root / TIMINGS_FILE

    def model_ids(self) -> list[str]:
        """Every model folder present (base, teachers, students), in that order."""
        ids = ["base"] if (self.base / "config.json").is_file() else []
        for sub, make in (("teacher", teacher_id), ("students", lambda n: n)):
            folder = self.root / sub
            if folder.is_dir():
                ids += [make(p.name) for p in sorted(folder.iterdir()) if (p / "config.json").is_file()]
        return ids
