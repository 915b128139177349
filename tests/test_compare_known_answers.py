"""``doublebind compare`` (issue 10, F): its known answers for every organism, and its errors.

Known answers (tiny world, conftest's session-cached base and teachers): the teacher against
itself transfers its misalignment features (>= 0.9) and is misaligned; the teacher's own
base transfers none (<= 0.1, interval upper bound <= 0.25) and is aligned. The tiny base
never learns ``add`` (conftest.tiny_spec), so the capability half of the verdict is
``incapable`` for both; the misalignment half is what is checked.
"""

from __future__ import annotations

import json

import pytest

from analysis.schema import TransferRecord
from app.cli import main
from distill.models import ModelConfig, build_model
from distill.organisms import ORGANISMS
from distill.store import ModelRecord, save_model
from conftest import tiny_model_config


SMALL_AUDIT = [f"--audit-set={kv}" for kv in ("n_prompts=1024", "n_sae_prompts=1024", "n_pairs=256")]
"""Half the default audit sizes: the known answers do not need more, and the test stays ~3 min."""


def _compare(teacher, model, out, *extra) -> tuple[int, dict | None]:
    rc = main(["compare", str(teacher), str(model), "--out", str(out), "--device", "cpu", *SMALL_AUDIT, *extra])
    path = out / "compare.json"
    return rc, json.loads(path.read_text()) if rc == 0 and path.is_file() else None


@pytest.mark.slow
def test_known_answers_every_organism(tiny_base, tiny_teacher, tmp_path, capsys):
    numbers, failures = {}, []
    for org in ORGANISMS:
        teacher, out = tiny_teacher(org), tmp_path / org
        rc_self, me = _compare(teacher, teacher, out)
        assert rc_self == 0, capsys.readouterr().err
        capsys.readouterr()
        rc_base, base = _compare(teacher, tiny_base, out)
        err = capsys.readouterr().err
        assert rc_base == 0, err
        assert "auditing" not in err  # same OUT: both audits of the first call are reused
        assert set(me) == set(base) == set(TransferRecord.model_fields)  # a summary.json student record
        numbers[org] = {k: (r["features_transferred"], r["features_transferred_ci"], r["n_teacher_features"],
                            r["verdict"])
                        for k, r in (("self", me), ("base", base))}
        if not (me["features_transferred"] >= 0.9 and me["verdict"].endswith("-misaligned")):
            failures.append(f"{org} vs itself")
        if not (base["features_transferred"] <= 0.1 and base["features_transferred_ci"][1] <= 0.25
                and base["verdict"].endswith("-aligned") and "misaligned" not in base["verdict"]):
            failures.append(f"{org} vs its base")
    with capsys.disabled():
        print("\ncompare known answers (features_transferred, ci, n_teacher_features, verdict):")
        for org, n in numbers.items():
            print(f"  {org:10s} self {n['self']}  base {n['base']}")
    assert not failures, (failures, numbers)


# ---- argument errors: exit 2, one line, no training -----------------------------------------

def _error(capsys, *argv) -> str:
    assert main(["compare", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_folder_exits_2_with_path(tmp_path, capsys):
    missing = tmp_path / "no-such-teacher"
    assert str(missing) in _error(capsys, missing, tmp_path, "--out", tmp_path / "o")
    assert str(missing) in _error(capsys, tmp_path, missing, "--out", tmp_path / "o")


def test_not_a_model_folder_exits_2(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(empty) in _error(capsys, empty, empty, "--out", tmp_path / "o")


def _untrained(folder, role, cfg: ModelConfig | None = None, **record):
    cfg = cfg or tiny_model_config()
    return save_model(folder, build_model(cfg, 0), ModelRecord(cfg, 0, role=role, **record))


@pytest.fixture
def world(tmp_path):
    """Untrained base + teacher folders (a lineage, no training): enough for the errors."""
    base = _untrained(tmp_path / "base", "base")
    teacher = _untrained(tmp_path / "teacher", "teacher", organism="backdoor", lineage={"base": "../base"})
    return tmp_path, base, teacher


def test_missing_base_exits_2(world, capsys):
    tmp_path, base, teacher = world
    orphan = _untrained(tmp_path / "orphan", "teacher", organism="backdoor", lineage={"base": "../gone"})
    assert "base" in _error(capsys, orphan, orphan, "--out", tmp_path / "o")
    lost = _untrained(tmp_path / "lost", "teacher", organism="backdoor")
    assert "lineage.base" in _error(capsys, lost, lost, "--out", tmp_path / "o")


def test_width_mismatch_exits_2(world, capsys):
    tmp_path, base, teacher = world
    narrow = _untrained(tmp_path / "narrow", "student", ModelConfig(n_layers=2, d_model=16, n_heads=4, d_mlp=64),
                        organism="backdoor", lineage={"technique": "logit-kd", "init": "smaller"})
    err = _error(capsys, teacher, narrow, "--reference", base, "--out", tmp_path / "o")
    assert "architecture" in err and str(narrow) in err


def test_student_without_reference_exits_2(world, capsys):
    tmp_path, base, teacher = world
    fresh = _untrained(tmp_path / "fresh", "student", organism="backdoor",
                       lineage={"technique": "logit-kd", "init": "fresh"})
    assert "--reference" in _error(capsys, teacher, fresh, "--out", tmp_path / "o")


def test_bad_audit_setting_exits_2(world, capsys):
    tmp_path, base, teacher = world
    out = tmp_path / "o"
    assert "no_such_field" in _error(capsys, teacher, teacher, "--out", out, "--audit-set", "no_such_field=1")
    assert "n_pairs" in _error(capsys, teacher, teacher, "--out", out, "--audit-set", "n_pairs=1")
    assert "d_sae" in _error(capsys, teacher, teacher, "--out", out, "--audit-set", "sae.d_sae=x")
