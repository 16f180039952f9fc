"""What `live` adds to a run: its options, its clock (the duration) and its stats lines.

Opening live inputs and outputs is io's (`open_source`/`open_sink` with live options); the
latency bound is the pipeline's. `run_job` stays the one job for `run` and `live` alike.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from streamdeblur.errors import BadUsage
from streamdeblur.io import PREVIEW_ONLY, RTSP_TRANSPORTS, EncodeOptions, SinkOptions, Source, SourceOptions
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.pipeline.stats import RunStats, StatsLog

log = logging.getLogger(__name__)


def warn_of_lookahead(cfg: DeepDeblurConfig | None, rate: float | Fraction) -> None:
    """A centred window on a live input of `rate` frames/s: each frame waits for its later neighbours."""
    if cfg is not None and cfg.lookahead:
        log.warning(
            "%s restores each frame once %d later frames have arrived: %.0f ms more latency; a causal model adds none",
            cfg.name,
            cfg.lookahead,
            1000 * cfg.lookahead / float(rate),
        )


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

    def source_options(self, fps: Fraction) -> SourceOptions:
        return SourceOptions(
            fps=fps,
            timeout_s=self.timeout_s,
            rtsp_transport=self.rtsp_transport,
            live=True,
            force=self.force,
            reconnect=self.reconnect,
        )

    def sink_options(self, encode: EncodeOptions, overwrite: bool) -> SinkOptions:
        return SinkOptions(
            encode=encode,
            overwrite=overwrite,
            rtsp_transport=self.rtsp_transport,
            segment_seconds=self.segment_seconds,
            preview=self.preview,
            compare=self.compare,
        )

    def max_latency_s(self, source: Source) -> float | None:
        """The latency bound and drop policy apply to live inputs only: a file is read whole."""
        return self.max_latency_ms / 1000 if source.info.live else None


@contextmanager
def live_clock(options: LiveOptions, streams: Mapping[str, RunStats], finish: threading.Event) -> Iterator[None]:
    """The duration (it sets `finish`) and the periodic stats lines of the streams (by name), for
    as long as the pipeline runs."""
    timer = threading.Timer(options.duration_s, finish.set) if options.duration_s else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        with StatsLog(streams, options.stats_interval_s):
            yield
    finally:
        if timer is not None:
            timer.cancel()
