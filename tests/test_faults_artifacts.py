"""Fault injection on stored artifacts: damage is detected, named and repaired, never used.

Unit tests of the stage manifests (app.stages) on tiny fake stages, and end-to-end cases on
a copy of the finished tiny run (conftest ``tiny_run``): a rerun after damage redoes exactly
the damaged stages and ends with the same weights and the same summary.json as the intact
run (the pipeline is deterministic on CPU); ``doublebind verify`` names the damaged files
without changing anything; ``doublebind report`` refuses damaged results.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from app.cli import main
from app.pipeline import run_experiment
from app.runlock import run_lock
from app.spec import load_spec
from app.stages import check_stage, mark_done, pending
from distill.integrity import ArtifactError, load_tensors, save_tensors
from distill.store import sha256_file

REPO = Path(__file__).resolve().parents[1]


# ---- helpers -----------------------------------------------------------------------------------

def flip_byte(path: Path, offset: int = -64) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: int = 100) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def summary(run: Path) -> dict:
    return json.loads((run / "report" / "summary.json").read_text())


def weights(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): sha256_file(p) for p in sorted(run.rglob("model.safetensors"))}


def stage_seconds_of(run: Path) -> dict[str, str]:
    """finished_at of every stage: which stages a rerun redid."""
    return {str(p.parent.relative_to(run)): json.loads(p.read_text())["finished_at"] + str(json.loads(p.read_text())["seconds"])
            for p in run.rglob("stage.json")}


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    out = tmp_path / "tiny"
    shutil.copytree(tiny_run, out)
    return out


# ---- self-verifying tensors ----------------------------------------------------------------------

def test_tensor_files_verify_their_content(tmp_path):
    path = tmp_path / "t.safetensors"
    save_tensors(path, {"a": torch.arange(12.0).reshape(3, 4), "b": torch.ones(2, dtype=torch.bool)})
    tensors, _ = load_tensors(path)
    assert torch.equal(tensors["a"], torch.arange(12.0).reshape(3, 4))
    flip_byte(path, -3)  # inside the data of the last tensor: the header still parses
    with pytest.raises(ArtifactError, match="does not match the digest"):
        load_tensors(path)
    truncate(path, 20)
    with pytest.raises(ArtifactError, match="unreadable"):
        load_tensors(path)
    with pytest.raises(ArtifactError, match="missing"):
        load_tensors(tmp_path / "none.safetensors")


# ---- stage manifests (fake stages: fast) -------------------------------------------------------------

def _stage(root: Path, name: str, content: str, reads=()) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text(content)
    mark_done(folder, name, f"h-{name}", 0.0, root=root, artifacts=[folder], reads=reads)
    return folder


def test_a_damaged_or_deleted_artifact_undoes_its_stage(tmp_path):
    up = _stage(tmp_path, "up", "v1")
    assert check_stage(up, "h-up").done
    (up / "out.txt").write_text("v2")  # same size, other bytes
    check = check_stage(up, "h-up")
    assert not check.done and "sha256" in check.problems[0] and "out.txt" in check.problems[0]
    (up / "out.txt").unlink()
    assert "missing" in check_stage(up, "h-up").problems[0]


def test_a_changed_upstream_result_redoes_everything_downstream(tmp_path):
    up = _stage(tmp_path, "up", "v1")
    down = _stage(tmp_path, "down", "d", reads=[up])
    assert check_stage(down, "h-down").done
    _stage(tmp_path, "up", "v1")  # redone with the same result: downstream still valid
    assert check_stage(down, "h-down").done
    _stage(tmp_path, "up", "other")  # redone with a different result
    check = check_stage(down, "h-down")
    assert not check.done and "redone with a different result" in check.problems[0]


def test_pending_clears_and_names_damaged_stages(tmp_path, caplog):
    a, b = _stage(tmp_path, "a", "x"), _stage(tmp_path, "b", "y")
    (b / "out.txt").write_text("z")
    planned = [("job-a", a, "h-a"), ("job-b", b, "h-b"), ("job-c", tmp_path / "c", "h-c")]
    with caplog.at_level("WARNING"):
        todo = pending(planned, what="test")
    assert todo == ["job-b", "job-c"]
    assert not b.exists()  # cleared before redoing, so nothing damaged is reused
    assert "b/out.txt" in caplog.text and "damaged" in caplog.text
    # a stage finished from other inputs is stale: redone without a complaint
    assert not check_stage(a, "other-hash").done and not check_stage(a, "other-hash").problems


# ---- end to end on the tiny run -----------------------------------------------------------------------

@pytest.mark.slow
def test_every_damage_is_named_then_redone_bit_identically(tiny_run, run_copy, capsys):
    """One rerun repairs all of these at once (one rerun keeps the suite fast):
    truncated student weights, flipped bytes in an SAE and in activations, a deleted SAE file,
    a damaged teacher-output cache with a deleted student (retrained from the recomputed
    cache, so with the same weights), a truncated analysis result."""
    truncate(run_copy / "students" / "backdoor.logit-kd" / "model.safetensors")
    flip_byte(run_copy / "probes" / "backdoor.positive-control" / "saes" / "blocks.1.hook_resid_post"
              / "sae_weights.safetensors")
    flip_byte(run_copy / "acts" / "teacher-backdoor" / "activations.safetensors")
    (run_copy / "probes" / "backdoor.negative-control" / "saes" / "blocks.1.hook_resid_post.seed1"
     / "sae_weights.safetensors").unlink()
    cache = next((run_copy / "cache").glob("*.safetensors"))
    flip_byte(cache)
    shutil.rmtree(run_copy / "students" / "backdoor.positive-control")
    truncate(run_copy / "analysis" / "students" / "backdoor.negative-control.json", 50)
    html = run_copy / "report" / "index.html"
    html.write_text(html.read_text().replace("doublebind", "DOUBLEBIND", 1))
    before = stage_seconds_of(run_copy)

    assert main(["verify", str(run_copy), "-q"]) == 1
    out = capsys.readouterr().out
    for name in ("backdoor.logit-kd/model.safetensors", "backdoor.positive-control/saes", "teacher-backdoor/activations",
                 "seed1/sae_weights.safetensors", "cache", "backdoor.negative-control.json"):
        assert name in out, (name, out)
    assert stage_seconds_of(run_copy) == {k: v for k, v in before.items()}  # verify changes nothing

    assert main(["report", str(run_copy)]) == 2  # refuses to report from damaged results
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "backdoor.negative-control.json" in err and "doublebind run" in err

    run_experiment(load_spec("tiny"), run_copy)  # the command the error names
    assert weights(run_copy) == weights(tiny_run)
    assert summary(run_copy) == summary(tiny_run)
    assert html.read_bytes() == (tiny_run / "report" / "index.html").read_bytes()
    load_tensors(cache)  # the cache was recomputed, not used
    after = stage_seconds_of(run_copy)
    redone = {k for k in before if before[k] != after.get(k)}
    assert {"students/backdoor.logit-kd", "probes/backdoor.positive-control", "probes/teacher-backdoor",
            "probes/backdoor.negative-control", "analysis/stages/backdoor.negative-control"} <= redone
    assert "base" not in redone and "teacher/backdoor" not in redone  # intact stages are kept
    assert main(["verify", str(run_copy), "-q"]) == 0
    assert main(["report", str(run_copy)]) == 0


# ---- one writer per run folder -----------------------------------------------------------------------

def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    out = tmp_path / "run"
    with run_lock(out):
        assert main(["run", "tiny", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"pid {os.getpid()}" in err
    # released on exit: the holder's death frees it too (the kernel drops flock on exit)
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time; from app.runlock import run_lock
        with run_lock({str(out)!r}):
            print("locked", flush=True); time.sleep(60)""")], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["report", str(out)]) == 2 and f"pid {holder.pid}" in capsys.readouterr().err
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        with run_lock(out):
            pass
    finally:
        holder.kill()


_ORPHANS = """
import sys
from app.executor import Job, run_jobs
from orphan_jobs import sleepy_job
run_jobs([Job(f"j{i}", sleepy_job, {"folder": sys.argv[1], "i": i}) for i in range(2)], 2, "t")
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_workers_die_with_the_parent(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", _ORPHANS, str(tmp_path)], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'tests'}"})
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("pid*"))) < 2:
            assert time.monotonic() < deadline and parent.poll() is None, "workers never started"
            time.sleep(0.1)
        pids = [int(p.read_text()) for p in tmp_path.glob("pid*")]
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(p) for p in pids)
        assert not list(tmp_path.glob("late*"))
    finally:
        parent.kill()
        for p in tmp_path.glob("pid*"):
            try:
                os.kill(int(p.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
