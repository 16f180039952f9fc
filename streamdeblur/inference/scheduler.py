"""CUDA stream scheduler shared by the TensorRT and PyTorch CUDA backends.

Each batch takes a slot: its frames are copied into the slot's pinned host buffer, uploaded
on the upload stream, converted, run and converted back on the compute stream, and downloaded
on the download stream, the three ordered by CUDA events. With several slots, the upload of
batch k+1 and the download of batch k-1 overlap the compute of batch k. Results come back in
submission order. `in_flight=1` gives the same work without overlap, for comparison.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

from streamdeblur.inference.backend import Backend
from streamdeblur.inference.processor import (
    frames_like,
    host_pixels,
    same_size_runs,
    stack_pixels,
    to_float,
    to_integers,
)
from streamdeblur.inference.tiling import tiled, validate_tiling
from streamdeblur.io.frame import Frame


def _pinned(buffer: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A pinned host buffer of this shape, reusing `buffer` when it already fits."""
    if buffer is None or tuple(buffer.shape) != shape or buffer.dtype != dtype:
        buffer = torch.empty(shape, dtype=dtype, pin_memory=True)
    return buffer


@dataclass
class _Slot:
    index: int
    uploaded: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    computed: torch.cuda.Event = field(default_factory=torch.cuda.Event)
    # Blocking: a thread waiting on it sleeps instead of spinning a core the decoder and
    # encoder threads need.
    downloaded: torch.cuda.Event = field(default_factory=lambda: torch.cuda.Event(blocking=True))
    host_in: torch.Tensor | None = None
    host_out: torch.Tensor | None = None
    frames: list[Frame] = field(default_factory=list)
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.uint8))


class StreamScheduler:
    """The processor stage on CUDA: same interface as FrameProcessor (submit, flush)."""

    def __init__(
        self,
        backend: Backend,
        tile: int = 0,
        tile_overlap: int = 32,
        batch_size: int = 1,
        in_flight: int = 3,
    ) -> None:
        validate_tiling(tile, tile_overlap)
        self.backend, self.tile, self.tile_overlap = backend, tile, tile_overlap
        self.batch_size = max(1, batch_size)
        device = backend.device
        self.upload = torch.cuda.Stream(device)
        self.compute = torch.cuda.Stream(device)
        self.download = torch.cuda.Stream(device)
        self._free = deque(_Slot(i) for i in range(max(1, in_flight)))
        self._busy: deque[_Slot] = deque()

    def submit(self, frames: list[Frame]) -> list[Frame]:
        return [done for run in same_size_runs(frames) for done in self._submit(run)]

    def _submit(self, frames: list[Frame]) -> list[Frame]:
        done: list[Frame] = []
        if not self._free:  # every slot in flight: wait for the oldest
            done += self._finish(self._busy.popleft())
        slot = self._free.popleft()
        self._enqueue(slot, frames)
        self._busy.append(slot)
        while self._busy and self._busy[0].downloaded.query():
            done += self._finish(self._busy.popleft())
        return done

    def flush(self) -> list[Frame]:
        done: list[Frame] = []
        while self._busy:
            done += self._finish(self._busy.popleft())
        return done

    def _enqueue(self, slot: _Slot, frames: list[Frame]) -> None:
        slot.frames, slot.dtype = frames, frames[0].pixels.dtype
        array = stack_pixels(frames)
        slot.host_in = _pinned(slot.host_in, array.shape, torch.from_numpy(array[:0]).dtype)
        slot.host_in.numpy()[...] = array  # the only host-side copy of the input

        with torch.cuda.stream(self.upload):
            pixels = slot.host_in.to(self.backend.device, non_blocking=True)
            slot.uploaded.record(self.upload)

        with torch.cuda.stream(self.compute):
            self.compute.wait_event(slot.uploaded)
            pixels.record_stream(self.compute)  # allocated on the upload stream, used here
            batch = to_float(pixels, slot.dtype)
            result = tiled(
                lambda x: self.backend.infer(x, slot.index), batch, self.tile, self.tile_overlap, self.batch_size
            )
            integers = to_integers(result, slot.dtype)
            slot.computed.record(self.compute)

        with torch.cuda.stream(self.download):
            self.download.wait_event(slot.computed)
            integers.record_stream(self.download)
            slot.host_out = _pinned(slot.host_out, tuple(integers.shape), integers.dtype)
            slot.host_out.copy_(integers, non_blocking=True)
            slot.downloaded.record(self.download)

    def _finish(self, slot: _Slot) -> list[Frame]:
        slot.downloaded.synchronize()
        assert slot.host_out is not None
        # Copied out of the pinned buffer, which the slot's next batch overwrites.
        out = host_pixels(slot.host_out.numpy().copy(), slot.dtype)
        frames = frames_like(slot.frames, list(out))
        slot.frames = []
        self._free.append(slot)
        return frames
