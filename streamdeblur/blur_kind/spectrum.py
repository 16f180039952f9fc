"""What a patch's spectrum says about its blur, as a short vector of numbers.

A blur is a filter, so it shows in the patch's power spectrum: a lens's disc or Gaussian takes
the high frequencies away alike in every direction, a moving camera takes them away across its
path and leaves them along it, and a sharp picture keeps them (under its noise). The features
are the log power of the Hann-windowed patch averaged over RADIAL_BANDS rings (log-spaced, from
MIN_RADIUS cycles to the edge) times ORIENTATIONS sectors, each ring taken against the lowest so
that the patch's contrast cancels out: the rings' mean (how fast power falls off) and each
sector's departure from it (how unequal the directions are).
"""

from __future__ import annotations

from functools import cache

import numpy as np

RADIAL_BANDS = 7
ORIENTATIONS = 8
MIN_RADIUS = 3.0
FEATURES = RADIAL_BANDS * (1 + ORIENTATIONS)


@cache
def _averaging(size: int) -> tuple[np.ndarray, np.ndarray]:
    """The Hann window, and the (size * size, cells) matrix that averages the spectrum over each
    (ring, sector) cell, for square patches of `size`."""
    y, x = np.mgrid[:size, :size] - size // 2
    radius = np.hypot(x, y)
    angle = np.mod(np.arctan2(y, x), np.pi)  # a real picture's spectrum is symmetric
    ring = np.digitize(radius, np.geomspace(MIN_RADIUS, size / 2, RADIAL_BANDS + 1)) - 1
    sector = np.minimum((angle / np.pi * ORIENTATIONS).astype(int), ORIENTATIONS - 1)
    cells = [(ring == r) & (sector == s) for r in range(RADIAL_BANDS) for s in range(ORIENTATIONS)]
    averaging = np.stack([c.ravel() / max(1, c.sum()) for c in cells], axis=1).astype(np.float32)
    return np.outer(np.hanning(size), np.hanning(size)).astype(np.float32), averaging


def spectral_features(patches: np.ndarray) -> np.ndarray:
    """(N, S, S) grey patches in [0, 1] -> (N, FEATURES) float32."""
    patches = np.asarray(patches, np.float32)
    count, size = patches.shape[0], patches.shape[-1]
    window, averaging = _averaging(size)
    centred = patches - patches.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fftshift(np.fft.fft2(centred * window), axes=(1, 2))) ** 2
    cells = (np.log(power.reshape(count, -1) + 1e-10).astype(np.float32) @ averaging).reshape(
        count, RADIAL_BANDS, ORIENTATIONS
    )
    relative = cells - cells[:, :1, :].mean(axis=2, keepdims=True)
    falloff = relative.mean(axis=2)
    directions = relative - falloff[:, :, None]
    return np.concatenate([falloff, directions.reshape(count, -1)], axis=1).astype(np.float32)
