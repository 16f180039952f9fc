"""Reading and writing media: PyAV for files and streams, image folders for stills."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from streamdeblur.errors import BadInput
from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.image_folder import ImageFolderSink, ImageFolderSource
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.passthrough import PacketBuffer
from streamdeblur.io.urls import push_format
from streamdeblur.io.video_sink import EncodeOptions, VideoSink, partial_path
from streamdeblur.io.video_source import VideoSource

__all__ = [
    "EncodeOptions", "Frame", "MediaInfo", "PacketBuffer", "ReadStats", "Sink", "Source",
    "open_sink", "open_source", "output_is_folder", "partial_path",
]  # fmt: skip


class Source(Protocol):
    info: MediaInfo
    passthrough: PacketBuffer
    stats: ReadStats

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class Sink(Protocol):
    @property
    def frames_written(self) -> int: ...

    def write(self, frame: Frame) -> None: ...

    def close(self, complete: bool = True) -> None: ...

    def discard(self) -> None: ...


NETWORK_TIMEOUT_S = 5.0  # as `live --timeout`: opening, or silence while reading, before giving up


def open_source(spec: str, fps: Fraction = Fraction(25), network_timeout_s: float = NETWORK_TIMEOUT_S) -> Source:
    """A folder of images, or anything FFmpeg opens (file or URL). A URL that takes longer than
    `network_timeout_s` to open, or then stays silent that long, raises instead of hanging."""
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, fps)
    if "://" not in spec:
        if not path.exists():
            raise BadInput(f"input not found: {spec}")
        if path.stat().st_size == 0:
            raise BadInput(f"input {spec} is empty")
        return VideoSource(spec)
    return VideoSource(spec, timeout=(network_timeout_s, network_timeout_s))


def output_is_folder(spec: str) -> bool:
    """A folder of PNGs is written for an existing folder, a trailing slash, or no suffix."""
    if "://" in spec:
        return False
    path = Path(spec)
    return path.is_dir() or spec.endswith(("/", "\\")) or not path.suffix


def open_sink(
    spec: str, info: MediaInfo, passthrough: PacketBuffer, options: EncodeOptions, overwrite: bool,
    container_options: dict[str, str] | None = None,
) -> Sink:
    """A folder of PNGs, a video file, or a URL (pushed streams get their container from the scheme)."""
    if output_is_folder(spec):
        return ImageFolderSink(Path(spec), overwrite, info.frame_names)
    return VideoSink(spec, info, options, passthrough, overwrite=overwrite, container_format=push_format(spec),
                     container_options=container_options)
