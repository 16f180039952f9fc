"""Motion blur needs motion: where nothing in a window moved, the frame passes through.

Where the frame and each real neighbour of its window, as the camera gave them (not aligned: a
steady pan blurs every frame alike, and aligned they would agree), differ by less than a few
levels (the model's `still_pass_levels`) on average over a block STILL_BLOCK pixels wide, on grey
copies SHRINK times smaller (sensor noise and codec grain average out there), nothing moved
against the sensor during the exposure, so there is no motion blur to remove: after the network
the frame itself is handed through there, wholly under that many levels, not at all from twice
it, blended in between. A window without a real neighbour (padding repeats the frame: a picture,
the first frame after a cut) says nothing about motion and hands nothing through.

A model turns this on with `still_pass` in its config. Chosen on the real-footage validation by
a rule written before it was measured (docs/real-footage.md); the same numbers in every
backend, since it runs on the frames outside the network.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.window.memo import FrameMemo

SHRINK = 4
STILL_BLOCK = 32  # pixels of the frame
STILL_LOW = DeepDeblurConfig.still_pass_levels  # 8-bit levels, where a model's config does not say
_CELLS = STILL_BLOCK // SHRINK  # a block's side on the smaller copy


def _small_grey(frame: np.ndarray) -> np.ndarray:
    """Grey, in 8-bit levels, on a copy SHRINK times smaller (area averaged)."""
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if frame.dtype == np.uint16:
        grey /= 257.0
    height, width = grey.shape
    size = (max(1, width // SHRINK), max(1, height // SHRINK))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)  # type: ignore[no-any-return]


def still_keep(frames: list[np.ndarray], memo: FrameMemo | None = None, low: float = STILL_LOW) -> np.ndarray | None:
    """How much of the frame (`frames[0]`) to hand through, per block of STILL_BLOCK pixels
    (1: wholly under `low` levels, 0: from twice it), from its window's `frames` as the camera
    gave them; None where the window has no real neighbour (a repeat of the frame is the same
    array: padding). `memo`: a stream's, so each frame's small copy is made once."""
    target = frames[0]
    neighbours: list[np.ndarray] = []
    for frame in frames[1:]:
        if frame is not target and all(frame is not seen for seen in neighbours):
            neighbours.append(frame)
    if not neighbours:
        return None
    memo = memo if memo is not None else FrameMemo()

    def small(frame: np.ndarray) -> np.ndarray:
        return memo.get("still_grey", (frame,), lambda: _small_grey(frame))

    mine = small(target)
    largest = np.max([np.abs(mine - small(n)) for n in neighbours], axis=0)
    height, width = largest.shape
    rows, cols = math.ceil(height / _CELLS), math.ceil(width / _CELLS)
    padded = np.pad(largest, ((0, rows * _CELLS - height), (0, cols * _CELLS - width)), mode="edge")
    per_block = padded.reshape(rows, _CELLS, cols, _CELLS).mean(axis=(1, 3))
    return np.clip((2 * low - per_block) / low, 0.0, 1.0).astype(np.float32)  # type: ignore[no-any-return]


def hand_through(output: np.ndarray, frame: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """`output` (H x W x 3, integers or floats) with `frame` blended in by `keep` (still_keep's
    blocks, each at its centre, bilinear in between); integers are rounded, in their own type."""
    if not keep.any():
        return output
    height, width = output.shape[:2]
    rows, cols = keep.shape
    weight = cv2.resize(keep, (cols * STILL_BLOCK, rows * STILL_BLOCK), interpolation=cv2.INTER_LINEAR)
    weight = weight[:height, :width, None]
    blended = frame.astype(np.float32) * weight + output.astype(np.float32) * (1.0 - weight)
    if np.issubdtype(output.dtype, np.integer):
        return np.round(blended).astype(output.dtype)  # type: ignore[no-any-return]
    return blended.astype(output.dtype)  # type: ignore[no-any-return]
