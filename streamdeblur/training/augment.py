"""Augmentations of the official DeepDeblur recipe, applied identically to blur and sharp.

Flips, transpose and channel permutation keep the pair aligned; saturation changes both;
input noise is added to the blurry image only. The blurry side may be a window (H x W x 3K,
frames stacked on the channel axis): every frame then gets the same change.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Augment:
    flip: bool = True
    transpose: bool = True
    channel_permutation: bool = True
    saturation: float = 0.5  # max relative change of HSV saturation (0 disables)
    noise_sigma: float = 2.0 / 255  # std of the std of Gaussian noise on the input

    def __call__(self, rng: np.random.Generator, blur: np.ndarray, sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.flip and rng.uniform() < 0.5:
            blur, sharp = blur[:, ::-1], sharp[:, ::-1]
        if self.flip and rng.uniform() < 0.5:
            blur, sharp = blur[::-1], sharp[::-1]
        if self.transpose and rng.uniform() < 0.5:
            blur, sharp = blur.transpose(1, 0, 2), sharp.transpose(1, 0, 2)
        frames = blur.shape[2] // 3
        if self.channel_permutation:
            order = rng.permutation(3)
            blur, sharp = blur[..., np.concatenate([order + 3 * f for f in range(frames)])], sharp[..., order]
        if self.saturation > 0:
            factor = 1.0 + float(rng.uniform(-self.saturation, self.saturation))
            blur = np.concatenate(
                [_scale_saturation(blur[..., 3 * f : 3 * f + 3], factor) for f in range(frames)], axis=2
            )
            sharp = _scale_saturation(sharp, factor)
        blur = np.ascontiguousarray(blur, dtype=np.float32)
        sharp = np.ascontiguousarray(sharp, dtype=np.float32)
        if self.noise_sigma > 0:
            sigma = abs(float(rng.normal(0.0, self.noise_sigma)))
            blur = np.clip(blur + rng.standard_normal(blur.shape).astype(np.float32) * sigma, 0, 1)
        return blur, sharp


def _scale_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    hsv = cv2.cvtColor(np.ascontiguousarray(image, dtype=np.float32), cv2.COLOR_RGB2HSV)
    hsv[..., 1] = np.clip(hsv[..., 1] * factor, 0.0, 1.0)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
