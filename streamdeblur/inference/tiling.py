"""Tiled inference for frames too large to run whole: overlapping tiles, blended overlaps.

Each tile's output is weighted by a window that ramps linearly across the overlap on every
side that borders another tile, so neighbouring tiles cross-fade and no seam shows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from streamdeblur.errors import BadUsage


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile`, overlapping by at least `overlap`."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _ramp(length: int, overlap: int, fade_in: bool, fade_out: bool, device: torch.device) -> torch.Tensor:
    weight = torch.ones(length, device=device)
    if overlap > 0:
        ramp = torch.arange(1, overlap + 1, device=device, dtype=torch.float32) / (overlap + 1)
        if fade_in:
            weight[:overlap] = ramp
        if fade_out:
            weight[-overlap:] = ramp.flip(0)
    return weight


def validate_tiling(tile: int, overlap: int) -> None:
    if tile < 0 or overlap < 0:
        raise BadUsage("--tile and --tile-overlap must not be negative")
    if tile and overlap * 2 >= tile:
        raise BadUsage(f"--tile-overlap {overlap} must be less than half of --tile {tile}")


def runs_whole(height: int, width: int, tile: int) -> bool:
    """Whether a frame of this size goes to the network in one piece under `--tile`."""
    return tile <= 0 or (height <= tile and width <= tile)


def tiled(
    infer: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    max_batch: int = 4,
) -> torch.Tensor:
    """infer(x) computed tile by tile; up to `max_batch` tiles per call. The output may have
    fewer channels than the input (a window of frames in, one frame out)."""
    n, c, height, width = x.shape
    if runs_whole(height, width, tile):
        return infer(x)
    tile_h, tile_w = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    out: torch.Tensor | None = None
    weight_sum = torch.zeros((1, 1, height, width), device=x.device, dtype=x.dtype)
    positions = [(y, x0) for y in ys for x0 in xs]
    for first in range(0, len(positions), max(1, max_batch // max(1, n))):
        group = positions[first : first + max(1, max_batch // max(1, n))]
        tiles = torch.cat([x[:, :, y : y + tile_h, x0 : x0 + tile_w] for y, x0 in group])
        results = infer(tiles).split(n)
        for (y, x0), result in zip(group, results):
            wy = _ramp(tile_h, overlap, y > 0, y + tile_h < height, x.device)
            wx = _ramp(tile_w, overlap, x0 > 0, x0 + tile_w < width, x.device)
            window = (wy[:, None] * wx[None, :]).to(x.dtype)
            if out is None:
                out = torch.zeros((n, result.shape[1], height, width), device=x.device, dtype=result.dtype)
            out[:, :, y : y + tile_h, x0 : x0 + tile_w] += result * window
            weight_sum[:, :, y : y + tile_h, x0 : x0 + tile_w] += window
    assert out is not None  # at least one tile
    return out / weight_sum
