"""The live drop policy: which decoded frames are still worth processing under a latency bound.

A frame is dropped when its age plus what the rest of its way may take (from the processor
picking it up to the writer having written it: the slowest of the last few frames, so that a
frame slower than average still arrives in time) would exceed `--max-latency-ms`. The newest
frame available is always kept, so the output never stalls, even when the processor alone
takes longer than the bound.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from fractions import Fraction

from streamdeblur.io import Frame
from streamdeblur.pipeline.stats import RunStats

_RECENT = 16  # pickup-to-written times remembered


def decoded_queue_size(queue_size: int, max_latency_s: float, rate: Fraction | float) -> int:
    """Room for the bound's worth of frames: a smaller queue would drop frames (say, the burst
    a stream delivers after opening) that could still be written in time."""
    return max(queue_size, math.ceil(max_latency_s * rate) + 1)


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

    def forget(self, index: int) -> None:
        """A frame picked, then dropped on its way to the writer (a stream's writer fell behind)."""
        with self._lock:
            self._picked.pop(index, None)

    def written(self, index: int) -> None:
        with self._lock:
            picked = self._picked.pop(index, None)
            if picked is None:
                return
            self._recent.append(time.monotonic() - picked)
