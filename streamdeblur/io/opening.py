"""The one way `run` and `live` open their input and their output, from typed options.

`run` takes the defaults. `live` asks for live reading (cameras, reconnecting streams, files
paced at their own rate) and for the outputs only it has (segments, a window, side by side).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from streamdeblur.errors import BadInput
from streamdeblur.io.camera import CameraSource
from streamdeblur.io.image_folder import ImageFolderSink, ImageFolderSource
from streamdeblur.io.live_source import LiveSource
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.preview import CompareSink, OriginalFrames, PreviewSink, doubled_width
from streamdeblur.io.protocols import Sink, Source
from streamdeblur.io.segments import SegmentedSink
from streamdeblur.io.urls import MAYBE_LIVE_SCHEMES, camera_index, is_v4l2_device, push_format, scheme
from streamdeblur.io.video_sink import EncodeOptions, VideoSink
from streamdeblur.io.video_source import VideoSource

NETWORK_TIMEOUT_S = 5.0  # opening a network input, or its silence while reading, before giving up
PREVIEW_ONLY = "preview"  # the output that is a window and nothing else
RTSP_TRANSPORTS = ("tcp", "udp")


@dataclass(frozen=True)
class SourceOptions:
    fps: Fraction = Fraction(25)  # image folders carry no rate of their own
    timeout_s: float = NETWORK_TIMEOUT_S
    rtsp_transport: str = "tcp"
    # Live reading (`live`): cameras are inputs too, a lost stream is reopened (`reconnect`),
    # and `force` reads a file at its own frame rate, as a camera would deliver it.
    live: bool = False
    force: bool = False
    reconnect: bool = True


@dataclass(frozen=True)
class SinkOptions:
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    overwrite: bool = False
    rtsp_transport: str = "tcp"  # for a pushed RTSP output
    segment_seconds: float | None = None  # files of this length: NAME_000.mp4, NAME_001.mp4, ...
    preview: bool = False  # also show the frames in a window
    compare: bool = False  # original | deblurred, side by side


@dataclass
class Output:
    """The sink the writer writes to, and the parts of it that others must reach."""

    sink: Sink
    preview: PreviewSink | None = None  # the main thread draws it (`show`)
    originals: OriginalFrames | None = None  # side by side: the reader keeps each original here
    segments: SegmentedSink | None = None  # the run report lists their files


def open_source(
    spec: str,
    options: SourceOptions = SourceOptions(),
    stop: threading.Event | None = None,
    finish: threading.Event | None = None,
) -> Source:
    """A folder of images, a file or URL FFmpeg opens, or (live) a camera.

    A network input that takes longer than `options.timeout_s` to open, or then stays silent
    that long, raises instead of hanging (live reading reopens it). A live input ends when
    `stop` or `finish` is set.
    """
    network = scheme(spec)
    timeout = (options.timeout_s, options.timeout_s)
    if options.live and (camera_index(spec) is not None or is_v4l2_device(spec) or network):
        return _live_source(spec, options, stop or threading.Event(), finish or threading.Event())
    if network:
        return VideoSource(spec, _network_options(spec, options.rtsp_transport), timeout=timeout)
    source = _file_source(spec, options.fps)
    if options.force:  # a file forced live is paced, and ends at its end
        return LiveSource(source, stop or threading.Event(), finish or threading.Event(), pace=True)
    return source


def _file_source(spec: str, fps: Fraction) -> Source:
    path = Path(spec)
    if path.is_dir():
        return ImageFolderSource(path, fps)
    if not path.exists():
        raise BadInput(f"input not found: {spec}")
    if path.stat().st_size == 0:
        raise BadInput(f"input {spec} is empty")
    return VideoSource(spec)


def _live_source(spec: str, options: SourceOptions, stop: threading.Event, finish: threading.Event) -> Source:
    timeout = (options.timeout_s, options.timeout_s)
    index = camera_index(spec)
    connect: Callable[[], Source]
    if index is not None:
        connect = lambda: CameraSource(index)  # noqa: E731
    elif is_v4l2_device(spec):
        connect = lambda: VideoSource(spec, live=True, container_format="v4l2", timeout=timeout)  # noqa: E731
    else:
        network = _network_options(spec, options.rtsp_transport)
        connect = lambda: VideoSource(spec, network, live=True, timeout=timeout)  # noqa: E731
    first = connect()
    finite = scheme(spec) in MAYBE_LIVE_SCHEMES and first.info.video.duration_s is not None
    if finite and not options.force:  # a file served over HTTP: read it whole, as `run` would
        return first
    reconnect = connect if options.reconnect and not finite else None
    return LiveSource(first, stop, finish, connect=reconnect)


def _network_options(spec: str, rtsp_transport: str) -> dict[str, str]:
    name = scheme(spec)
    if name in ("rtsp", "rtsps"):
        return {"rtsp_transport": rtsp_transport}
    if name == "udp":
        return {"overrun_nonfatal": "1"}  # a burst the reader could not keep up with is not the end
    return {}


def output_is_folder(spec: str) -> bool:
    """A folder of PNGs is written for an existing folder, a trailing slash, or no suffix."""
    if "://" in spec or spec == PREVIEW_ONLY:
        return False
    path = Path(spec)
    return path.is_dir() or spec.endswith(("/", "\\")) or not path.suffix


def open_sink(
    spec: str,
    source: Source,
    options: SinkOptions = SinkOptions(),
    finish: threading.Event | None = None,
) -> Output:
    """A folder of PNGs, a video file, segments, a pushed stream (container from the URL's
    scheme) or `preview`, a window; closing the window sets `finish`."""
    info = doubled_width(source.info) if options.compare else source.info
    segments = None
    if options.segment_seconds is not None:
        segments = SegmentedSink(
            Path(spec), options.segment_seconds, info, source.passthrough, options.encode, options.overwrite
        )
    inner = segments if segments is not None else _file_or_stream_sink(spec, source, info, options)
    preview = None
    if options.preview or inner is None:
        preview = PreviewSink(inner, f"streamdeblur: {source.info.source}", (finish or threading.Event()).set)
    sink = preview if preview is not None else inner
    assert sink is not None  # a window is made whenever there is no other output
    originals = OriginalFrames() if options.compare else None
    if originals is not None:
        sink = CompareSink(sink, originals)
    return Output(sink, preview, originals, segments)


def _file_or_stream_sink(spec: str, source: Source, info: MediaInfo, options: SinkOptions) -> Sink | None:
    if spec == PREVIEW_ONLY:
        return None
    if output_is_folder(spec):
        return ImageFolderSink(Path(spec), options.overwrite, info.frame_names)
    pushed = scheme(spec) is not None
    encode = replace(options.encode, low_latency=True) if pushed and source.info.live else options.encode
    transport = {"rtsp_transport": options.rtsp_transport} if scheme(spec) in ("rtsp", "rtsps") else None
    return VideoSink(
        spec,
        info,
        encode,
        source.passthrough,
        overwrite=options.overwrite,
        container_format=push_format(spec),
        container_options=transport,
    )
