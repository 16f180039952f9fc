"""Pictures that show what `adapt` did: the frames it picked, and a before/after."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

_LABEL_HEIGHT = 22
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """RGB for display: uint16 scaled down, float in [0, 1] scaled up."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return (pixels >> 8).astype(np.uint8)
    return np.round(np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)


def labelled(image: np.ndarray, label: str) -> np.ndarray:
    """The image with a black strip above it holding `label` (shrunk to fit the width)."""
    width = image.shape[1]
    strip = np.zeros((_LABEL_HEIGHT, width, 3), np.uint8)
    scale = 0.45
    text_width = cv2.getTextSize(label, _FONT, scale, 1)[0][0]
    if text_width > width - 6:
        scale *= (width - 6) / text_width
    cv2.putText(strip, label, (3, _LABEL_HEIGHT - 7), _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([strip, to_uint8(image)])


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(to_uint8(rgb), cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path


def contact_sheet(
    images: list[np.ndarray], labels: list[str], path: Path, tile_width: int = 240, columns: int = 6
) -> Path:
    """Thumbnails in rows of `columns`, each under its label."""
    tiles = []
    for image, label in zip(images, labels):
        height = max(1, round(image.shape[0] * tile_width / image.shape[1]))
        small = cv2.resize(to_uint8(image), (tile_width, height), interpolation=cv2.INTER_AREA)
        tiles.append(labelled(small, label))
    tile_height = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, tile_height - t.shape[0]), (0, 0), (0, 0))) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return write_png(path, np.vstack(rows))


def most_textured_box(grey: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of the size x size window (clipped to the frame) with the
    most gradient energy: where deblurring shows."""
    height, width = grey.shape
    box_h, box_w = min(size, height), min(size, width)
    gy, gx = np.gradient(grey.astype(np.float32))
    energy = cv2.integral(np.asarray(gx * gx + gy * gy, np.float64))
    best, where = -1.0, (0, 0)
    step = max(8, size // 8)
    for top in range(0, height - box_h + 1, step):
        for left in range(0, width - box_w + 1, step):
            total = (
                energy[top + box_h, left + box_w]
                - energy[top, left + box_w]
                - energy[top + box_h, left]
                + energy[top, left]
            )
            if total > best:
                best, where = total, (top, left)
    return where[0], where[1], box_h, box_w
