"""Real stream senders and servers on 127.0.0.1 for the live tests, started and stopped by them."""

from __future__ import annotations

import json
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.media import FFMPEG, FFPROBE

RTSP_SERVER = shutil.which("rtsp-server-perl")  # Debian's rtsp-server-perl; .ci/run installs it
SIZE, RATE = "160x120", 25


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _udp_block_free(start: int, count: int) -> bool:
    sockets = []
    try:
        for port in range(start, start + count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        for sock in sockets:
            sock.close()


def free_udp_block(count: int) -> int:
    """An even port starting `count` free UDP ports (RTP and RTCP pairs)."""
    for _ in range(100):
        start = random.randrange(40_000, 60_000 - count, 2)
        if _udp_block_free(start, count):
            return start
    raise RuntimeError("no free block of UDP ports")


def send(
    url: str,
    *,
    pattern: str = "testsrc2",
    rate: int = RATE,
    seconds: float = 60,
    audio: bool = False,
    fmt: str = "mpegts",
    transport: str | None = None,
    listen: bool = False,
) -> subprocess.Popen[bytes]:
    """An ffmpeg process sending a test pattern to `url` at real-time speed (H.264, 1 s GOP).

    With `listen` it is the server instead: it waits at `url` for a player to connect (RTMP).
    """
    assert FFMPEG, "ffmpeg is needed (.ci/run installs Debian's ffmpeg)"
    source = f"{pattern}{':' if '=' in pattern else '='}size={SIZE}:rate={rate}"
    args = [FFMPEG, "-v", "error", "-re", "-f", "lavfi", "-i", source]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac"]
    args += [
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        str(rate),
        "-pix_fmt",
        "yuv420p",
    ]
    if transport:
        args += ["-rtsp_transport", transport]
    if listen:
        args += ["-listen", "1"]
    proc = subprocess.Popen([*args, "-f", fmt, url], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.3)
    if proc.poll() is not None:
        raise RuntimeError(f"the sender exited: {proc.communicate()[1].decode()}")
    return proc


def keyframe_times(path: Path) -> list[float]:
    """Presentation times of the video keyframes, as ffprobe reports them."""
    assert FFPROBE
    out = subprocess.run(
        [
            FFPROBE,
            "-v",
            "error",
            "-of",
            "json",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pts_time",
            str(path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [float(f["pts_time"]) for f in json.loads(out.stdout)["frames"] if f["key_frame"] == 1]


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr is not None:
        proc.stderr.close()


@dataclass(frozen=True)
class RtspServer:
    """Publishers ANNOUNCE/RECORD on `publish_port`; players DESCRIBE/SETUP/PLAY on `play_port`.

    This server carries RTP over UDP only (RTSP interleaved over TCP is not implemented).
    """

    publish_port: int
    play_port: int

    def publish_url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.publish_port}/{path}"

    def play_url(self, path: str) -> str:
        return f"rtsp://127.0.0.1:{self.play_port}/{path}"


def _wait_listening(port: int, proc: subprocess.Popen[bytes], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rtsp-server-perl exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"rtsp-server-perl did not listen on {port}")


@contextmanager
def rtsp_server() -> Iterator[RtspServer]:
    """rtsp-server-perl on free loopback ports, with its RTP ports in a free block of its own."""
    assert RTSP_SERVER
    publish, play = free_port(), free_port()
    args = [
        RTSP_SERVER,
        "--serverport",
        str(publish),
        "--clientport",
        str(play),
        "--source_listen_address",
        "127.0.0.1",
        "--client_listen_address",
        "127.0.0.1",
        "--rtp_start_port",
        str(free_udp_block(40)),
        "--loglevel",
        "1",
    ]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_listening(publish, proc)
        _wait_listening(play, proc)
        yield RtspServer(publish, play)
    finally:
        stop(proc, signal.SIGINT)  # its own handler ends the event loop
