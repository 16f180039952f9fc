"""SIGINT/SIGTERM mid-run: exit 130 promptly with a playable file of every processed frame; while the run
is still starting: exit 130 at once, with no output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from importlib.metadata import entry_points
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
    _stopped_by(proc, sig, within_s=5)
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


def _stopped_by(proc: subprocess.Popen[str], sig: int, within_s: float) -> str:
    """Send `sig`; the run must exit 130 within `within_s`, without a traceback. Its stderr."""
    proc.send_signal(sig)
    sent = time.monotonic()
    try:
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    elapsed = time.monotonic() - sent
    assert proc.returncode == 130, stderr
    assert elapsed < within_s, f"took {elapsed:.1f} s to stop"
    assert "Traceback" not in stderr
    return str(stderr)


# --- a stop while the run is still starting ------------------------------------------------------

# A run's start on a fresh cache (the default video model loaded, exported to ONNX, `auto`'s
# candidates timed) takes tens of seconds; these moments fall in loading Python and PyTorch,
# loading the weights, and exporting.
STARTUP_MOMENTS_S = (0.5, 2.0, 5.0)
PROMPT_S = 2.0


def _console_script() -> list[str]:
    # The installed `streamdeblur` command itself, not a shim in front of it: its entry point
    # must answer Ctrl-C from the first moment too, as `python -m streamdeblur` does.
    (script,) = entry_points(group="console_scripts", name="streamdeblur")
    assert script.value == "streamdeblur.entry:main"
    return [str(Path(sys.executable).parent / "streamdeblur")]


@pytest.mark.parametrize(
    ("after_s", "how"),
    [*((moment, "python -m") for moment in STARTUP_MOMENTS_S), (0.5, "console script")],
)
def test_ctrl_c_while_starting_stops_at_once_and_leaves_no_output(
    after_s: float, how: str, long_clip: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "streamdeblur"] if how == "python -m" else _console_script()
    out = tmp_path / "out.mp4"
    env = {
        **os.environ,
        "STREAMDEBLUR_CACHE_DIR": str(tmp_path / "cache"),  # nothing measured yet: auto times its candidates
        "STREAMDEBLUR_ENGINE_DIR": str(tmp_path / "engines"),  # nothing exported yet
    }
    proc = subprocess.Popen(
        [*command, "run", str(long_clip), str(out), "--backend", "auto"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(after_s)
    assert proc.poll() is None, proc.communicate()[1]
    _stopped_by(proc, signal.SIGINT, within_s=PROMPT_S)
    assert not out.exists() or decodes_cleanly(out) > 0
    assert not list(tmp_path.glob(".out.*")), "a partial output was left behind"


def test_ctrl_c_while_auto_times_its_candidates_stops_at_once(tmp_path: Path) -> None:
    from streamdeblur.engines.artifacts import onnx_for_weights
    from streamdeblur.registry import default_model

    # 1280x720: `auto` times its candidates at the input's size, which takes seconds even on a
    # fast CPU (at 320x240 one finished its timing within a second of starting it).
    clip = tmp_path / "wide.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "2", "-pix_fmt", "yuv420p", str(clip))
    onnx_for_weights(default_model("clip").weights)  # exported beforehand: the start is the timing itself
    out, record = tmp_path / "out.mp4", tmp_path / "cache" / "cpu-backend-choice.json"
    env = {**os.environ, "STREAMDEBLUR_CACHE_DIR": str(record.parent), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdeblur", "run", str(clip), str(out), "--backend", "auto"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    for line in proc.stderr:  # the model is named, its weights load, then the timing says it starts
        if "ways to run the network on this machine" in line:
            break
    time.sleep(0.3)
    assert not record.exists(), "the timing ended before the signal"
    stderr = _stopped_by(proc, signal.SIGINT, within_s=PROMPT_S)
    assert "no output written" in stderr
    assert not out.exists() and not list(tmp_path.glob(".out.*"))
    assert not record.exists()  # nothing remembered from a timing cut short


def test_a_signal_while_starting_raises_at_once_and_an_ignored_one_stays_ignored() -> None:
    from streamdeblur.pipeline.signals import starting
    from streamdeblur.stopping import StartStopped

    stop = threading.Event()
    before = signal.getsignal(signal.SIGINT)
    started = time.monotonic()
    with pytest.raises(StartStopped), starting(stop):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # a long step of the start, cut short
    assert time.monotonic() - started < 1 and stop.is_set()
    assert signal.getsignal(signal.SIGINT) is before

    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with starting(threading.Event()):
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_stop_set_while_timing_ends_it_before_the_next_candidate(tmp_path: Path) -> None:
    """A stop not from a signal (a batch driver's) ends `auto`'s timing between candidates."""
    from streamdeblur.inference.measured import fastest
    from streamdeblur.stopping import StartStopped, stoppable

    stop, timed = threading.Event(), []

    def seconds_of(option: str) -> float:
        timed.append(option)
        stop.set()  # asked for while the first candidate is timed
        return 1.0

    with pytest.raises(StartStopped), stoppable(stop):
        fastest("choices.json", {"machine": str(tmp_path)}, ["a", "b", "c"], seconds_of)
    assert timed == ["a"]
    with pytest.raises(StartStopped), stoppable(stop):
        pass  # a stop set before the start raises on entry
