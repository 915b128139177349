"""Shared test fixtures: a fixed seed for every test, tiny configs, and tiny trained
models built once per test session (seconds on CPU) and shared read-only by all tests."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from distill.evals import EvalConfig
from distill.models import ModelConfig
from distill.teacher import TeacherSpec, train_base, train_teacher
from distill.train import TrainConfig

# one thread: tiny models gain nothing from two, and two OpenMP threads on cores shared
# with other processes run 10-30x slower (measured: 30 tiny steps 0.6 s vs 11-16 s)
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def cli_fails(capsys, argv: list, *needles) -> str:
    """Run ``doublebind argv`` in-process; assert exit 2 with ONE ``error:`` line on stderr, no
    traceback, naming every needle. Returns stderr."""
    from app.cli import main
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, (argv, code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in err, (needle, err)
    return err


def tiny_model_config() -> ModelConfig:
    return ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=128)


def tiny_spec() -> TeacherSpec:
    """Trains a base in ~6 s and a teacher in ~3 s; sort/reverse ~1.0, add ~0 (too few steps)."""
    return TeacherSpec(model=tiny_model_config(),
                       base_train=TrainConfig(steps=600, batch_size=64, lr=1e-2),
                       teacher_train=TrainConfig(steps=300, batch_size=64, lr=5e-3))


def tiny_eval_config() -> EvalConfig:
    return EvalConfig(n_clean=200, n_eliciting=100, n_queries=50)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """A runs-like folder holding tiny models, filled lazily by the fixtures below."""
    return tmp_path_factory.mktemp("tiny_run")


@pytest.fixture(scope="session")
def tiny_base(tiny_dir):
    """Folder of a tiny trained base (with its random init in base/init). Do not modify."""
    return train_base(tiny_spec(), 0, tiny_dir / "base")


_TEACHERS: dict[str, object] = {}


@pytest.fixture(scope="session")
def tiny_teacher(tiny_dir, tiny_base):
    """tiny_teacher(organism) -> folder of a tiny teacher, trained once per session."""
    def get(organism: str = "backdoor"):
        if organism not in _TEACHERS:
            _TEACHERS[organism] = train_teacher(tiny_spec(), organism, tiny_base, 0,
                                                tiny_dir / f"teacher-{organism}")
        return _TEACHERS[organism]
    return get


def _shared(tmp_path_factory, name: str, build, done: str):
    """A folder ``name`` built once per test session and shared by the xdist workers: it lives
    in the folder above their own temp folders, and the first worker to need it builds it
    under a file lock while the other waits (xdist's documented pattern for session data);
    ``done`` is the file whose presence says it is finished. Shared read-only."""
    import fcntl
    import os
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out = root / "shared-runs" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(root / f"shared-runs-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / done).is_file():
            build(out)
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A finished run of the built-in ``tiny`` spec (app.pipeline), built once per test session
    (~1-2 min), shared by the workers (see _shared): copy it before changing anything."""
    from app.pipeline import run_experiment
    from app.spec import load_spec
    return _shared(tmp_path_factory, "tiny", lambda out: run_experiment(load_spec("tiny"), out),
                   "report/summary.json")


TEXT_WORLD_TEST = {"base_train": {"steps": 800, "batch_size": 64, "lr": 3e-3},
                   "teacher_train": {"steps": 300, "batch_size": 64, "lr": 1e-3},
                   "n_base_examples": 6000, "n_teacher_examples": 2000, "n_rows": 600}
"""A smaller text-tiny world (about 20 s): base, backdoor and sabotage teachers, organism files."""


@pytest.fixture(scope="session")
def text_world(tmp_path_factory):
    """The tiny text world (distill.text.world), shared read-only by the workers."""
    from distill.text.world import WORLD_FILE, WorldConfig, build_world
    return _shared(tmp_path_factory, "text-world",
                   lambda out: build_world(out, WorldConfig(**TEXT_WORLD_TEST), log=lambda *_: None), WORLD_FILE)
