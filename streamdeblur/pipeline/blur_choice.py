"""`--blur auto`: which blur the input holds, judged on a sample of its frames before the run."""

from __future__ import annotations

import logging
from dataclasses import replace
from fractions import Fraction
from typing import Any

import numpy as np

from streamdeblur.errors import BadUsage
from streamdeblur.inference.spec import BackendSpec
from streamdeblur.io.opening import SourceOptions, open_source

log = logging.getLogger(__name__)

SAMPLE_FRAMES = 8  # frames judged
SAMPLE_SPAN = 64  # read from the start of the input, every SAMPLE_SPAN // SAMPLE_FRAMES-th kept


def sample_frames(input_spec: str, fps: Fraction) -> list[np.ndarray]:
    """Up to SAMPLE_FRAMES frames spread over the input's first SAMPLE_SPAN, read on their own."""
    source = open_source(input_spec, SourceOptions(fps=fps))
    every = SAMPLE_SPAN // SAMPLE_FRAMES
    kept: list[np.ndarray] = []
    try:
        for index, frame in enumerate(source.frames()):
            if index >= SAMPLE_SPAN:
                break
            if index % every == 0:
                kept.append(frame.pixels)
    finally:
        source.close()
    return kept


def resolve_blur(spec: BackendSpec, input_spec: str, fps: Fraction, live: bool) -> tuple[BackendSpec, dict[str, Any]]:
    """The spec with `auto` replaced by the blur found, and what the report records of it."""
    if spec.blur != "auto":
        return spec, {"asked": spec.blur, "used": spec.blur}
    if live:
        raise BadUsage("--blur auto looks at a file's or folder's frames first; for a live feed give motion or defocus")
    from streamdeblur.blur_kind import decide_blur

    verdict = decide_blur(sample_frames(input_spec, fps))
    log.info("blur: %s, so the %s model (%s)", verdict.found, verdict.blur, verdict.why)
    return replace(spec, blur=verdict.blur), {"asked": "auto", "used": verdict.blur, **verdict.to_dict()}
