"""One pass over the footage: every frame's sharpness, shot and look, and nothing else kept.

Only a few numbers and a 32x18 grey signature per frame stay in memory, so footage of any
length is scanned at the cost of decoding it; the frames finally picked are decoded again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import av
import cv2
import numpy as np

from streamdeblur.adapt.footage import Footage, decode
from streamdeblur.adapt.sharpness import grey_thumbnail, sharpness
from streamdeblur.errors import BadInput

log = logging.getLogger(__name__)

SIGNATURE_SIZE = (32, 18)  # width, height: enough to tell views apart, too small for noise
_HISTOGRAM_SIZE = (64, 36)  # width, height of the copy colour histograms are taken of
_HISTOGRAM_BINS = 8  # per channel
# The share of the histogram's mass that moves between two frames for a new shot. Between
# frames of one scene blurred differently it stayed under 0.25; across a cut between two
# procedural scenes it was 0.64 and more (tests/test_adapt.py).
_CUT_DISTANCE = 0.45


@dataclass(frozen=True)
class ScoredFrame:
    footage: int  # index into the scanned footage list
    index: int  # decode order within the footage
    time_s: float
    shot: int  # numbered over all footage; each piece starts a new one
    score: float  # sharpness (adapt.sharpness): 0 smooth .. 1 crisp
    contrast: float  # standard deviation of the grey copy: blur barely changes it, a flat frame has none
    signature: np.ndarray  # uint8 grey, SIGNATURE_SIZE, for spotting near-duplicates


@dataclass
class Scan:
    footage: list[Footage]  # the readable pieces, in order
    frames: list[ScoredFrame] = field(default_factory=list)
    frame_counts: list[int] = field(default_factory=list)  # per piece of footage
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def shots(self) -> int:
        return len({f.shot for f in self.frames})


def signature(grey: np.ndarray) -> np.ndarray:
    return np.round(cv2.resize(grey, SIGNATURE_SIZE, interpolation=cv2.INTER_AREA) * 255).astype(np.uint8)


def colour_histogram(pixels: np.ndarray) -> np.ndarray:
    """An 8x8x8-bin RGB histogram (summing to 1) of a 64x36 copy of the frame."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0
    small = cv2.resize(pixels, _HISTOGRAM_SIZE, interpolation=cv2.INTER_AREA).astype(np.float32) / np.float32(scale)
    counts = cv2.calcHist([small], [0, 1, 2], None, [_HISTOGRAM_BINS] * 3, [0.0, 1.0001] * 3).ravel()
    return counts / max(1.0, float(counts.sum()))


class CutDetector:
    """A new shot where the colour histogram jumps between consecutive frames: blur and a
    moving camera shift a colour histogram little, a cut to another scene shifts much of it."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None

    def is_cut(self, pixels: np.ndarray) -> bool:
        histogram = colour_histogram(pixels)
        previous, self._previous = self._previous, histogram
        return previous is not None and 0.5 * float(np.abs(histogram - previous).sum()) > _CUT_DISTANCE


def scan(footage: list[Footage]) -> Scan:
    """Score every decodable frame; unreadable footage is skipped with a warning."""
    result = Scan(footage=[])
    next_shot = 0
    for piece in footage:
        frames: list[ScoredFrame] = []
        position = len(result.footage)
        cuts = CutDetector()
        try:
            for decoded in decode(piece):
                grey = grey_thumbnail(decoded.pixels)
                if cuts.is_cut(decoded.pixels) or not frames:  # every piece of footage opens a shot
                    shot, next_shot = next_shot, next_shot + 1
                frames.append(
                    ScoredFrame(
                        position,
                        decoded.index,
                        decoded.time_s,
                        shot,
                        sharpness(grey),
                        float(grey.std()),
                        signature(grey),
                    )
                )
        except (BadInput, av.FFmpegError, OSError) as exc:
            if not frames:
                log.warning("skipping %s: %s", piece.path, exc)
                result.skipped.append((str(piece.path), str(exc)))
                continue
            log.warning("%s: reading stopped after %d frames: %s", piece.path, len(frames), exc)
        result.footage.append(piece)
        result.frames += frames
        result.frame_counts.append(len(frames))
        log.info("scored %d frames of %s", len(frames), piece.path)
    if not result.footage:
        raise BadInput(
            f"none of the footage could be read ({len(result.skipped)} file(s) skipped; first: "
            f"{result.skipped[0][0]}: {result.skipped[0][1]})"
        )
    return result
