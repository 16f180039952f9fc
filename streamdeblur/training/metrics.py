"""Image quality metrics from scikit-image (not hand-written), on float RGB in [0, 1]."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(reference, image, data_range=1.0))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    return float(structural_similarity(reference, image, data_range=1.0, channel_axis=2))
