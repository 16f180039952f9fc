"""The processor stage: frames in, deblurred frames out, in order.

It owns the device: upload, integer-to-float conversion, tiling, the backend call,
float-to-integer conversion and download all happen here. On the CPU that is one
synchronous call per batch (FrameProcessor); on CUDA the StreamScheduler overlaps copies and
compute across several batches in flight with the same conversions.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from streamdeblur.inference.backend import Backend
from streamdeblur.inference.tiling import runs_whole, tiled, validate_tiling
from streamdeblur.io.frame import Frame

MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class Processor(Protocol):
    batch_size: int

    def submit(self, frames: list[Frame]) -> list[Frame]: ...

    def flush(self) -> list[Frame]: ...


def same_size_runs(frames: list[Frame]) -> list[list[Frame]]:
    """`frames` in order, cut where the size changes: a batch is one tensor, and unrelated
    pictures in a folder may differ in size."""
    runs: list[list[Frame]] = []
    for frame in frames:
        if runs and runs[-1][-1].pixels.shape == frame.pixels.shape:
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return runs


def stack_pixels(frames: list[Frame]) -> np.ndarray:
    """N x H x W x 3 integers; uint16 travels as int16 bits (torch has little uint16 support)."""
    array = np.stack([f.pixels for f in frames])
    return array.view(np.int16) if array.dtype == np.uint16 else array


def to_float(pixels: torch.Tensor, dtype: np.dtype) -> torch.Tensor:
    """N x H x W x 3 integers (any device) -> (N, 3, H, W) float32 in [0, 1] on that device."""
    values = pixels.to(torch.int32) & 0xFFFF if dtype == np.uint16 else pixels
    # Divided in place: .float() made a fresh tensor, and one fewer of these (16 MB for a
    # 640x360 window of 18 channels) is one fewer to allocate and fault in.
    return values.permute(0, 3, 1, 2).float().div_(MAX_VALUE[dtype])


def infer_pixels(backend: Backend, pixels: torch.Tensor, dtype: np.dtype) -> torch.Tensor:
    """The network's output, (N, 3, H, W) float, for whole frames as integers (N x H x W x C,
    as stack_pixels gives them): the 8-bit frames as they are where the backend takes them
    (OpenVINO converts them in its own graph, faster than a float copy made first), else a
    float copy."""
    takes_pixels = getattr(backend, "infer_pixels", None)
    if takes_pixels is not None and dtype == np.uint8:
        result: torch.Tensor = takes_pixels(pixels)
        return result
    return backend.infer(to_float(pixels, dtype))


def to_integers(batch: torch.Tensor, dtype: np.dtype) -> torch.Tensor:
    """(N, 3, H, W) float in [0, 1] -> N x H x W x 3 uint8 (or uint16 bits as int16), same device."""
    scaled = (batch.clamp(0.0, 1.0) * MAX_VALUE[dtype]).round().permute(0, 2, 3, 1)
    if dtype == np.uint8:
        return scaled.to(torch.uint8).contiguous()
    return scaled.to(torch.int32).to(torch.int16).contiguous()  # wraps to the same 16 bits


def host_pixels(integers: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return integers.view(np.uint16) if dtype == np.uint16 else integers


def frames_like(frames: list[Frame], pixels: list[np.ndarray]) -> list[Frame]:
    return [Frame(p, f.pts, f.time_base, f.index) for p, f in zip(pixels, frames)]


class FrameProcessor:
    """Runs a backend over batches of frames synchronously, whole or in blended tiles."""

    def __init__(self, backend: Backend, tile: int = 0, tile_overlap: int = 32, batch_size: int = 1) -> None:
        validate_tiling(tile, tile_overlap)
        self.backend, self.tile, self.tile_overlap = backend, tile, tile_overlap
        self.batch_size = max(1, batch_size)

    def process(self, frames: list[Frame]) -> list[Frame]:
        """Deblurred copies of `frames` (same pts, time base and index)."""
        return [done for run in same_size_runs(frames) for done in self._process(run)]

    @torch.inference_mode()  # the batch an inference tensor, as the compiled network was warmed with (select.warmed)
    def _process(self, frames: list[Frame]) -> list[Frame]:
        dtype = frames[0].pixels.dtype
        pixels = torch.from_numpy(stack_pixels(frames)).to(self.backend.device)
        if runs_whole(pixels.shape[1], pixels.shape[2], self.tile):
            result = infer_pixels(self.backend, pixels, dtype)
        else:
            result = tiled(self.backend.infer, to_float(pixels, dtype), self.tile, self.tile_overlap, self.batch_size)
        out = host_pixels(to_integers(result, dtype).cpu().numpy(), dtype)
        return frames_like(frames, list(out))

    def submit(self, frames: list[Frame]) -> list[Frame]:
        """Queue a batch; returns the frames finished so far, in order (here: this batch)."""
        return self.process(frames)

    def flush(self) -> list[Frame]:
        """Frames still in flight; none, since process() is synchronous."""
        return []
