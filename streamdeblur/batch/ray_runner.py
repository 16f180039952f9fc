"""Ray: one task per file, with declared resources, so Ray spreads files over every GPU and node.

A file is never split: one file is one task, so frames and audio stay together. Ray is
imported only here and only when asked for (`pip install streamdeblur[ray]`). A stop reaches
running tasks through a small flag actor that each task polls; the task then rolls its file
back like a local worker does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

from streamdeblur.batch.manifest import FileRecord
from streamdeblur.batch.task import FileTask, failed, one_line, process_file
from streamdeblur.errors import BadUsage
from streamdeblur.memory import keep_freed_memory

log = logging.getLogger(__name__)

_POLL_S = 0.5
_CLOSE_TIMEOUT_S = 30.0


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise BadUsage("--ray needs Ray: pip install 'streamdeblur[ray]'") from None
    return ray


def task_resources(backend: str, device: str, cluster_gpus: float, gpus_per_task: float) -> dict[str, float]:
    """One CPU per file; a GPU share when the file runs on CUDA (`auto` does where Ray has GPUs)."""
    on_cuda = device.startswith("cuda") or (device == "auto" and cluster_gpus > 0)
    return {"num_cpus": 1, "num_gpus": gpus_per_task if on_cuda and backend != "passthrough" else 0}


class _StopFlag:
    """Set once by the driver on SIGINT; polled by running tasks."""

    def __init__(self) -> None:
        self._set = False

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set


def _watch(flag: Any, stop: threading.Event, done: threading.Event) -> None:
    import ray

    while not ray.get(flag.is_set.remote()):
        if done.wait(_POLL_S):
            return
    stop.set()


def _run_file(task: FileTask, flag: Any, setup: Callable[[], None] | None) -> FileRecord:
    """The body of a Ray task; the record says which resources Ray gave it."""
    import ray
    import torch

    keep_freed_memory()  # Ray's worker process, already threaded: later threads share one heap
    if setup is not None:
        setup()
    assigned = ray.get_runtime_context().get_assigned_resources()
    torch.set_num_threads(max(1, int(assigned.get("CPU", 1))))  # as many threads as CPUs Ray gave
    stop, done = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_watch, args=(flag, stop, done), daemon=True)
    watcher.start()
    try:
        record = process_file(task, stop)
    finally:
        done.set()
        watcher.join()
    return replace(record, resources=assigned)


class RayRunner:
    """Files as Ray tasks on the cluster at `address` (`local`: start one on this machine)."""

    def __init__(
        self,
        address: str,
        backend: str,
        device: str,
        gpus_per_task: float = 1.0,
        max_in_flight: int | None = None,
        setup: Callable[[], None] | None = None,
        verbose: bool = False,
    ) -> None:
        self._ray = ray = import_ray()
        local = {"include_dashboard": False} if address == "local" else {}
        try:
            ray.init(address=address, logging_level=logging.INFO if verbose else logging.WARNING, **local)
        except ConnectionError as exc:
            raise BadUsage(f"cannot reach the Ray cluster at {address}: {one_line(exc)}") from None
        self._tasks: dict[Any, FileTask] = {}
        cluster = ray.cluster_resources()
        self.resources = task_resources(backend, device, cluster.get("GPU", 0.0), gpus_per_task)
        if self.resources["num_gpus"] > cluster.get("GPU", 0.0):
            self.close()
            raise BadUsage(f"the Ray cluster has no GPU for --device {device}")
        # Enough tasks queued that no slot waits for the driver, few enough that a stop is quick.
        by_gpu = cluster.get("GPU", 0.0) / self.resources["num_gpus"] if self.resources["num_gpus"] else None
        slots = int(by_gpu if by_gpu is not None else cluster.get("CPU", 1.0))
        self.capacity = max_in_flight or max(1, 2 * slots)
        self._remote = ray.remote(_run_file).options(**self.resources)
        self._flag = ray.remote(num_cpus=0)(_StopFlag).remote()
        self._setup = setup
        log.info("Ray: %s, %d tasks at a time, each with %s", _describe(cluster), self.capacity, self.resources)

    def submit(self, task: FileTask) -> None:
        if self.resources["num_gpus"]:  # Ray picks the GPU and makes it the task's only one
            task = replace(task, options=replace(task.options, spec=replace(task.options.spec, device="cuda")))
        self._tasks[self._remote.remote(task, self._flag, self._setup)] = task

    def finished(self, timeout: float) -> list[FileRecord]:
        """Records of the tasks finished within `timeout` seconds; a lost task fails only its file."""
        ray = self._ray
        if not self._tasks:
            return []
        ready, rest = ray.wait(list(self._tasks), num_returns=1, timeout=timeout)
        if ready and rest:
            ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
        records = []
        for ref in ready:
            task = self._tasks.pop(ref)
            try:
                records.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                records.append(failed(task, f"the Ray task failed: {one_line(exc)}"))
        return records

    def stop(self) -> None:
        self._flag.set.remote()

    def close(self) -> None:
        """Disconnects (and stops a local cluster); tasks still running first roll their files back."""
        if self._tasks:
            self.stop()
            self._ray.wait(list(self._tasks), num_returns=len(self._tasks), timeout=_CLOSE_TIMEOUT_S)
        self._ray.shutdown()


def _describe(cluster: dict[str, float]) -> str:
    return ", ".join(f"{cluster.get(name, 0):g} {name}" for name in ("CPU", "GPU"))
