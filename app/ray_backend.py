"""The Ray executor backend: a stage's jobs as Ray tasks, on one machine or a cluster.

Jobs are the same module-level functions the local pool runs (:class:`app.executor.Job`),
each a task that asks for one CPU and runs with one torch thread, exactly as in a local
worker, so the results are bit-identical to the local backend's. Without an address a
private Ray instance starts on 127.0.0.1 with ``workers`` CPUs and stops with the run; with
``address`` the run joins an existing cluster (``ray start --head`` elsewhere) and leaves it
running; a cluster on this machine's loopback address (``127.0.0.1:PORT``, as in the tests)
is joined on loopback too. Every task records the node it ran on (:attr:`RayExecutor.placements`).
"""

from __future__ import annotations

import os
from typing import Any

from app.executor import JOB_THREADS, Job
from distill.progress import progress

SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch for clusters confined to one machine: "0" keeps every address on loopback."""
OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""A private instance's object store: jobs exchange only small results (files hold the rest)."""


def _task(fn, kwargs: dict, threads: int):
    """One job inside a Ray worker: (result, id of the node it ran on)."""
    import ray
    import torch
    torch.set_num_threads(threads)
    return fn(**kwargs), ray.get_runtime_context().get_node_id()


class RayExecutor:
    """Runs jobs as Ray tasks (``--executor ray``; ``--ray-address`` joins a cluster)."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None):
        self.workers, self.address = workers, address
        self.node_ip = address.rsplit(":", 1)[0] if address and address.startswith("127.") else None
        """The driver's own address: loopback for a cluster on loopback (else Ray picks this
        machine's network address, which a loopback cluster does not listen on)."""
        self.placements: dict[str, str] = {}
        """Job name -> id of the Ray node that ran it (every job of this executor's life)."""
        self._started = False

    def _connect(self):
        if self.address is None or self.node_ip:
            # Ray turns 127.0.0.1 into this machine's network address (so that other machines
            # could reach it) unless its single-machine switch is set, before Ray is imported
            os.environ.setdefault(SINGLE_MACHINE_ENV, "0")
        import ray
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False, _node_ip_address=self.node_ip)
            else:  # a private instance on the loopback address only
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False,
                         configure_logging=False, object_store_memory=OBJECT_STORE_BYTES,
                         _node_ip_address="127.0.0.1")
            self._started = True
        return ray

    def run(self, jobs: list[Job], desc: str) -> dict[str, Any]:
        """Submit every job, gather the results as they finish; the first failure is re-raised."""
        if not jobs:
            return {}
        ray = self._connect()
        task = ray.remote(num_cpus=1, max_retries=0)(_task)
        refs = {task.remote(j.fn, j.kwargs, JOB_THREADS): j.name for j in jobs}
        results: dict[str, Any] = {}
        pending = list(refs)
        with progress(total=len(jobs), desc=desc) as bar:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        value, node = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        for other in pending:
                            ray.cancel(other, force=True)
                        raise exc.as_instanceof_cause() from None
                    results[refs[ref]] = value
                    self.placements[refs[ref]] = node
                    bar.update(1)
        return results

    def close(self) -> None:
        """Stop the private instance (or disconnect from the cluster) if this executor connected."""
        if self._started:
            import ray
            ray.shutdown()
            self._started = False
