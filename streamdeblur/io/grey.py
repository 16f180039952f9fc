"""Grey in, grey out: a frame whose three channels are equal is written grey.

The networks were trained on colour and never told that a grey frame's channels are one, so
at edges their output picks up a tint (up to 12 levels on greyscale cameras; docs/real-footage-rules.md,
rule GR). A grey frame's output has its channels replaced by their mean: the orthogonal
projection onto grey, so no pixel moves further from a grey real frame. The reader notes which
frames came in grey, the writer projects their outputs, and every processor and backend in
between is left as it is.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from streamdeblur.io.frame import Frame

# A colour frame shows it on a sparse grid, so most frames are told apart at a glance.
_GLANCE = 16


def is_grey(pixels: np.ndarray) -> bool:
    """Whether an H x W x 3 frame's three channels are equal everywhere."""
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        return False
    for sample in (pixels[::_GLANCE, ::_GLANCE], pixels):
        if not (np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2])):
            return False
    return True


def as_grey(pixels: np.ndarray) -> np.ndarray:
    """An 8- or 16-bit frame with each pixel's channels replaced by their mean, rounded."""
    wide = np.uint16 if pixels.dtype == np.uint8 else np.uint32
    total = pixels[..., 0].astype(wide) + pixels[..., 1] + pixels[..., 2]
    # A third of an integer is never a half, so rounding to even is rounding to nearest.
    mean = np.rint(total / np.float32(3)).astype(pixels.dtype)
    grey = np.empty_like(pixels)
    grey[...] = mean[..., None]
    return grey


class GreyFrames:
    """Which of a stream's frames came in grey: noted by its reader, in order, and taken by its
    writer, in order. Frames never written (dropped, discarded) are forgotten as later ones are
    written, so a long live run holds no more than the frames in flight."""

    def __init__(self) -> None:
        self._grey: deque[int] = deque()
        self._lock = threading.Lock()

    def note(self, frame: Frame) -> None:
        if is_grey(frame.pixels):
            with self._lock:
                self._grey.append(frame.index)

    def restore(self, frame: Frame) -> Frame:
        """`frame` (an output) as grey where its input was."""
        with self._lock:
            while self._grey and self._grey[0] < frame.index:
                self._grey.popleft()
            grey = bool(self._grey) and self._grey[0] == frame.index
            if grey:
                self._grey.popleft()
        return Frame(as_grey(frame.pixels), frame.pts, frame.time_base, frame.index) if grey else frame
