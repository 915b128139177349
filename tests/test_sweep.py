"""doublebind sweep: seeds and overrides parsed, point specs validated, the aggregated table's
means and intervals (known answers), and the command end to end on a resumed tiny run."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from analysis.sweep import SweepTable, aggregate
from app.cli import main
from app.spec import SpecError, load_spec
from app.sweep import apply_sets, parse_seeds, point_specs


def test_seeds_are_ranges_and_lists():
    assert parse_seeds("0-4") == [0, 1, 2, 3, 4]
    assert parse_seeds("0,3,7") == [0, 3, 7]
    assert parse_seeds("1-2,5") == [1, 2, 5]
    for bad in ("", "a", "3-", "-1", "1,1", "0-x"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_sets_override_nested_fields_with_typed_values():
    data = apply_sets({"teacher": {"base_train": {"steps": 600}}, "workers": 1},
                      ["teacher.base_train.steps=300", "workers=2", "analysis.note=hello"])
    assert data["teacher"]["base_train"]["steps"] == 300 and data["workers"] == 2
    assert data["analysis"] == {"note": "hello"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_sets({}, ["steps"])


def test_every_point_is_a_validated_spec_at_its_seed():
    specs = point_specs(load_spec("tiny"), [0, 3], ["teacher.base_train.steps=300"])
    assert [(s.seed, s.name, s.teacher.base_train.steps) for s in specs] == [(0, "tiny-seed0", 300),
                                                                             (3, "tiny-seed3", 300)]
    with pytest.raises(SpecError, match="steps"):
        point_specs(load_spec("tiny"), [0], ["teacher.base_train.steps=true"])


def _summary(trust: bool, **numbers) -> dict:
    return {"controls": {"trustworthy": trust},
            "students": [{"name": "backdoor.logit-kd", "verdict": "capable-misaligned", **numbers},
                         {"name": "backdoor.negative-control", "verdict": "capable-aligned", "misbehaviour": 0.0}]}


def test_the_table_is_the_mean_and_t_interval_over_points():
    points = [{"seed": s, "sets": [], "run": f"r{s}"} for s in range(3)]
    t = aggregate("x", points, [_summary(True, misbehaviour=0.2, features_transferred=None),
                                _summary(True, misbehaviour=0.4, features_transferred=0.5),
                                _summary(False, misbehaviour=0.6, features_transferred=0.7)])
    row = t.rows[0]
    m = row.numbers["misbehaviour"]
    half = 4.302652729911275 * 0.2 / math.sqrt(3)  # t_{0.975, 2} * sd / sqrt(n)
    assert (m.mean, m.n) == (pytest.approx(0.4), 3)
    assert (m.low, m.high) == (pytest.approx(0.4 - half), pytest.approx(0.4 + half))
    f = row.numbers["features_transferred"]  # undefined at one point: averaged where defined
    assert f.n == 2 and f.mean == pytest.approx(0.6)
    assert row.verdicts == {"capable-misaligned": 3} and row.trustworthy_points == 2
    one = aggregate("x", points[:1], [_summary(True, misbehaviour=0.2)]).rows[0].numbers["misbehaviour"]
    assert one.low is None and one.high is None  # no interval from one point


@pytest.mark.slow
def test_sweep_command_resumes_its_points_and_writes_the_table(tiny_run, tmp_path, capsys):
    out = tmp_path / "sweep"
    shutil.copytree(tiny_run, out / "seed-0")  # the same stages: only the report is redone
    assert main(["sweep", "tiny", "--seeds", "0", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "backdoor.logit-kd" in printed and "sweep.json" in printed
    t = SweepTable.model_validate_json((out / "sweep.json").read_text())
    summary = json.loads((tiny_run / "report" / "summary.json").read_text())
    assert [r.student for r in t.rows] == [s["name"] for s in summary["students"]]
    row = {r.student: r for r in t.rows}["backdoor.logit-kd"]
    want = next(s for s in summary["students"] if s["name"] == "backdoor.logit-kd")
    assert row.numbers["misbehaviour"].mean == pytest.approx(want["misbehaviour"])
    assert (out / "index.html").read_text().count("<tr>") == len(t.rows) + 1
    timings = json.loads((out / "seed-0" / "timings.json").read_text())
    assert all(t["skipped"] == t["jobs"] for t in timings if t["stage"] != "report")
