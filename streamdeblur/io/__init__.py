"""Reading and writing media: PyAV for files, streams and cameras, image folders for stills.

`open_source` and `open_sink` (opening.py) are the way in for every command.
"""

from __future__ import annotations

from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo
from streamdeblur.io.opening import (
    NETWORK_TIMEOUT_S, PREVIEW_ONLY, RTSP_TRANSPORTS, Output, SinkOptions, SourceOptions, open_sink, open_source,
    output_is_folder,
)  # fmt: skip
from streamdeblur.io.passthrough import PacketBuffer
from streamdeblur.io.protocols import Sink, Source
from streamdeblur.io.video_sink import EncodeOptions, partial_path

__all__ = [
    "NETWORK_TIMEOUT_S", "PREVIEW_ONLY", "RTSP_TRANSPORTS", "EncodeOptions", "Frame", "MediaInfo", "Output",
    "PacketBuffer", "ReadStats", "Sink", "SinkOptions", "Source", "SourceOptions", "open_sink", "open_source",
    "output_is_folder", "partial_path",
]  # fmt: skip
