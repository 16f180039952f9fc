"""A live input as one endless Source: reconnects with backoff, keeps timestamps continuous.

Cameras and network streams stall, drop off and come back. The rest of the pipeline does not
notice: frames keep their running index, each connection's timeline is placed right after
the last frame given out (one frame duration later), and audio packets move by the same
shift, so the writer keeps one encoder and one output with increasing timestamps.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction

import cv2
import numpy as np

from streamdeblur.errors import StreamdeblurError
from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.passthrough import PacketBuffer, packet_time
from streamdeblur.io.protocols import Source

log = logging.getLogger(__name__)

_POLL_S = 0.05


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Waits between reconnection attempts: `first_s`, doubling up to `max_s`."""

    first_s: float = 0.5
    max_s: float = 8.0


class LiveSource:
    """Wraps the connections to one live input; `connect()` opens a new one after a loss.

    `first` is the connection already open (its failure was the user's to see). The run ends
    when `stop` or `finish` is set; without `connect` it also ends when the input does.
    `pace` delivers frames at their own rate (a file forced live behaves like a camera).
    """

    def __init__(
        self,
        first: Source,
        stop: threading.Event,
        finish: threading.Event,
        connect: Callable[[], Source] | None = None,
        pace: bool = False,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._connection: Source | None = first
        self._connect, self._stop, self._finish = connect, stop, finish
        self.pace, self.backoff = pace, backoff
        self.info = dataclasses.replace(first.info, live=True)
        self.passthrough = PacketBuffer()
        self.stats = ReadStats()
        self.reconnects = 0
        self._audio_codecs = {p.index: p.codec for p in first.info.passthrough}

    def frames(self) -> Iterator[Frame]:
        video = self.info.video
        step = 1 / video.rate_or_default
        index, last_pts = 0, None
        start = Fraction(0)  # output time at which the next connection's first frame goes
        while self._connection is not None and not self._ending():
            connection = self._connection
            shift: Fraction | None = None
            pacer = _Pacer() if self.pace else None
            for frame in connection.frames():
                if shift is None:
                    shift = start - frame.pts * frame.time_base
                pts = round((frame.pts * frame.time_base + shift) / video.time_base)
                if last_pts is not None and pts <= last_pts:
                    pts = last_pts + 1
                last_pts = pts
                self._move_packets(connection, shift)
                if pacer is not None and not pacer.wait(pts * video.time_base, self._ending):
                    break
                yield Frame(self._fit(frame.pixels), pts, video.time_base, index)
                index += 1
                if self._ending():
                    break
            if shift is not None:
                self._move_packets(connection, shift)
            self._close_connection()
            if last_pts is not None:
                start = last_pts * video.time_base + step
            if self._connect is None or self._ending():
                break
            self._connection = self._reconnect(self._connect)

    def _ending(self) -> bool:
        return self._stop.is_set() or self._finish.is_set()

    def _reconnect(self, connect: Callable[[], Source]) -> Source | None:
        delay = self.backoff.first_s
        source = self.info.source
        while True:
            log.warning("%s: input lost; reconnecting in %.1f s", source, delay)
            if not _wait_until(time.monotonic() + delay, self._ending):
                return None
            try:
                connection = connect()
            except StreamdeblurError as exc:
                log.warning("%s: reconnecting failed: %s", source, exc)
                delay = min(delay * 2, self.backoff.max_s)
                continue
            if self._ending():
                connection.close()
                return None
            self.reconnects += 1
            log.info("%s: reconnected (%d so far)", source, self.reconnects)
            return connection

    def _move_packets(self, connection: Source, shift: Fraction) -> None:
        """Audio demuxed so far, shifted onto the output timeline, for the writer."""
        matching = {p.index for p in connection.info.passthrough if self._audio_codecs.get(p.index) == p.codec}
        for packet in connection.passthrough.take_until(None):
            if packet.stream_index not in matching:
                continue  # a stream the output was not set up with
            delta = round(shift / packet.time_base)
            if packet.pts is not None:
                packet.pts += delta
            if packet.dts is not None:
                packet.dts += delta
            if packet_time(packet) >= 0:  # before the first frame: nothing to go with
                self.passthrough.put(packet)

    def _fit(self, pixels: np.ndarray) -> np.ndarray:
        """A reconnected camera may come back at another size; keep the output's."""
        video = self.info.video
        if pixels.shape[:2] != (video.height, video.width):
            return cv2.resize(pixels, (video.width, video.height), interpolation=cv2.INTER_AREA)
        return pixels

    def _close_connection(self) -> None:
        if self._connection is None:
            return
        read = self._connection.stats
        self.stats.decoded += read.decoded
        self.stats.decode_errors += read.decode_errors
        self._connection.close()
        self._connection = None

    def close(self) -> None:
        self._close_connection()


def _wait_until(deadline: float, ending: Callable[[], bool]) -> bool:
    """Sleep until `deadline` (monotonic) unless the run ends first; False if it did."""
    while (left := deadline - time.monotonic()) > 0:
        if ending():
            return False
        time.sleep(min(left, _POLL_S))
    return not ending()


class _Pacer:
    """Holds frames back to their presentation time, measured from the first one."""

    def __init__(self) -> None:
        self._origin: tuple[float, Fraction] | None = None

    def wait(self, media_time: Fraction, ending: Callable[[], bool]) -> bool:
        if self._origin is None:
            self._origin = (time.monotonic(), media_time)
        wall, media = self._origin
        return _wait_until(wall + float(media_time - media), ending)
