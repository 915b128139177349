"""The Ray backend: the tiny spec across a real two-node Ray cluster on the loopback address
(ray.cluster_utils.Cluster: a head and a second node, one CPU each, their own resources)
gives bit for bit the local backend's run (conftest ``tiny_run``), with jobs on both nodes.

To keep the suite short the Ray run resumes from the local run's finished base and teachers
(copied with exactly the files their stage manifests list): every later stage (students,
audits, features, comparisons, report; many jobs per stage) runs on the cluster."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from app.ray_backend import SINGLE_MACHINE_ENV

# before Ray is imported: every address of the test cluster and its driver stays on loopback
os.environ.setdefault(SINGLE_MACHINE_ENV, "0")

from app.executor import EXECUTORS, LocalExecutor, make_executor
from app.pipeline import run_experiment
from app.spec import load_spec
from distill.store import sha256_file

ray = pytest.importorskip("ray")  # a declared dependency: this only guards a broken install


def weights(run: Path) -> dict[str, str]:
    return {str(p.relative_to(run)): sha256_file(p) for p in sorted(run.rglob("model.safetensors"))}


def test_the_registry_names_both_backends():
    assert set(EXECUTORS) == {"local", "ray"}
    assert isinstance(make_executor("local", 2), LocalExecutor)
    with pytest.raises(ValueError, match="allowed: local, ray"):
        make_executor("dask", 2)
    with pytest.raises(ValueError, match="--executor ray"):
        make_executor("local", 2, address="127.0.0.1:6379")


def upstream_only(run: Path, dest: Path) -> Path:
    """A copy of ``run`` holding only its finished base and teacher stages (their manifests and
    the artifacts the manifests list), so that a run into ``dest`` redoes everything after them."""
    markers = [run / "base" / "stage.json", *sorted((run / "teacher").glob("*/stage.json"))]
    assert len(markers) > 1, f"no teacher stages under {run}"
    keep = [run / "spec.toml"]
    for marker in markers:
        keep += [marker, *(run / a for a in json.loads(marker.read_text())["artifacts"])]
    for src in keep:
        target = dest / src.relative_to(run)
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
    return dest


@pytest.fixture
def cluster():
    from ray.cluster_utils import Cluster
    loopback = {"node_ip_address": "127.0.0.1", "include_dashboard": False, "num_cpus": 1,
                "object_store_memory": 128 * 1024 * 1024}
    c = Cluster(initialize_head=True, connect=False, head_node_args={**loopback, "resources": {"head": 1}})
    try:
        c.add_node(**loopback, resources={"second": 1})
        c.wait_for_nodes(timeout=60)
        yield c
    finally:
        c.shutdown()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_tiny_on_two_ray_nodes_equals_the_local_run(tiny_run, tmp_path, cluster):
    assert cluster.address.startswith("127.0.0.1:")
    out = upstream_only(tiny_run, tmp_path / "tiny")
    upstream = {p: p.read_text() for p in out.rglob("stage.json")}  # base and teacher manifests
    executor = make_executor("ray", 2, address=cluster.address)
    try:
        run_experiment(load_spec("tiny"), out, executor=executor)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert all(n["NodeManagerAddress"] == "127.0.0.1" for n in ray.nodes())
    finally:
        executor.close()
    assert len(nodes) == 2
    assert set(executor.placements.values()) == nodes  # jobs ran on both nodes
    assert {p: p.read_text() for p in upstream} == upstream  # base and teachers were not redone
    assert any(p.startswith("students/") for p in weights(out))
    assert weights(out) == weights(tiny_run)
    assert json.loads((out / "report" / "summary.json").read_text()) == \
        json.loads((tiny_run / "report" / "summary.json").read_text())
