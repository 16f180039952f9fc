"""Reading video with PyAV: any file or URL FFmpeg opens.

Video packets are decoded to RGB frames (uint8, or uint16 above 8 bits) that keep their pts
and time base; audio and subtitle packets go, untouched, to a PacketBuffer for the writer.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
from av.video.reformatter import Interpolation

from streamdeblur.errors import BadInput
from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo, PassthroughStream, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer

log = logging.getLogger(__name__)

# Demuxers that turn non-video files into "video" (a text file opens as ANSI art).
_NOT_VIDEO_FORMATS = {"tty"}
_NOT_VIDEO_CODECS = {"ansi"}
# swscale's default YUV->RGB path brightens by about one code value. With accurate rounding
# and full chroma interpolation (and AREA chroma averaging on the way back, in video_sink) a
# round trip shifts luma by 0.01 (BT.709 limited-range H.264), at ~3x the conversion cost.
ACCURATE_TO_RGB = Interpolation.BILINEAR | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _bit_depth(pix_fmt: str | None) -> int:
    if not pix_fmt:
        return 8
    try:
        return max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


class VideoSource:
    """A PyAV input; iterate `frames()` once, from one thread."""

    def __init__(
        self,
        url: str,
        options: dict[str, str] | None = None,
        live: bool = False,
        container_format: str | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> None:
        """`timeout` (open, read) in seconds makes a stalled network source raise, not hang."""
        self.url = url
        self.passthrough = PacketBuffer()
        self.stats = ReadStats()
        self._decoded_backlog: deque[Any] = deque()
        self._timeout = timeout
        try:
            self._container = av.open(url, mode="r", format=container_format, options=options or {}, timeout=timeout)
        except FileNotFoundError:
            raise BadInput(f"input not found: {url}") from None
        except av.FFmpegError as exc:
            raise BadInput(f"cannot open {url}: {self._describe(exc, opening=True)}") from None
        try:
            self.info = self._probe(live)
        except BaseException:
            self._container.close()
            raise

    def _describe(self, exc: BaseException, opening: bool) -> str:
        if isinstance(exc, av.ExitError) and self._timeout:  # FFmpeg gave up on our timeout
            seconds = self._timeout[0] if opening else self._timeout[1]
            return f"nothing received for {seconds:g} s" + ("" if opening else "; keeping the frames that arrived")
        return _describe(exc)

    def _probe(self, live: bool) -> MediaInfo:
        container = self._container
        if container.format.name in _NOT_VIDEO_FORMATS or not container.streams.video:
            raise BadInput(f"{self.url} has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context.name in _NOT_VIDEO_CODECS:
            raise BadInput(f"{self.url} has no video stream")
        stream.thread_type = "AUTO"
        self._video = stream
        self._passthrough = self._passthrough_streams()
        self._demuxer = container.demux([stream, *(p.template for p in self._passthrough)])
        # Decoding the first frame proves the input is decodable and gives facts the
        # container may only attach to frames (rotation, colour).
        self._pending = self._next_decoded()
        if self._pending is None:
            raise BadInput(f"{self.url}: no video frame could be decoded")
        first = self._pending
        ctx = stream.codec_context
        pix_fmt = first.format.name
        frame_count = stream.frames or None
        duration = (
            float(stream.duration * stream.time_base)
            if stream.duration
            else (container.duration / av.time_base if container.duration else None)
        )
        video = VideoInfo(
            width=first.width,
            height=first.height,
            time_base=stream.time_base or Fraction(1, 90000),
            average_rate=stream.average_rate or stream.guessed_rate or None,
            bit_depth=_bit_depth(pix_fmt),
            pix_fmt=pix_fmt,
            codec=ctx.name,
            rotation=int(round(first.rotation or 0)),
            color_range=int(first.color_range or ctx.color_range or 0),
            colorspace=int(first.colorspace or ctx.colorspace or 2),
            color_primaries=int(first.color_primaries or ctx.color_primaries or 2),
            color_trc=int(first.color_trc or ctx.color_trc or 2),
            frame_count=frame_count,
            duration_s=duration,
        )
        metadata = {k: v for k, v in container.metadata.items()}
        return MediaInfo(
            source=self.url,
            format_name=container.format.name,
            video=video,
            passthrough=tuple(self._passthrough),
            metadata=metadata,
            live=live,
        )

    def _passthrough_streams(self) -> list[PassthroughStream]:
        streams = []
        for stream in self._container.streams:
            if stream.type not in ("audio", "subtitle"):
                if stream.type != "video":
                    log.warning("input stream #%d (%s) is not copied", stream.index, stream.type)
                continue
            codec = stream.codec_context.name if stream.codec_context else "unknown"
            language = stream.metadata.get("language")
            streams.append(PassthroughStream(stream.index, stream.type, codec, stream, language))
        return streams

    def _next_decoded(self) -> Any:
        """The next decoded video frame (passthrough packets are set aside on the way)."""
        while True:
            if self._decoded_backlog:
                return self._decoded_backlog.popleft()
            try:
                packet = next(self._demuxer)
            except StopIteration:
                return None
            except av.FFmpegError as exc:
                # A truncated or damaged tail: keep what was decoded, flush the decoder.
                log.warning("reading %s stopped early: %s", self.url, self._describe(exc, opening=False))
                self.stats.truncated = True
                self._demuxer = iter(())
                self._decode(None)
                continue
            if packet.stream.type == "video":
                self._decode(packet)
            elif packet.dts is not None or packet.pts is not None:
                self.passthrough.put(packet)

    def _decode(self, packet: Any) -> None:
        try:
            decoded = self._video.decode(packet)
        except av.FFmpegError as exc:
            self.stats.decode_errors += 1
            log.warning("decode error in %s: %s", self.url, _describe(exc))
            return
        self._decoded_backlog.extend(decoded)

    def frames(self) -> Iterator[Frame]:
        info = self.info.video
        rgb_format = "rgb48le" if info.high_bit_depth else "rgb24"
        frame_duration = self._frame_duration()
        last_pts: int | None = None
        index = 0
        av_frame = self._pending
        self._pending = None
        while av_frame is not None:
            pts = av_frame.pts if av_frame.pts is not None else av_frame.dts
            if pts is None:
                pts = 0 if last_pts is None else last_pts + frame_duration
            if last_pts is not None and pts <= last_pts:
                # Encoders need strictly increasing pts; repair and count.
                pts = last_pts + 1
                self.stats.pts_repaired += 1
            last_pts = pts
            if (av_frame.width, av_frame.height) != (info.width, info.height):
                av_frame = av_frame.reformat(width=info.width, height=info.height)
            pixels = av_frame.to_ndarray(format=rgb_format, interpolation=ACCURATE_TO_RGB)
            yield Frame(pixels=pixels, pts=pts, time_base=info.time_base, index=index)
            index += 1
            self.stats.decoded = index
            av_frame = self._next_decoded()
        self._account_losses()

    def _frame_duration(self) -> int:
        rate = self.info.video.rate_or_default
        return max(1, round(1 / (rate * self.info.video.time_base)))

    def _expected_frames(self) -> tuple[int | None, bool]:
        """Frames the container promises: its count, else duration x rate (an estimate)."""
        video = self.info.video
        if video.frame_count:
            return video.frame_count, False
        if video.duration_s and video.average_rate:
            return round(video.duration_s * video.average_rate), True
        return None, False

    def _account_losses(self) -> None:
        expected, estimated = self._expected_frames()
        decoded = self.stats.decoded
        # An estimate from duration x rate is loose (variable frame rate): allow 2%.
        tolerance = max(2, round(0.02 * expected)) if expected and estimated else 0
        if expected and decoded < expected - tolerance:
            self.stats.frames_lost = expected - decoded
            log.warning(
                "%s: decoded %d of %s%d frames; %s%d lost (truncated or damaged input)",
                self.url,
                decoded,
                "about " if estimated else "",
                expected,
                "about " if estimated else "",
                self.stats.frames_lost,
            )
        elif self.stats.decode_errors:
            log.warning("%s: %d packets could not be decoded", self.url, self.stats.decode_errors)
        if self.stats.pts_repaired:
            log.warning(
                "%s: %d frames had timestamps out of order; each was moved one tick after the one before",
                self.url,
                self.stats.pts_repaired,
            )

    def close(self) -> None:
        self._container.close()
