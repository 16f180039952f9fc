"""Folders of images in (sorted by name, numbers in natural order) and out (PNG)."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.errors import BadInput
from streamdeblur.io.frame import Frame, ReadStats
from streamdeblur.io.media_info import MediaInfo, VideoInfo
from streamdeblur.io.passthrough import PacketBuffer

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

# Images carry sRGB; encode them with BT.709 matrix, primaries and transfer, limited range.
_BT709 = 1
_LIMITED_RANGE = 1


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_image(path: Path) -> np.ndarray:
    """HxWx3 RGB, uint8 or uint16 as stored."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadInput(f"cannot read image {path}")
    if image.dtype not in (np.uint8, np.uint16):
        raise BadInput(f"{path}: {image.dtype} images are not supported (8 or 16 bit only)")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)


def read_image_float(path: Path) -> np.ndarray:
    """HxWx3 RGB as float32 in [0, 1], from 8- or 16-bit files (for training and evaluation)."""
    image = read_image(path)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / np.float32(scale)


class ImageFolderSource:
    """Every image in a folder, one frame each, stamped at a fixed rate."""

    def __init__(self, folder: Path, fps: Fraction = Fraction(25)) -> None:
        self.folder = folder
        self.paths = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
        if not self.paths:
            raise BadInput(f"{folder} is a folder with no images in it")
        first = read_image(self.paths[0])
        self._first = first
        self.passthrough = PacketBuffer()
        self.stats = ReadStats()
        # Unrelated pictures written to a folder may differ in size (a holiday folder's portrait
        # and landscape shots); a clip's frames, and anything encoded as video, may not.
        self.mixed_sizes = False
        height, width = first.shape[:2]
        video = VideoInfo(
            width=width,
            height=height,
            time_base=1 / fps,
            average_rate=fps,
            bit_depth=16 if first.dtype == np.uint16 else 8,
            codec="image",
            color_range=_LIMITED_RANGE,
            colorspace=_BT709,
            color_primaries=_BT709,
            color_trc=_BT709,
            frame_count=len(self.paths),
            duration_s=float(len(self.paths) / fps),
        )
        stems = tuple(p.stem for p in self.paths)
        unique = len(set(stems)) == len(stems)  # a.jpg beside a.png: number the frames instead
        self.info = MediaInfo(
            source=str(folder), format_name="image folder", video=video, frame_names=stems if unique else ()
        )

    def frames(self) -> Iterator[Frame]:
        video = self.info.video
        for index, path in enumerate(self.paths):
            pixels = self._first if index == 0 else read_image(path)
            if pixels.shape[:2] != (video.height, video.width) and not self.mixed_sizes:
                raise BadInput(
                    f"{path.name} is {pixels.shape[1]}x{pixels.shape[0]}, "
                    f"the folder's first image is {video.width}x{video.height} "
                    "(a clip's frames, or pictures written to a video, must all be one size)"
                )
            if pixels.dtype != self._first.dtype:
                raise BadInput(f"{path.name}: bit depth differs from the folder's first image")
            self.stats.decoded = index + 1
            yield Frame(pixels=pixels, pts=index, time_base=video.time_base, index=index)

    def close(self) -> None:
        pass


class ImageFolderSink:
    """PNG files (8 or 16 bit) in a temporary folder renamed at the end; named as the source
    images were (`names`, by frame index) when it was an image folder, else by frame number."""

    def __init__(self, folder: Path, overwrite: bool, names: tuple[str, ...] = ()) -> None:
        self.target = folder
        self.names = names
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise BadInput(f"output folder {folder} is not empty (use --overwrite to replace it)")
        self.partial = folder.parent / f".{folder.name}.partial"
        shutil.rmtree(self.partial, ignore_errors=True)
        try:
            self.partial.mkdir(parents=False)
        except OSError as exc:
            raise BadInput(f"cannot write to {folder.parent}: {exc.strerror}") from None
        self.frames_written = 0

    def write(self, frame: Frame) -> None:
        stem = self.names[frame.index] if frame.index < len(self.names) else f"{frame.index:06d}"
        path = self.partial / f"{stem}.png"
        if not cv2.imwrite(str(path), cv2.cvtColor(frame.pixels, cv2.COLOR_RGB2BGR)):
            raise OSError(f"cannot write {path}")
        self.frames_written += 1

    def close(self, complete: bool = True) -> None:
        if self.target.exists():
            shutil.rmtree(self.target)
        os.replace(self.partial, self.target)

    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)
