"""Test media made on the spot with the ffmpeg CLI, and ffprobe readings of the results."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")


def ffmpeg(*args: str) -> None:
    assert FFMPEG, "ffmpeg is needed (.ci/run installs Debian's ffmpeg)"
    subprocess.run([FFMPEG, "-v", "error", "-y", *args], check=True)


def _probe(path: Path, *args: str) -> dict[str, Any]:
    assert FFPROBE, "ffprobe is needed (.ci/run installs Debian's ffmpeg)"
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-of", "json", *args, str(path)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def video_stream(path: Path) -> dict[str, Any]:
    data = _probe(path, "-select_streams", "v:0", "-show_streams")
    return data["streams"][0]


def audio_stream(path: Path) -> dict[str, Any]:
    return _probe(path, "-select_streams", "a:0", "-show_streams")["streams"][0]


def rotation(path: Path) -> int:
    for side in video_stream(path).get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"])
    return 0


def frame_times(path: Path) -> list[float]:
    """Presentation times of every decoded video frame, as ffprobe reports them."""
    data = _probe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time,best_effort_timestamp_time")
    times = []
    for frame in data["frames"]:
        stamp = frame.get("pts_time", frame.get("best_effort_timestamp_time"))
        times.append(float(stamp))
    return times


def packet_hashes(path: Path, selector: str) -> list[tuple[str, str]]:
    """(pts_time, MD5 of the payload) of every packet of the selected streams."""
    data = _probe(
        path,
        "-select_streams",
        selector,
        "-show_packets",
        "-show_data_hash",
        "MD5",
        "-show_entries",
        "packet=pts_time,data_hash",
    )
    return [(p.get("pts_time", ""), p["data_hash"]) for p in data["packets"]]


def stream_kinds(path: Path) -> list[str]:
    return [s["codec_type"] for s in _probe(path, "-show_streams")["streams"]]


def decodes_cleanly(path: Path) -> int:
    """Decode the whole file with ffmpeg (errors fail the test); returns its video frame count."""
    assert FFMPEG
    subprocess.run([FFMPEG, "-v", "error", "-xerror", "-i", str(path), "-f", "null", "-"], check=True)
    return len(frame_times(path))


# Recipes for the clips the I/O tests round-trip: name -> (file name, ffmpeg arguments).
_TESTSRC = "testsrc2=size=320x240:rate=25"
_SINE = "sine=frequency=440:sample_rate=48000"
CLIPS: dict[str, tuple[str, list[str]]] = {
    "cfr_aac": (
        "cfr_aac.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            _TESTSRC,
            "-f",
            "lavfi",
            "-i",
            _SINE,
            "-t",
            "1.2",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    # Frames dropped irregularly with their timestamps kept: variable frame rate.
    "vfr_opus": (
        "vfr_opus.mkv",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            _SINE,
            "-t",
            "1.5",
            "-vf",
            "select='not(eq(mod(n\\,4)\\,1))*not(eq(mod(n\\,7)\\,3))'",
            "-fps_mode",
            "vfr",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "libopus",
            "-shortest",
        ],
    ),
    "odd_size": (
        "odd_size.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=641x359:rate=25",
            "-f",
            "lavfi",
            "-i",
            _SINE,
            "-t",
            "0.6",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv444p",
            "-c:a",
            "aac",
            "-shortest",
        ],
    ),
    "hevc_10bit": (
        "hevc_10bit.mp4",
        [
            "-f",
            "lavfi",
            "-i",
            _TESTSRC,
            "-t",
            "0.6",
            "-c:v",
            "libx265",
            "-pix_fmt",
            "yuv420p10le",
            "-x265-params",
            "log-level=error",
            "-tag:v",
            "hvc1",
        ],
    ),
    "mjpeg_pcm": (
        "mjpeg_pcm.avi",
        [
            "-f",
            "lavfi",
            "-i",
            _TESTSRC,
            "-f",
            "lavfi",
            "-i",
            _SINE,
            "-t",
            "0.8",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-c:a",
            "pcm_s16le",
            "-shortest",
        ],
    ),
    "vp9": (
        "vp9.webm",
        [
            "-f",
            "lavfi",
            "-i",
            _TESTSRC,
            "-t",
            "0.6",
            "-c:v",
            "libvpx-vp9",
            "-b:v",
            "0",
            "-crf",
            "40",
            "-deadline",
            "realtime",
        ],
    ),
    "one_frame": (
        "one_frame.mp4",
        ["-f", "lavfi", "-i", _TESTSRC, "-frames:v", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p"],
    ),
}


def make_clip(name: str, folder: Path) -> Path:
    filename, args = CLIPS[name]
    path = folder / filename
    if not path.exists():
        ffmpeg(*args, str(path))
    return path


def make_rotated(source: Path, degrees: int, folder: Path) -> Path:
    """A copy of `source` whose display matrix says: rotate by `degrees`."""
    path = folder / f"rot{degrees}_{source.name}"
    ffmpeg("-i", str(source), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(path))
    return path
