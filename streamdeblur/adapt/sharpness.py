"""How sharp a frame is, measured so that noise, compression and content matter little.

The score is a re-blur ratio: blur the frame a little more and see how much of its gradient
energy goes. A sharp frame holds fine detail that a small blur removes (a high score); a frame
already blurred by motion barely changes (a score near 0). Being a ratio of the frame to
itself, it mostly cancels out how much texture the scene has. Frames are scored on a small,
lightly smoothed grey copy: that bounds the cost for large footage, and averaging pixels
together weakens sensor noise and JPEG blocking, which would otherwise pass for detail.
What noise is left is estimated per frame and its share taken out of both energies.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

SCORE_LONG_SIDE = 480  # pixels: the grey copy frames are scored on (never upscaled)
_PRESMOOTH_SIGMA = 0.6  # pixels of the grey copy: tames the noise left after downscaling
_REBLUR_SIGMA = 1.5  # pixels of the grey copy: the "slightly blurred copy"


def grey_thumbnail(pixels: np.ndarray) -> np.ndarray:
    """A float32 grey copy in [0, 1], its long side at most SCORE_LONG_SIDE (area-averaged)."""
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0 if pixels.dtype == np.uint8 else 1.0
    rgb = pixels.astype(np.float32) / np.float32(scale)
    height, width = rgb.shape[:2]
    shrink = SCORE_LONG_SIDE / max(height, width)
    if shrink < 1.0:
        size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
        rgb = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.float32)
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _structure_tensor(grey: np.ndarray) -> np.ndarray:
    """2x2 mean outer product of the gradient (central differences, border excluded): its
    quadratic form v.T @ T @ v is the mean squared derivative along the unit direction v."""
    gx = grey[1:-1, 2:] - grey[1:-1, :-2]
    gy = grey[2:, 1:-1] - grey[:-2, 1:-1]
    if gx.size == 0:
        return np.zeros((2, 2))
    xy = float(np.mean(gx * gy))
    return np.array([[float(np.mean(gx * gx)), xy], [xy, float(np.mean(gy * gy))]])


# Immerkaer's noise kernel: the difference of two Laplacians cancels edges and ramps, so what
# it responds to in flat and smooth parts is noise. On white noise of deviation s its output
# has deviation 6 s.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(grey: np.ndarray) -> float:
    """The deviation of the frame's white noise: a median, so that edges count little."""
    response = cv2.filter2D(grey, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.median(np.abs(response))) / (0.6745 * 6.0) if response.size else 0.0


@lru_cache(maxsize=1)
def _noise_energy_per_variance() -> tuple[float, float]:
    """Directional gradient energy that unit white noise leaves after the pre-smoothing, and
    after the re-blur too (the same filters as sharpness(), measured once on a noise field)."""
    noise = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    base = cv2.GaussianBlur(noise, (0, 0), _PRESMOOTH_SIGMA)
    reblurred = cv2.GaussianBlur(base, (0, 0), _REBLUR_SIGMA)
    return float(np.trace(_structure_tensor(base))) / 2, float(np.trace(_structure_tensor(reblurred))) / 2


def sharpness(grey: np.ndarray) -> float:
    """0 (nothing a small blur could remove) to 1 (all gradient energy is fine detail).

    Taken along the direction where the frame is least sharp: motion blur smears one
    direction and leaves edges along it crisp, which an all-directions measure counts as
    sharp. The share of energy the re-blur keeps along a direction v is a ratio of two
    quadratic forms, so its worst direction is the largest generalised eigenvalue.
    """
    base = cv2.GaussianBlur(grey, (0, 0), _PRESMOOTH_SIGMA)
    variance = noise_sigma(grey) ** 2
    per_base, per_reblurred = _noise_energy_per_variance()
    # Noise is isotropic: it adds the same energy along every direction.
    before = _structure_tensor(base) - variance * per_base * np.eye(2)
    if np.linalg.eigvalsh(before)[0] <= 1e-8:  # flat (or noise only), or texture in one direction only
        return 0.0
    after = _structure_tensor(cv2.GaussianBlur(base, (0, 0), _REBLUR_SIGMA)) - variance * per_reblurred * np.eye(2)
    kept = float(np.max(np.linalg.eigvals(np.linalg.solve(before, after)).real))
    return float(np.clip(1.0 - kept, 0.0, 1.0))
