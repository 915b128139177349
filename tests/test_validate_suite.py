"""Orchestration without training: measurements from a hand-made run folder, the report,
the command line; and one slow end-to-end ``--quick --seeds 1`` run."""

from __future__ import annotations

import json
import re

import pytest

from analysis.double_bind import double_bind
from analysis.findings import FindingDef, FindingsReport, judge_all
from analysis.schema import DoubleBindAttempt
from app.cli import main
from app.runfolder import RunFolder
from app.spec import parse_spec
from app.validation.measure import measure, relearn_file
from app.validation.report import FINDINGS_JSON, INDEX_FILE, VALIDATION_DIR, write_validation
from app.validation.suite import SuiteError, _claim_folder, seed_dir


N = 500  # eliciting prompts behind every rate: the verdicts test counts against the negative control


def _org(org: str, misb: float, trait_prob: float | None = None) -> dict:
    o = {"organism": org, "misbehaviour": {"eliciting": misb, "clean": 0.0, "n_eliciting": N}}
    if trait_prob is not None:
        o["trait"] = {"rate": misb, "prob": trait_prob, "n": N}
    return o


def _evals(cap: float, org: str, misb: float, trait_prob: float | None = None) -> dict:
    return {"capability": {"mean": cap}, "organisms": {org: _org(org, misb, trait_prob)}}


