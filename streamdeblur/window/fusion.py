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
several times faster than OpenCV's full complex DFTs.
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


def _spectra(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Each frame's real-input spectrum per channel (C x H x (W/2 + 1), complex64)."""
    # Channels first and float in one copy per frame: the transform then reads contiguous rows.
    height, width, channels = frames[0].shape
    stack = np.empty((len(frames), channels, height, width), np.float32)
    for planes, frame in zip(stack, frames):
        planes[...] = frame.transpose(2, 0, 1)
    return list(torch.fft.rfft2(torch.from_numpy(stack)).numpy())


def frame_spectrum(frame: np.ndarray) -> np.ndarray:
    """One frame's spectrum as fourier_burst_accumulation transforms it (C x H x (W/2 + 1))."""
    return _spectra([frame])[0]


def _smoothed_magnitude(spectrum: np.ndarray, width: int) -> np.ndarray:
    """A frame's magnitude (the channels' mean), smoothed over frequencies; `width`: the
    frame's (the half spectrum does not say whether it was odd)."""
    # NumPy's complex abs is vectorised; torch's runs about 10x slower on the CPU.
    magnitude = np.abs(spectrum).mean(axis=0)
    return _smoothed(magnitude, max(1.0, min(magnitude.shape[0], width) * SMOOTHING))


def smoothed_magnitude(frame: np.ndarray, spectrum: np.ndarray | None = None) -> np.ndarray:
    """One frame's smoothed Fourier magnitude, as fourier_burst_accumulation weighs it by;
    from its frame_spectrum where that is known."""
    return _smoothed_magnitude(frame_spectrum(frame) if spectrum is None else spectrum, frame.shape[1])


def _weights(magnitudes: list[np.ndarray], power: int) -> np.ndarray:
    """K x H x (W/2 + 1): each frame's share of each frequency, summing to 1 over the frames."""
    relative = np.stack(magnitudes)
    # Relative to the largest at each frequency first, so the power cannot overflow float32.
    # Where every frame has nothing (a flat frame's higher frequencies), they share equally.
    peak = relative.max(axis=0)
    empty = peak == 0
    relative /= np.where(empty, np.float32(1), peak)
    relative[:, empty] = 1
    weights = np.empty_like(relative)
    for frame_weights, frame_relative in zip(weights, relative):  # a frame at a time: 3x faster, in cache
        _raise(frame_relative, power, out=frame_weights)
    weights /= weights.sum(axis=0)
    return weights


def _raise(x: np.ndarray, power: int, out: np.ndarray) -> None:
    """out = x ** power by repeated squaring, where ** takes logarithms; x is overwritten
    (in place: fresh arrays of this size cost page faults)."""
    started = False
    while power:
        if power & 1:
            if started:
                np.multiply(out, x, out=out)
            else:
                out[...] = x
                started = True
        power >>= 1
        if power:
            np.multiply(x, x, out=x)
    if not started:
        out[...] = 1


def fourier_burst_accumulation(
    frames: list[np.ndarray],
    power: int = POWER,
    magnitudes: list[np.ndarray] | None = None,
    spectra: list[np.ndarray | None] | None = None,
) -> np.ndarray:
    """One frame (H x W x C, the frames' dtype) from aligned frames of the same size.

    `magnitudes`: each frame's smoothed_magnitude, where already known; the window assembly
    passes those of the frames before alignment (a frame's Fourier magnitude does not change
    when it is shifted), computed once per frame rather than once per window. `spectra`: each
    frame's frame_spectrum or None, where some are already known (the restored frame's, which
    alignment leaves as it is)."""
    if len(frames) == 1 or all(f is frames[0] for f in frames[1:]):
        return frames[0]  # a window of one frame repeated (a still picture, or padding only)
    dtype = frames[0].dtype
    height, width = frames[0].shape[:2]
    # A frame that appears more than once (padding) is transformed once.
    unique = list({id(f): f for f in frames}.values())
    position = {id(f): i for i, f in enumerate(unique)}
    known = {id(f): s for f, s in zip(frames, spectra or []) if s is not None}
    missing = [f for f in unique if id(f) not in known]
    known.update((id(f), s) for f, s in zip(missing, _spectra(missing) if missing else []))
    bins = [known[id(f)] for f in unique]
    if magnitudes is None:
        unique_magnitudes = [_smoothed_magnitude(b, width) for b in bins]
        magnitudes = [unique_magnitudes[position[id(f)]] for f in frames]
    weights = _weights(magnitudes, power)
    # The weighted sum frame by frame: a repeated frame's weights add up on its one spectrum,
    # and no K x C x H x W product is kept.
    by_spectrum = [np.zeros_like(weights[0]) for _ in unique]
    for frame, weight in zip(frames, weights):
        by_spectrum[position[id(frame)]] += weight
    weighted = bins[0] * by_spectrum[0]
    for spectrum, weight in zip(bins[1:], by_spectrum[1:]):
        weighted += spectrum * weight
    fused = torch.fft.irfft2(torch.from_numpy(weighted), s=(height, width))  # C x H x W
    pixels = fused.permute(1, 2, 0).numpy()
    if dtype in (np.uint8, np.uint16):
        top = np.iinfo(dtype).max
        return np.clip(np.round(pixels), 0, top).astype(dtype)
    return np.ascontiguousarray(pixels, dtype=dtype)
