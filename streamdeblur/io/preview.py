"""Looking at the output while it is made: a preview window and a side-by-side comparison.

Both wrap the sink the writer already has, so the window, the file and the pushed stream see
the same frames. The window needs a display; the side-by-side composition does not.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace

import cv2
import numpy as np

from streamdeblur.errors import BadUsage
from streamdeblur.io.frame import Frame
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.protocols import Sink


def side_by_side(original: np.ndarray, deblurred: np.ndarray) -> np.ndarray:
    """Before | after, one frame twice as wide."""
    return np.hstack((original, deblurred))


def doubled_width(info: MediaInfo) -> MediaInfo:
    """The stream facts of a side-by-side output."""
    return replace(info, video=replace(info.video, width=2 * info.video.width))


class OriginalFrames:
    """Decoded pixels kept until their deblurred twin is written (frames leave in order)."""

    def __init__(self) -> None:
        self._pixels: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def keep(self, frame: Frame) -> None:
        with self._lock:
            self._pixels[frame.index] = frame.pixels

    def take(self, index: int) -> np.ndarray:
        """The original of frame `index`; earlier ones (dropped frames) are forgotten."""
        with self._lock:
            for older in [i for i in self._pixels if i < index]:
                del self._pixels[older]
            return self._pixels.pop(index)


class CompareSink:
    """Writes original | deblurred side by side into `inner` (made with doubled_width(info))."""

    def __init__(self, inner: Sink, originals: OriginalFrames) -> None:
        self.inner, self.originals = inner, originals

    @property
    def frames_written(self) -> int:
        return self.inner.frames_written

    def write(self, frame: Frame) -> None:
        pixels = side_by_side(self.originals.take(frame.index), frame.pixels)
        self.inner.write(Frame(pixels, frame.pts, frame.time_base, frame.index))

    def close(self, complete: bool = True) -> None:
        self.inner.close(complete)

    def discard(self) -> None:
        self.inner.discard()


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class PreviewSink:
    """Shows the frames in an OpenCV window, and hands each on to `inner` (if any).

    OpenCV's window toolkit (Qt) only works from the main thread, so the writer thread just
    leaves the newest frame here and the main thread calls `show()` while it supervises.
    Closing the window or pressing q or Esc calls `on_quit` (the run then ends normally).
    """

    def __init__(self, inner: Sink | None, title: str, on_quit: Callable[[], None]) -> None:
        if not has_display():
            raise BadUsage("--preview needs a display, and neither DISPLAY nor WAYLAND_DISPLAY is set")
        self.inner, self.title, self.on_quit = inner, title, on_quit
        self.shown = 0
        self._received = 0
        self._newest: np.ndarray | None = None
        self._lock = threading.Lock()
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)

    @property
    def frames_written(self) -> int:
        return self.inner.frames_written if self.inner is not None else self._received

    def write(self, frame: Frame) -> None:
        if self.inner is not None:
            self.inner.write(frame)
        with self._lock:
            self._newest = frame.pixels
            self._received += 1

    def show(self) -> None:
        """Draw the newest frame and handle the window's events (main thread only)."""
        with self._lock:
            pixels, self._newest = self._newest, None
        if pixels is not None:
            cv2.imshow(self.title, cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
            self.shown += 1
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.on_quit()

    def close(self, complete: bool = True) -> None:
        cv2.destroyWindow(self.title)
        if self.inner is not None:
            self.inner.close(complete)

    def discard(self) -> None:
        cv2.destroyWindow(self.title)
        if self.inner is not None:
            self.inner.discard()
