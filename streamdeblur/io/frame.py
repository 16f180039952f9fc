"""The records every source shares: the frame that travels through the pipeline, and what reading ran into."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any


@dataclass(slots=True)
class Frame:
    """Pixels plus where the frame sits in time; nothing else rides along.

    `pixels` is HxWx3 RGB, uint8 or uint16 (high bit depth), as a numpy array between stages
    (a device tensor only inside the processor). `pts` counts `time_base` units, exactly as
    the source stamped it, so the writer can reproduce the timeline.
    """

    pixels: Any
    pts: int
    time_base: Fraction
    index: int

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass
class ReadStats:
    """What reading ran into: decode errors and, for truncated input, frames lost."""

    decoded: int = 0
    decode_errors: int = 0
    truncated: bool = False
    frames_lost: int | None = None
    pts_repaired: int = 0
