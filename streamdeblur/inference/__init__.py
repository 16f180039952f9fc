"""Backends behind one interface, the processor stage around them, and tiling."""

from __future__ import annotations

from streamdeblur.inference.backend import Backend, PassthroughBackend
from streamdeblur.inference.processor import FrameProcessor, Processor
from streamdeblur.inference.select import BACKENDS, create_backend, make_processor
from streamdeblur.inference.spec import BackendSpec

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendSpec",
    "FrameProcessor",
    "PassthroughBackend",
    "Processor",
    "create_backend",
    "make_processor",
]
