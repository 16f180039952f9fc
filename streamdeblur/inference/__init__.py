"""Backends behind one interface, the processor stage around them, and tiling."""

from __future__ import annotations

from pathlib import Path

from streamdeblur.errors import BadUsage
from streamdeblur.inference.backend import Backend, PassthroughBackend
from streamdeblur.inference.processor import FrameProcessor
from streamdeblur.inference.torch_backend import TorchBackend, resolve_device
from streamdeblur.models import DEFAULT_WEIGHTS, load_checkpoint

BACKENDS = ("auto", "torch", "passthrough")

__all__ = ["BACKENDS", "Backend", "FrameProcessor", "create_backend"]


def create_backend(
    name: str = "auto", weights: str | Path | None = None, device: str = "auto",
    precision: str = "fp32", channels_last: bool = False,
) -> Backend:
    """The backend to run: `auto` takes torch on CUDA when there is a GPU, else on the CPU."""
    if name not in BACKENDS:
        raise BadUsage(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    torch_device = resolve_device(device)
    if name == "passthrough":
        return PassthroughBackend(torch_device)
    model = load_checkpoint(weights or DEFAULT_WEIGHTS)
    return TorchBackend(model, torch_device, precision, channels_last)
