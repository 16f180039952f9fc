"""`run` keeps every frame, its timestamp, the audio, size, rotation and bit depth."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.media import (
    audio_stream,
    decodes_cleanly,
    frame_times,
    make_clip,
    make_rotated,
    packet_hashes,
    rotation,
    stream_kinds,
    video_stream,
)

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers

# clip name -> output suffix
CASES = {
    "cfr_aac": ".mp4",
    "vfr_opus": ".mkv",
    "odd_size": ".mp4",
    "hevc_10bit": ".mp4",
    "mjpeg_pcm": ".mkv",
    "vp9": ".webm",
    "one_frame": ".mp4",
}


def _deblur(src: Path, dst: Path, weights: Path, *extra: str) -> dict:
    report = dst.with_suffix(".json")
    result = run_cli("run", str(src), str(dst), "--weights", str(weights), "-q", "--report", str(report), *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(report.read_text())


def _assert_same_timeline(src: Path, dst: Path) -> None:
    before, after = frame_times(src), frame_times(dst)
    assert len(after) == len(before)
    assert after == pytest.approx(before, abs=1e-4)


def _assert_same_audio_packets(src: Path, dst: Path) -> None:
    """Bit-identical payloads at the same times (Matroska stores times in whole milliseconds)."""
    before, after = packet_hashes(src, "a"), packet_hashes(dst, "a")
    assert [h for _, h in after] == [h for _, h in before]
    assert [float(t) for t, _ in after] == pytest.approx([float(t) for t, _ in before], abs=1e-3)


@pytest.mark.parametrize("clip", sorted(CASES))
def test_roundtrip_keeps_frames_timestamps_and_audio(
    clip: str, media_dir: Path, tmp_path: Path, tiny_weights: Path
) -> None:
    src = make_clip(clip, media_dir)
    dst = tmp_path / f"out{CASES[clip]}"
    report = _deblur(src, dst, tiny_weights)

    assert decodes_cleanly(dst) == len(frame_times(src)) == report["frames_out"] == report["frames_in"]
    _assert_same_timeline(src, dst)
    assert stream_kinds(dst).count("audio") == stream_kinds(src).count("audio")
    if "audio" in stream_kinds(src):
        _assert_same_audio_packets(src, dst)
    s_in, s_out = video_stream(src), video_stream(dst)
    assert (s_out["width"], s_out["height"]) == (s_in["width"], s_in["height"])
    assert list(tmp_path.glob(".*partial*")) == []


def test_ten_bit_in_gives_ten_bit_out(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    dst = tmp_path / "out.mp4"
    _deblur(make_clip("hevc_10bit", media_dir), dst, tiny_weights)
    stream = video_stream(dst)
    assert stream["codec_name"] == "hevc"
    assert stream["pix_fmt"] == "yuv420p10le"


def test_rotation_is_carried(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    src = make_rotated(make_clip("cfr_aac", media_dir), 90, media_dir)
    assert rotation(src) == 90
    dst = tmp_path / "out.mp4"
    _deblur(src, dst, tiny_weights)
    assert rotation(dst) == 90
    s_in, s_out = video_stream(src), video_stream(dst)
    assert (s_out["width"], s_out["height"]) == (s_in["width"], s_in["height"])
    _assert_same_timeline(src, dst)


def test_colour_tags_and_pixels_survive_the_passthrough_path(tmp_path: Path) -> None:
    """With no network in the way, what comes out looks like what went in."""
    import numpy as np

    from tests.media import ffmpeg

    src = tmp_path / "bt709.mp4"
    # Desaturated so every colour is inside the RGB gamut and can round-trip.
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=320x240:rate=25",
        "-t",
        "0.4",
        "-vf",
        "hue=s=0.6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-crf",
        "10",
        "-color_range",
        "tv",
        "-colorspace",
        "bt709",
        "-color_primaries",
        "bt709",
        "-color_trc",
        "bt709",
        str(src),
    )
    dst = tmp_path / "out.mp4"
    result = run_cli("run", str(src), str(dst), "--backend", "passthrough", "-q", "--crf", "10")
    assert result.returncode == 0, result.stderr
    s_in, s_out = video_stream(src), video_stream(dst)
    for key in ("color_range", "color_space", "color_primaries", "color_transfer", "pix_fmt"):
        assert s_out.get(key) == s_in.get(key), key

    def rgb(path: Path) -> np.ndarray:
        import subprocess

        raw = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
            capture_output=True,
            check=True,
        ).stdout
        return np.frombuffer(raw, np.uint8).reshape(-1, 240, 320, 3).astype(np.float64)

    a, b = rgb(src), rgb(dst)
    assert a.shape == b.shape
    assert np.abs(a.mean(axis=(0, 1, 2)) - b.mean(axis=(0, 1, 2))).max() < 0.5  # no colour or level shift
    mse = ((a - b) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 30  # 4:2:0 chroma and encoder loss on a harsh test pattern


def test_image_folder_in_and_out(tmp_path: Path, tiny_weights: Path) -> None:
    import cv2
    import numpy as np

    frames_in = tmp_path / "frames"
    frames_in.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2, 10):  # natural order: 1, 2, 10
        cv2.imwrite(str(frames_in / f"f{i}.png"), rng.integers(0, 65535, (37, 51, 3), dtype=np.uint16))
    out = tmp_path / "sharp"
    _deblur(frames_in, out, tiny_weights)
    assert sorted(p.name for p in out.iterdir()) == ["f1.png", "f10.png", "f2.png"]  # names kept
    image = cv2.imread(str(out / "f1.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (37, 51, 3) and image.dtype == np.uint16

    video = tmp_path / "from_frames.mp4"
    _deblur(frames_in, video, tiny_weights, "--fps", "10")
    assert frame_times(video) == pytest.approx([0.0, 0.1, 0.2], abs=1e-4)
    cv2.imwrite(str(frames_in / "f1.tif"), rng.integers(0, 65535, (37, 51, 3), dtype=np.uint16))
    clash = tmp_path / "clash"  # f1.png and f1.tif cannot both become f1.png: numbered instead
    _deblur(frames_in, clash, tiny_weights)
    assert sorted(p.name for p in clash.iterdir()) == [f"{i:06d}.png" for i in range(4)]
    frames_out = tmp_path / "frames_out"
    _deblur(video, frames_out, tiny_weights)  # a video has no names: frames are numbered
    assert sorted(p.name for p in frames_out.iterdir()) == ["000000.png", "000001.png", "000002.png"]


def test_subtitles_are_copied_and_g711_audio_is_reencoded_where_the_container_needs_it(tmp_path: Path) -> None:
    from tests.media import ffmpeg

    subtitles = tmp_path / "s.srt"
    subtitles.write_text("1\n00:00:00,000 --> 00:00:00,500\nhello\n\n2\n00:00:00,600 --> 00:00:01,000\nworld\n")
    src = tmp_path / "camera.mkv"  # G.711 mu-law audio, as surveillance cameras send it
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-f",
        "lavfi",
        "-i",
        "sine=sample_rate=8000",
        "-i",
        str(subtitles),
        "-t",
        "2",
        "-map",
        "0",
        "-map",
        "1",
        "-map",
        "2",
        "-c:v",
        "libx264",
        "-c:a",
        "pcm_mulaw",
        "-c:s",
        "srt",
        str(src),
    )

    for suffix, kinds in ((".mkv", ["video", "audio", "subtitle"]), (".mp4", ["video", "audio"])):
        out = tmp_path / f"out{suffix}"
        result = run_cli("run", str(src), str(out), "--backend", "passthrough")
        assert result.returncode == 0, result.stderr
        assert stream_kinds(out) == kinds
        # Neither container takes G.711 (FFmpeg 8's muxers say so): re-encoded, whole.
        assert "re-encoding stream #1 as aac" in result.stderr
        audio = audio_stream(out)
        assert audio["codec_name"] == "aac" and float(audio.get("duration", 2.0)) == pytest.approx(2.0, abs=0.05)
        assert decodes_cleanly(out) == 50
    assert packet_hashes(tmp_path / "out.mkv", "s") == packet_hashes(src, "s")  # subtitles copied as they are
    assert "left out" in result.stderr  # MP4 cannot hold SubRip


def test_avi_output_times_every_frame(media_dir: Path, tmp_path: Path) -> None:
    """AVI keeps decode times only, so H.264 goes in without B-frames: no frame loses its time."""
    src, out = make_clip("cfr_aac", media_dir), tmp_path / "out.avi"
    assert run_cli("run", str(src), str(out), "--backend", "passthrough", "-q").returncode == 0
    probe = json.loads(
        subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=best_effort_timestamp_time",
                "-of",
                "json",
                str(out),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    stamps = [frame.get("best_effort_timestamp_time") for frame in probe["frames"]]
    assert len(stamps) == len(frame_times(src)) and None not in stamps
    times = [float(t) for t in stamps]
    assert times == sorted(times) and len(set(times)) == len(times)
