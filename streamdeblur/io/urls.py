"""What an input or output name says about itself: camera, stream or file, and the container to push in."""

from __future__ import annotations

import re
from pathlib import Path

# HTTP serves files and streams alike: live only when the opened input has no duration.
MAYBE_LIVE_SCHEMES = frozenset({"http", "https"})
# The container a pushed stream is sent in, by the URL's scheme.
PUSH_FORMATS = {
    "rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv",
    "srt": "mpegts", "udp": "mpegts", "tcp": "mpegts", "rtp": "rtp_mpegts",
}  # fmt: skip
_V4L2_DEVICE = re.compile(r"^/dev/video\d+$")


def scheme(spec: str) -> str | None:
    """The lower-case URL scheme, or None for a path (an existing file named like a URL is a path)."""
    if "://" not in spec or Path(spec).exists():
        return None
    return spec.split("://", 1)[0].lower()


def camera_index(spec: str) -> int | None:
    """An OpenCV camera index ("0", "1", ...), unless a file of that name exists."""
    if spec.isdigit() and not Path(spec).exists():
        return int(spec)
    return None


def is_v4l2_device(spec: str) -> bool:
    return bool(_V4L2_DEVICE.match(spec))


def push_format(spec: str) -> str | None:
    """The container for a pushed stream URL; None for files and URLs FFmpeg can tell itself."""
    name = scheme(spec)
    return PUSH_FORMATS.get(name) if name else None
