"""The live drop policy: which decoded frames are still worth processing under a latency bound.

A frame is dropped when its age plus what the rest of its way may take (from the processor
picking it up to the writer having written it: the slowest of the last few frames, so that a
frame slower than average still arrives in time) would exceed `--max-latency-ms`. The newest
frame available is always kept, so the output never stalls, even when the processor alone
takes longer than the bound.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from streamdeblur.io import Frame
from streamdeblur.pipeline.stats import RunStats

_RECENT = 16  # pickup-to-written times remembered


class LatencyBudget:
    def __init__(self, max_latency_s: float, stats: RunStats) -> None:
        self.max_latency_s, self.stats = max_latency_s, stats
        self._recent: deque[float] = deque(maxlen=_RECENT)  # pickup-to-written times, newest last
        self._picked: dict[int, float] = {}
        self._lock = threading.Lock()

    def select(self, batch: list[Frame], more_waiting: bool) -> list[Frame]:
        """The frames of `batch` to process; the others are counted as dropped."""
        now = time.monotonic()
        with self._lock:
            expected = max(self._recent, default=0.0)
        keep = []
        for position, frame in enumerate(batch):
            newest = position == len(batch) - 1 and not more_waiting
            if not newest and self.stats.age(frame.index) + expected > self.max_latency_s:
                self.stats.frame_dropped(frame.index)
                continue
            keep.append(frame)
        with self._lock:
            self._picked.update((frame.index, now) for frame in keep)
        return keep

    def written(self, index: int) -> None:
        with self._lock:
            picked = self._picked.pop(index, None)
            if picked is None:
                return
            self._recent.append(time.monotonic() - picked)
