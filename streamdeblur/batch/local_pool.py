"""Local parallelism: N spawned worker processes, each handed one file at a time over its own pipe.

`spawn`, because forking a process that has started torch's threads is unsafe. Each worker
has its own pipe, so when one dies (a crash, the OOM killer) the parent knows which file it
held: that file is recorded failed and a fresh worker takes its place. Workers ignore SIGINT
and SIGTERM (Ctrl-C and a service stop reach the whole process group): the parent decides,
and tells them through a shared flag.
"""

from __future__ import annotations

import ctypes
import multiprocessing as mp
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess

from streamdeblur.batch.manifest import FileRecord
from streamdeblur.batch.task import FileTask, failed, process_file
from streamdeblur.memory import keep_freed_memory

_CLOSE_TIMEOUT_S = 10.0
_POLL_S = 0.1
# What a whole process group gets (Ctrl-C, a service stop): the parent handles them for all.
_PARENTS_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    task: FileTask | None = None


def _relay(flag: ctypes.c_bool, stop: threading.Event) -> None:
    while not flag.value:
        time.sleep(_POLL_S)
    stop.set()


def _worker_main(
    conn: Connection, flag: ctypes.c_bool, threads: int, gpu: int | None, setup: Callable[[], None] | None
) -> None:
    for sig in _PARENTS_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENTS_SIGNALS)
    keep_freed_memory()  # a spawned process: the CLI's setting is not inherited
    if setup is not None:
        setup()
    import torch

    torch.set_num_threads(threads)
    if gpu is not None:
        torch.cuda.set_device(gpu)  # `cuda` (and `auto`) then mean this worker's GPU
    stop = threading.Event()
    threading.Thread(target=_relay, args=(flag, stop), daemon=True).start()
    while (task := conn.recv()) is not None:
        conn.send(process_file(task, stop))


def _died(process: BaseProcess) -> str:
    code = process.exitcode
    how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    return f"the worker process died ({how}) while processing this file"


class LocalPool:
    """`workers` processes of `threads` torch threads each; worker i uses GPU i % gpus if gpus."""

    def __init__(self, workers: int, threads: int, gpus: int = 0, setup: Callable[[], None] | None = None) -> None:
        self._context = mp.get_context("spawn")
        # A lock-free shared flag that workers poll. Not a multiprocessing.Event: its set()
        # waits for every waiter to wake, and a killed worker never does.
        self._flag = self._context.RawValue(ctypes.c_bool, False)
        self._threads, self._gpus, self._setup = threads, gpus, setup
        self._workers = [self._start(slot) for slot in range(workers)]
        self.capacity = workers

    def _start(self, slot: int) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        gpu = slot % self._gpus if self._gpus else None
        process = self._context.Process(
            target=_worker_main,
            args=(child_end, self._flag, self._threads, gpu, self._setup),
            name=f"streamdeblur-batch-{slot}",
            daemon=True,
        )
        # Started with the signals blocked, so one that comes before the worker ignores them
        # cannot kill it; the parent's own is held meanwhile, not lost.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENTS_SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        child_end.close()
        return _Worker(process, parent_end)

    def submit(self, task: FileTask) -> None:
        slot = next(i for i, worker in enumerate(self._workers) if worker.task is None)
        if not self._workers[slot].process.is_alive():  # it died: a fresh one takes its place
            self._workers[slot].conn.close()
            self._workers[slot] = self._start(slot)
        self._workers[slot].task = task
        self._workers[slot].conn.send(task)

    def finished(self, timeout: float) -> list[FileRecord]:
        """Records of the files finished within `timeout` seconds (none if none did)."""
        busy = [worker for worker in self._workers if worker.task is not None]
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout))
        records = []
        for worker in busy:
            task, worker.task = worker.task, None
            assert task is not None
            if worker.conn in ready:
                try:
                    records.append(worker.conn.recv())
                    continue
                except EOFError:
                    pass
            elif worker.process.sentinel not in ready:
                worker.task = task  # still working on it
                continue
            worker.process.join(_CLOSE_TIMEOUT_S)  # reaped, so its exit code is known
            records.append(failed(task, _died(worker.process)))
        return records

    def stop(self) -> None:
        """Running files stop and roll back; their records come back through finished()."""
        self._flag.value = True

    def close(self) -> None:
        """Workers exit; one still busy (the batch ended abnormally) first rolls its file back."""
        self._flag.value = True
        for worker in self._workers:
            if worker.process.is_alive():
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in self._workers:
            worker.process.join(_CLOSE_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()  # it ignores SIGTERM
                worker.process.join()
            worker.conn.close()
