"""Three threads joined by bounded queues: reader -> processor -> writer.

The calling (main) thread only supervises, so it stays free to take SIGINT/SIGTERM. A
graceful stop ends reading, drops decoded frames not yet started, lets the processor finish
what is in flight and the writer write it. A finish (end of a live run's duration) ends
reading only; everything read is still processed. An error in any stage aborts all of them.

With a latency bound (live sources) the reader never waits: a full queue loses its oldest
decoded frame, and the processor skips frames that could no longer be written in time.
Every such frame is counted as dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

from streamdeblur.errors import ProcessingError, StreamdeblurError
from streamdeblur.inference.processor import Processor
from streamdeblur.io import Frame, Sink, Source
from streamdeblur.io.grey import GreyFrames
from streamdeblur.pipeline.latency import LatencyBudget, decoded_queue_size
from streamdeblur.pipeline.queues import Aborted, StageQueue
from streamdeblur.pipeline.stats import RunStats

log = logging.getLogger(__name__)


@dataclass
class StageFailure:
    stage: str
    error: BaseException
    frame_index: int | None

    def reraise(self) -> NoReturn:
        """Raise, in the supervising thread, the stage's own error when it is one the user can
        act on, else a ProcessingError that says which stage and where."""
        if isinstance(self.error, StreamdeblurError):
            raise self.error
        where = f" at frame {self.frame_index}" if self.frame_index is not None else ""
        detail = str(self.error).splitlines()[0] if str(self.error) else ""
        raise ProcessingError(
            f"{self.stage} stage failed{where}: {type(self.error).__name__}: {detail}".rstrip(": ")
        ) from self.error


class Pipeline:
    def __init__(
        self,
        source: Source,
        processor: Processor,
        sink: Sink,
        stats: RunStats,
        queue_size: int = 8,
        on_frame_written: Callable[[], None] | None = None,
        max_latency_s: float | None = None,
        on_frame_read: Callable[[Frame], None] | None = None,
    ) -> None:
        self.source, self.processor, self.sink, self.stats = source, processor, sink, stats
        self.abort = threading.Event()
        self.budget = LatencyBudget(max_latency_s, stats) if max_latency_s is not None else None
        decoded_size = queue_size
        if max_latency_s is not None:
            decoded_size = decoded_queue_size(queue_size, max_latency_s, source.info.video.rate_or_default)
        self.decoded = StageQueue(
            decoded_size,
            self.abort,
            drop_oldest=self.budget is not None,
            on_drop=lambda f: stats.frame_dropped(f.index),
        )
        self.processed = StageQueue(queue_size, self.abort)
        self.on_frame_written, self.on_frame_read = on_frame_written, on_frame_read
        self.grey = GreyFrames()  # grey in, grey out (io/grey.py)
        self.failures: list[StageFailure] = []
        self._current: dict[str, int | None] = {}

    def run(
        self,
        stop: threading.Event,
        finish: threading.Event | None = None,
        idle: Callable[[], None] | None = None,
    ) -> None:
        """Run to the end of the input, or until `stop` or `finish` is set; raise if a stage failed.

        `idle` is called often from this (the main) thread while the stages run: for work that
        must happen there, such as drawing a preview window.
        """
        self._stop, self._finish = stop, finish or threading.Event()
        threads = [
            threading.Thread(target=self._guard, args=(name, body, out), name=f"streamdeblur-{name}", daemon=True)
            for name, body, out in (
                ("reader", self._read, self.decoded),
                ("processor", self._process, self.processed),
                ("writer", self._write, None),
            )
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():  # short joins keep the main thread responsive to signals
                thread.join(0.1 if idle is None else 0.02)
                if idle is not None:
                    idle()
        if self._stop.is_set():
            # Frames a stop left behind (held back by a window, or never started) are
            # discarded: every frame read is then written, dropped or discarded.
            self.stats.discard_unfinished()
        if self.failures:
            self.failures[0].reraise()

    def _guard(self, name: str, body: Callable[[], None], output: StageQueue | None) -> None:
        try:
            body()
        except Aborted:
            pass
        except BaseException as exc:  # reported by run() in the main thread
            log.debug("%s stage failed", name, exc_info=True)
            self.failures.append(StageFailure(name, exc, self._current.get(name)))
            self.abort.set()
        finally:
            if output is not None:
                output.close()

    def _read(self) -> None:
        frames = iter(self.source.frames())
        while True:
            started = time.perf_counter()
            frame = next(frames, None)
            self.stats.stage_worked("decode", time.perf_counter() - started)
            if frame is None or self._stop.is_set() or self._finish.is_set():
                break
            self._current["reader"] = frame.index
            self.stats.frame_in(frame.index)
            self.grey.note(frame)
            if self.on_frame_read is not None:
                self.on_frame_read(frame)
            self.decoded.put(frame)

    def _process(self) -> None:
        batch_size = self.processor.batch_size
        while (batch := self.decoded.get_batch(batch_size)) is not None:
            if self._stop.is_set():
                # Stopping: whatever arrives from now on is left unprocessed, so the output
                # ends at a clean prefix of the input.
                for frame in batch:
                    self.stats.frame_discarded(frame.index)
                continue
            if self.budget is not None:
                batch = self.budget.select(batch, more_waiting=len(self.decoded) > 0)
                if not batch:
                    continue
            self._current["processor"] = batch[0].index
            started = time.perf_counter()
            finished = self.processor.submit(batch)
            self.stats.stage_worked("processor", time.perf_counter() - started)
            for frame in finished:
                self.processed.put(frame)
        # Stopping, a processor that holds frames back (a window's lookahead) finishes only the
        # calls already running; at the end of the input, everything.
        abandon = getattr(self.processor, "abandon", None) if self._stop.is_set() else None
        for frame in abandon() if abandon is not None else self.processor.flush():
            self.processed.put(frame)

    def _write(self) -> None:
        while (frame := self.processed.get()) is not None:
            self._current["writer"] = frame.index
            started = time.perf_counter()
            self.sink.write(self.grey.restore(frame))
            self.stats.stage_worked("encode", time.perf_counter() - started)
            self.stats.frame_out(frame.index)
            if self.budget is not None:
                self.budget.written(frame.index)
            if self.on_frame_written is not None:
                self.on_frame_written()
