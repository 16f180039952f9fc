"""Writing video with PyAV: encode the deblurred frames, copy audio and subtitle packets.

Frames keep their pts (variable frame rate stays variable), rotation and colour tags are
carried, and high bit depth stays high where the codec allows. A file is written under a
temporary name beside the target and renamed when finalized.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import Interpolation

from streamdeblur.errors import BadInput, BadUsage
from streamdeblur.io.frame import Frame
from streamdeblur.io.media_info import MediaInfo, PassthroughStream, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer

log = logging.getLogger(__name__)

DEFAULT_CRF = 18
_HIGH_DEPTH_FORMATS = ("yuv420p10le", "yuv422p10le", "yuv444p10le", "p010le", "yuv420p12le")
_EIGHT_BIT_FORMATS = ("yuv420p", "nv12", "yuv444p")
# Deprecated full-range aliases; the plain format plus a full-range tag is what players expect.
_JPEG_ALIASES = {"yuvj420p": "yuv420p", "yuvj422p": "yuv422p", "yuvj444p": "yuv444p"}
# Colour matrices swscale can convert with (AVColorSpace values); smpte170m is BT.601.
_SWS_COLORSPACES = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9}
_FULL_RANGE = 2
_CONTAINER_OPTIONS = {"mp4": {"movflags": "+faststart"}, "mov": {"movflags": "+faststart"}}
_DROPPED_METADATA = {"encoder", "major_brand", "minor_version", "compatible_brands"}
# Checked here because x264/x265 print their own complaint to stderr on a bad name.
_X26X_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)


@dataclass(frozen=True)
class EncodeOptions:
    codec: str | None = None  # None: libx264, libx265 for >8-bit input, or what the container takes
    crf: int | None = None  # None: DEFAULT_CRF where the encoder has a quality setting
    preset: str | None = None
    pix_fmt: str | None = None
    low_latency: bool = False  # live output: no frame held back (x264/x265 zerolatency), a keyframe every second


def partial_path(target: Path) -> Path:
    """The temporary name a file is written under: hidden, beside the target, same suffix."""
    return target.with_name(f".{target.stem}.partial{target.suffix}")


def _encoder(name: str) -> av.Codec:
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        raise BadUsage(f"unknown encoder {name!r} (ffmpeg -encoders lists them)") from None
    if codec.type != "video":
        raise BadUsage(f"{name!r} is not a video encoder")
    return codec


# Muxers FFmpeg cannot ask what they hold (their supported_codecs lists only their default
# codecs), with the codecs they are made to carry: streams for live pushing among them.
_STREAM_CODECS = frozenset({"h264", "hevc", "aac", "mp2", "mp3", "ac3", "opus"})
_UNLISTED_CODECS = {"mpegts": _STREAM_CODECS, "rtp_mpegts": _STREAM_CODECS, "rtsp": _STREAM_CODECS}


def supported_codecs(container: Any) -> set[str]:
    """Codec names the output container holds; empty when it does not say (take anything)."""
    return set(container.supported_codecs) | _UNLISTED_CODECS.get(container.format.name, set())


def _accepts(container: Any, codec: av.Codec) -> bool:
    supported = supported_codecs(container)
    return not supported or codec.name in supported or codec.canonical_name in supported


def choose_codec(requested: str | None, video: VideoInfo, container: Any) -> av.Codec:
    if requested:
        codec = _encoder(requested)
        if not _accepts(container, codec):
            raise BadUsage(f"the {container.format.name} container cannot hold {codec.name} video")
        return codec
    codec = _encoder("libx265" if video.high_bit_depth else "libx264")
    if _accepts(container, codec):
        return codec
    return _encoder(container.default_video_codec)


def _fits(pix_fmt: str, width: int, height: int) -> bool:
    """Chroma-subsampled formats need even dimensions along the subsampled axes."""
    fmt = av.VideoFormat(pix_fmt)
    return (width % 2 == 0 or fmt.chroma_width(2) == 2) and (height % 2 == 0 or fmt.chroma_height(2) == 2)


def choose_pix_fmt(codec: av.Codec, video: VideoInfo, requested: str | None) -> str:
    supported = [f.name for f in codec.video_formats or ()]
    if requested:
        if supported and requested not in supported:
            raise BadUsage(f"{codec.name} cannot encode {requested}; it takes {', '.join(supported)}")
        if not _fits(requested, video.width, video.height):
            raise BadUsage(f"{requested} needs even dimensions; the video is {video.width}x{video.height}")
        return requested
    source = _JPEG_ALIASES.get(video.pix_fmt or "", video.pix_fmt)
    preferred = (*_HIGH_DEPTH_FORMATS, *_EIGHT_BIT_FORMATS) if video.high_bit_depth else _EIGHT_BIT_FORMATS
    for candidate in (source, *preferred, "yuv444p10le", "gbrp"):
        if candidate and (not supported or candidate in supported) and _fits(candidate, video.width, video.height):
            return candidate
    raise BadUsage(
        f"{codec.name} has no pixel format for a {video.width}x{video.height} video; "
        "pick one with --pix-fmt or another --codec"
    )


def _bits(pix_fmt: str) -> int:
    return max(c.bits for c in av.VideoFormat(pix_fmt).components)


# Encoders want a named channel layout; decoders of e.g. G.711 report only a channel count.
_LAYOUTS = {1: "mono", 2: "stereo"}


class _AudioTranscode:
    """Re-encodes one audio stream whose codec the output container cannot hold."""

    def __init__(self, container: Any, template: Any, codec_name: str) -> None:
        self.decoder = template.codec_context
        encoder = av.Codec(codec_name, "w")
        rate = self.decoder.sample_rate
        if encoder.audio_rates and rate not in encoder.audio_rates:  # e.g. AC-3 has no 8 kHz
            rate = min(encoder.audio_rates, key=lambda r: (r < rate, abs(r - rate)))
        self.stream = container.add_stream(codec_name, rate=rate)
        self.stream.layout = _LAYOUTS.get(self.decoder.layout.nb_channels, self.decoder.layout.name)
        self.stream.format = encoder.audio_formats[0].name if encoder.audio_formats else self.decoder.format.name
        self.resampler = av.AudioResampler(format=self.stream.format, layout=self.stream.layout, rate=self.stream.rate)

    def packets(self, packet: Any | None) -> list[Any]:
        """Encoded packets for one input packet; None flushes decoder, resampler and encoder."""
        frames = [f for decoded in self.decoder.decode(packet) for f in self.resampler.resample(decoded)]
        if packet is None:
            frames += self.resampler.resample(None)
        out = [p for frame in frames for p in self.stream.encode(frame)]
        return out + (list(self.stream.encode(None)) if packet is None else [])


class VideoSink:
    """An output file or URL; call write() per frame from one thread, then close() or discard()."""

    def __init__(
        self,
        target: str,
        info: MediaInfo,
        options: EncodeOptions,
        passthrough: PacketBuffer,
        overwrite: bool = False,
        container_format: str | None = None,
        container_options: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.info = info
        self.passthrough = passthrough
        self.frames_written = 0
        self._last_time: float | None = None
        # Live output forces a keyframe each second of its time, so a viewer joining waits at
        # most that long, however many frames were dropped (a GOP counts frames, not time).
        self._next_keyframe: float | None = 0.0 if options.low_latency else None
        self._is_file = "://" not in target
        self._path = self._prepare_file(Path(target), overwrite) if self._is_file else None
        open_as = str(self._path) if self._path else target
        try:
            self._out = av.open(open_as, mode="w", format=container_format, options=container_options or {})
        except ValueError as exc:  # PyAV: no format for the file name
            raise BadUsage(f"cannot tell the output format of {target}: {exc}") from None
        except av.FFmpegError as exc:
            raise BadInput(f"cannot open output {target}: {exc}") from None
        try:
            self._video = self._add_video_stream(options)
            self._copies = self._add_passthrough_streams(info.passthrough)
            self._out.metadata.update({k: v for k, v in info.metadata.items() if k not in _DROPPED_METADATA})
            self._out.container_options.update(_CONTAINER_OPTIONS.get(self._out.format.name.split(",")[0], {}))
        except BaseException:
            self.discard()
            raise

    def _prepare_file(self, target: Path, overwrite: bool) -> Path:
        if target.is_dir():
            raise BadInput(f"output {target} is a folder")
        if target.exists() and not overwrite:
            raise BadInput(f"output {target} exists (use --overwrite to replace it)")
        parent = target.parent
        if parent.exists() and not parent.is_dir():
            raise BadInput(f"output folder {parent} is a file, not a folder")
        if not parent.is_dir():
            raise BadInput(f"output folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise BadInput(f"output folder {parent} is not writable")
        return partial_path(target)

    def _add_video_stream(self, options: EncodeOptions) -> Any:
        video = self.info.video
        codec = choose_codec(options.codec, video, self._out)
        pix_fmt = choose_pix_fmt(codec, video, options.pix_fmt)
        if video.high_bit_depth and _bits(pix_fmt) <= 8:
            log.warning(
                "%d-bit input written as 8-bit %s (%s has no high bit depth format)",
                video.bit_depth,
                pix_fmt,
                codec.name,
            )
        stream = self._out.add_stream(codec.name, rate=video.rate_or_default)
        stream.width, stream.height, stream.pix_fmt = video.width, video.height, pix_fmt
        stream.time_base = video.time_base
        ctx = stream.codec_context
        ctx.time_base = video.time_base
        full_range = video.color_range == _FULL_RANGE or (video.pix_fmt or "") in _JPEG_ALIASES
        ctx.color_range = _FULL_RANGE if full_range else video.color_range
        ctx.colorspace, ctx.color_primaries, ctx.color_trc = video.colorspace, video.color_primaries, video.color_trc
        ctx.options = self._codec_options(codec, options)
        if self._out.format.name == "avi":
            # AVI stores decode times only: frames reordered by B-frames would lose their
            # presentation times (the last ones come out with none at all).
            ctx.max_b_frames = 0
        if video.rotation:
            stream.set_display_rotation(video.rotation)
        try:  # open now, so bad encoder settings fail before any frame is processed
            ctx.open()
        except av.FFmpegError as exc:
            raise BadUsage(f"{codec.name} rejected its settings {ctx.options}: {exc.strerror or exc}") from None
        self._rgb_format = "rgb48le" if video.high_bit_depth else "rgb24"
        self._reformat_args = {
            "format": pix_fmt,
            "dst_colorspace": _SWS_COLORSPACES.get(video.colorspace),
            "dst_color_range": ctx.color_range or None,
            "interpolation": Interpolation.AREA | Interpolation.ACCURATE_RND,
        }
        self.codec_name, self.pix_fmt = codec.name, pix_fmt
        return stream

    def _codec_options(self, codec: av.Codec, options: EncodeOptions) -> dict[str, str]:
        names = {o.name for o in av.CodecContext.create(codec.name, "w").supported_options.private}
        chosen: dict[str, str] = {}
        crf = DEFAULT_CRF if options.crf is None else options.crf
        if "crf" in names:
            chosen["crf"] = str(crf)
            if codec.name.startswith("libvpx"):
                chosen["b"] = "0"  # constant quality, not constrained by the default bit rate
        elif "cq" in names:
            chosen["cq"] = str(crf)
        elif options.crf is not None:
            log.warning("--crf has no effect on %s", codec.name)
        if options.preset:
            if "preset" not in names:
                raise BadUsage(f"{codec.name} has no presets")
            if codec.name in ("libx264", "libx265") and options.preset not in _X26X_PRESETS:
                raise BadUsage(
                    f"unknown {codec.name} preset {options.preset!r}; choose from {', '.join(_X26X_PRESETS)}"
                )
            chosen["preset"] = options.preset
        if options.low_latency and codec.name in ("libx264", "libx265"):
            chosen["tune"] = "zerolatency"  # no lookahead or B-frames: each frame leaves as it comes
            chosen["forced-idr"] = "1"  # a forced keyframe is one a decoder can start from
        if codec.name == "libx265":
            chosen["x265-params"] = "log-level=error"
        if codec.name.startswith("libvpx"):
            # libvpx's defaults (cpu-used 0, one row thread) are far slower than real time.
            chosen.setdefault("cpu-used", "4")
            chosen.setdefault("row-mt", "1")
        return chosen

    def _add_passthrough_streams(
        self, streams: tuple[PassthroughStream, ...]
    ) -> dict[int, tuple[Any, _AudioTranscode | None]]:
        copies: dict[int, tuple[Any, _AudioTranscode | None]] = {}
        supported = supported_codecs(self._out)
        for source in streams:
            if not supported or source.codec in supported:
                copies[source.index] = (self._out.add_stream_from_template(source.template), None)
            elif source.kind == "audio" and self._out.default_audio_codec != "none":
                codec = "aac" if "aac" in supported else self._out.default_audio_codec
                log.warning(
                    "%s cannot hold %s audio: re-encoding stream #%d as %s",
                    self._out.format.name,
                    source.codec,
                    source.index,
                    codec,
                )
                transcode = _AudioTranscode(self._out, source.template, codec)
                copies[source.index] = (transcode.stream, transcode)
            else:
                log.warning(
                    "%s cannot hold %s %s: stream #%d is left out (use .mkv to keep it)",
                    self._out.format.name,
                    source.codec,
                    source.kind,
                    source.index,
                )
        for source in streams:
            if source.index in copies:
                out_stream = copies[source.index][0]
                out_stream.metadata.update(
                    {k: v for k, v in source.template.metadata.items() if k in ("language", "title")}
                )
        return copies

    def _mux_passthrough(self, until: float | None) -> None:
        for packet in self.passthrough.take_until(until):
            # stream_index lives in the packet itself; packet.stream may belong to an input
            # container that a live source has closed since (after a reconnect).
            target = self._copies.get(packet.stream_index)
            if target is None:
                continue
            stream, transcode = target
            if transcode is not None:
                for out_packet in transcode.packets(packet):
                    self._out.mux(out_packet)
            else:
                packet.stream = stream
                self._out.mux(packet)

    def write(self, frame: Frame) -> None:
        self._mux_passthrough(frame.time)
        pixels = np.ascontiguousarray(frame.pixels)
        av_frame = av.VideoFrame.from_ndarray(pixels, format=self._rgb_format).reformat(**self._reformat_args)
        av_frame.pts = frame.pts
        av_frame.time_base = frame.time_base
        if self._next_keyframe is not None and frame.time >= self._next_keyframe:
            av_frame.pict_type = av.video.frame.PictureType.I
            self._next_keyframe = frame.time + 1.0
        for packet in self._video.encode(av_frame):
            self._out.mux(packet)
        self._last_time = frame.time
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        """Finalize a playable file: flush the encoder, mux the remaining packets, rename.

        An incomplete (interrupted) run copies audio only up to the last written frame.
        """
        for packet in self._video.encode(None):
            self._out.mux(packet)
        self._mux_passthrough(None if complete else (self._last_time or 0.0))
        for _, transcode in self._copies.values():
            if transcode is not None:
                for packet in transcode.packets(None):
                    self._out.mux(packet)
        self._out.close()
        if self._path is not None:
            os.replace(self._path, self.target)

    def discard(self) -> None:
        """Leave nothing behind: close without caring for errors, remove the partial file."""
        try:
            self._out.close()
        except Exception:  # the run has failed already; keep its error
            pass
        if self._path is not None:
            self._path.unlink(missing_ok=True)
