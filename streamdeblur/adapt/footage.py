"""The footage `adapt` learns from: video files, folders of videos, folders of images.

Each piece of footage is decoded through streamdeblur.io, like `run`'s input, so whatever
`run` reads `adapt` reads. Its hash goes into the model card, to say exactly what the
weights were adapted on.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamdeblur.batch.discovery import VIDEO_SUFFIXES
from streamdeblur.errors import BadInput
from streamdeblur.files import file_sha256
from streamdeblur.io import open_source
from streamdeblur.io.image_folder import IMAGE_SUFFIXES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Footage:
    """One video file, or one folder of images taken as a single clip (in name order)."""

    path: Path
    kind: str  # "video" or "images"

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class DecodedFrame:
    index: int  # decode order within its footage, counted here (both passes count the same)
    time_s: float
    pixels: np.ndarray  # HxWx3 RGB, uint8 or uint16


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def find_footage(inputs: list[Path]) -> list[Footage]:
    """Every piece of footage named by `inputs`: a file is a video; a folder contributes its
    videos (any depth) and, if it holds images, itself as one clip of stills."""
    found: list[Footage] = []
    for item in inputs:
        if item.is_file():
            found.append(Footage(item, "video"))
        elif item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and _visible(p, item))
            found += [Footage(p, "video") for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in item.iterdir() if p.is_file()):
                found.append(Footage(item, "images"))
        else:
            raise BadInput(f"input not found: {item}")
    unique = list(dict.fromkeys(found))  # the same file named twice is learned from once
    if not unique:
        raise BadInput(f"no video or images under {', '.join(map(str, inputs))}")
    return unique


def footage_sha256(footage: Footage) -> str:
    """A video's file hash; for a folder of images, the hash of its (name, file hash) list."""
    if footage.kind == "video":
        return file_sha256(footage.path)
    digest = hashlib.sha256()
    for path in sorted(p for p in footage.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        digest.update(f"{path.name}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def decode(footage: Footage) -> Iterator[DecodedFrame]:
    """Its frames in order. Opening errors (BadInput) reach the caller before the first frame."""
    source = open_source(str(footage.path))
    try:
        for index, frame in enumerate(source.frames()):
            yield DecodedFrame(index, frame.time, frame.pixels)
    finally:
        source.close()
