"""Many streams, one processor: every stream's reader and writer threads, and the processor thread.

The calling (main) thread only supervises, so it stays free to take SIGINT/SIGTERM; it passes
the run's finish (its duration) on to every stream. A stream that ends or fails ends alone
(lane.py). The processor failing ends every stream, each output finalised with what it holds,
and the run raises its error.
"""

from __future__ import annotations

import logging
import threading

from streamdeblur.pipeline.fan_in import BatchAcrossStreams
from streamdeblur.pipeline.runner import StageFailure

log = logging.getLogger(__name__)


class ManyStreams:
    def __init__(self, processor: BatchAcrossStreams) -> None:
        self.processor, self.lanes = processor, processor.lanes
        self.failure: StageFailure | None = None

    def run(self, finish: threading.Event) -> None:
        """Until every stream has ended; `finish` ends them all (their queued frames are still
        written). Raises the processor's error if it failed."""
        thread = threading.Thread(target=self._process, name="streamdeblur-processor", daemon=True)
        for lane in self.lanes:
            lane.start()
        thread.start()
        running = list(self.lanes)
        while running:  # short joins keep the main thread responsive to signals
            if finish.is_set():
                for lane in running:
                    lane.finish.set()
            running = [lane for lane in running if not lane.join(0.1 / len(running))]
        thread.join()
        if self.failure is not None:
            self.failure.reraise()

    def _process(self) -> None:
        try:
            self.processor.run()
        except BaseException as exc:  # reported by run() in the main thread
            log.debug("processor failed", exc_info=True)
            self.failure = StageFailure("processor", exc, None)
            for lane in self.lanes:
                lane.abort.set()
                lane.finish.set()
