"""What every input and every output is to the pipeline: a Source of frames, a Sink for them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.passthrough import PacketBuffer


class Source(Protocol):
    info: MediaInfo
    passthrough: PacketBuffer  # packets copied, not decoded (audio, subtitles), for the sink
    stats: ReadStats

    def frames(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


class Sink(Protocol):
    @property
    def frames_written(self) -> int: ...

    def write(self, frame: Frame) -> None: ...

    def close(self, complete: bool = True) -> None: ...

    def discard(self) -> None: ...
