"""Optimization-profile shapes for engines: presets (720p, 1080p, tile sizes) or explicit."""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamdeblur.errors import BadUsage

Shape = tuple[int, int, int, int]

PRESETS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440), "4k": (3840, 2160)}
MIN_SIDE = 16


@dataclass(frozen=True)
class ProfileShapes:
    """min/opt/max (N, C, H, W) of the network input: C is 3, or 3K for a window of K frames."""

    min: Shape
    opt: Shape
    max: Shape

    def contains(self, shape: Shape) -> bool:
        return all(lo <= s <= hi for lo, s, hi in zip(self.min, shape, self.max))

    def to_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


def _dims(text: str, channels: int) -> Shape:
    parts = [int(p) for p in re.split(r"[x,]", text.strip().lower()) if p]
    if len(parts) == 3:
        parts.insert(1, channels)
    if len(parts) != 4 or parts[1] != channels or min(parts) < 1:
        raise BadUsage(f"shape {text!r}: expected NxHxW (or Nx{channels}xHxW)")
    return parts[0], parts[1], parts[2], parts[3]


def profile_for_frames(width: int, height: int, batch: int = 1, channels: int = 3) -> ProfileShapes:
    """Frames of one size, either orientation (rotated phone video swaps the sides)."""
    side = max(width, height)
    return ProfileShapes(
        (1, channels, MIN_SIDE, MIN_SIDE), (batch, channels, height, width), (batch, channels, side, side)
    )


def parse_shapes(spec: str, batch: int = 1, channels: int = 3) -> ProfileShapes:
    """`720p`, `1080p`, `tile:512`, `WxH`, or explicit `min:opt:max` as NxHxW each; `channels`
    is the network's input channels (3, or 3K for a window of K frames)."""
    spec = spec.strip().lower()
    if spec in PRESETS:
        return profile_for_frames(*PRESETS[spec], batch=batch, channels=channels)
    if spec.startswith("tile:"):
        size = int(spec.split(":", 1)[1])
        c = channels
        return ProfileShapes((1, c, MIN_SIDE, MIN_SIDE), (batch, c, size, size), (batch, c, size, size))
    if re.fullmatch(r"\d+x\d+", spec):
        width, height = (int(v) for v in spec.split("x"))
        return profile_for_frames(width, height, batch, channels)
    parts = spec.split(":")
    if len(parts) != 3:
        raise BadUsage(
            f"--shapes {spec!r}: use a preset ({', '.join(PRESETS)}), tile:SIZE, WxH, or MIN:OPT:MAX as NxHxW"
        )
    low, opt, high = (_dims(p, channels) for p in parts)
    if not all(a <= b <= c for a, b, c in zip(low, opt, high)):
        raise BadUsage(f"--shapes {spec!r}: need min <= opt <= max in every dimension")
    return ProfileShapes(low, opt, high)
