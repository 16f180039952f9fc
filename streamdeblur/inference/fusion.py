"""Fusing an aligned window into one frame before the network: Fourier burst accumulation.

Camera shake blurs each frame differently, and a blur kernel is a low-pass filter that
removes different frequencies in each frame. Fourier burst accumulation (Delbracio and
Sapiro, "Removing camera shake via weighted Fourier burst accumulation", CVPR 2015 / IEEE TIP
2015) averages the aligned frames frequency by frequency, weighting each frame by how much
of that frequency it kept (its smoothed Fourier magnitude, raised to `power`). A frequency
one frame kept and its neighbours lost comes from that frame, so a sharp neighbour lends its
detail, and the average of the rest lowers the noise. Identical frames come out unchanged
(their weights are equal), so a sharp, still camera is left alone.

A windowed model whose config says `fuse: fba` feeds this one frame to a single-frame
DeepDeblur, which removes what blur is left; `fuse: fba+window` feeds it first, then the
aligned frames, so the network can see where the fusion misleads.

The transforms are torch's (real-input FFTs: half the spectrum, on the intra-op threads),
3x faster than OpenCV's full complex DFTs at 640x360 (BENCHMARKS.md, "Fusing the window").
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

# The weights' exponent: 0 is the plain average, large values pick the frame with the most
# energy at each frequency. 11 is the paper's.
POWER = 11
# The magnitudes are smoothed over frequencies by a Gaussian of this share of the smaller
# side (the paper's 1/50): one frame's noise must not win a frequency by chance.
SMOOTHING = 1 / 50
# The smoothing runs on a copy this many times smaller, then back: the same smooth surface
# for a tenth of the cost.
SHRINK = 4


def _smoothed(magnitude: np.ndarray, sigma: float) -> np.ndarray:
    """One frame's magnitude over the half spectrum (rows: vertical frequency, zero first;
    columns: horizontal frequency 0 to the Nyquist), smoothed by a Gaussian of `sigma` bins."""
    height, width = magnitude.shape
    # Rows wrap around (negative frequencies last): centre them, so the blur does not see an edge at zero.
    centred = np.fft.fftshift(magnitude, axes=0)
    small_size = (max(1, width // SHRINK), max(1, height // SHRINK))
    small = cv2.resize(centred, small_size, interpolation=cv2.INTER_AREA)
    sigma_small = sigma * small.shape[0] / height
    size = 2 * int(3 * sigma_small) + 1
    small = cv2.GaussianBlur(small, (size, size), sigma_small, borderType=cv2.BORDER_REFLECT)
    return np.fft.ifftshift(cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR), axes=0)


def _spectra(frames: list[np.ndarray]) -> torch.Tensor:
    """K x C x H x (W/2 + 1): each frame's real-input spectrum, per channel."""
    # Channels first and float in one copy per frame: the transform then reads contiguous rows.
    height, width, channels = frames[0].shape
    stack = np.empty((len(frames), channels, height, width), np.float32)
    for planes, frame in zip(stack, frames):
        planes[...] = frame.transpose(2, 0, 1)
    return torch.fft.rfft2(torch.from_numpy(stack))


def _smoothed_magnitudes(spectra: torch.Tensor, width: int) -> list[np.ndarray]:
    """Each frame's magnitude (the channels' mean), smoothed over frequencies; `width`: the
    frames' (the half spectrum does not say whether it was odd)."""
    # |X| over (real, imaginary) pairs: the same as abs(), in less time.
    magnitudes = torch.linalg.vector_norm(torch.view_as_real(spectra), dim=-1).mean(dim=1).numpy()
    sigma = max(1.0, min(magnitudes.shape[1], width) * SMOOTHING)
    return [_smoothed(m, sigma) for m in magnitudes]


def smoothed_magnitude(frame: np.ndarray) -> np.ndarray:
    """One frame's smoothed Fourier magnitude, as fourier_burst_accumulation weighs it by."""
    return _smoothed_magnitudes(_spectra([frame]), frame.shape[1])[0]


def fourier_burst_accumulation(
    frames: list[np.ndarray], power: int = POWER, magnitudes: list[np.ndarray] | None = None,
) -> np.ndarray:
    """One frame (H x W x C, the frames' dtype) from aligned frames of the same size.

    `magnitudes`: each frame's smoothed_magnitude, where already known; the window assembly
    passes those of the frames before alignment (a frame's Fourier magnitude does not change
    when it is shifted), computed once per frame rather than once per window."""
    if len(frames) == 1 or all(f is frames[0] for f in frames[1:]):
        return frames[0]  # a window of one frame repeated (a still picture, or padding only)
    dtype = frames[0].dtype
    height, width = frames[0].shape[:2]
    # A frame that appears more than once (padding) is transformed once.
    unique = list({id(f): f for f in frames}.values())
    spectra = _spectra(unique)  # U x C x H x (W/2 + 1)
    position = {id(f): i for i, f in enumerate(unique)}
    if magnitudes is None:
        unique_magnitudes = _smoothed_magnitudes(spectra, width)
        magnitudes = [unique_magnitudes[position[id(f)]] for f in frames]
    smoothed = torch.from_numpy(np.stack(magnitudes))
    # Relative to the largest at each frequency first, so the power cannot overflow float32.
    weights = (smoothed / smoothed.amax(dim=0, keepdim=True).clamp_min(1e-12)).pow(power)
    weights /= weights.sum(dim=0, keepdim=True)
    if len(unique) < len(frames):  # a repeated frame's weights add up on its one spectrum
        index = torch.tensor([position[id(f)] for f in frames])
        weights = torch.zeros((len(unique), *weights.shape[1:])).index_add_(0, index, weights)
    weighted = torch.einsum("kchw,khw->chw", spectra, weights.to(spectra.dtype))  # no K x C x H x W product kept
    fused = torch.fft.irfft2(weighted, s=(height, width))  # C x H x W
    pixels = fused.permute(1, 2, 0).numpy()
    if dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        return np.clip(np.round(pixels), 0, top).astype(dtype)
    return np.ascontiguousarray(pixels, dtype=dtype)
