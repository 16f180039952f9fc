"""Stand-ins for sources, sinks, backends and connections, shared by the tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import numpy as np
import torch

from streamdeblur.inference.backend import PassthroughBackend
from streamdeblur.io import Frame
from streamdeblur.io.frame import ReadStats
from streamdeblur.io.media_info import MediaInfo, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer

TB = Fraction(1, 90_000)


class ListSource:
    def __init__(self, count: int, produced: list[int] | None = None) -> None:
        self.count, self.produced = count, produced if produced is not None else []
        self.passthrough, self.stats = PacketBuffer(), ReadStats()

    def frames(self):  # type: ignore[no-untyped-def]
        for i in range(self.count):
            self.produced.append(i)
            yield Frame(np.full((8, 8, 3), i % 256, np.uint8), pts=i * 10, time_base=Fraction(1, 250), index=i)

    def close(self) -> None:
        pass


class ListSink:
    def __init__(self, fail_at: int | None = None, delay: float = 0.0) -> None:
        self.frames: list[Frame] = []
        self.fail_at, self.delay = fail_at, delay
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        if frame.index == self.fail_at:
            raise OSError("disk full")
        time.sleep(self.delay)
        self.frames.append(frame)
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        pass

    def discard(self) -> None:
        pass


class SleepyBackend(PassthroughBackend):
    """A network that needs `seconds` a batch: the processor falling behind a live source."""

    def __init__(self, seconds: float) -> None:
        super().__init__("cpu")
        self.seconds = seconds

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        time.sleep(self.seconds)
        return batch


class Connection:
    """A Source of `count` frames whose pts start at `first_pts`, as a fresh connection gives."""

    def __init__(self, first_pts: int, count: int, size: tuple[int, int] = (16, 12)) -> None:
        self.first_pts, self.count, self.size = first_pts, count, size
        width, height = size
        video = VideoInfo(width=width, height=height, time_base=TB, average_rate=Fraction(25))
        self.info = MediaInfo(source="mem://camera", format_name="test", video=video)
        self.passthrough, self.stats = PacketBuffer(), ReadStats()
        self.closed = False

    def frames(self) -> Iterator[Frame]:
        width, height = self.size
        for i in range(self.count):
            self.stats.decoded += 1
            yield Frame(np.full((height, width, 3), i, np.uint8), self.first_pts + i * 3600, TB, i)

    def close(self) -> None:
        self.closed = True
