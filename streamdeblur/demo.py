"""`streamdeblur demo`: a short synthetic motion-blurred clip to try the tool on."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from streamdeblur.io import EncodeOptions, Frame, MediaInfo, PacketBuffer
from streamdeblur.io.media_info import VideoInfo
from streamdeblur.io.video_sink import VideoSink
from streamdeblur.synthetic.blur import render_clip

_BT709 = 1


def write_demo_clip(
    path: Path,
    width: int = 640,
    height: int = 360,
    seconds: float = 3.0,
    fps: int = 30,
    seed: int = 0,
    overwrite: bool = False,
    sharp_path: Path | None = None,
) -> int:
    """Render the clip (and optionally its sharp reference) with H.264; returns the frame count."""
    n_frames = max(1, round(seconds * fps))
    frames = render_clip(np.random.default_rng(seed), width, height, n_frames, fps)
    video = VideoInfo(
        width=width,
        height=height,
        time_base=Fraction(1, fps),
        average_rate=Fraction(fps),
        color_range=1,
        colorspace=_BT709,
        color_primaries=_BT709,
        color_trc=_BT709,
        frame_count=n_frames,
    )
    info = MediaInfo(
        source="synthetic",
        format_name="synthetic",
        video=video,
        metadata={"title": "streamdeblur demo (synthetic motion blur)"},
    )
    targets = [(path, 0)] + ([(sharp_path, 1)] if sharp_path else [])
    for target, which in targets:
        sink = VideoSink(str(target), info, EncodeOptions(crf=16), PacketBuffer(), overwrite=overwrite)
        try:
            for index, pair in enumerate(frames):
                sink.write(Frame(pixels=pair[which], pts=index, time_base=video.time_base, index=index))
        except BaseException:
            sink.discard()
            raise
        sink.close()
    return n_frames
