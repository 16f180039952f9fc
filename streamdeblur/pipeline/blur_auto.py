"""`--blur auto`: look at the first frames of the input, then pick the model for its blur.

The frames judged are not lost: the source is wrapped so that the pipeline reads them first,
then the rest, with their timestamps as they came. Judging needs no network model, only the
blur-kind classifier (streamdeblur/blur_kind/), so it takes well under a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from itertools import chain, islice
from typing import Any

from streamdeblur.blur_kind.decide import BlurVerdict, decide_blur
from streamdeblur.io import Source
from streamdeblur.io.frame import Frame

log = logging.getLogger(__name__)

# The first frames of the input are read ahead and every JUDGE_STEP-th judged: 8 frames from
# the first 16 (two thirds of a second at 25 fps; a live feed starts that much later).
LOOK_AHEAD = 16
JUDGE_STEP = 2


class PeekedSource:
    """A source whose first frames were read ahead; it yields them again, then the rest."""

    def __init__(self, source: Source, read: list[Frame], rest: Iterator[Frame]) -> None:
        self._source, self._read, self._rest = source, read, rest

    def frames(self) -> Iterator[Frame]:
        read, self._read = self._read, []  # held only until the pipeline has them
        return chain(read, self._rest)

    def __getattr__(self, name: str) -> Any:  # info, passthrough, stats, close: the source's own
        return getattr(self._source, name)


def judge_blur(source: Source, stop: threading.Event) -> tuple[PeekedSource, BlurVerdict]:
    """Read the input's first frames, judge their blur, and hand back a source that still has them."""
    frames = iter(source.frames())
    read: list[Frame] = []
    for frame in islice(frames, LOOK_AHEAD):
        read.append(frame)
        if stop.is_set():
            break
    verdict = decide_blur([f.pixels for f in read[::JUDGE_STEP]])
    other = "defocus" if verdict.blur == "motion" else "motion"
    log.info(
        "--blur auto: %s blur, so the %s model (%s; --blur %s to choose the other)",
        verdict.found,
        verdict.blur,
        verdict.why,
        other,
    )
    return PeekedSource(source, read, frames), verdict
