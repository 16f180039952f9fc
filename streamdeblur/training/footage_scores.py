"""What `eval` reports on a real-footage set (training/real_footage.py) beyond PSNR and SSIM.

- PSNR by how sharp the input already was (its own PSNR against the real frame): a model must
  gain where there is blur and keep nearly sharp frames nearly untouched.
- Still and moving cameras apart.
- Regions that move on their own (the set's masks): a window of neighbours that ghosts shows
  here first. Scored as the PSNR of the pooled error over those pixels of all frames.
- A still camera's frames without those regions: the fair test of "do no harm". What moves in
  front of a still camera was already blurred by the real camera's own exposure, and the target
  (the real frame) keeps that blur, so there a model that removes blur is scored down for it
  (a perfect deblurrer scores below the input once the camera's exposure spans half the frame
  interval: tests/test_real_footage.py); everything else in the frame should come back as it went in.
- Real sharp in: the real frames themselves, untouched, through the model as a clip (so a
  windowed model sees real neighbours, with their noise): what a sharp camera gets back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.training.metrics import psnr
from streamdeblur.training.real_footage import read_footage_record

# By the input's own PSNR against the real frame, sharpest first.
INPUT_BUCKETS = (
    (38.0, math.inf, "input over 38 dB"),
    (32.0, 38.0, "input 32-38 dB"),
    (28.0, 32.0, "input 28-32 dB"),
    (-math.inf, 28.0, "input under 28 dB"),
)
MOVING_REGIONS = "regions moving on their own"
STILL_BACKGROUND = "still camera, what does not move"
# A real frame that did not move during its exposure comes through identical (infinite PSNR);
# per-frame PSNR is capped here so that means stay means (8-bit rounding alone gives 59 dB).
PSNR_CAP = 60.0
MIN_MOVING_SHARE = 0.002  # frames whose mask covers less than this hold no moving object


def capped_psnr(image: np.ndarray, reference: np.ndarray) -> float:
    return min(psnr(image, reference), PSNR_CAP)


def pooled_psnr(squared_errors: list[float], counts: list[int]) -> float:
    """PSNR of the mean squared error over all the pixels counted (data range 1)."""
    total = sum(counts)
    if total == 0:
        return math.nan
    mse = sum(squared_errors) / total
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


class RealFootageScores:
    """Collects a real-footage set's extra figures clip by clip."""

    def __init__(self, data: Path) -> None:
        record = read_footage_record(data) or {}
        self.data, self.facts = data, record.get("frames", {})
        self.frames: list[tuple[str, float, float]] = []  # (camera, input PSNR, output PSNR)
        self.still_background: list[tuple[float, float]] = []  # (input PSNR, output PSNR)
        # Squared errors summed over the pixels of each frame, and how many were summed.
        self.moving_in: list[float] = []
        self.moving_out: list[float] = []
        self.moving_n: list[int] = []
        self.sharp_err: list[float] = []
        self.sharp_n: list[int] = []
        self.sharp_psnr: list[float] = []
        self.sharp_camera: list[str] = []

    def add_clip(
        self,
        blur_paths: list[Path],
        blurry: list[np.ndarray],
        deblurred: list[np.ndarray],
        sharp: list[np.ndarray],
        sharp_through: list[np.ndarray],
    ) -> None:
        for path, b, d, s, through in zip(blur_paths, blurry, deblurred, sharp, sharp_through):
            path = Path(path)
            facts = self.facts.get(str(path.relative_to(self.data)), {})
            self.frames.append((facts.get("camera", "unknown"), capped_psnr(b, s), capped_psnr(d, s)))
            self.sharp_err.append(float(np.sum((through - s) ** 2)))
            self.sharp_n.append(s.size)
            self.sharp_psnr.append(capped_psnr(through, s))
            self.sharp_camera.append(f"{facts.get('camera', 'unknown')} camera")
            mask = cv2.imread(str(path.parent.parent / "moving" / path.name), cv2.IMREAD_GRAYSCALE)
            inside = mask > 0 if mask is not None else np.zeros(s.shape[:2], bool)
            if facts.get("camera") == "still" and not inside.all():
                self.still_background.append((capped_psnr(b[~inside], s[~inside]), capped_psnr(d[~inside], s[~inside])))
            if inside.mean() < MIN_MOVING_SHARE:
                continue
            self.moving_in.append(float(np.sum((b - s)[inside] ** 2)))
            self.moving_out.append(float(np.sum((d - s)[inside] ** 2)))
            self.moving_n.append(int(inside.sum()) * s.shape[2])

    def sharp_in(self) -> tuple[float, float]:
        """Real sharp in: the pooled PSNR, and the worst frame's."""
        return self._sharp_in_of(range(len(self.sharp_err)))

    def sharp_in_by_camera(self) -> dict[str, tuple[float, float]]:
        """Real sharp in for still and moving cameras apart (pooled, worst frame): a still
        camera's sharp frames are what a surveillance user gets back every day."""
        cameras = sorted(set(self.sharp_camera), key=lambda c: (c != "still camera", c))
        return {
            camera: self._sharp_in_of([i for i, c in enumerate(self.sharp_camera) if c == camera]) for camera in cameras
        }

    def _sharp_in_of(self, frames: Sequence[int]) -> tuple[float, float]:
        """Pooled PSNR and the worst frame's, over the sharp frames numbered `frames`."""
        pooled = pooled_psnr([self.sharp_err[i] for i in frames], [self.sharp_n[i] for i in frames])
        return pooled, min((self.sharp_psnr[i] for i in frames), default=math.nan)

    def groups(self) -> dict[str, tuple[int, float, float]]:
        """(count, input PSNR, output PSNR) for each bucket, camera and the moving regions."""
        members: dict[str, list[tuple[float, float]]] = {}
        for camera, before, after in self.frames:
            for low, high, name in INPUT_BUCKETS:
                if low <= before < high:
                    members.setdefault(name, []).append((before, after))
            members.setdefault(f"{camera} camera", []).append((before, after))
        order = [name for _, _, name in INPUT_BUCKETS] + ["still camera", "moving camera"]
        groups = {
            name: (len(members[name]), _mean([b for b, _ in members[name]]), _mean([a for _, a in members[name]]))
            for name in order
            if name in members
        }
        if self.still_background:
            groups[STILL_BACKGROUND] = (
                len(self.still_background),
                _mean([b for b, _ in self.still_background]),
                _mean([a for _, a in self.still_background]),
            )
        if self.moving_n:
            groups[MOVING_REGIONS] = (
                len(self.moving_n),
                pooled_psnr(self.moving_in, self.moving_n),
                pooled_psnr(self.moving_out, self.moving_n),
            )
        return groups


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan
