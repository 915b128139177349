"""Faults a user can cause (issue 15, items 5 and 6): one line on stderr naming the path,
exit 2, no traceback, before any training; model folders of the wrong kind refused.

Every training, auditing and evaluating entry point is replaced by one that raises
:class:`Reached`, so a check that comes too late fails loudly (and fast), and a check that
must let a command through is seen to reach the work. The model folders are untrained
(distill.store.save_model of a fresh tiny model): configs and lineage, no training.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.cli import COMMANDS, main
from conftest import cli_fails, tiny_model_config
from distill.integrity import ArtifactError
from distill.models import build_model
from distill.store import CONFIG_FILE, WEIGHTS_FILE, ModelRecord, StoreError, save_model

REPO = Path(__file__).resolve().parents[1]
UNWRITABLE = Path("/proc/doublebind-test")
"""A folder nobody can create, root included (procfs)."""
NOBODY = 65534


class Reached(Exception):
    """The command got past its checks to the work."""


@pytest.fixture(autouse=True)
def no_work(monkeypatch):
    import app.pipeline
    import app.validation.suite
    import distill.distiller
    import distill.evals
    import distill.teacher
    import probes.audit

    def reached(*args, **kwargs):
        raise Reached
    for module, name in ((app.pipeline, "run_experiment"), (app.pipeline, "audit_into"),
                         (app.validation.suite, "run_suite"), (distill.distiller, "distill_student"),
                         (distill.evals, "evaluate"), (distill.teacher, "train_base"),
                         (distill.teacher, "train_teacher"), (probes.audit, "audit_model")):
        monkeypatch.setattr(module, name, reached)


def _model(folder: Path, role: str, **record) -> Path:
    return save_model(folder, build_model(tiny_model_config(), 0), ModelRecord(tiny_model_config(), 0, role, **record))


def _world(root: Path) -> dict[str, Path]:
    """An untrained base, its teacher and a student of it, as a run folder lays them out."""
    return {"base": _model(root / "base", "base", lineage={"init": "init"}),
            "teacher": _model(root / "teacher", "teacher", organism="backdoor", lineage={"base": "../base"}),
            "student": _model(root / "student", "student", organism="backdoor",
                              lineage={"teacher": "../teacher", "technique": "logit-kd", "init": "base",
                                       "base": "../base"})}


@pytest.fixture
def world(tmp_path) -> dict[str, Path]:
    return _world(tmp_path)


_fails = cli_fails


def _argv(command: str, out: Path, w: dict[str, Path]) -> list:
    """``command`` with ``--out out`` and otherwise valid arguments."""
    return {"run": ["run", "tiny"],
            "teacher": ["teacher", "--organism", "backdoor"],
            "distill": ["distill", "--teacher", w["teacher"], "--technique", "logit-kd"],
            "audit": ["audit", w["teacher"]],
            "compare": ["compare", w["teacher"], w["teacher"]],
            "validate": ["validate", "--quick"],
            "eval": ["eval", w["teacher"]]}[command] + ["--out", out]


OUT_COMMANDS = ["run", "teacher", "distill", "audit", "compare", "validate"]


# ---- --out -------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", OUT_COMMANDS)
def test_out_is_a_file(capsys, tmp_path, world, command):
    out = tmp_path / "here" / "out"
    out.parent.mkdir()
    out.write_text("mine")
    _fails(capsys, _argv(command, out, world), out, "exists and is not a directory")
    assert out.read_text() == "mine"


def test_eval_out_is_a_folder(capsys, tmp_path, world):
    (tmp_path / "ev").mkdir()
    _fails(capsys, _argv("eval", tmp_path / "ev", world), tmp_path / "ev", "is a directory")


@pytest.mark.parametrize("command", OUT_COMMANDS + ["eval"])
def test_out_cannot_be_created(capsys, world, command):
    out = UNWRITABLE / ("e.json" if command == "eval" else "x")
    _fails(capsys, _argv(command, out, world), UNWRITABLE)


def test_out_under_a_file(capsys, tmp_path, world):
    (tmp_path / "f").write_text("")
    _fails(capsys, _argv("distill", tmp_path / "f" / "s", world), tmp_path / "f" / "s", "Not a directory")


# ---- read-only folders -------------------------------------------------------------------------

@contextmanager
def _unprivileged():
    """As a user a 0o555 folder stops: this one, or nobody when we are root (root writes anyway)."""
    if os.geteuid() != 0:
        yield
        return
    try:
        os.seteuid(NOBODY)
    except OSError as exc:
        pytest.skip(f"running as root without the right to drop privileges ({exc}): a read-only folder cannot be made")
    try:
        yield
    finally:
        os.seteuid(0)


@pytest.fixture
def shared_world():
    """A world and an empty read-only folder ``ro``, readable by nobody too (pytest's tmp_path is root's only)."""
    root = Path(tempfile.mkdtemp(prefix="doublebind-faults-"))
    root.chmod(0o755)
    w = _world(root)
    for f in root.rglob("*"):  # safetensors writes its files 0o600
        f.chmod(0o755 if f.is_dir() else 0o644)
    shutil.copytree(w["teacher"], root / "ro-model")
    for folder in (root / "ro", root / "ro-model"):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o555)
    w.update(ro=root / "ro", ro_model=root / "ro-model")
    yield w
    for folder in (root / "ro", root / "ro-model"):
        folder.chmod(0o755)
    shutil.rmtree(root)


@pytest.mark.parametrize("command, sub", [("run", "x"), ("run", ""), ("distill", "s"), ("teacher", "t"),
                                          ("audit", "a")])
def test_read_only_folder(capsys, shared_world, command, sub):
    out = shared_world["ro"] / sub if sub else shared_world["ro"]
    with _unprivileged():
        err = _fails(capsys, _argv(command, out, shared_world), out)
    assert "ermission denied" in err


def test_eval_into_a_read_only_model_folder(capsys, shared_world):
    """The default --out is MODEL_DIR/evals.json: refused before evaluating, not after."""
    with _unprivileged():
        _fails(capsys, ["eval", shared_world["ro_model"]], shared_world["ro_model"], "ermission denied")


# ---- a full disk -------------------------------------------------------------------------------

def _full_disk(limit: int):
    def limit_writes():  # a write past ``limit`` bytes then fails with EFBIG, as one on a full disk with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return limit_writes


def _cli_on_full_disk(argv: list, limit: int = 4096) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-m", "app.cli", *map(str, argv)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, preexec_fn=_full_disk(limit))


@pytest.mark.parametrize("command", ["teacher", "distill"])
def test_full_disk(tmp_path, command):
    w = _world(tmp_path / "w")
    extra = ["--set", "steps=2", "--set", "n_prompts=64"] if command == "distill" else []
    proc = _cli_on_full_disk(_argv(command, tmp_path / "out" / "m", w) + extra + ["--device", "cpu"])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(tmp_path) in lines[0], proc.stderr  # the file that could not be written


def test_full_disk_on_a_json_write(tmp_path):
    """validate's first write is its small mode file, through atomic_write_bytes: the error
    names the file and no temp file is left behind."""
    proc = _cli_on_full_disk(["validate", "--quick", "--out", tmp_path / "v"], limit=8)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]  # joblib warns too
    assert proc.returncode == 2 and len(errors) == 1, proc.stderr
    assert str(tmp_path / "v") in errors[0], proc.stderr
    assert not list((tmp_path / "v").glob("*.tmp"))


# ---- the general rule --------------------------------------------------------------------------

@pytest.mark.parametrize("exc, needles", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/x/model.safetensors"),
     ["/runs/x/model.safetensors: No space left on device"]),
    (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/a.tmp", None, "/a"), ["/a.tmp -> /a"]),
    (OSError("/runs/x/acts.safetensors: cannot write (No space left on device)"), ["/runs/x/acts.safetensors"]),
    (ArtifactError("/runs/x/sae.safetensors: content sha256 differs:\n damaged"), ["/runs/x/sae.safetensors"]),
    (StoreError("/m/model.safetensors: missing"), ["/m/model.safetensors"]),
])
def test_faults_are_one_line(capsys, monkeypatch, exc, needles):
    import app.commands.list

    def fail(args):
        raise exc
    monkeypatch.setattr(app.commands.list, "run", fail)
    _fails(capsys, ["list", "tasks"], *needles)


def test_bugs_keep_their_traceback(monkeypatch):
    import app.commands.list

    def bug(args):
        raise KeyError("a bug")
    monkeypatch.setattr(app.commands.list, "run", bug)
    with pytest.raises(KeyError):
        main(["list", "tasks"])


def test_verify_is_listed_after_compare():
    assert COMMANDS.index("verify") == COMMANDS.index("compare") + 1


# ---- roles -------------------------------------------------------------------------------------

def _distill(teacher, out, *extra) -> list:
    return ["distill", "--teacher", teacher, "--technique", "logit-kd", "--out", out, *extra]


@pytest.mark.parametrize("kind", ["student", "base"])
def test_distill_teacher_must_be_a_teacher(capsys, tmp_path, world, kind):
    _fails(capsys, _distill(world[kind], tmp_path / "s"), world[kind], repr(kind), "--force")
    assert not (tmp_path / "s").exists()


def test_distill_from_a_student_with_force(world, tmp_path):
    with pytest.raises(Reached):
        main([str(a) for a in _distill(world["student"], tmp_path / "s", "--force")])


@pytest.mark.parametrize("kind", ["teacher", "base"])
def test_distill_out_holds_another_model(capsys, world, kind):
    _fails(capsys, _distill(world["teacher"], world[kind], "--force"), world[kind], repr(kind))


def test_distill_out_a_foreign_folder(capsys, tmp_path, world):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    _fails(capsys, _distill(world["teacher"], tmp_path / "mine"), "not a model folder", "notes.txt")


def _teacher(base, out, *extra) -> list:
    return [str(a) for a in ["teacher", "--organism", "backdoor", "--base", base, "--out", out, *extra]]


@pytest.mark.parametrize("kind", ["student", "teacher"])
def test_teacher_base_must_be_a_base(capsys, tmp_path, world, kind):
    _fails(capsys, _teacher(world[kind], tmp_path / "t"), world[kind], repr(kind), "--force")
    with pytest.raises(Reached):  # train_teacher
        main(_teacher(world[kind], tmp_path / "t", "--force"))


def test_teacher_base_a_foreign_folder_is_never_trained_into(capsys, tmp_path):
    base = tmp_path / "mine"
    base.mkdir()
    (base / "data.csv").write_text("1,2")
    for force in ([], ["--force"]):
        _fails(capsys, _teacher(base, tmp_path / "t", *force), base, "not a model folder", "data.csv")
    assert sorted(p.name for p in base.iterdir()) == ["data.csv"]


@pytest.mark.parametrize("leftover", ["absent", "empty", "interrupted"])
def test_teacher_base_trained_into_a_new_folder(tmp_path, world, leftover):
    base = tmp_path / "new-base"
    if leftover != "absent":
        base.mkdir()
    if leftover == "interrupted":  # train_base stopped after the init, while writing the weights
        shutil.copytree(world["base"], base / "init")
        (base / (WEIGHTS_FILE + ".tmp")).write_bytes(b"half")
    with pytest.raises(Reached):  # train_base
        main(_teacher(base, tmp_path / "t"))


def test_teacher_out_holds_the_base(capsys, world):
    _fails(capsys, _teacher(world["base"], world["base"]), world["base"], "'base'")


@pytest.mark.parametrize("command", ["audit", "compare", "eval"])
def test_readers_refuse_a_foreign_folder(capsys, tmp_path, world, command):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.txt").write_text("x")
    argv = {"audit": ["audit", junk], "eval": ["eval", junk],
            "compare": ["compare", world["teacher"], junk, "--out", tmp_path / "o"]}[command]
    _fails(capsys, argv, junk / CONFIG_FILE, "missing")


@pytest.mark.parametrize("damage", [b"\xff\xfe binary", b"[analysis\n", b"analysis = 3\n"])
def test_compare_damaged_run_spec(capsys, tmp_path, damage):
    """A teacher in a run folder brings the run's [analysis] settings; a damaged spec.toml is one line."""
    run = tmp_path / "run"
    _model(run / "base", "base", lineage={"init": "init"})
    teacher = _model(run / "teacher" / "backdoor", "teacher", organism="backdoor", lineage={"base": "../../base"})
    (run / "spec.toml").write_bytes(damage)
    _fails(capsys, ["compare", teacher, teacher, "--out", tmp_path / "o"], run / "spec.toml")
