"""One stream of a run of many: its reader, its writer, its queues, drop policy and counts.

Each stream has threads of its own, so one that stalls, ends or fails holds up no other: its
reader waits on its own input (a live input reconnects with backoff, io/live_source.py), its
writer on its own output, and when the stream ends, for whatever reason, its writer
finalises its output there and then, a playable file while the other streams go on. Only the
processor is shared (fan_in.py); it takes frames with `next_frame` and hands results back
with `deliver`.
"""

from __future__ import annotations

import logging
import threading
import time

from streamdeblur.io import Frame, Output, Source
from streamdeblur.io.grey import GreyFrames
from streamdeblur.pipeline.latency import LatencyBudget, decoded_queue_size
from streamdeblur.pipeline.queues import Aborted, StageQueue
from streamdeblur.pipeline.stats import RunStats, StreamReport
from streamdeblur.window.assembly import FrameWindow
from streamdeblur.window.still import StillHistory

log = logging.getLogger(__name__)

# A stream that has delivered nothing for this long is not waited for when filling a batch
# (it is reconnecting, or slower than the others).
_DELIVERING_S = 1.0


class StreamLane:
    """One stream's reader and writer threads around the shared processor.

    `stop` is the run's graceful stop; `finish`, the event its input was opened with, ends this
    stream's input (the run's duration sets it for every stream, a failed output for its own).
    `arrivals` is the condition all streams' decoded queues share, on which the processor
    waits for a frame from any.
    With `max_latency_s` (a live input) a full queue, in or out, loses its oldest frame, and
    frames that could no longer be written in time are dropped, each counted.
    """

    def __init__(
        self,
        name: str,
        input_spec: str,
        output_spec: str,
        source: Source,
        output: Output,
        stats: RunStats,
        stop: threading.Event,
        finish: threading.Event,
        arrivals: threading.Condition,
        queue_size: int = 8,
        max_latency_s: float | None = None,
        window: FrameWindow | StillHistory | None = None,
    ) -> None:
        self.name, self.input_spec, self.output_spec = name, input_spec, output_spec
        self.source, self.output, self.stats, self.window = source, output, stats, window
        self.finish = finish  # the event its live input was opened with
        self.grey = GreyFrames()  # grey in, grey out (io/grey.py)
        self.abort = threading.Event()  # its output failed, or the processor did: its queues give up
        self.budget = LatencyBudget(max_latency_s, stats) if max_latency_s is not None else None
        live = self.budget is not None
        decoded_size = queue_size
        if max_latency_s is not None:
            decoded_size = decoded_queue_size(queue_size, max_latency_s, source.info.video.rate_or_default)
        self.decoded = StageQueue(
            decoded_size,
            self.abort,
            drop_oldest=live,
            on_drop=lambda f: stats.frame_dropped(f.index),
            condition=arrivals,
        )
        # Live, a writer that falls behind loses its own oldest frames instead of holding up
        # the processor, and with it every other stream.
        self.processed = StageQueue(queue_size, self.abort, drop_oldest=live, on_drop=self._dropped_on_the_way_out)
        self.error: BaseException | None = None
        self.result: StreamReport | None = None  # once the stream has ended
        self._stop = stop
        self._last_arrival: float | None = None
        self._reader = threading.Thread(target=self._read, name=f"streamdeblur-{name}-reader", daemon=True)
        self._writer = threading.Thread(target=self._write, name=f"streamdeblur-{name}-writer", daemon=True)

    def start(self) -> None:
        self._reader.start()
        self._writer.start()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the stream to end; whether it has."""
        self._writer.join(timeout)  # the writer ends last: it waits for the reader before finalising
        return not self._writer.is_alive()

    # --- what the shared processor sees -----------------------------------------------------

    def waiting(self) -> bool:
        return len(self.decoded) > 0 and not self.abort.is_set()

    def delivering(self, now: float) -> bool:
        """Whether a frame can be expected soon: the input is open and gave one recently."""
        return self._reader.is_alive() and self._last_arrival is not None and now - self._last_arrival < _DELIVERING_S

    def input_done(self) -> bool:
        """Nothing more will come: the input ended and every frame was taken, or the stream failed."""
        return self.decoded.exhausted or self.abort.is_set()

    def next_frame(self) -> Frame | None:
        """The oldest waiting frame still worth processing; older ones that are too late to be
        written in time are counted as dropped. The newest is always worth it."""
        while taken := self.decoded.take(1):
            if self.budget is None:
                return taken[0]
            kept = self.budget.select(taken, more_waiting=len(self.decoded) > 0)
            if kept:
                return kept[0]
        return None

    def discard_waiting(self) -> None:
        """A graceful stop: what is queued is left unprocessed, so the output ends at a clean prefix."""
        for frame in self.decoded.take(self.decoded.capacity):
            self.stats.frame_discarded(frame.index)

    def deliver(self, frame: Frame) -> None:
        try:
            self.processed.put(frame)
        except Aborted:
            pass  # its output failed: the frame is counted as discarded when the stream ends

    # --- its own threads --------------------------------------------------------------------

    def _read(self) -> None:
        try:
            for frame in self.source.frames():
                if self._stop.is_set() or self.finish.is_set():
                    break
                self.stats.frame_in(frame.index)
                self.grey.note(frame)
                self._last_arrival = time.monotonic()
                if self.output.originals is not None:
                    self.output.originals.keep(frame)
                self.decoded.put(frame)
        except Aborted:
            pass
        except Exception as exc:  # this stream ends; the others go on
            self._failed("input", exc)
        finally:
            self.decoded.close()  # what was read is still processed and written

    def _write(self) -> None:
        try:
            while (frame := self.processed.get()) is not None:
                self.output.sink.write(self.grey.restore(frame))
                self.stats.frame_out(frame.index)
                if self.budget is not None:
                    self.budget.written(frame.index)
        except Aborted:
            pass
        except Exception as exc:  # this stream ends; the others go on
            self._failed("output", exc)
            self.abort.set()
        finally:
            self._end()

    def _failed(self, part: str, exc: Exception) -> None:
        log.debug("stream %s: %s failed", self.name, part, exc_info=True)
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        log.warning("stream %s: its %s failed (%s); the other streams go on", self.name, part, detail)
        if self.error is None:
            self.error = exc

    def _end(self) -> None:
        """Finalise the output (playable, or nothing when no frame was written) and count up."""
        self.finish.set()  # when the output went first, the input follows
        self._reader.join()
        interrupted = self._stop.is_set()
        sink = self.output.sink
        try:
            if sink.frames_written == 0 and (interrupted or self.error is not None):
                sink.discard()
            else:
                sink.close(complete=not interrupted and self.error is None)
        except Exception as exc:  # an output that cannot be finalised is removed
            self._failed("output", exc)
            sink.discard()
        self.source.close()
        self.stats.discard_unfinished()
        self.result = self._report(interrupted)

    def _dropped_on_the_way_out(self, frame: Frame) -> None:
        self.stats.frame_dropped(frame.index)
        if self.budget is not None:
            self.budget.forget(frame.index)

    def _still_summary(self) -> dict[str, float] | None:
        still = self.window.still if self.window is not None else None
        return still.summary() if still is not None else None

    def _report(self, interrupted: bool) -> StreamReport:
        segments = self.output.segments
        return StreamReport(
            name=self.name,
            input=self.input_spec,
            output=self.output_spec,
            interrupted=interrupted,
            error=(str(self.error) or type(self.error).__name__) if self.error is not None else None,
            frames_lost=self.source.stats.frames_lost,
            decode_errors=self.source.stats.decode_errors,
            live=self.source.info.live,
            reconnects=getattr(self.source, "reconnects", 0),
            still_pass=self._still_summary(),
            segments=[str(p) for p in segments.paths] if segments is not None else None,
        ).fill_from(self.stats)
