"""The Ray backend of ``longtail render --backend ray``: the pending frames as Ray tasks.

Each task renders one contiguous shard of frame indices with ``pipeline.work``, the per-frame
function of the process pool, in a Ray worker process that keeps its PyBullet engines from one
task to the next (``pipeline._worker``). The driver records each finished shard in the manifest,
so the same resume rules hold: a rerun renders only what is missing. A task whose worker process
or node dies is retried by Ray (``max_retries``); its frames are written again, atomically, with
the same bytes. The output directory must be on a filesystem every node sees: a task checks that
it can see it before rendering.

Ray is an optional extra (``pip install longtail[ray]``); it is imported only when this backend
runs.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Iterator

from longtail.errors import InputError, LongtailError, RenderError
from longtail.pipeline import Backend, FrameResult, Job, shards, work

TASK_RETRIES = 3  # attempts after a worker process or node dies, per shard


def _shard(job: Job, indices: list[int]) -> list[FrameResult]:
    """One Ray task: frames ``indices`` of ``job``, written under ``job.root`` on this node."""
    if not Path(job.root).is_dir():
        raise RenderError(f"{job.root}: not found on node {socket.gethostname()} (pid {os.getpid()}): --out must be "
                          "on a filesystem every Ray node sees (NFS, a shared volume)")
    return work(job, indices)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError("--backend", "ray", "Ray installed (pip install 'longtail[ray]')") from None
    return ray


def start(address: str | None, cpus: int | None) -> None:
    """Connect to the cluster at ``address`` ("auto": the one ``ray start`` runs here), or start
    a local Ray instance with ``cpus`` CPUs, unless this process is connected already."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address is None:
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level="WARNING")
    else:
        try:
            ray.init(address=address, logging_level="WARNING")
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise InputError("--address", address, f"a running Ray cluster (`ray start --head` prints one): {e}") \
                from None


def ray_backend(address: str | None = None, cpus: int | None = None, retries: int = TASK_RETRIES) -> Backend:
    """A backend that runs shards of the pending frames as Ray tasks of one CPU each. Connects (or
    starts a local instance) now, so a missing Ray or a wrong address fails before any output."""
    ray = _ray()
    start(address, cpus)

    def run(job: Job, todo: list[int]) -> Iterator[FrameResult]:
        total = max(1, int(ray.cluster_resources().get("CPU", 1)))
        task = ray.remote(num_cpus=1, max_retries=retries, retry_exceptions=False)(_shard)
        job_ref = ray.put(job)
        pending = [task.remote(job_ref, shard) for shard in shards(todo, total)]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    results = ray.get(ready[0])
                except ray.exceptions.RayTaskError as e:
                    if isinstance(e.cause, LongtailError):  # a bad scenario, an output no node sees
                        raise e.cause from None
                    raise
                except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                        ray.exceptions.OutOfMemoryError) as e:
                    raise RenderError(f"a Ray task failed {retries + 1} times ({type(e).__name__}); rerun the same "
                                      "command to resume") from None
                yield from results
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    return run
