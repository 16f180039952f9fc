"""Counters and latency while frames flow, and the JSON run report (DESIGN.md contract)."""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class LatencySamples:
    """A bounded uniform sample of latencies (reservoir sampling), so memory stays flat.

    Thread-safe: the writers of many streams add to one for the run's totals.
    """

    def __init__(self, capacity: int = 20_000, seed: int = 0) -> None:
        self.capacity, self.count = capacity, 0
        self._values: list[float] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, value: float) -> None:
        with self._lock:
            self.count += 1
            if len(self._values) < self.capacity:
                self._values.append(value)
            else:
                slot = self._random.randrange(self.count)
                if slot < self.capacity:
                    self._values[slot] = value

    def percentiles_ms(self) -> dict[str, float | None]:
        with self._lock:
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
    `run_latency`, when given, also receives every latency: one stream's stats feeding the
    totals of a run of many.
    """

    def __init__(self, run_latency: LatencySamples | None = None) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.frames_discarded = 0
        self.started = time.monotonic()
        self.latency = LatencySamples()
        self._run_latency = run_latency
        self._arrivals: dict[int, float] = {}
        self._lock = threading.Lock()
        self._interval_start = (self.started, 0, 0, 0)
        # Kept only while periodic stats lines are on, so a long file run's memory stays flat.
        self._interval_latencies: list[float] | None = None
        # Seconds each stage spent working (not waiting on its queues), by stage name.
        self.stage_s: dict[str, float] = {}

    def frame_in(self, index: int) -> None:
        with self._lock:
            self.frames_in += 1
            self._arrivals[index] = time.monotonic()

    def stage_worked(self, stage: str, seconds: float) -> None:
        """`seconds` of work by `stage` (decode, processor, encode); each stage has one thread."""
        self.stage_s[stage] = self.stage_s.get(stage, 0.0) + seconds

    def frame_dropped(self, index: int) -> None:
        """Counted only for a frame still in flight, so that no frame is counted twice."""
        with self._lock:
            if self._arrivals.pop(index, None) is not None:
                self.frames_dropped += 1

    def frame_discarded(self, index: int) -> None:
        """A frame left unprocessed by a graceful stop: neither out nor dropped."""
        with self._lock:
            if self._arrivals.pop(index, None) is not None:
                self.frames_discarded += 1

    def frame_out(self, index: int) -> None:
        now = time.monotonic()
        with self._lock:
            self.frames_out += 1
            arrived = self._arrivals.pop(index, None)
            if arrived is not None:
                self.latency.add(now - arrived)
                if self._run_latency is not None:
                    self._run_latency.add(now - arrived)
                if self._interval_latencies is not None:
                    self._interval_latencies.append(now - arrived)

    def discard_unfinished(self) -> int:
        """Count every frame still in flight as discarded: a stream that ended early (its
        output failed, or the run's processor did) leaves frames queued, windowed or running."""
        with self._lock:
            count = len(self._arrivals)
            self.frames_discarded += count
            self._arrivals.clear()
            return count

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
            interval = Interval(
                self.frames_in - was_in,
                self.frames_out - was_out,
                self.frames_dropped - was_dropped,
                now - since,
                self._interval_latencies or [],
            )
            self._interval_start = (now, self.frames_in, self.frames_out, self.frames_dropped)
            self._interval_latencies = []
        return interval

    def start(self) -> None:
        self.started = time.monotonic()

    @property
    def wall_s(self) -> float:
        return time.monotonic() - self.started


class StatsLog:
    """Within the block, a line of numbers every `interval_s` seconds to the log (live runs):
    today's line for one stream, the totals and a short part per stream for several."""

    def __init__(self, streams: Mapping[str, RunStats], interval_s: float) -> None:
        self.streams, self.interval_s = dict(streams), interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamdeblur-stats", daemon=True)

    def __enter__(self) -> StatsLog:
        for stats in self.streams.values():
            stats.take_interval()  # starts collecting interval latencies
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.interval_s):
            intervals = {name: stats.take_interval() for name, stats in self.streams.items()}
            if len(intervals) == 1:
                ((interval, stats),) = zip(intervals.values(), self.streams.values())
                log.info("%s", describe(interval, stats))
            else:
                log.info("%s", describe_streams(intervals, self.streams))


def describe(interval: Interval, totals: RunStats) -> str:
    latency = percentiles_ms(interval.latencies)
    p50, p99 = (f"{v:.0f}" if v is not None else "-" for v in (latency["p50"], latency["p99"]))
    return (
        f"last {interval.seconds:.1f} s: in {interval.frames_in}, out {interval.frames_out}, "
        f"dropped {interval.frames_dropped}, {interval.fps:.1f} frames/s, latency p50 {p50} ms p99 {p99} ms "
        f"(total in {totals.frames_in}, out {totals.frames_out}, dropped {totals.frames_dropped})"
    )


