"""Counters and latency while frames flow, and the JSON run report (DESIGN.md contract)."""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class LatencySamples:
    """A bounded uniform sample of latencies (reservoir sampling), so memory stays flat."""

    def __init__(self, capacity: int = 20_000, seed: int = 0) -> None:
        self.capacity, self.count = capacity, 0
        self._values: list[float] = []
        self._random = random.Random(seed)

    def add(self, value: float) -> None:
        self.count += 1
        if len(self._values) < self.capacity:
            self._values.append(value)
        else:
            slot = self._random.randrange(self.count)
            if slot < self.capacity:
                self._values[slot] = value

    def percentiles_ms(self) -> dict[str, float | None]:
        if not self._values:
            return {"p50": None, "p99": None}
        p50, p99 = np.percentile(np.asarray(self._values) * 1000.0, [50, 99])
        return {"p50": round(float(p50), 2), "p99": round(float(p99), 2)}


class RunStats:
    """Frames in, out and dropped, and each frame's latency from arrival to being written."""

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.started = time.monotonic()
        self.latency = LatencySamples()
        self._arrivals: dict[int, float] = {}
        self._lock = threading.Lock()

    def frame_in(self, index: int) -> None:
        with self._lock:
            self.frames_in += 1
            self._arrivals[index] = time.monotonic()

    def frame_dropped(self, index: int) -> None:
        with self._lock:
            self.frames_dropped += 1
            self._arrivals.pop(index, None)

    def frame_discarded(self, index: int) -> None:
        """A frame left unprocessed by a graceful stop: neither out nor dropped."""
        with self._lock:
            self._arrivals.pop(index, None)

    def frame_out(self, index: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_out += 1
            arrived = self._arrivals.pop(index, None)
            if arrived is not None:
                self.latency.add(now - arrived)

    def start(self) -> None:
        self.started = time.monotonic()

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started


@dataclass
class RunReport:
    input: str
    output: str
    backend: str
    device: str
    precision: str
    model: str
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    wall_s: float = 0.0
    fps: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p99": None})
    frames_lost: int | None = None
    decode_errors: int = 0
    interrupted: bool = False
    error: str | None = None

    def fill_from(self, stats: RunStats) -> RunReport:
        self.frames_in, self.frames_out = stats.frames_in, stats.frames_out
        self.frames_dropped = stats.frames_dropped
        self.wall_s = round(stats.wall_s, 3)
        self.fps = round(stats.frames_out / self.wall_s, 3) if self.wall_s > 0 else 0.0
        self.latency_ms = stats.latency.percentiles_ms()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
