"""A two-organism run for the app's per-organism state tests, made in seconds from the tiny run.

The tiny run has one organism (backdoor). :func:`two_organism_run` copies it and adds each of
its backdoor models a second time under the organism name ``sabotage`` (folder names and JSON
text relabelled; weights, SAEs and activations copied byte for byte), then merges the two
summaries (stage caches left out). The "sabotage" models are the backdoor models under another name: good for testing
what the pages keep when the organism changes, meaningless for any measurement.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FROM, TO = "backdoor", "sabotage"
SKIPPED = ("acts", "cache")
"""Stage caches the pages never read."""


def _relabel(text: str) -> str:
    return text.replace(FROM, TO)


def two_organism_run(tiny_run: Path, dest: Path) -> Path:
    """``dest``: the tiny run plus a relabelled copy of each of its backdoor models as sabotage."""
    shutil.copytree(tiny_run, dest, ignore=shutil.ignore_patterns(*SKIPPED))
    for src in sorted(tiny_run.rglob("*")):
        rel = src.relative_to(tiny_run)
        if FROM not in str(rel) or not src.is_file() or rel.parts[0] in SKIPPED:
            continue
        out = dest / _relabel(str(rel))
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".json" and "saes" not in rel.parts:  # an SAE's files are checked by digest
            out.write_text(_relabel(src.read_text()))
        else:
            shutil.copyfile(src, out)
    summary_path = dest / "report" / "summary.json"
    summary = json.loads(summary_path.read_text())
    other = json.loads(_relabel(summary_path.read_text()))
    summary["teachers"].update(other["teachers"])
    summary["base"].update(other["base"])
    summary["students"] += other["students"]
    summary_path.write_text(json.dumps(summary))
    experiment_path = dest / "analysis" / "experiment.json"
    experiment = json.loads(experiment_path.read_text())
    experiment["student_order"] += [_relabel(n) for n in experiment["student_order"]]
    experiment_path.write_text(json.dumps(experiment))
    return dest