def _ms(seconds: float | None) -> str:
    return f"{seconds:.0f} ms" if seconds is not None else "-"


def describe_streams(intervals: Mapping[str, Interval], totals: Mapping[str, RunStats]) -> str:
    """One line for many streams: the interval's totals, then each stream's out/in and p99."""
    merged = Interval(
        sum(i.frames_in for i in intervals.values()),
        sum(i.frames_out for i in intervals.values()),
        sum(i.frames_dropped for i in intervals.values()),
        max(i.seconds for i in intervals.values()),
        [value for i in intervals.values() for value in i.latencies],
    )
    latency = percentiles_ms(merged.latencies)
    streams = ", ".join(
        f"{name} {i.frames_out}/{i.frames_in} p99 {_ms(percentiles_ms(i.latencies)['p99'])}"
        for name, i in intervals.items()
    )
    total_in, total_out = sum(s.frames_in for s in totals.values()), sum(s.frames_out for s in totals.values())
    return (
        f"last {merged.seconds:.1f} s, {len(intervals)} streams: in {merged.frames_in}, out {merged.frames_out}, "
        f"dropped {merged.frames_dropped}, {merged.fps:.1f} frames/s, latency p50 {_ms(latency['p50'])} "
        f"p99 {_ms(latency['p99'])}; out/in: {streams} "
        f"(total in {total_in}, out {total_out}, dropped {sum(s.frames_dropped for s in totals.values())})"
    )


@dataclass(kw_only=True)
class _Counts:
    """What the run report and each of its streams both say of the frames that went through."""

    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    frames_discarded: int = 0  # decoded but left unprocessed by a stop (SIGINT/SIGTERM)
    wall_s: float = 0.0  # a stream of many: from the start of the run to this stream's end
    fps: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=lambda: {"p50": None, "p99": None})
    frames_lost: int | None = None
    decode_errors: int = 0
    interrupted: bool = False
    error: str | None = None
    live: bool = False
    reconnects: int = 0
    segments: list[str] | None = None  # the files written, with --segment-seconds
    # Where nothing moved, the frame handed through (window/still.py): the model's levels, the
    # frames restored, those with any block handed through, and the mean share of a frame.
    still_pass: dict[str, float] | None = None

    def _fill_counts(self, stats: RunStats) -> None:
        self.frames_in, self.frames_out = stats.frames_in, stats.frames_out
        self.frames_dropped, self.frames_discarded = stats.frames_dropped, stats.frames_discarded
        self.wall_s = round(stats.wall_s, 3)
        self.fps = round(stats.frames_out / self.wall_s, 3) if self.wall_s > 0 else 0.0
        self.latency_ms = stats.latency.percentiles_ms()


@dataclass(kw_only=True)
class StreamReport(_Counts):
    """One stream of a run of many: the run report's `streams` entries."""

    name: str

    def fill_from(self, stats: RunStats) -> StreamReport:
        self._fill_counts(stats)
        return self


@dataclass(kw_only=True)
class RunReport(_Counts):
    backend: str
    device: str
    precision: str
    model: str
    # The blur whose model ran (--blur); None where --weights chose the model.
    blur: str | None = None
    # --blur auto: what the first frames showed (found: sharp, motion, defocus or unknown), the
    # classifier's scores, and why that model.
    blur_auto: dict[str, Any] | None = None
    # --still-camera: whether it changed how the model's windows were assembled (a windowed
    # model it holds for); None where not asked.
    still_camera: bool | None = None
    # Where a frame's time went: each stage's working time over the frames written. The
    # stages run side by side, so these add up to more than wall_s / frames_out.
    stage_ms_per_frame: dict[str, float] | None = None
    streams: list[StreamReport] | None = None  # a run of many streams: each one; the counts above are their sums

    def fill_from(self, stats: RunStats) -> RunReport:
        self._fill_counts(stats)
        if stats.stage_s and stats.frames_out:
            self.stage_ms_per_frame = {
                stage: round(1000 * seconds / stats.frames_out, 2) for stage, seconds in stats.stage_s.items()
            }
        return self

    def fill_from_streams(self, streams: list[StreamReport], wall_s: float, latency: LatencySamples) -> RunReport:
        """The totals of a run of many streams, and each stream's own entry."""
        self.streams = streams
        self.frames_in = sum(s.frames_in for s in streams)
        self.frames_out = sum(s.frames_out for s in streams)
        self.frames_dropped = sum(s.frames_dropped for s in streams)
        self.frames_discarded = sum(s.frames_discarded for s in streams)
        self.decode_errors = sum(s.decode_errors for s in streams)
        self.reconnects = sum(s.reconnects for s in streams)
        self.live = any(s.live for s in streams)
        self.wall_s = round(wall_s, 3)
        self.fps = round(self.frames_out / self.wall_s, 3) if self.wall_s > 0 else 0.0
        self.latency_ms = latency.percentiles_ms()
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
