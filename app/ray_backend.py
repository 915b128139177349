"""The Ray executor backend: jobs as Ray tasks, on one machine or a cluster.

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

from app.executor import JOB_THREADS, Executor, Job

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


class RayExecutor(Executor):
    """Runs jobs as Ray tasks (``--executor ray``; ``--ray-address`` joins a cluster)."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None):
        self.workers, self.address = workers, address
        self.node_ip = address.rsplit(":", 1)[0] if address and address.startswith("127.") else None
        """The driver's own address: loopback for a cluster on loopback (else Ray picks this
        machine's network address, which a loopback cluster does not listen on)."""
        self.placements: dict[str, str] = {}
        """Job name -> id of the Ray node that ran it (every job of this executor's life)."""
        self.results = {}
        self._started = False
        self._task = None
        self._refs: dict = {}

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

    @property
    def slots(self) -> int:
        """Jobs that run at once: every CPU of the instance or cluster (one per job)."""
        ray = self._connect()
        return max(1, int(ray.cluster_resources().get("CPU", self.workers)))

    def submit(self, job: Job) -> None:
        ray = self._connect()
        if self._task is None:
            self._task = ray.remote(num_cpus=1, max_retries=0)(_task)
        self._refs[self._task.remote(job.fn, job.kwargs, JOB_THREADS)] = job.name

    def next_done(self) -> str:
        """Wait for a submitted task to finish; its name (its exception is raised here)."""
        import ray
        done, _ = ray.wait(list(self._refs), num_returns=1)
        ref = done[0]
        name = self._refs.pop(ref)
        try:
            value, node = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None
        self.results[name] = value
        self.placements[name] = node
        return name

    def cancel(self) -> None:
        """Cancel every submitted task that has not finished."""
        if self._refs:
            import ray
            for ref in self._refs:
                ray.cancel(ref, force=True)
            self._refs.clear()

    def close(self) -> None:
        """Stop the private instance (or disconnect from the cluster) if this executor connected."""
        self.cancel()
        if self._started:
            import ray
            ray.shutdown()
            self._started, self._task = False, None
