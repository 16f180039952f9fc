"""Recording in segments, as recorders do: `out_000.mp4`, `out_001.mp4`, ... each playable alone.

Each segment is its own VideoSink: a new encoder (so it starts on a keyframe), timestamps
from zero, written under a temporary name and renamed when the segment is closed. Audio
packets go to the segment whose time span they fall in. A failed run removes only the
segment being written; the closed ones are complete recordings and stay.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from streamdeblur.errors import BadInput
from streamdeblur.io.frame import Frame
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.passthrough import PacketBuffer, packet_time
from streamdeblur.io.video_sink import EncodeOptions, VideoSink

log = logging.getLogger(__name__)


def segment_path(target: Path, number: int) -> Path:
    return target.with_name(f"{target.stem}_{number:03d}{target.suffix}")


class SegmentedSink:
    """Frames cut into files of `seconds` each (a new one at the first frame past the span)."""

    def __init__(
        self,
        target: Path,
        seconds: float,
        info: MediaInfo,
        passthrough: PacketBuffer,
        options: EncodeOptions,
        overwrite: bool,
    ) -> None:
        existing = sorted(target.parent.glob(f"{target.stem}_[0-9][0-9][0-9]{target.suffix}"))
        if existing and not overwrite:
            raise BadInput(f"output {existing[0]} exists (use --overwrite to replace it)")
        self.target, self.seconds = target, Fraction(seconds)
        self.info, self.passthrough, self.options, self.overwrite = info, passthrough, options, overwrite
        self.paths: list[Path] = []
        self.frames_written = 0
        self._open_segment()  # now, so bad encoder settings fail before any frame is processed

    def _open_segment(self) -> None:
        self._audio = PacketBuffer()
        self._start: Fraction | None = None  # output time of the segment's first frame
        self._start_pts = 0
        path = segment_path(self.target, len(self.paths))
        self._segment = VideoSink(str(path), self.info, self.options, self._audio, overwrite=self.overwrite)
        self.paths.append(path)

    def write(self, frame: Frame) -> None:
        time = frame.pts * frame.time_base
        if self._start is not None and time - self._start >= self.seconds:
            self._take_audio(time)
            self._segment.close()
            log.info("segment %s done", self.paths[-1])
            self._open_segment()
        if self._start is None:
            self._start, self._start_pts = time, frame.pts
        self._take_audio(time)
        self._segment.write(Frame(frame.pixels, frame.pts - self._start_pts, frame.time_base, frame.index))
        self.frames_written += 1

    def _take_audio(self, until: Fraction | None) -> None:
        """Move audio due by `until` (all, if None) into this segment, onto its own timeline."""
        start = self._start or Fraction(0)
        for packet in self.passthrough.take_until(None if until is None else float(until)):
            delta = round(start / packet.time_base)
            if packet.pts is not None:
                packet.pts -= delta
            if packet.dts is not None:
                packet.dts -= delta
            if packet_time(packet) >= 0:
                self._audio.put(packet)

    def close(self, complete: bool = True) -> None:
        self._take_audio(None)
        self._segment.close(complete)

    def discard(self) -> None:
        """Remove the segment being written; closed segments are finished recordings."""
        self._segment.discard()
        self.paths.pop()
