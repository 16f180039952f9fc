"""Reading and writing media: PyAV for files, streams and cameras, image folders for stills.

`open_source` and `open_sink` (opening.py) are the way in for every command.

What needs PyAV (opening a source or sink, the encoder's options) is imported on first use,
so the frames and the rest of the package import without it: the GPU machines lent here have
PyTorch but no PyAV, and their tests and measurements of the network need none.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.passthrough import PacketBuffer
from streamdeblur.io.protocols import Sink, Source

if TYPE_CHECKING:
    from streamdeblur.io.opening import (
        NETWORK_TIMEOUT_S,
        PREVIEW_ONLY,
        RTSP_TRANSPORTS,
        Output,
        SinkOptions,
        SourceOptions,
        open_sink,
        open_source,
        output_is_folder,
    )  # fmt: skip
    from streamdeblur.io.video_sink import EncodeOptions, partial_path

_WITH_PYAV = {
    **dict.fromkeys(
        (
            "NETWORK_TIMEOUT_S",
            "PREVIEW_ONLY",
            "RTSP_TRANSPORTS",
            "Output",
            "SinkOptions",
            "SourceOptions",
            "open_sink",
            "open_source",
            "output_is_folder",
        ),
        "streamdeblur.io.opening",
    ),
    "EncodeOptions": "streamdeblur.io.video_sink",
    "partial_path": "streamdeblur.io.video_sink",
}


def __getattr__(name: str) -> Any:
    module = _WITH_PYAV.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "NETWORK_TIMEOUT_S", "PREVIEW_ONLY", "RTSP_TRANSPORTS", "EncodeOptions", "Frame", "MediaInfo", "Output",
    "PacketBuffer", "ReadStats", "Sink", "SinkOptions", "Source", "SourceOptions", "open_sink", "open_source",
    "output_is_folder", "partial_path",
]  # fmt: skip
