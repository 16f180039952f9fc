"""A camera by OpenCV device index, as a Source of the same Frame records as files give.

Kept thin: OpenCV picks the platform's capture API; frames are stamped by a monotonic clock
when they arrive, since a camera's own timestamps are not exposed the same way everywhere.
(V4L2 device paths go through PyAV instead, see streamdeblur.pipeline.live.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import cv2
import numpy as np

from streamdeblur.errors import BadInput
from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer

TIME_BASE = Fraction(1, 90_000)
_DEFAULT_FPS = 30


class CameraSource:
    """Frames from `cv2.VideoCapture(device)`; `device` is an index, or anything OpenCV opens."""

    def __init__(self, device: int | str) -> None:
        self.device = device
        self.passthrough = PacketBuffer()
        self.stats = ReadStats()
        self._capture = cv2.VideoCapture(device)
        ok, first = self._capture.read() if self._capture.isOpened() else (False, None)
        if not ok or first is None:
            self._capture.release()
            raise BadInput(f"cannot open camera {device}: no frame could be read")
        self._first: np.ndarray | None = first
        rate = self._capture.get(cv2.CAP_PROP_FPS)
        fps = Fraction(rate).limit_denominator(1001) if 0 < rate < 1000 else Fraction(_DEFAULT_FPS)
        height, width = first.shape[:2]
        video = VideoInfo(
            width=width,
            height=height,
            time_base=TIME_BASE,
            average_rate=fps,
            bit_depth=16 if first.dtype == np.uint16 else 8,
            codec="camera",
        )
        self.info = MediaInfo(source=str(device), format_name="opencv camera", video=video, live=True)

    def frames(self) -> Iterator[Frame]:
        started = time.monotonic()
        pixels, index = self._first, 0
        self._first = None
        while pixels is not None:
            pts = round((time.monotonic() - started) / TIME_BASE)
            yield Frame(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB), pts, TIME_BASE, index)
            index += 1
            self.stats.decoded = index
            ok, pixels = self._capture.read()
            if not ok:
                pixels = None

    def close(self) -> None:
        self._capture.release()
