"""Motion blur needs motion: where nothing in a window moved, the frame passes through.

Where the frame and each real neighbour of its window, as the camera gave them (not aligned: a
steady pan blurs every frame alike, and aligned they would agree), differ by less than a few
levels (the model's `still_pass_levels`) on average over a block STILL_BLOCK pixels wide, on grey
copies SHRINK times smaller (sensor noise and codec grain average out there), nothing moved
against the sensor during the exposure, so there is no motion blur to remove: after the network
the frame itself is handed through there, wholly under that many levels, not at all from twice
it, blended in between. A window without a real neighbour (padding repeats the frame: a picture,
the first frame after a cut) says nothing about motion and hands nothing through.

Fusion needs a sharper view: with `refuse_unsharper`, a window whose frame is about as sharp in
every direction as anything around it is the frame alone (refuse_unsharper), so a still camera
filming leaves in the wind, or a shaking camera's sharp frame, is not reworked from neighbours
in which things moved; with `refuse_unsharper_directional`, so is a frame unequal across
directions that no neighbour beats by that smaller share.

A model turns this on with `still_pass` in its config. A windowed model's window is its own
(window/assembly.py); a single-frame model's, in a stream, is the frame and the STILL_HISTORY
frames before it (StillHistory). Chosen on the real-footage validation by rules written before
they were measured (docs/real-footage-rules.md); the same numbers in every backend, since it
runs on the frames outside the network.
"""

from __future__ import annotations

import math
from collections import deque

import cv2
import numpy as np

from streamdeblur.inference.processor import Processor
from streamdeblur.io.frame import Frame
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.window.alignment import grey_bytes, refuse_mismatch
from streamdeblur.window.memo import FrameMemo

SHRINK = 4
STILL_BLOCK = 32  # pixels of the frame
STILL_LOW = DeepDeblurConfig.still_pass_levels  # 8-bit levels, where a model's config does not say
_CELLS = STILL_BLOCK // SHRINK  # a block's side on the smaller copy
STILL_HISTORY = 2  # frames before it that a single-frame model's frame is compared with
# A camera held still against a neighbour (refuse_still) where this share of the frame's
# textured blocks differ from it by under STILL_LOW levels; textured: a mean gradient of at
# least TEXTURE_LEVELS a pixel on the smaller copy (flat blocks match under any motion).
STILL_CAMERA_SHARE = 0.8
TEXTURE_LEVELS = 4.0


