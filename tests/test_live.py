"""Live runs in-process: the drop policy against a real UDP sender, reconnection and pacing,
the side-by-side view, detection, and bad live usage (one line, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from streamdeblur.cli import app
from streamdeblur.errors import BadInput, StreamdeblurError
from streamdeblur.inference import BackendSpec
from streamdeblur.io import Frame, SourceOptions, open_source
from streamdeblur.io.camera import CameraSource
from streamdeblur.io.live_source import Backoff, LiveSource
from streamdeblur.io.media_info import MediaInfo, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer
from streamdeblur.io.preview import CompareSink, OriginalFrames, PreviewSink
from streamdeblur.io.urls import camera_index, push_format, scheme
from streamdeblur.io.video_sink import EncodeOptions, VideoSink
from streamdeblur.io.video_source import VideoSource
from streamdeblur.pipeline import job
from streamdeblur.pipeline.job import RunOptions, run_job
from streamdeblur.pipeline.live import LiveOptions
from tests.fakes import TB, Connection, ListSink, SleepyBackend
from tests.livestreams import free_port, keyframe_times, send, stop
from tests.media import decodes_cleanly, make_clip

# --- the drop policy, with a real sender and the real pipeline -------------------------------


def _live_run(tmp_path: Path, rate: int, max_latency_ms: float, seconds: float = 5.0) -> tuple[job.RunReport, Path]:
    port = free_port()
    url = f"udp://127.0.0.1:{port}"
    sender = send(url, rate=rate)
    out = tmp_path / "out.mp4"
    try:
        report = run_job(
            RunOptions(
                input=url,
                output=str(out),
                spec=BackendSpec(backend="passthrough"),
                progress=False,
                live=LiveOptions(max_latency_ms=max_latency_ms, duration_s=seconds, timeout_s=10),
            )
        )
    finally:
        stop(sender)
    return report, out


@pytest.mark.slow
def test_slow_processor_drops_frames_to_keep_latency_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    per_frame = 0.12  # about 8 frames/s against 25 coming in
    monkeypatch.setattr(BackendSpec, "create", lambda *args, **kwargs: SleepyBackend(per_frame))
    report, out = _live_run(tmp_path, rate=25, max_latency_ms=400)
    assert report.live and not report.interrupted
    assert report.frames_in > 80  # about 5 s at 25 frames/s
    assert report.frames_dropped > report.frames_in / 3
    assert report.frames_in == report.frames_out + report.frames_dropped + report.frames_discarded
    assert report.frames_discarded == 0  # a duration ends the run normally: everything read is accounted for
    # The policy predicts a frame's remaining way (processing, writing) as the slowest of the
    # last 16 frames'. Only a frame slower than all of those overshoots, by its excess: on this
    # shared 2-core machine a hiccup of up to one more processing time is allowed for.
    assert report.latency_ms["p99"] is not None
    assert report.latency_ms["p99"] <= 400 + per_frame * 1000
    assert decodes_cleanly(out) == report.frames_out


@pytest.mark.slow
def test_fast_processor_drops_nothing(tmp_path: Path) -> None:
    report, out = _live_run(tmp_path, rate=10, max_latency_ms=1000, seconds=4.0)
    assert report.frames_in > 25
    assert report.frames_dropped == 0
    assert report.frames_out == report.frames_in
    assert report.latency_ms["p99"] is not None and report.latency_ms["p99"] < 1000
    assert decodes_cleanly(out) == report.frames_out


# --- reconnection and timestamps, with in-memory connections ---------------------------------


def test_reconnects_after_a_loss_with_continuous_timestamps() -> None:
    first = Connection(first_pts=900_000, count=5)
    later = [BadInput("connection refused"), Connection(first_pts=123, count=4, size=(32, 24))]
    stop_event, finish = threading.Event(), threading.Event()

    def connect() -> Connection:
        item = later.pop(0) if later else None
        if item is None:
            finish.set()  # the test is over: end the run as --duration would
            raise BadInput("gone")
        if isinstance(item, Exception):
            raise item
        return item

    source = LiveSource(first, stop_event, finish, connect=connect, backoff=Backoff(first_s=0.01, max_s=0.02))
    frames = list(source.frames())
    assert [f.index for f in frames] == list(range(9))
    # From 0, one frame (3600 units at 1/90000 s) apart, straight across the reconnection.
    assert [f.pts for f in frames] == [i * 3600 for i in range(9)]
    assert source.reconnects == 1
    assert first.closed
    assert all(f.pixels.shape == (12, 16, 3) for f in frames)  # the output's size is kept
    assert source.stats.decoded == 9


def test_a_file_forced_live_is_delivered_at_its_own_rate(media_dir: Path) -> None:
    clip = make_clip("cfr_aac", media_dir)  # 1.2 s at 25 frames/s
    source = LiveSource(VideoSource(str(clip)), threading.Event(), threading.Event(), pace=True)
    started = time.monotonic()
    count = sum(1 for _ in source.frames())
    elapsed = time.monotonic() - started
    source.close()
    assert count == 30
    assert elapsed >= 29 / 25 - 0.05


def test_camera_source_stamps_frames_by_clock(media_dir: Path) -> None:
    """The OpenCV camera source, fed by a clip (no camera here): RGB frames, increasing pts."""
    clip = make_clip("cfr_aac", media_dir)
    camera = CameraSource(str(clip))
    frames = list(camera.frames())
    camera.close()
    assert len(frames) == 30
    assert frames[0].pixels.shape == (240, 320, 3)
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:]))
    assert camera.info.live
    # Same colours as PyAV decodes (RGB order), up to the two libraries' YUV->RGB rounding.
    reference = VideoSource(str(clip))
    first = next(reference.frames()).pixels
    reference.close()
    assert np.abs(first.astype(int) - frames[0].pixels.astype(int)).mean() < 4


# --- the side-by-side view --------------------------------------------------------------------


def test_compare_puts_original_left_and_deblurred_right_and_forgets_dropped_frames() -> None:
    originals, inner = OriginalFrames(), ListSink()
    sink = CompareSink(inner, originals)
    for index in range(4):
        originals.keep(Frame(np.full((4, 6, 3), 10 + index, np.uint8), index, TB, index))
    # frames 0 and 2 were dropped on the way; 1 and 3 come out deblurred
    sink.write(Frame(np.full((4, 6, 3), 201, np.uint8), 1, TB, 1))
    sink.write(Frame(np.full((4, 6, 3), 203, np.uint8), 3, TB, 3))
    first, second = inner.frames
    assert first.pixels.shape == (4, 12, 3)
    assert (first.pixels[:, :6] == 11).all() and (first.pixels[:, 6:] == 201).all()
    assert (second.pixels[:, :6] == 13).all() and (second.pixels[:, 6:] == 203).all()
    assert not originals._pixels  # nothing left behind for the dropped ones


# --- names --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, kind", [
    ("rtsp://cam.local/stream", "rtsp"), ("UDP://127.0.0.1:5000", "udp"), ("srt://host:9000", "srt"),
    ("clip.mp4", None), ("/dev/video0", None),
])  # fmt: skip
def test_scheme_of_a_name(spec: str, kind: str | None) -> None:
    assert scheme(spec) == kind


def test_a_camera_index_is_an_input_only_when_reading_live(tmp_path: Path) -> None:
    """`run 0` looks for a file named 0; `live 0` opens camera 0 (none here: a clear error either way)."""
    with pytest.raises(BadInput, match="input not found: 0"):
        open_source("0")
    with pytest.raises(StreamdeblurError, match="camera 0"):
        open_source("0", SourceOptions(live=True))


def test_names_of_cameras_and_pushed_stream_formats(tmp_path: Path) -> None:
    assert camera_index("2") == 2 and camera_index("cam") is None
    (tmp_path / "3").write_bytes(b"x")
    assert camera_index(str(tmp_path / "3")) is None
    assert push_format("rtsp://h/x") == "rtsp" and push_format("rtmp://h/a/b") == "flv"
    assert push_format("srt://h:1") == "mpegts" and push_format("udp://h:1") == "mpegts"
    assert push_format("out.mp4") is None


# --- bad live usage: one line, exit 2, nothing written -----------------------------------------


@pytest.mark.parametrize("args, message", [
    (["udp://127.0.0.1:9", "OUT/rec.mp4", "--segment-seconds", "0"], "--segment-seconds must be positive"),
    (["udp://127.0.0.1:9", "udp://127.0.0.1:10", "--segment-seconds", "2"], "needs a video file output"),
    (["udp://127.0.0.1:9", "OUT/rec.mp4", "--rtsp-transport", "http"], "--rtsp-transport must be one of tcp, udp"),
    (["udp://127.0.0.1:9", "OUT/rec.mp4", "--max-latency-ms", "-1"], "must be positive"),
    (["/dev/video97", "OUT/rec.mp4"], "/dev/video97"),
    (["97", "OUT/rec.mp4"], "cannot open camera 97"),
    (["udp://127.0.0.1:PORT", "OUT/rec.mp4", "--timeout", "1"], "cannot open udp://127.0.0.1:"),
    (["rtsp://127.0.0.1:PORT/none", "OUT/rec.mp4", "--timeout", "2"], "cannot open rtsp://127.0.0.1:"),
    (["udp://127.0.0.1:PORT", "OUT/rec.mp4", "--preview"], "--preview needs a display"),
])  # fmt: skip
def test_bad_live_usage_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    port = free_port()
    args = [a.replace("OUT", str(tmp_path)).replace("PORT", str(port)) for a in args]
    sender = send(f"udp://127.0.0.1:{port}") if "--preview" in args else None
    try:
        result = CliRunner().invoke(app, ["live", *args, "--backend", "passthrough", "-q"])
    finally:
        if sender is not None:
            stop(sender)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("streamdeblur: error: ") and message in lines[-1], result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_live_output_has_a_keyframe_every_second_despite_drops(tmp_path: Path) -> None:
    """Pushed streams force keyframes by time, so a viewer joining waits at most a second."""
    video = VideoInfo(width=64, height=48, time_base=Fraction(1, 25), average_rate=Fraction(25))
    info = MediaInfo(source="test", format_name="test", video=video)
    out = tmp_path / "live.ts"
    sink = VideoSink(str(out), info, EncodeOptions(low_latency=True), PacketBuffer())
    for pts in range(0, 100, 5):  # 4 s at 25 frames/s with 4 of every 5 frames dropped: 5 frames a second
        sink.write(Frame(np.full((48, 64, 3), pts, np.uint8), pts, Fraction(1, 25), pts))
    sink.close()
    keys = keyframe_times(out)
    assert [round(t - keys[0], 2) for t in keys] == [0.0, 1.0, 2.0, 3.0]  # with a 25-frame GOP there would be one, at 0


# --- the preview window, on a virtual display ----------------------------------------------------


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A virtual X display (Debian's xvfb; .ci/run installs it) for the OpenCV window."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (.ci/run installs it)")
    number = next(n for n in range(150, 250) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    proc = subprocess.Popen(
        [xvfb, f":{number}", "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.1)
    yield f":{number}"
    proc.terminate()
    proc.wait(10)


def test_preview_window_shows_frames_written_by_another_thread(display: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPLAY", display)
    quit_requested, inner = threading.Event(), ListSink()
    preview = PreviewSink(inner, "streamdeblur test", quit_requested.set)

    def write_frames() -> None:  # the writer thread's part
        for i in range(30):
            preview.write(Frame(np.full((48, 64, 3), i, np.uint8), i, TB, i))
            time.sleep(0.01)

    writer = threading.Thread(target=write_frames)
    writer.start()
    while writer.is_alive():  # as Pipeline.run does with its `idle`
        writer.join(0.02)
        preview.show()
    preview.show()
    assert len(inner.frames) == 30 and preview.frames_written == 30
    assert preview.shown >= 2  # drawn as they came, in the main thread
    assert cv2.getWindowProperty("streamdeblur test", cv2.WND_PROP_VISIBLE) == 1
    assert not quit_requested.is_set()
    preview.close()


@pytest.mark.slow
def test_live_to_a_preview_window_only(display: str, tmp_path: Path) -> None:
    port = free_port()
    url = f"udp://127.0.0.1:{port}"
    sender = send(url)
    report = tmp_path / "report.json"
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamdeblur",
                "live",
                url,
                "preview",
                "--backend",
                "passthrough",
                "--duration",
                "3",
                "--report",
                str(report),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "DISPLAY": display},
        )
    finally:
        stop(sender)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    stats = json.loads(report.read_text())
    assert stats["frames_out"] > 25
    assert list(tmp_path.iterdir()) == [report]