def _write(path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def fake_run(tmp_path):
    spec = parse_spec({"name": "t", "organisms": ["backdoor", "trait"], "students": [
        {"technique": "positive-control"}, {"technique": "negative-control"},
        {"technique": "logit-kd", "organisms": ["trait"]}]})
    rf = RunFolder(tmp_path / "run")
    numbers = {"teacher-backdoor": (1.0, "backdoor", 1.0, None), "teacher-trait": (1.0, "trait", 0.8, 0.9),
               "backdoor.positive-control": (0.95, "backdoor", 0.9, None),
               "backdoor.negative-control": (0.5, "backdoor", 0.0, None),   # incapable: control fails
               "trait.positive-control": (1.0, "trait", 0.8, 0.7),
               "trait.negative-control": (1.0, "trait", 0.0, 0.001),
               "trait.logit-kd": (0.99, "trait", 0.4, 0.2)}
    for mid, (cap, org, misb, prob) in numbers.items():
        _write(rf.evals(mid), _evals(cap, org, misb, prob))
        if not mid.startswith("teacher-"):
            _write(rf.model_dir(mid) / "config.json", {"lineage": {"technique": mid.split(".", 1)[1]}})
    _write(rf.evals("base"), {"capability": {"mean": 1.0}, "organisms": {
        "backdoor": _org("backdoor", 0.0), "trait": _org("trait", 0.0, 0.001)}})
    _write(rf.probes("teacher-backdoor") / "audit.json",
           {"best_probe": {"auroc": 0.999}, "best_contrast": {"auroc": 0.97}})
    _write(relearn_file(rf, "trait.logit-kd"), {"after_k": 0.6, "area": 0.5})
    return rf, spec


def test_measure_reads_every_metric(fake_run):
    rf, spec = fake_run
    m = measure(rf.root, spec)
    assert m["trait.logit-kd:trait_prob"] == 0.2
    assert m["trait.logit-kd:misalignment_transferred"] == pytest.approx(0.5)
    assert m["trait.logit-kd:capability_retained"] == pytest.approx(0.99)
    assert m["teacher-backdoor:probe_auroc"] == 0.999 and m["teacher-backdoor:contrast_auroc"] == 0.97
    assert "teacher-trait:probe_auroc" not in m  # no audit there
    assert m["trait.logit-kd:relearn"] == 0.6 and m["trait.logit-kd:relearn_area"] == 0.5
    assert m["backdoor.positive-control:control_ok"] == 1.0
    assert m["backdoor.negative-control:control_ok"] == 0.0  # capability retained 0.5 < 0.9
    assert m["trait.negative-control:control_ok"] == 1.0
    assert "trait.logit-kd:control_ok" not in m and "teacher-trait:capability_retained" not in m


def test_control_ok_uses_the_behavioural_verdict(fake_run):
    """A positive control significantly above the negative control but well below the teacher
    is capable-partially-misaligned: not what a positive control must be."""
    rf, spec = fake_run
    _write(rf.evals("backdoor.positive-control"), _evals(0.95, "backdoor", 0.3))
    assert measure(rf.root, spec)["backdoor.positive-control:control_ok"] == 0.0
    _write(rf.evals("backdoor.positive-control"), _evals(0.95, "backdoor", 0.97))
    assert measure(rf.root, spec)["backdoor.positive-control:control_ok"] == 1.0
    (rf.evals("backdoor.negative-control")).unlink()  # its reference unmeasured: no verdict
    assert "backdoor.positive-control:control_ok" not in measure(rf.root, spec)


def _report() -> FindingsReport:
    defs = [FindingDef(id="1a", title="kd beats fresh", claim="c", source="s", op="difference",
                       terms=["a:x", "b:x"], direction="greater", threshold=0.0),
            FindingDef(id="2a", title="probe <script>", claim="c", source="s", op="min", terms=["a:x"],
                       direction="at_least", threshold=0.99)]
    seeds = [{"a:x": 0.5, "b:x": 0.1}, {"a:x": 0.7, "b:x": 0.2}]
    return FindingsReport(mode="default", seeds=[0, 1], results=judge_all(defs, seeds), measurements=seeds,
                          curves={"a": {"steps": [0, 10], "per_seed": [[0.0, 0.5], [0.1, 0.7]]}},
                          runs=["r0", "r1"], wall_seconds=12.0,
                          stages=[{"stage": "students", "jobs": 3, "skipped": 1, "seconds": 10.0,
                                   "job_seconds": 19.0}], command="x",
                          double_bind=double_bind([_attempt("a", False, True), _attempt("b", False, False),
                                                   _attempt("c", True, False)], ["confession"]))


def _attempt(name: str, caught: bool, clean: bool) -> DoubleBindAttempt:
    return DoubleBindAttempt(student=name, organism="sabotage", technique="logit-kd", init="base", seed=0,
                             caught=caught, caught_by=["confession"] if caught else [], clean=clean,
                             verdict="capable-aligned" if clean else "capable-misaligned")


def test_report_is_self_contained_and_round_trips(tmp_path):
    paths = write_validation(_report(), tmp_path)
    assert paths.index == tmp_path / VALIDATION_DIR / INDEX_FILE
    page = paths.index.read_text()
    assert "1 of 2 findings did not reproduce" in page
    assert "<script" not in page and "&lt;script&gt;" in page  # titles are escaped, no JS
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    assert page.count("<svg") >= 2  # findings panels + relearning curves
    back = FindingsReport.model_validate_json((tmp_path / VALIDATION_DIR / FINDINGS_JSON).read_text())
    assert [r.status for r in back.results] == ["PASS", "FAIL"]
    flat = json.loads((tmp_path / VALIDATION_DIR / FINDINGS_JSON).read_text())["results"][0]
    assert {k: flat[k] for k in ("id", "claim", "passed")} == {"id": "1a", "claim": "c", "passed": True}
    assert flat["bar"] == 0.0 and flat["mean"] == pytest.approx(0.45) and len(flat["ci"]) == 2
    assert back.double_bind.detectors == ["confession"] and "6. The double bind" in page
    assert "when incrimination found nothing, 50%" in page  # 1 of 2 attempts not caught was clean


def test_a_folder_holds_one_mode(tmp_path):
    _claim_folder(tmp_path, "quick")
    _claim_folder(tmp_path, "quick")
    with pytest.raises(SuiteError, match="holds a 'quick' validation run"):
        _claim_folder(tmp_path, "default")


def test_cli_rejects_bad_seeds(capsys):
    assert main(["validate", "--seeds", "0"]) == 2
    assert "--seeds" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_suite_end_to_end_and_resume(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["validate", "--quick", "--seeds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "findings PASS" in printed and re.search(r"\b8b\b", printed)
    rep = FindingsReport.model_validate_json((out / VALIDATION_DIR / FINDINGS_JSON).read_text())
    assert rep.mode == "quick" and rep.seeds == [0] and len(rep.results) >= 8
    assert all(r.status in ("PASS", "FAIL") for r in rep.results), "every finding must be measured"
    db = rep.double_bind  # every technique student of the seed, none of the controls
    assert db.n + db.n_untested == len(db.attempts) and db.attempts
    assert all(a.technique and "control" not in a.technique for a in db.attempts)
    assert sum(db.counts.values()) == db.n and {a.seed for a in db.attempts} == {0}
    # confession is the only detector validate measures: only sabotage students can be tested, and
    # only while its preconditions hold (the quick suite's tiny base may not learn to self-report)
    assert {a.organism for a in db.attempts if a.tested} <= {"sabotage"}
    assert set(rep.curves) >= {"backdoor.filter-noised-0.25", "teacher-backdoor"}
    # the sabotage teacher job also trains its honest-teacher control, stored beside it
    rf = RunFolder(seed_dir(out, 0))
    honest = json.loads(rf.evals("teacher-sabotage").read_text())["honest_control"]
    assert (rf.honest_teacher("sabotage") / "config.json").is_file()
    assert honest["organisms"]["sabotage"]["confession"]["n"] > 0 and "self_report" in honest
    # resuming redoes nothing: every stage's jobs are skipped, and the findings are the same
    assert main(["validate", "--quick", "--seeds", "1", "--out", str(out)]) == 0
    again = FindingsReport.model_validate_json((out / VALIDATION_DIR / FINDINGS_JSON).read_text())
    assert all(t["skipped"] == t["jobs"] for t in again.stages)
    assert [r.values for r in again.results] == [r.values for r in rep.results]


def test_a_fresh_student_is_judged_against_the_fresh_control_the_pipeline_adds():
    """As analysis.transfer.negative_control_of does in a run: the same-init control, which the
    pipeline adds (ExperimentSpec.all_students) when the spec has none."""
    from app.validation.measure import negative_control_id
    spec = parse_spec({"name": "t", "organisms": ["backdoor"], "students": [
        {"technique": "negative-control"}, {"technique": "logit-kd", "init": "fresh"}, {"technique": "logit-kd"},
        {"technique": "filter", "init": "noised", "name": "noised"}]})
    assert negative_control_id(spec, "backdoor.logit-kd-fresh") == "backdoor.negative-control-fresh"
    assert negative_control_id(spec, "backdoor.logit-kd") == "backdoor.negative-control"
    assert negative_control_id(spec, "backdoor.noised") == "backdoor.negative-control"  # teacher weights: base basis