def _small_grey(frame: np.ndarray) -> np.ndarray:
    """Grey, in 8-bit levels, on a copy SHRINK times smaller (area averaged)."""
    grey = grey_bytes(frame).astype(np.float32)
    height, width = grey.shape
    size = (max(1, width // SHRINK), max(1, height // SHRINK))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)  # type: ignore[no-any-return]


def _small_grey_of(frame: np.ndarray, memo: FrameMemo) -> np.ndarray:
    """_small_grey of `frame`, made once per frame in `memo` (a stream's windows share it)."""
    return memo.get("still_grey", (frame,), lambda: _small_grey(frame))


def still_keep(frames: list[np.ndarray], memo: FrameMemo | None = None, low: float = STILL_LOW) -> np.ndarray | None:
    """How much of the frame (`frames[0]`) to hand through, per block of STILL_BLOCK pixels
    (1: wholly under `low` levels, 0: from twice it), from its window's `frames` as the camera
    gave them; None where the window has no real neighbour (a repeat of the frame is the same
    array: padding). `memo`: a stream's, so each frame's small copy is made once."""
    target = frames[0]
    neighbours: list[np.ndarray] = []
    for frame in frames[1:]:  # a picture of another size (a folder of photos) is no neighbour
        if frame is not target and frame.shape == target.shape and all(frame is not seen for seen in neighbours):
            neighbours.append(frame)
    if not neighbours:
        return None
    memo = memo if memo is not None else FrameMemo()
    mine = _small_grey_of(target, memo)
    largest = np.max([np.abs(mine - _small_grey_of(n, memo)) for n in neighbours], axis=0)
    return np.clip((2 * low - _per_block(largest)) / low, 0.0, 1.0).astype(np.float32)  # type: ignore[no-any-return]


def _per_block(cells: np.ndarray) -> np.ndarray:
    """The mean of a small copy's values over each block of STILL_BLOCK pixels of the frame."""
    height, width = cells.shape
    rows, cols = math.ceil(height / _CELLS), math.ceil(width / _CELLS)
    padded = np.pad(cells, ((0, rows * _CELLS - height), (0, cols * _CELLS - width)), mode="edge")
    return padded.reshape(rows, _CELLS, cols, _CELLS).mean(axis=(1, 3))  # type: ignore[no-any-return]


def camera_still(target: np.ndarray, neighbour: np.ndarray, memo: FrameMemo | None = None) -> bool:
    """Whether the camera held still between `neighbour` and the frame (`target`), as the
    camera gave them: at least STILL_CAMERA_SHARE of the frame's textured blocks differ by
    under STILL_LOW levels. Global alignment can follow an object moving in front of a still
    camera and report the camera moving; this test does not ask it. False for a frame with no
    textured block (nothing to tell by)."""
    memo = memo if memo is not None else FrameMemo()
    mine, theirs = _small_grey_of(target, memo), _small_grey_of(neighbour, memo)
    texture = memo.get("still_texture", (target,), lambda: _per_block(_gradient(mine)) >= TEXTURE_LEVELS)
    if not texture.any():
        return False
    agree = _per_block(np.abs(mine - theirs))[texture] < STILL_LOW
    return float(agree.mean()) >= STILL_CAMERA_SHARE


def _gradient(grey: np.ndarray) -> np.ndarray:
    """|d/dx| + |d/dy| in levels a pixel (Sobel's 3x3 weighs a unit step 8)."""
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    return (np.abs(gx) + np.abs(gy)) / 8  # type: ignore[no-any-return]


def sharpness(frame: np.ndarray) -> np.ndarray:
    """The frame's fine detail at 0, 45, 90 and 135 degrees: the mean |derivative| of its 8-bit
    grey along each, full size. A camera that moved blurs detail across its path only."""
    grey = grey_bytes(frame).astype(np.float32)
    dx, dy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
    diagonal = math.sqrt(0.5) / grey.size
    return np.array(
        [
            cv2.norm(dx, cv2.NORM_L1) / grey.size,
            cv2.norm(cv2.add(dx, dy), cv2.NORM_L1) * diagonal,
            cv2.norm(dy, cv2.NORM_L1) / grey.size,
            cv2.norm(cv2.subtract(dy, dx), cv2.NORM_L1) * diagonal,
        ]
    )


def refuse_unsharper(
    frames: list[np.ndarray],
    share: float,
    memo: FrameMemo | None = None,
    isotropy: float = 0.0,
    directional: float | None = None,
) -> list[np.ndarray]:
    """The window (network order, the frame first) as it is where a real neighbour is sharper
    than the frame by `share` in some direction (fusion takes each direction from where it is
    sharp); otherwise the frame alone, every neighbour replaced by it as padding would be:
    nothing around it holds a sharper view of it, only a chance to soften what moved. A frame
    blurred along a direction (min/max of its directional sharpness under `isotropy`) is judged
    by the share `directional` instead, and keeps its window whole where that is None."""
    memo = memo if memo is not None else FrameMemo()
    target = frames[0]

    def of(frame: np.ndarray) -> np.ndarray:
        return memo.get("sharpness", (frame,), lambda: sharpness(frame))  # type: ignore[no-any-return]

    mine = of(target)
    if mine.min() < isotropy * mine.max():  # blurred along a direction: a neighbour may undo it
        if directional is None:
            return frames
        share = directional
    floor = mine * (1 + share)
    real = [f for f in frames if f is not target and f.shape == target.shape]
    if any(bool((of(f) >= floor).any()) for f in real):
        return frames
    return [target] * len(frames)


def refuse_where_still(
    frames: list[np.ndarray], aligned: list[np.ndarray], memo: FrameMemo | None = None
) -> list[np.ndarray]:
    """`aligned` (a window in network order, the frame first, its neighbours warped onto it),
    with each real neighbour against which the camera held still (camera_still) refused where
    it still differs from the frame (alignment.refuse_mismatch): under a still camera what
    differs moved on its own, and the neighbour would lay it over the frame a second time."""
    target = frames[0]
    refused = list(aligned)
    for k, (frame, warped) in enumerate(zip(frames, aligned)):
        if k and frame is not target and frame.shape == target.shape and camera_still(target, frame, memo):
            refused[k] = refuse_mismatch(target, warped)
    return refused


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


class StillPass:
    """A stream's frames to hand through where nothing moved, by frame index: noted when the
    frame's window is known, applied when the network's output for it comes back."""

    def __init__(self, levels: float) -> None:
        self.levels = levels
        self._pending: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # For the run report: frames restored, those with blocks handed through, and the sum of
        # the share of each frame handed through.
        self.restored, self.touched, self._share = 0, 0, 0.0

    def note(self, index: int, frames: list[np.ndarray], memo: FrameMemo | None = None) -> None:
        """Frame `index`'s window (`frames`, the frame first, as the camera gave them)."""
        keep = still_keep(frames, memo, self.levels)
        if keep is not None and keep.any():
            self._pending[index] = (keep, frames[0])

    def take(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The blocks where nothing moved around frame `index` and that frame (once), or None."""
        return self._pending.pop(index, None)

    def hand_through(self, restored: list[Frame]) -> list[Frame]:
        """The network's `restored` frames, with their frame handed through where noted."""
        self.restored += len(restored)
        if not self._pending:
            return restored
        done = []
        for frame in restored:
            still = self.take(frame.index)
            if still is not None:
                frame = Frame(hand_through(frame.pixels, still[1], still[0]), frame.pts, frame.time_base, frame.index)
                self.touched += 1
                self._share += float(still[0].mean())
            done.append(frame)
        return done

    def summary(self) -> dict[str, float]:
        """What the run report says of it."""
        share = self._share / self.restored if self.restored else 0.0
        return {
            "levels": self.levels,
            "frames": self.restored,
            "frames_handed_through": self.touched,
            "share": round(share, 4),
        }


class StillHistory:
    """still_pass for a single-frame model in a stream: each frame is compared with the
    STILL_HISTORY frames before it. Met where the pipeline meets a window (FrameWindow's
    push_all, flush, hand_through), but it holds no frame back."""

    def __init__(self, cfg: DeepDeblurConfig) -> None:
        self.still = StillPass(cfg.still_pass_levels)
        self._before: deque[np.ndarray] = deque(maxlen=STILL_HISTORY)
        self._memo = FrameMemo()  # each frame's small copy, made once

    def push_all(self, frames: list[Frame]) -> list[Frame]:
        for frame in frames:
            self.still.note(frame.index, [frame.pixels, *reversed(self._before)], self._memo)
            self._before.append(frame.pixels)
            self._memo.keep_only(self._before)
        return frames

    def flush(self) -> list[Frame]:
        return []

    def take_still(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.still.take(index)

    def hand_through(self, restored: list[Frame]) -> list[Frame]:
        return self.still.hand_through(restored)


class StillProcessor:
    """A single-frame model's processor with still_pass (a run's, or `live`'s): each frame noted
    against the ones before it on the way in, handed through where nothing moved on the way out."""

    def __init__(self, inner: Processor, cfg: DeepDeblurConfig) -> None:
        self.inner, self.history = inner, StillHistory(cfg)
        self.batch_size = inner.batch_size
        self.still = self.history.still  # for the run report

    def submit(self, frames: list[Frame]) -> list[Frame]:
        return self.history.hand_through(self.inner.submit(self.history.push_all(frames)))

    def flush(self) -> list[Frame]:
        return self.history.hand_through(self.inner.flush())

    def abandon(self) -> list[Frame]:
        """A stop: what the inner processor finishes (its own abandon, where it has one)."""
        abandon = getattr(self.inner, "abandon", None)
        return self.history.hand_through(abandon() if abandon is not None else self.inner.flush())

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()
