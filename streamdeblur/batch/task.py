"""One file of a batch, as a worker runs it: `run_job`, with every outcome turned into a record.

The same function runs in a local worker process and in a Ray task, so both behave alike.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

from streamdeblur.batch.discovery import InputFile
from streamdeblur.batch.manifest import DONE, FAILED, INTERRUPTED, FileRecord
from streamdeblur.errors import StreamdeblurError
from streamdeblur.pipeline.job import RunOptions, run_job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileTask:
    """An input and the full `run` options for it (input, output, rollback on stop set)."""

    item: InputFile
    options: RunOptions


def one_line(exc: Exception) -> str:
    """An unexpected error as one line: its type and the first line of its message."""
    reason = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {reason}".rstrip(": ")


def failed(task: FileTask, error: str, wall_s: float = 0.0) -> FileRecord:
    return FileRecord(task.item.rel, task.item.size, task.item.mtime_ns, FAILED, wall_s=round(wall_s, 3), error=error)


def process_file(task: FileTask, stop: threading.Event) -> FileRecord:
    """Never raises for a bad file: one bad file is recorded and the batch goes on."""
    record = FileRecord(task.item.rel, task.item.size, task.item.mtime_ns, INTERRUPTED)
    if stop.is_set():  # queued before the stop, started after it: not begun at all
        return record
    started = time.monotonic()
    try:
        report = run_job(task.options, stop)
    except StreamdeblurError as exc:
        error = str(exc)
    except Exception as exc:  # any failure of one file is that file's failure
        log.debug("%s failed", task.item.rel, exc_info=True)
        error = one_line(exc)
    else:
        return replace(
            record,
            status=INTERRUPTED if report.interrupted else DONE,
            frames_in=report.frames_in,
            frames_out=report.frames_out,
            wall_s=report.wall_s,
            backend=report.backend,
            device=report.device,
            precision=report.precision,
            model=report.model,
        )
    return failed(task, error, time.monotonic() - started)
