"""SIGINT/SIGTERM mid-run: exit 130 promptly with a playable file of every processed frame."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.media import decodes_cleanly, ffmpeg, packet_hashes, stream_kinds

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=48000",
        "-t",
        "30",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "aac",
        "-shortest",
        str(path),
    )
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_finalizes_a_playable_partial_output(
    sig: signal.Signals, long_clip: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    partial = tmp_path / ".out.partial.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamdeblur",
            "run",
            str(long_clip),
            str(out),
            "--weights",
            str(tiny_weights),
            "--report",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not partial.exists():  # the output is open
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no output appeared"
        time.sleep(0.1)
    time.sleep(2.0)  # frames flowing (about 20 a second here)
    proc.send_signal(sig)
    sent = time.monotonic()
    _, stderr = proc.communicate(timeout=30)
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, stderr
    assert elapsed < 5, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in stderr
    assert out.exists() and not partial.exists()

    stats = json.loads(report.read_text())
    assert stats["interrupted"] is True
    assert 0 < stats["frames_out"] < 750
    assert decodes_cleanly(out) == stats["frames_out"]
    # Audio is kept up to the last frame, not beyond it.
    assert "audio" in stream_kinds(out)
    audio_end = float(packet_hashes(out, "a")[-1][0])
    assert audio_end <= stats["frames_out"] / 25 + 0.1
    assert audio_end >= stats["frames_out"] / 25 - 0.5
