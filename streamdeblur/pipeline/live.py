"""What `live` adds to a run: live inputs and outputs, the drop policy, the clock, stats lines.

`run_job` stays the one pipeline; with `RunOptions.live` set it asks a LiveSession for its
source and sink, for the pipeline's latency bound, and runs inside `session.running()`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from streamdeblur.errors import BadUsage
from streamdeblur.io import EncodeOptions, Sink, Source, open_sink, open_source
from streamdeblur.io.camera import CameraSource
from streamdeblur.io.live_source import LiveSource
from streamdeblur.io.preview import CompareSink, OriginalFrames, PreviewSink, doubled_width
from streamdeblur.io.segments import SegmentedSink
from streamdeblur.io.urls import MAYBE_LIVE_SCHEMES, camera_index, is_v4l2_device, scheme
from streamdeblur.io.video_source import VideoSource
from streamdeblur.pipeline.stats import RunReport, RunStats, StatsLog

PREVIEW_ONLY = "preview"  # the SINK that is a window and nothing else
RTSP_TRANSPORTS = ("tcp", "udp")


@dataclass(frozen=True)
class LiveOptions:
    """The `live` command's own options (README: live)."""

    force: bool = False  # --live: treat any input as live (a file is then paced at its own rate)
    max_latency_ms: float = 500.0
    reconnect: bool = True
    timeout_s: float = 5.0  # opening, and silence while reading, before a source counts as lost
    duration_s: float | None = None
    stats_interval_s: float = 5.0
    rtsp_transport: str = "tcp"
    segment_seconds: float | None = None
    preview: bool = False
    compare: bool = False

    def check(self, output: str) -> None:
        if self.max_latency_ms <= 0 or self.timeout_s <= 0 or self.stats_interval_s <= 0:
            raise BadUsage("--max-latency-ms, --timeout and --stats-interval must be positive")
        if self.duration_s is not None and self.duration_s <= 0:
            raise BadUsage("--duration must be positive")
        if self.rtsp_transport not in RTSP_TRANSPORTS:
            raise BadUsage(f"--rtsp-transport must be one of {', '.join(RTSP_TRANSPORTS)}")
        if self.segment_seconds is not None:
            if self.segment_seconds <= 0:
                raise BadUsage("--segment-seconds must be positive")
            if output == PREVIEW_ONLY or "://" in output or not Path(output).suffix:
                raise BadUsage("--segment-seconds needs a video file output such as rec.mp4")


class LiveSession:
    """One live run's input, output and clock; `finish` ends it normally (duration, window closed)."""

    def __init__(self, options: LiveOptions, stop: threading.Event) -> None:
        self.options, self.stop = options, stop
        self.finish = threading.Event()
        self.originals = OriginalFrames() if options.compare else None
        self.source: Source | None = None
        self.segments: SegmentedSink | None = None
        self.preview: PreviewSink | None = None

    def open_source(self, spec: str, fps: Fraction) -> Source:
        """A LiveSource for cameras, streams and forced-live files; other inputs as `run` opens them."""
        opts = self.options
        index = camera_index(spec)
        connect: Callable[[], Source]
        if index is not None:
            connect = lambda: CameraSource(index)  # noqa: E731
        elif is_v4l2_device(spec):
            connect = lambda: VideoSource(spec, live=True, container_format="v4l2", timeout=self._timeout)  # noqa: E731
        elif scheme(spec):
            connect = lambda: VideoSource(spec, self._network_options(spec), live=True, timeout=self._timeout)  # noqa: E731
        else:
            first = open_source(spec, fps)  # a file forced live is paced, and ends at its end
            self.source = LiveSource(first, self.stop, self.finish, pace=True) if opts.force else first
            return self.source
        first = connect()
        finite = scheme(spec) in MAYBE_LIVE_SCHEMES and first.info.video.duration_s is not None
        if finite and not opts.force:  # a file served over HTTP: read it whole, as `run` would
            self.source = first
        else:
            reconnect = connect if opts.reconnect and not finite else None
            self.source = LiveSource(first, self.stop, self.finish, connect=reconnect)
        return self.source

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self.options.timeout_s, self.options.timeout_s)

    def _network_options(self, spec: str) -> dict[str, str]:
        name = scheme(spec)
        if name in ("rtsp", "rtsps"):
            return {"rtsp_transport": self.options.rtsp_transport}
        if name == "udp":
            return {"overrun_nonfatal": "1"}  # a burst the reader could not keep up with is not the end
        return {}

    def open_sink(self, spec: str, source: Source, encode: EncodeOptions, overwrite: bool) -> Sink:
        """The output (file, segments, pushed stream, window), with the comparison view around it."""
        opts = self.options
        info = doubled_width(source.info) if opts.compare else source.info
        inner: Sink | None = None
        if opts.segment_seconds is not None:
            self.segments = SegmentedSink(Path(spec), opts.segment_seconds, info, source.passthrough, encode, overwrite)
            inner = self.segments
        elif spec != PREVIEW_ONLY:
            pushed = scheme(spec) is not None
            if pushed and source.info.live:
                encode = replace(encode, low_latency=True)
            transport = {"rtsp_transport": opts.rtsp_transport} if scheme(spec) in ("rtsp", "rtsps") else None
            inner = open_sink(spec, info, source.passthrough, encode, overwrite, transport)
        sink: Sink = inner if inner is not None else self._preview(None)
        if opts.preview and inner is not None:
            sink = self._preview(inner)
        if self.originals is not None:
            sink = CompareSink(sink, self.originals)
        return sink

    def _preview(self, inner: Sink | None) -> Sink:
        title = f"streamdeblur: {self.source.info.source if self.source else ''}"
        self.preview = PreviewSink(inner, title, self.finish.set)
        return self.preview

    @property
    def idle(self) -> Callable[[], None] | None:
        """What the main thread does while the pipeline runs: draw the preview window."""
        return self.preview.show if self.preview is not None else None

    def pipeline_options(self) -> dict[str, Any]:
        """The latency bound and drop policy apply to live inputs only."""
        live = self.source is not None and self.source.info.live
        on_read = self.originals.keep if self.originals is not None else None
        return {"max_latency_s": self.options.max_latency_ms / 1000 if live else None, "on_frame_read": on_read}

    @contextmanager
    def running(self, stats: RunStats) -> Iterator[None]:
        """The duration clock and the periodic stats lines, for as long as the pipeline runs."""
        timer = threading.Timer(self.options.duration_s, self.finish.set) if self.options.duration_s else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            with StatsLog(stats, self.options.stats_interval_s):
                yield
        finally:
            if timer is not None:
                timer.cancel()

    def fill_report(self, report: RunReport) -> None:
        report.live = self.source is not None and self.source.info.live
        report.reconnects = getattr(self.source, "reconnects", 0)
        report.segments = [str(p) for p in self.segments.paths] if self.segments is not None else None
