"""The processor stage: frames in, deblurred frames out, in order.

It owns the device: upload, integer-to-float conversion, tiling, the backend call,
float-to-integer conversion and download all happen here.
"""

from __future__ import annotations

import numpy as np
import torch

from streamdeblur.inference.backend import Backend
from streamdeblur.inference.tiling import tiled, validate_tiling
from streamdeblur.io.frame import Frame

_MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def to_tensor(frames: list[Frame], device: torch.device) -> tuple[torch.Tensor, np.dtype]:
    """Stack HxWx3 integer frames into (N, 3, H, W) float in [0, 1] on `device`."""
    array = np.stack([f.pixels for f in frames])
    dtype = array.dtype
    # uint8 converts on the device (less to copy); torch has no arithmetic on uint16.
    host = torch.from_numpy(array if dtype == np.uint8 else array.astype(np.float32))
    batch = host.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
    return batch / _MAX_VALUE[dtype], dtype


def to_pixels(batch: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """(N, 3, H, W) float in [0, 1] back to N x H x W x 3 integers of `dtype`, on the host."""
    scaled = (batch.clamp(0.0, 1.0) * _MAX_VALUE[dtype]).round().permute(0, 2, 3, 1)
    if dtype == np.uint8:
        return scaled.to(torch.uint8).cpu().numpy()
    return scaled.to(torch.int32).cpu().numpy().astype(np.uint16)


class FrameProcessor:
    """Runs a backend over batches of frames, whole or in blended tiles."""

    def __init__(self, backend: Backend, tile: int = 0, tile_overlap: int = 32, batch_size: int = 1) -> None:
        validate_tiling(tile, tile_overlap)
        self.backend, self.tile, self.tile_overlap = backend, tile, tile_overlap
        self.batch_size = max(1, batch_size)

    def process(self, frames: list[Frame]) -> list[Frame]:
        """Deblurred copies of `frames` (same pts, time base and index)."""
        batch, dtype = to_tensor(frames, self.backend.device)
        result = tiled(self.backend.infer, batch, self.tile, self.tile_overlap, self.batch_size)
        pixels = to_pixels(result, dtype)
        return [Frame(p, f.pts, f.time_base, f.index) for p, f in zip(pixels, frames)]

    def submit(self, frames: list[Frame]) -> list[Frame]:
        """Queue a batch; returns the frames finished so far, in order (here: this batch)."""
        return self.process(frames)

    def flush(self) -> list[Frame]:
        """Frames still in flight; nothing here, since process() is synchronous."""
        return []
