"""Pipeline mechanics: bounded queues, order, failures that stop every stage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from streamdeblur.errors import ProcessingError
from streamdeblur.inference import FrameProcessor
from streamdeblur.inference.backend import PassthroughBackend
from streamdeblur.pipeline.queues import Aborted, StageQueue
from streamdeblur.pipeline.runner import Pipeline
from streamdeblur.pipeline.stats import LatencySamples, RunStats
from tests.fakes import ListSink, ListSource


def _pipeline(source, sink, batch: int = 1, queue_size: int = 4) -> Pipeline:  # type: ignore[no-untyped-def]
    processor = FrameProcessor(PassthroughBackend(), batch_size=batch)
    return Pipeline(source, processor, sink, RunStats(), queue_size=queue_size)


@pytest.mark.parametrize("batch", [1, 3])
def test_every_frame_comes_out_in_order(batch: int) -> None:
    sink = ListSink()
    pipeline = _pipeline(ListSource(50), sink, batch=batch)
    pipeline.run(threading.Event())
    assert [f.index for f in sink.frames] == list(range(50))
    assert [f.pts for f in sink.frames] == [i * 10 for i in range(50)]
    assert all(int(f.pixels[0, 0, 0]) == f.index for f in sink.frames)
    assert pipeline.stats.frames_in == pipeline.stats.frames_out == 50


def test_backpressure_bounds_frames_in_flight() -> None:
    produced: list[int] = []
    sink = ListSink(delay=0.02)
    pipeline = _pipeline(ListSource(40, produced), sink, queue_size=2)
    worst = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal worst
        while not done.is_set():
            worst = max(worst, len(produced) - len(sink.frames))
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    pipeline.run(threading.Event())
    done.set()
    watcher.join()
    # two queues of 2, one frame in each stage's hands, one being produced
    assert worst <= 2 + 2 + 3 + 1


def test_a_failing_stage_stops_all_stages_without_hanging() -> None:
    produced: list[int] = []
    pipeline = _pipeline(ListSource(10_000, produced), ListSink(fail_at=5), queue_size=2)
    started = time.monotonic()
    with pytest.raises(ProcessingError, match="writer stage failed at frame 5: OSError: disk full"):
        pipeline.run(threading.Event())
    assert time.monotonic() - started < 5
    assert len(produced) < 50  # the reader stopped too


def test_stop_finishes_in_flight_frames_and_discards_the_rest() -> None:
    sink = ListSink(delay=0.01)
    stop = threading.Event()
    pipeline = _pipeline(ListSource(10_000), sink, queue_size=4)
    threading.Timer(0.2, stop.set).start()
    pipeline.run(stop)
    written = [f.index for f in sink.frames]
    assert 0 < len(written) < 10_000
    assert written == list(range(len(written)))  # a prefix: nothing skipped before the stop


def test_drop_oldest_queue_counts_drops() -> None:
    dropped: list[int] = []
    queue = StageQueue(3, threading.Event(), drop_oldest=True, on_drop=dropped.append)
    for i in range(10):
        queue.put(i)
    assert dropped == list(range(7))
    assert queue.get_batch(10) == [7, 8, 9]


def test_abort_wakes_a_blocked_put() -> None:
    abort = threading.Event()
    queue = StageQueue(1, abort)
    queue.put(0)
    threading.Timer(0.1, abort.set).start()
    with pytest.raises(Aborted):
        queue.put(1)


def test_latency_percentiles_from_a_bounded_sample() -> None:
    samples = LatencySamples(capacity=1000)
    for value in np.linspace(0.0, 1.0, 100_001):
        samples.add(float(value))
    p = samples.percentiles_ms()
    assert p["p50"] == pytest.approx(500, abs=50)
    assert p["p99"] == pytest.approx(990, abs=15)
    assert len(samples._values) == 1000


def test_demo_writes_a_blurred_clip_of_the_asked_length(tmp_path: Path) -> None:
    """`demo` (the README's first command) renders synthetic blur into a playable clip."""
    from tests.conftest import run_cli
    from tests.media import frame_times

    out = tmp_path / "demo.mp4"
    result = run_cli("demo", str(out), "--seconds", "1", "--size", "160x96", "-q")
    assert result.returncode == 0, result.stderr
    assert len(frame_times(out)) == 30
