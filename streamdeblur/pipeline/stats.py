"""Counters and latency while frames flow, and the JSON run report (DESIGN.md contract)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


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
        return percentiles_ms(self._values)


def percentiles_ms(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50": None, "p99": None}
    p50, p99 = np.percentile(np.asarray(seconds) * 1000.0, [50, 99])
    return {"p50": round(float(p50), 2), "p99": round(float(p99), 2)}


@dataclass(frozen=True)
class Interval:
    """Counts since the previous interval, and the latencies of the frames written in it."""

    frames_in: int
    frames_out: int
    frames_dropped: int
    seconds: float
    latencies: list[float]

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0


class RunStats:
    """Frames in, out, dropped and discarded, and each frame's latency from arrival to being written.

    Every frame counted in ends up in exactly one of the other three counts once the run is over.
    """

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.frames_discarded = 0
        self.started = time.monotonic()
        self.latency = LatencySamples()
        self._arrivals: dict[int, float] = {}
        self._lock = threading.Lock()
        self._interval_start = (self.started, 0, 0, 0)
        self._interval_latencies: list[float] = []

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
            self.frames_discarded += 1
            self._arrivals.pop(index, None)

    def frame_out(self, index: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_out += 1
            arrived = self._arrivals.pop(index, None)
            if arrived is not None:
                self.latency.add(now - arrived)
                self._interval_latencies.append(now - arrived)

    def age(self, index: int) -> float:
        """Seconds since frame `index` arrived (0 if it is not in flight)."""
        with self._lock:
            arrived = self._arrivals.get(index)
        return time.monotonic() - arrived if arrived is not None else 0.0

    def take_interval(self) -> Interval:
        """What happened since the last call (or the start), for periodic stats lines."""
        now = time.monotonic()
        with self._lock:
            since, was_in, was_out, was_dropped = self._interval_start
            interval = Interval(self.frames_in - was_in, self.frames_out - was_out,
                                self.frames_dropped - was_dropped, now - since, self._interval_latencies)
            self._interval_start = (now, self.frames_in, self.frames_out, self.frames_dropped)
            self._interval_latencies = []
        return interval

    def start(self) -> None:
        self.started = time.monotonic()

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started


class StatsLog:
    """Within the block, a line of numbers every `interval_s` seconds to the log (live runs)."""

    def __init__(self, stats: RunStats, interval_s: float) -> None:
        self.stats, self.interval_s = stats, interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamdeblur-stats", daemon=True)

    def __enter__(self) -> StatsLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            log.info("%s", describe(self.stats.take_interval(), self.stats))


def describe(interval: Interval, totals: RunStats) -> str:
    latency = percentiles_ms(interval.latencies)
    p50, p99 = (f"{v:.0f}" if v is not None else "-" for v in (latency["p50"], latency["p99"]))
    return (
        f"last {interval.seconds:.1f} s: in {interval.frames_in}, out {interval.frames_out}, "
        f"dropped {interval.frames_dropped}, {interval.fps:.1f} frames/s, latency p50 {p50} ms p99 {p99} ms "
        f"(total in {totals.frames_in}, out {totals.frames_out}, dropped {totals.frames_dropped})"
    )


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
    frames_discarded: int = 0  # decoded but left unprocessed by a stop (SIGINT/SIGTERM)
    wall_s: float = 0.0
    fps: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p99": None})
    frames_lost: int | None = None
    decode_errors: int = 0
    interrupted: bool = False
    error: str | None = None
    live: bool = False
    reconnects: int = 0
    segments: list[str] | None = None  # the files written, with --segment-seconds

    def fill_from(self, stats: RunStats) -> RunReport:
        self.frames_in, self.frames_out = stats.frames_in, stats.frames_out
        self.frames_dropped, self.frames_discarded = stats.frames_dropped, stats.frames_discarded
        self.wall_s = round(stats.wall_s, 3)
        self.fps = round(stats.frames_out / self.wall_s, 3) if self.wall_s > 0 else 0.0
        self.latency_ms = stats.latency.percentiles_ms()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
