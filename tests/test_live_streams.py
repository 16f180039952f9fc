"""`streamdeblur live` as a user runs it, against real senders and an RTSP server on 127.0.0.1."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from tests.livestreams import RATE, RTSP_SERVER, free_port, rtsp_server, send, stop
from tests.media import FFMPEG, decodes_cleanly, frame_times, stream_kinds

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers


def start_live(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamdeblur", "live", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 90) -> None:
    """Until `path` exists (the live run has its input open and its output started)."""
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    _, stderr = proc.communicate(timeout=timeout)
    assert "Traceback" not in stderr, stderr
    return stderr


def adds_up(report: dict[str, Any]) -> bool:
    return report["frames_in"] == report["frames_out"] + report["frames_dropped"] + report["frames_discarded"]


def test_udp_mpegts_to_file_with_audio(tmp_path: Path, tiny_weights: Path) -> None:
    url = f"udp://127.0.0.1:{free_port()}"
    sender = send(url, audio=True)
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    try:
        proc = start_live(
            url,
            str(out),
            "--weights",
            str(tiny_weights),
            "--duration",
            "4",
            "--stats-interval",
            "1",
            "--report",
            str(report_path),
        )
        stderr = finish(proc)
    finally:
        stop(sender)
    assert proc.returncode == 0, stderr
    report = json.loads(report_path.read_text())
    assert report["live"] is True and report["interrupted"] is False and report["model"] != "none"
    assert report["frames_in"] >= 3 * RATE
    assert adds_up(report)
    assert report["latency_ms"]["p99"] is not None
    assert "streamdeblur: last 1.0 s: in " in stderr  # the periodic stats lines
    assert decodes_cleanly(out) == report["frames_out"]
    assert stream_kinds(out) == ["video", "audio"]
    times = frame_times(out)
    assert times[0] == pytest.approx(0.0, abs=0.05)  # the live timeline starts at zero


def test_segments_each_play_alone_and_add_up(tmp_path: Path) -> None:
    """Recording in 1.5 s segments, ended by Ctrl-C: every segment a complete file of its own."""
    url = f"udp://127.0.0.1:{free_port()}"
    sender = send(url, audio=True)
    target, report_path = tmp_path / "rec.mp4", tmp_path / "report.json"
    try:
        proc = start_live(
            url, str(target), "--backend", "passthrough", "--segment-seconds", "1.5", "--report", str(report_path)
        )
        wait_for(tmp_path / ".rec_001.partial.mp4", proc)  # the first segment is done
        time.sleep(3.0)
        proc.send_signal(signal.SIGINT)
        stderr = finish(proc, timeout=30)
    finally:
        stop(sender)
    assert proc.returncode == 130, stderr
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True and adds_up(report)
    segments = [Path(p) for p in report["segments"]]
    assert len(segments) >= 3
    assert sorted(tmp_path.glob("rec_*.mp4")) == segments  # no partial file left behind
    counts = []
    for number, segment in enumerate(segments, 1):
        counts.append(decodes_cleanly(segment))
        # The sender's MPEG-TS muxer sends audio up to 0.7 s behind the video (its max_delay),
        # so the last segment, cut short by Ctrl-C, may end before any of its audio arrived.
        if number < len(segments) or counts[-1] > RATE:
            assert stream_kinds(segment) == ["video", "audio"]
        times = frame_times(segment)
        assert times[0] == pytest.approx(0.0, abs=0.05)
    assert sum(counts) == report["frames_out"]
    for count in counts[:-1]:  # full segments hold 1.5 s, less what was dropped
        assert count <= 1.5 * RATE + 1


def _mean_rgb(path: Path, which: str) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    frame = frames[0] if which == "first" else frames[-1]
    return frame.reshape(-1, 3).mean(axis=0)


def test_reconnects_after_the_sender_is_killed(tmp_path: Path) -> None:
    """The sender dies (SIGKILL) and a new one starts 2 s later: one output, continuous time."""
    url = f"udp://127.0.0.1:{free_port()}"
    out, report_path = tmp_path / "out.mp4", tmp_path / "report.json"
    first = send(url)  # testsrc2: many colours
    second = None
    try:
        proc = start_live(
            url,
            str(out),
            "--backend",
            "passthrough",
            "--timeout",
            "2",
            "--duration",
            "10",
            "--report",
            str(report_path),
        )
        wait_for(tmp_path / ".out.partial.mp4", proc)
        time.sleep(2.5)
        stop(first, signal.SIGKILL)
        time.sleep(2.0)
        assert proc.poll() is None  # still running without a source
        second = send(url, pattern="color=c=blue")
        stderr = finish(proc)
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert proc.returncode == 0, stderr
    assert "reconnected" in stderr
    report = json.loads(report_path.read_text())
    assert report["reconnects"] >= 1 and adds_up(report)
    assert decodes_cleanly(out) == report["frames_out"]
    times = frame_times(out)
    gaps = np.diff(times)
    assert (gaps > 0).all()  # increasing across the reconnection
    assert gaps.max() < 0.5  # no hole for the 3 s the source was gone
    red, green, blue = _mean_rgb(out, "last")
    assert blue > 150 and red < 60 and green < 60  # the second sender's frames are in
    red, green, blue = _mean_rgb(out, "first")
    assert not (blue > 150 and red < 60 and green < 60)  # and the first sender's before them


@pytest.mark.skipif(RTSP_SERVER is None, reason="rtsp-server-perl is not installed (.ci/run installs it)")
def test_rtsp_in_deblurred_rtsp_out_read_by_a_third_client(tmp_path: Path, tiny_weights: Path) -> None:
    """A sender publishes to a real RTSP server, `live` reads it and publishes the result back
    side by side (--compare), and ffmpeg plays that from the server."""
    assert FFMPEG
    with rtsp_server() as server:
        sender = send(server.publish_url("camera"), fmt="rtsp", transport="udp")
        report_path, received = tmp_path / "report.json", tmp_path / "received.mkv"
        proc = None
        try:
            time.sleep(1.0)  # the sender has announced its stream
            proc = start_live(
                server.play_url("camera"),
                server.publish_url("deblurred"),
                "--rtsp-transport",
                "udp",
                "--weights",
                str(tiny_weights),
                "--compare",
                "--duration",
                "14",
                "--report",
                str(report_path),
            )
            deadline = time.monotonic() + 60
            while True:  # until `live` has published, then record 3 s of what the server plays
                client = subprocess.run(
                    [
                        FFMPEG,
                        "-v",
                        "error",
                        "-y",
                        "-rtsp_transport",
                        "udp",
                        "-timeout",
                        "3000000",
                        "-i",
                        server.play_url("deblurred"),
                        "-t",
                        "3",
                        "-c",
                        "copy",
                        str(received),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                if client.returncode == 0 and received.exists() and received.stat().st_size > 0:
                    break
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, client.stderr
                time.sleep(0.5)
            stderr = finish(proc)
        finally:
            stop(sender)
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, stderr
    report = json.loads(report_path.read_text())
    assert report["frames_out"] > 0 and adds_up(report)
    played = decodes_cleanly(received)
    # Decodable from its first frame (`live` forces a keyframe each second); how many frames a
    # CPU shared with the rest of the suite deblurs in 3 s is not the point here.
    assert played >= 2
    with av.open(str(received)) as container:
        video = container.streams.video[0]
        assert (video.codec_context.name, video.width, video.height) == ("h264", 320, 120)  # original | deblurred


def test_rtmp_in_and_rtmp_out(tmp_path: Path) -> None:
    """RTMP both ways, with ffmpeg as the servers: one serves the camera stream (`-listen`),
    the other takes our pushed stream and records it. TCP loses nothing on the way."""
    assert FFMPEG
    camera = f"rtmp://127.0.0.1:{free_port()}/live/camera"
    pushed = f"rtmp://127.0.0.1:{free_port()}/live/deblurred"
    received, report_path = tmp_path / "received.flv", tmp_path / "report.json"
    server = send(camera, fmt="flv", listen=True)
    receiver = subprocess.Popen(
        [FFMPEG, "-v", "error", "-y", "-listen", "1", "-i", pushed, "-c", "copy", str(received)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        proc = start_live(camera, pushed, "--backend", "passthrough", "--duration", "4", "--report", str(report_path))
        stderr = finish(proc)
        receiver.wait(30)  # it ends when our stream does
    finally:
        stop(server)
        stop(receiver)
    assert proc.returncode == 0, stderr
    report = json.loads(report_path.read_text())
    assert report["frames_out"] > 2 * RATE and adds_up(report)
    assert decodes_cleanly(received) == report["frames_out"]
