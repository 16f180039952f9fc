"""Frames on the CPU as network calls side by side, one thread each.

On a CPU with few cores a batch of several frames per call is slower per frame than one frame
a call (several frames' feature maps no longer fit the caches), and two single-frame calls at
once, each on one thread, are faster than either (one thread's work has no barriers to wait
at). So on the CPU the frames
the processor of many streams takes in one round are cut into calls of `call_batch` frames
that run `workers` at a time, all on one copy of the weights; on CUDA they are one batch.

An offline run (a file, a folder) does the same with its own frames when the torch backend
runs on the CPU: the decoder and encoder threads then take a core from one call for a
while, not from a call whose other threads wait for it at every barrier.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import cv2
import torch

from streamdeblur.inference.backend import Backend
from streamdeblur.inference.processor import FrameProcessor
from streamdeblur.io.frame import Frame


@contextmanager
def one_thread_per_call() -> Iterator[int]:
    """Within the block, each network call, and OpenCV's work in window assembly, runs on one
    thread (both settings are the process's); yields how many threads there were: how many
    calls to run at once."""
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # its own helpers would take the core another call is running on
    try:
        yield threads
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)


# Beside a network that runs on a GPU, the CPU's cores assemble windows (window/assembly.py);
# two are left for the decoder and the encoder.
CODEC_THREADS = 2


def assembly_threads() -> int:
    """Threads to assemble a windowed model's windows on while the network runs on a GPU:
    the cores this process may use, less the codecs', at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - CODEC_THREADS)


def assembly_pool(threads: int | None = None) -> ThreadPoolExecutor:
    """The threads windows are assembled on beside a GPU (`assembly_threads` unless given)."""
    return ThreadPoolExecutor(threads or assembly_threads(), thread_name_prefix="streamdeblur-window")


T = TypeVar("T")


def ended_in_order(in_flight: deque[Future[T]], most: int = 0) -> list[T]:
    """The results of the futures at the front of `in_flight` that have ended, in order (taken
    off it), waiting for the oldest while more than `most` are left in flight; with `most` 0,
    all of them."""
    ended: list[T] = []
    while in_flight and (in_flight[0].done() or len(in_flight) > most):
        ended.append(in_flight.popleft().result())
    return ended


# Side by side was measured to pay with 2 threads; with more, one call per
# thread would multiply the frames in memory and was not measured, so those keep one call on
# every thread until it is.
SIDE_BY_SIDE_THREADS = 2


def runs_side_by_side(backend: Backend) -> bool:
    """Whether an offline run's frames go through `backend` as calls side by side, on a CPU
    where that was measured to pay: torch; OpenVINO on the CPU, compiled for as many streams
    (prepare_side_by_side): the video model's int8 pipeline +19 % (the second call overlaps the
    next window's assembly), the single-frame models' +7.5 % and +11 % (a codec thread that takes
    a core stalls one call, not both: BENCHMARKS.md); ONNX Runtime keeps a thread pool of its own."""
    if backend.device.type != "cpu" or torch.get_num_threads() != SIDE_BY_SIDE_THREADS:
        return False
    if backend.name == "openvino":
        return getattr(backend, "target", None) == "CPU"
    return backend.name == "torch"


def prepare_side_by_side(backend: Backend) -> None:
    """Ready `backend` for as many calls at once as there are threads, one thread each, where
    it needs telling (OpenVINO compiles for a number of streams; torch takes the threads it is
    given); before one_thread_per_call, which leaves one."""
    switch = getattr(backend, "run_side_by_side", None)
    if switch is not None:
        switch(torch.get_num_threads())


def assembles_beside_gpu(processor: object) -> bool:
    """Whether `processor` assembles a windowed model's windows on CPU threads of its own while
    the network runs on a GPU (window/assembly.py, windowed_processor): each thread's
    transforms and warps then need torch and OpenCV on that one thread, as calls side by side
    do (one_thread_per_call)."""
    return getattr(processor, "own_pool", None) is not None


class ConcurrentCalls:
    """The processor stage for frames side by side on the CPU: same interface as FrameProcessor.

    `batch_size` is what the stage hands it at once: `call_batch` frames for each worker by
    default (an offline run), or what the caller sets (many streams: one round). By default
    submit() returns once all its calls have (a round of many streams); `overlapped` (an
    offline run, where frames wait in the queue) keeps up to one call more than there are
    workers in flight and returns the calls that have ended, in order, so a thread that is
    done takes the next call at once instead of waiting for the slower call of its round."""

    def __init__(self, inner: FrameProcessor, workers: int, call_batch: int = 1, overlapped: bool = False) -> None:
        self.inner, self.call_batch, self.workers = inner, max(1, call_batch), max(1, workers)
        self.batch_size = self.workers * self.call_batch
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="streamdeblur-call")
        self.overlapped = overlapped
        self._in_flight: deque[Future[list[Frame]]] = deque()

    def submit(self, frames: list[Frame]) -> list[Frame]:
        """The frames deblurred, in order: all of them (a round), or, overlapped, those whose
        calls have ended, waiting only while more calls than workers + 1 are in flight."""
        calls = [frames[i : i + self.call_batch] for i in range(0, len(frames), self.call_batch)]
        if not self.overlapped:
            return [frame for done in self.pool.map(self.inner.process, calls) for frame in done]
        self._in_flight.extend(self.pool.submit(self.inner.process, call) for call in calls)
        return [frame for done in ended_in_order(self._in_flight, self.workers + 1) for frame in done]

    def flush(self) -> list[Frame]:
        """The calls still in flight (overlapped), waited for in order."""
        return [frame for done in ended_in_order(self._in_flight) for frame in done]

    def close(self) -> None:
        self.pool.shutdown()
