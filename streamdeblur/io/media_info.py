"""Stream-level facts, read once from the source and handed to the writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    time_base: Fraction
    average_rate: Fraction | None
    bit_depth: int = 8
    pix_fmt: str | None = None
    codec: str | None = None
    rotation: int = 0  # degrees counter-clockwise, from the display matrix
    # FFmpeg's enum values (AVColorRange, AVColorSpace, AVColorPrimaries, AVColorTransferCharacteristic);
    # 0 / 2 mean "unspecified" and are carried as such.
    color_range: int = 0
    colorspace: int = 2
    color_primaries: int = 2
    color_trc: int = 2
    frame_count: int | None = None  # as the container declares it (for ETA and loss counts)
    duration_s: float | None = None

    @property
    def high_bit_depth(self) -> bool:
        return self.bit_depth > 8

    @property
    def rate_or_default(self) -> Fraction:
        return self.average_rate if self.average_rate else Fraction(25)


@dataclass(frozen=True)
class PassthroughStream:
    """An audio or subtitle stream whose packets are copied to the output untouched."""

    index: int
    kind: str  # "audio" or "subtitle"
    codec: str
    template: Any  # the input av.stream.Stream, used as the template for the output stream
    language: str | None = None


@dataclass(frozen=True)
class MediaInfo:
    source: str
    format_name: str
    video: VideoInfo
    passthrough: tuple[PassthroughStream, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    live: bool = False
    frame_names: tuple[str, ...] = ()  # an image folder's file stems, so folder out keeps them

    @property
    def single_image(self) -> bool:
        """One picture: an image file (FFmpeg's image demuxers: image2, png_pipe, jpeg_pipe,
        ...) or a folder of one frame. It has no neighbours to take detail from."""
        name = self.format_name
        return self.video.frame_count == 1 or name == "image2" or name.endswith("_pipe")
