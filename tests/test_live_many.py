"""Many streams in one `live` process: the sources file and its errors, batches across streams
(fair under load, grouped by size, one window per stream), streams that stall or fail on
their own, and end to end against real UDP senders on 127.0.0.1 (a sender stopped and
restarted, a dead stream, Ctrl-C)."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from streamdeblur.cli import app
from streamdeblur.inference.backend import PassthroughBackend
from streamdeblur.inference.concurrent import ConcurrentCalls, one_thread_per_call
from streamdeblur.inference.processor import FrameProcessor, Processor
from streamdeblur.io import Frame, Output
from streamdeblur.io.live_source import LiveSource
from streamdeblur.models import load_model_config
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.pipeline import streams_job
from streamdeblur.pipeline.fan_in import BatchAcrossStreams
from streamdeblur.pipeline.job import RunOptions
from streamdeblur.pipeline.lane import StreamLane
from streamdeblur.pipeline.live import LiveOptions
from streamdeblur.pipeline.sources_file import streams_from_file
from streamdeblur.pipeline.stats import RunStats
from streamdeblur.pipeline.streams_runner import ManyStreams
from streamdeblur.window.assembly import FrameWindow
from tests.fakes import TB, Connection, ListSink, SleepyBackend
from tests.livestreams import RATE, free_port, send, stop
from tests.media import decodes_cleanly, frame_times
from tests.test_live_streams import adds_up, finish, start_live, wait_for

# --- the sources file --------------------------------------------------------------------------


def _defaults(**live: Any) -> RunOptions:
    return RunOptions(input="", output="", live=LiveOptions(**live))


def test_a_sources_file_gives_each_stream_its_own_options_over_the_command_lines(tmp_path: Path) -> None:
    path = tmp_path / "cams.yaml"
    path.write_text(
        "streams:\n"
        "  - {name: gate, input: udp://127.0.0.1:5000, output: gate.mp4, max_latency_ms: 300, crf: 23}\n"
        "  - {input: 0, output: yard.mkv, reconnect: false, segment_seconds: 60}\n"
    )
    gate, yard = streams_from_file(path, _defaults(max_latency_ms=800, timeout_s=2))
    assert (gate.name, gate.job.input, gate.job.output) == ("gate", "udp://127.0.0.1:5000", "gate.mp4")
    assert gate.job.live is not None and yard.job.live is not None
    assert (gate.job.live.max_latency_ms, gate.job.live.timeout_s, gate.job.encode.crf) == (300, 2, 23)
    assert (yard.name, yard.job.input) == ("s2", "0")  # named by position; a camera index
    assert (yard.job.live.max_latency_ms, yard.job.live.reconnect, yard.job.live.segment_seconds) == (800, False, 60)


@pytest.mark.parametrize("entries, message", [
    ("- {input: udp://127.0.0.1:PORT, output: a.mp4}\n- {name: yard, input: udp://127.0.0.1:PORT}\n",
     "stream 2 (yard): output must be given"),
    ("- {input: udp://127.0.0.1:PORT, output: a.mp4}\n- {input: udp://127.0.0.1:PORT, output: b.mp4, max_latency: 3}\n",
     "stream 2 (s2): unknown key 'max_latency'"),
    ("- {name: gate, input: udp://127.0.0.1:PORT, output: a.mp4, reconnect: 'no'}\n",
     "stream 1 (gate): reconnect must be true or false"),
    ("- {name: gate, input: udp://127.0.0.1:PORT, output: OUT/a.mp4}\n"
     "- {input: udp://127.0.0.1:PORT, output: OUT/a.mp4}\n",
     "stream 2 (s2): writes to"),
    ("- {name: gate, input: udp://127.0.0.1:PORT, output: a.mp4}\n"
     "- {name: gate, input: udp://127.0.0.1:PORT, output: b.mp4}\n",
     "stream 2 (gate): another stream is named 'gate'"),
    ("- {name: gate, input: udp://127.0.0.1:PORT, output: a.mp4, segment_seconds: -1}\n",
     "stream 1 (gate): --segment-seconds must be positive"),
    ("- {name: gate, input: udp://127.0.0.1:PORT, output: preview}\n",
     "stream 1 (gate): a preview window is for a single"),
    ("- udp://127.0.0.1:PORT\n", "stream 1: expected a mapping"),
    ("  oops: [\n", "not valid YAML"),
])  # fmt: skip
def test_a_bad_sources_entry_is_one_line_naming_it_before_anything_starts(
    entries: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_opening(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("an input was opened before every entry was checked")

    monkeypatch.setattr(streams_job, "open_source", no_opening)
    out = tmp_path / "out"
    out.mkdir()
    sources = tmp_path / "cams.yaml"
    indented = "".join(f"  {line}\n" for line in entries.splitlines())
    sources.write_text("streams:\n" + indented.replace("PORT", str(free_port())).replace("OUT", str(out)))
    result = CliRunner().invoke(app, ["live", "--sources", str(sources), "--backend", "passthrough", "-q"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith(f"streamdeblur: error: {sources}:") and message in lines[-1], result.output
    assert "Traceback" not in result.output
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["udp://127.0.0.1:9", "a.mp4", "--input", "udp://127.0.0.1:10", "--output", "b.mp4"], "not both"),
    (["--input", "udp://127.0.0.1:9", "--input", "udp://127.0.0.1:10", "--output", "b.mp4"],
     "one --output for each --input"),
    (["--sources", "SOURCES", "--input", "udp://127.0.0.1:9", "--output", "b.mp4"],
     "--sources or with --input/--output"),
    (["udp://127.0.0.1:9"], "give SOURCE and SINK"),
    (["--input", "udp://127.0.0.1:9", "--output", "udp://127.0.0.1:9"], "which is an input"),
])  # fmt: skip
def test_bad_many_stream_usage_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    args = [a.replace("SOURCES", str(tmp_path / "cams.yaml")) for a in args]
    result = CliRunner().invoke(app, ["live", *args, "--backend", "passthrough", "-q"])
    assert result.exit_code == 2, result.output
    assert message in result.output.strip().splitlines()[-1], result.output


# --- batches across streams, in-process --------------------------------------------------------


class Camera(Connection):
    """A connection whose frames all hold `fill` (which stream a frame came from), optionally
    going silent for `stall_s` after `stall_after` frames."""

    def __init__(
        self,
        count: int,
        fill: int,
        size: tuple[int, int] = (16, 12),
        stall_after: int | None = None,
        stall_s: float = 0.0,
    ) -> None:
        super().__init__(first_pts=0, count=count, size=size)
        self.fill, self.stall_after, self.stall_s = fill, stall_after, stall_s

    def frames(self) -> Iterator[Frame]:
        for frame in super().frames():
            if frame.index == self.stall_after:
                time.sleep(self.stall_s)
            yield Frame(np.full_like(frame.pixels, self.fill), frame.pts, frame.time_base, frame.index)


class CallLog(SleepyBackend):
    """A network that takes `seconds` a call, remembering each call's batch shape."""

    def __init__(self, seconds: float, model_config: DeepDeblurConfig | None = None) -> None:
        super().__init__(seconds)
        self.model_config = model_config  # type: ignore[misc]
        self.calls: list[tuple[int, ...]] = []

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        self.calls.append(tuple(batch.shape))
        time.sleep(self.seconds)
        n, channels, height, width = batch.shape
        return batch.view(n, channels // 3, 3, height, width).mean(1)  # a window: the mean of its frames


def _run_streams(
    cameras: list[Camera],
    backend: CallLog,
    batch: int,
    max_latency_s: float | None = 0.3,
    sinks: list[ListSink] | None = None,
    processor: Processor | None = None,
    assembly: Executor | None = None,
) -> list[StreamLane]:
    stop, arrivals = threading.Event(), threading.Condition()
    sinks = sinks or [ListSink() for _ in cameras]
    cfg = backend.model_config
    lanes = []
    for number, (camera, sink) in enumerate(zip(cameras, sinks)):
        finish = threading.Event()
        source = LiveSource(camera, stop, finish, pace=True)
        lanes.append(
            StreamLane(
                f"s{number}",
                "mem",
                "list",
                source,
                Output(sink),
                RunStats(),
                stop,
                finish,
                arrivals,
                max_latency_s=max_latency_s,
                window=FrameWindow(cfg) if cfg is not None else None,
            )
        )
    for lane in lanes:
        lane.stats.start()
    batcher = BatchAcrossStreams(lanes, processor or FrameProcessor(backend), batch, 0.02, arrivals, stop, assembly)
    ManyStreams(batcher).run(threading.Event())
    return lanes


def _written(lane: StreamLane) -> list[Frame]:
    sink = lane.output.sink
    assert isinstance(sink, ListSink)
    return sink.frames


@pytest.mark.parametrize("batch", [4, 2])
def test_under_load_every_stream_drops_a_similar_share_and_gets_only_its_own_frames(batch: int) -> None:
    """Four streams at 25 frames/s, a network that manages about half (batch 4) or a quarter
    (batch 2, so streams take turns) of them."""
    fills = (40, 90, 160, 220)
    backend = CallLog(0.08)
    lanes = _run_streams([Camera(75, fill) for fill in fills], backend, batch)
    shares = []
    for lane, fill in zip(lanes, fills):
        assert lane.result is not None and lane.error is None
        written = _written(lane)
        assert lane.stats.frames_in == 75
        assert lane.stats.frames_in == lane.stats.frames_out + lane.stats.frames_dropped
        assert lane.stats.frames_discarded == 0 and len(written) == lane.stats.frames_out
        assert all((f.pixels == fill).all() for f in written)  # every frame went back to its own stream
        assert [f.index for f in written] == sorted(f.index for f in written)
        shares.append(lane.stats.frames_dropped / lane.stats.frames_in)
    assert min(shares) > 0.2  # the network really was behind
    assert max(shares) - min(shares) <= 0.10, shares
    assert max(n for n, *_ in backend.calls) == batch
    assert np.mean([n for n, *_ in backend.calls]) > batch * 0.7  # calls are batches across streams


def test_streams_of_different_sizes_are_batched_by_size() -> None:
    sizes = [(16, 12), (24, 18), (16, 12), (24, 18)]
    backend = CallLog(0.02)
    lanes = _run_streams([Camera(25, 50 * i, size) for i, size in enumerate(sizes)], backend, 4, max_latency_s=None)
    for lane, (width, height) in zip(lanes, sizes):
        assert lane.stats.frames_out == 25 and lane.stats.frames_dropped == 0  # a file-like input: nothing dropped
        assert all(f.pixels.shape == (height, width, 3) for f in _written(lane))
    assert {(h, w) for _, _, h, w in backend.calls} == {(12, 16), (18, 24)}  # one size a call, never padded
    assert max(n for n, *_ in backend.calls) >= 2  # and still batches across streams


@pytest.mark.parametrize("side_by_side", [False, True])
def test_a_windowed_model_keeps_one_window_per_stream(side_by_side: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every window averaged by the network holds frames of its own stream only (each stream's
    frames are all one value), and the frames a centred window held back come out at the end;
    with an assembly pool, the streams' windows are assembled side by side."""
    spans: list[tuple[float, float]] = []
    real_push_all = FrameWindow.push_all

    def slow_push_all(self: FrameWindow, frames: list[Frame]) -> list[Frame]:
        started = time.perf_counter()
        time.sleep(0.01)  # a window's assembly takes a while: long enough for two to meet
        done = real_push_all(self, frames)
        spans.append((started, time.perf_counter()))
        return done

    monkeypatch.setattr(FrameWindow, "push_all", slow_push_all)
    cfg = replace(load_model_config("tiny-k3"), align="none")
    fills = (30, 130, 230)
    with ThreadPoolExecutor(2) as pool:
        lanes = _run_streams(
            [Camera(20, fill) for fill in fills],
            CallLog(0.0, cfg),
            3,
            max_latency_s=None,
            assembly=pool if side_by_side else None,
        )
    for lane, fill in zip(lanes, fills):
        written = _written(lane)
        assert [f.index for f in written] == list(range(20))
        assert all((f.pixels == fill).all() for f in written)
    spans.sort()
    overlapping = sum(1 for (_, end), (start, _) in zip(spans, spans[1:]) if start < end)
    assert (overlapping > 0) == side_by_side


def test_a_stream_that_stalls_or_fails_holds_up_no_other() -> None:
    """s0 goes silent for 1.5 s, s1's output fails at its 10th frame; s2 runs on unaffected."""
    cameras = [Camera(50, 10, stall_after=10, stall_s=1.5), Camera(50, 20), Camera(50, 30)]
    sinks = [ListSink(), ListSink(fail_at=10), ListSink()]
    lanes = _run_streams(cameras, CallLog(0.005), 3, sinks=sinks)
    stalled, failed, steady = lanes
    assert failed.error is not None and failed.result is not None and failed.result.error == "disk full"
    counts = failed.stats
    assert counts.frames_in == counts.frames_out + counts.frames_dropped + counts.frames_discarded
    # The silent one's backlog arrives in a burst when it speaks again: some of it is too late.
    assert stalled.stats.frames_in == 50 == stalled.stats.frames_out + stalled.stats.frames_dropped
    assert steady.stats.frames_out == 50 and steady.stats.frames_dropped == 0
    p99 = steady.stats.latency.percentiles_ms()["p99"]
    assert p99 is not None and p99 < 400  # never waited for the silent one: 1.5 s


@pytest.mark.gpu
def test_on_cuda_each_result_of_the_stream_scheduler_goes_back_to_its_own_stream() -> None:
    """The scheduler hands results back batches later; every one must reach its own stream, in order."""
    from streamdeblur.inference.scheduler import StreamScheduler

    fills = (30, 130, 230)
    scheduler = StreamScheduler(PassthroughBackend("cuda"), batch_size=3, in_flight=3)
    lanes = _run_streams([Camera(30, fill) for fill in fills], CallLog(0.0), 3, max_latency_s=None, processor=scheduler)
    for lane, fill in zip(lanes, fills):
        written = _written(lane)
        assert [f.index for f in written] == list(range(30))
        assert all((f.pixels == fill).all() for f in written)


def test_on_the_cpu_a_batch_runs_as_calls_side_by_side_each_on_one_thread() -> None:
    backend = CallLog(0.1)
    calls = ConcurrentCalls(FrameProcessor(backend), workers=2, call_batch=1)
    frames = [Frame(np.full((12, 16, 3), value, np.uint8), value, TB, value) for value in range(4)]
    threads = torch.get_num_threads()
    with one_thread_per_call() as workers:
        assert workers == threads and torch.get_num_threads() == 1
        started = time.monotonic()
        done = calls.submit(frames)
        elapsed = time.monotonic() - started
    calls.close()
    assert torch.get_num_threads() == threads
    assert [f.index for f in done] == [0, 1, 2, 3] and all((f.pixels == f.index).all() for f in done)
    assert [n for n, *_ in backend.calls] == [1, 1, 1, 1]
    assert elapsed < 0.35  # two calls at a time: 0.2 s, not 0.4


class _UnevenCalls(CallLog):
    """Frame 0's call takes `slow` seconds, the others `seconds`; each call's start and end
    are kept by the frame's value."""

    def __init__(self, seconds: float, slow: float) -> None:
        super().__init__(seconds)
        self.slow = slow
        self.started: dict[int, float] = {}
        self.ended: dict[int, float] = {}

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        value = round(float(batch.flatten()[0]) * 255)
        self.started[value] = time.monotonic()
        time.sleep(self.slow if value == 0 else self.seconds)
        self.ended[value] = time.monotonic()
        return batch


def test_offline_calls_side_by_side_do_not_wait_for_the_slower_one() -> None:
    """An offline run's calls (overlapped): a thread that is done takes the next frame while the
    other thread's call goes on; every frame comes back once, in order; at most one call more
    than the threads is in flight."""
    backend = _UnevenCalls(0.02, slow=0.4)
    calls = ConcurrentCalls(FrameProcessor(backend), workers=2, call_batch=1, overlapped=True)
    frames = [Frame(np.full((12, 16, 3), value, np.uint8), value, TB, value) for value in range(8)]
    done, most_in_flight = [], 0
    with one_thread_per_call():
        for pair in (frames[i : i + 2] for i in range(0, 8, 2)):
            done += calls.submit(pair)
            most_in_flight = max(most_in_flight, len(calls._in_flight))
        done += calls.flush()
    calls.close()
    assert [f.index for f in done] == list(range(8)) and all((f.pixels == f.index).all() for f in done)
    # Frames 2 and 3 started while frame 0 was still running (in rounds they would wait for it).
    assert backend.started[2] < backend.ended[0] and backend.started[3] < backend.ended[0]
    assert most_in_flight <= 3


# --- end to end: `streamdeblur live` on real UDP senders -----------------------------------------


def _sources_file(tmp_path: Path, streams: list[dict[str, Any]]) -> Path:
    path = tmp_path / "cams.yaml"
    path.write_text(json.dumps({"streams": streams}))  # JSON is YAML
    return path


def _by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in report["streams"]}


@pytest.mark.slow
def test_three_udp_streams_through_one_model(tmp_path: Path, tiny_weights: Path) -> None:
    urls = [f"udp://127.0.0.1:{free_port()}" for _ in range(3)]
    senders = [send(url) for url in urls]
    names = ("gate", "yard", "door")
    sources = _sources_file(
        tmp_path, [{"name": n, "input": u, "output": str(tmp_path / f"{n}.mp4")} for n, u in zip(names, urls)]
    )
    report_path = tmp_path / "report.json"
    try:
        proc = start_live(
            "--sources",
            str(sources),
            "--weights",
            str(tiny_weights),
            "--backend",
            "torch",
            "--duration",
            "5",
            "--stats-interval",
            "1",
            "--report",
            str(report_path),
        )
        stderr = finish(proc)
    finally:
        for sender in senders:
            stop(sender)
    assert proc.returncode == 0, stderr
    assert "3 streams: in " in stderr and "out/in: gate " in stderr  # the stats lines, all streams in each
    report = json.loads(report_path.read_text())
    assert report["model"] != "none" and report["input"] == str(sources) and adds_up(report)
    streams = _by_name(report)
    assert list(streams) == list(names)
    for name, stream in streams.items():
        assert stream["frames_in"] >= 3 * RATE and adds_up(stream) and stream["frames_discarded"] == 0
        assert stream["latency_ms"]["p99"] is not None
        assert decodes_cleanly(tmp_path / f"{name}.mp4") == stream["frames_out"]
    for key in ("frames_in", "frames_out", "frames_dropped"):
        assert report[key] == sum(s[key] for s in streams.values())


@pytest.mark.slow
def test_a_stopped_sender_reconnects_while_the_others_run_on(tmp_path: Path) -> None:
    urls = [f"udp://127.0.0.1:{free_port()}" for _ in range(3)]
    senders = [send(url) for url in urls]
    outputs = [tmp_path / f"out{i}.mp4" for i in range(3)]
    report_path = tmp_path / "report.json"
    args = [a for url, out in zip(urls, outputs) for a in ("--input", url, "--output", str(out))]
    restarted = None
    try:
        # A latency bound of 3 s: a loaded machine's hiccups stay within it, while a stream
        # held up by the lost one (its reconnects, its reopening) would still drop frames.
        proc = start_live(
            *args,
            "--backend",
            "passthrough",
            "--timeout",
            "1.5",
            "--duration",
            "10",
            "--max-latency-ms",
            "3000",
            "--report",
            str(report_path),
        )
        wait_for(tmp_path / ".out1.partial.mp4", proc)
        time.sleep(2.5)
        stop(senders[1], signal.SIGKILL)
        time.sleep(2.5)
        restarted = send(urls[1], pattern="color=c=blue")
        stderr = finish(proc)
    finally:
        for sender in [*senders, *([restarted] if restarted else [])]:
            stop(sender)
    assert proc.returncode == 0, stderr
    assert "reconnected" in stderr
    report = json.loads(report_path.read_text())
    first, stopped, third = report["streams"]
    assert stopped["reconnects"] >= 1
    for steady in (first, third):  # the whole 10 s, with no drop and no reconnection
        assert steady["reconnects"] == 0 and steady["frames_dropped"] == 0
        assert steady["frames_in"] >= 8 * RATE
    for stream, out in zip(report["streams"], outputs):
        assert adds_up(stream) and stream["frames_discarded"] == 0
        assert decodes_cleanly(out) == stream["frames_out"]
    assert stopped["frames_in"] < first["frames_in"] - RATE  # it was gone for a while
    assert (np.diff(frame_times(outputs[1])) > 0).all()  # one continuous timeline across the loss


@pytest.mark.slow
def test_a_dead_stream_is_finalised_at_once_and_ctrl_c_finalises_the_rest(tmp_path: Path) -> None:
    """`reconnect: false` for one stream whose sender dies: its file is complete while the
    others still run; then SIGINT ends them all with playable files and exit 130."""
    urls = [f"udp://127.0.0.1:{free_port()}" for _ in range(3)]
    senders = [send(url) for url in urls]
    names = ("a", "dead", "c")
    entries: list[dict[str, Any]] = [
        {"name": n, "input": u, "output": str(tmp_path / f"{n}.mp4")} for n, u in zip(names, urls)
    ]
    entries[1]["reconnect"] = False
    report_path = tmp_path / "report.json"
    try:
        proc = start_live(
            "--sources",
            str(_sources_file(tmp_path, entries)),
            "--backend",
            "passthrough",
            "--timeout",
            "1",
            "--report",
            str(report_path),
        )
        wait_for(tmp_path / ".dead.partial.mp4", proc)
        time.sleep(1.5)
        stop(senders[1], signal.SIGKILL)
        wait_for(tmp_path / "dead.mp4", proc, seconds=30)  # finalised, renamed into place
        assert proc.poll() is None and (tmp_path / ".a.partial.mp4").exists()  # the others go on
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        stderr = finish(proc, timeout=30)
    finally:
        for sender in senders:
            stop(sender)
    assert proc.returncode == 130, stderr
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True and adds_up(report)
    streams = _by_name(report)
    assert streams["dead"]["interrupted"] is False and streams["a"]["interrupted"] is True
    assert sorted(p.name for p in tmp_path.glob("*.mp4")) == ["a.mp4", "c.mp4", "dead.mp4"]  # no partial file left
    for name, stream in streams.items():
        assert adds_up(stream)
        assert stream["frames_out"] > RATE
        assert decodes_cleanly(tmp_path / f"{name}.mp4") == stream["frames_out"]
