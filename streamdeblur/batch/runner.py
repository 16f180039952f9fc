"""A batch from start to end: find the inputs, skip what is done, hand out the rest, record outcomes.

Files go to an executor (local worker processes or Ray tasks) at most `capacity` at a time,
so a stop only has to wait for the files in flight. Every outcome is written to the
manifest here, in this one process, as it arrives.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from streamdeblur.batch.discovery import InputFile, check_layout, check_pattern, find_inputs, output_path
from streamdeblur.batch.manifest import DONE, FAILED, INTERRUPTED, FileRecord, Manifest
from streamdeblur.batch.progress import BatchProgress
from streamdeblur.batch.ray_runner import import_ray
from streamdeblur.batch.task import FileTask
from streamdeblur.errors import BadUsage
from streamdeblur.inference.spec import BackendSpec
from streamdeblur.io import partial_path
from streamdeblur.io.image_folder import IMAGE_SUFFIXES
from streamdeblur.pipeline.job import RunOptions, check_options

log = logging.getLogger(__name__)

_POLL_S = 0.2
# Streams one GPU runs side by side by default: one decodes and encodes while the other computes.
_WORKERS_PER_GPU = 2


class Executor(Protocol):
    capacity: int

    def submit(self, task: FileTask) -> None: ...

    def finished(self, timeout: float) -> list[FileRecord]: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class BatchOptions:
    input_dir: Path
    output_dir: Path
    job: RunOptions  # the `run` options every file gets; input and output are set per file
    pattern: str | None = None  # --glob; None: every file with a video suffix
    workers: int | None = None  # local: processes (default 1 on CPU, 2 per GPU); Ray: tasks in flight
    ray_address: str | None = None
    gpus_per_task: float = 1.0
    progress: bool = True
    worker_setup: Callable[[], None] | None = None  # run first in each worker (logging, as the CLI has it)
    verbose: bool = False


@dataclass
class BatchSummary:
    input_dir: Path
    output_dir: Path
    manifest: Path
    records: list[FileRecord] = field(default_factory=list)  # this run's outcomes, in order
    skipped: int = 0  # done by an earlier run
    wall_s: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.records)

    def to_dict(self) -> dict[str, Any]:
        """The `--report` totals, with the run report's keys where they make sense for a batch.

        Frames count the files finished in this run: a rolled-back file's frames are nowhere.
        """
        done = [r for r in self.records if r.status == DONE]
        frames_out = sum(r.frames_out for r in done)
        ran = next((r for r in self.records if r.backend), None)
        return {
            "files_total": len(self.records) + self.skipped,
            "files_done": self.count(DONE), "files_failed": self.count(FAILED),
            "files_interrupted": self.count(INTERRUPTED), "files_skipped": self.skipped,
            "frames_in": sum(r.frames_in for r in done), "frames_out": frames_out,
            "wall_s": round(self.wall_s, 3), "fps": round(frames_out / self.wall_s, 3) if self.wall_s > 0 else 0.0,
            "backend": ran.backend if ran else None, "device": ran.device if ran else None,
            "precision": ran.precision if ran else None, "model": ran.model if ran else None,
            "input": str(self.input_dir), "output": str(self.output_dir), "manifest": str(self.manifest),
            "interrupted": self.interrupted,
            "errors": {r.input: r.error for r in self.records if r.status == FAILED},
        }  # fmt: skip

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _local_pool(opts: BatchOptions, device: torch.device) -> Executor:
    from streamdeblur.batch.local_pool import LocalPool

    # One worker per GPU index only when the device leaves the index open (`auto`, `cuda`).
    gpus = torch.cuda.device_count() if device.type == "cuda" and device.index is None else 0
    workers = opts.workers or (_WORKERS_PER_GPU * max(gpus, 1) if device.type == "cuda" else 1)
    return LocalPool(workers, max(1, _cores() // workers), gpus, opts.worker_setup)


def _ray_runner(opts: BatchOptions) -> Executor:
    from streamdeblur.batch.ray_runner import RayRunner

    return RayRunner(
        opts.ray_address or "local",
        opts.job.spec.backend,
        opts.job.spec.device,
        opts.gpus_per_task,
        opts.workers,
        opts.worker_setup,
        opts.verbose,
    )


def _preflight(opts: BatchOptions, first: InputFile, clip: bool) -> tuple[BackendSpec, torch.device | None]:
    """Mistakes every file would share fail the batch once, here, before anything is written.
    `clip`: whether any input is a video (then, without --weights, every file gets the video
    model; a batch of pictures keeps the single-frame one).

    Returns the backend spec every file runs and the device (None with Ray: it is the
    workers'). On the CPU the backend is built once here, so `auto` is measured and any ONNX
    export made once, not by every worker at the same time, and the spec is pinned to what it
    chose. On CUDA nothing is built here: a CUDA context in this process would only hold GPU
    memory the workers need.
    """
    from streamdeblur.inference import BACKENDS
    from streamdeblur.inference.torch_backend import resolve_device
    from streamdeblur.models import load_checkpoint, resolve_weights

    job = opts.job
    check_options(replace(job, input=str(first.path), output=str(first.output_path(opts.output_dir))))
    if opts.ray_address:
        import_ray()
    spec = job.spec.for_input("clip" if clip else "picture")
    device = None if opts.ray_address else resolve_device(spec.device)
    if device is None or device.type == "cuda":
        if spec.backend not in BACKENDS:
            raise BadUsage(f"unknown backend {spec.backend!r}; choose from {', '.join(BACKENDS)}")
        if spec.backend != "passthrough":
            load_checkpoint(resolve_weights(spec.weights))  # unreadable weights fail here, once
        return spec, device
    return spec.pinned(spec.create()), device


def _plan(opts: BatchOptions) -> list[InputFile]:
    if not opts.input_dir.is_dir():
        raise BadUsage(f"INPUT_DIR {opts.input_dir} is not a folder")
    if opts.output_dir.exists() and not opts.output_dir.is_dir():
        raise BadUsage(f"OUTPUT_DIR {opts.output_dir} is not a folder")
    if opts.workers is not None and opts.workers < 1:
        raise BadUsage("--workers must be at least 1")
    if opts.gpus_per_task <= 0:
        raise BadUsage("--gpus-per-task must be positive")
    check_pattern(opts.pattern)
    inputs = find_inputs(opts.input_dir, opts.pattern)
    if not inputs:
        what = f"match --glob {opts.pattern!r}" if opts.pattern else "have a video suffix"
        raise BadUsage(f"no files under {opts.input_dir} {what}")
    check_layout(opts.input_dir, opts.output_dir, opts.pattern, inputs)
    return inputs


def _task(opts: BatchOptions, item: InputFile, manifest: Manifest) -> FileTask:
    output = item.output_path(opts.output_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    # An output this batch wrote before (the input changed, or it was redone) is replaced;
    # anything else at the path is kept unless --overwrite.
    job = replace(
        opts.job,
        input=str(item.path),
        output=str(output),
        overwrite=opts.job.overwrite or manifest.knows(item),
        progress=False,
        report=None,
        keep_partial_on_stop=False,
    )
    return FileTask(item, job)


def run_batch(opts: BatchOptions, stop: threading.Event) -> BatchSummary:
    """Process every selected input not yet done; returns when all are recorded or after a stop."""
    started = time.monotonic()
    opts.job.spec.check()  # a contradiction in the flags is reported before any file is looked at
    inputs = _plan(opts)
    clip = any(item.path.suffix.lower() not in IMAGE_SUFFIXES for item in inputs)
    spec, device = _preflight(opts, inputs[0], clip)
    opts = replace(opts, job=replace(opts.job, spec=spec))
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    with Manifest(opts.output_dir) as manifest:
        summary = BatchSummary(opts.input_dir, opts.output_dir, manifest.path)
        todo = [item for item in inputs if not manifest.is_done(item, item.output_path(opts.output_dir))]
        summary.skipped = len(inputs) - len(todo)
        if summary.skipped:
            log.info("%d of %d files are done already (manifest %s)", summary.skipped, len(inputs), manifest.path)
        tasks = deque(_task(opts, item, manifest) for item in todo)
        if tasks:
            executor = _local_pool(opts, device) if device is not None else _ray_runner(opts)
            try:
                _drive(executor, tasks, manifest, summary, stop, BatchProgress(todo, opts.progress))
            finally:
                executor.close()
    summary.wall_s = time.monotonic() - started
    return summary


def _drive(
    executor: Executor,
    tasks: deque[FileTask],
    manifest: Manifest,
    summary: BatchSummary,
    stop: threading.Event,
    progress: BatchProgress,
) -> None:
    in_flight, stopping = 0, False
    # Log lines are printed above the progress bar instead of through it.
    with logging_redirect_tqdm(), closing(progress):
        while tasks or in_flight:
            if stop.is_set() and not stopping:
                stopping = True
                tasks.clear()  # hand out nothing more; what runs stops and rolls back
                executor.stop()
            while tasks and in_flight < executor.capacity:
                executor.submit(tasks.popleft())
                in_flight += 1
            for record in executor.finished(_POLL_S):
                in_flight -= 1
                if record.status != DONE:  # a worker that died cannot clean up after itself
                    partial_path(output_path(summary.output_dir, record.input)).unlink(missing_ok=True)
                manifest.append(record)
                summary.records.append(record)
                progress.update(record)
                if record.status == FAILED:
                    log.warning("%s failed: %s", record.input, record.error)
    summary.interrupted = stop.is_set()  # as `run` reports it, even if the last file got done
