"""Whether a folder of images is a clip (consecutive frames) or a set of unrelated pictures.

A windowed model takes detail from a frame's neighbours; the pictures of a holiday folder
have none, and a window of one picture repeated reads as a still camera. So `run` gives such
a folder the single-frame model, each picture on its own. The test: most consecutive pairs of
a sample are scene cuts (the window's own cut detector), as photographs of different things
are and frames of one clip are not.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from streamdeblur.window.assembly import colour_histogram, is_cut

SAMPLE_PAIRS = 8  # consecutive pairs looked at, spread over the folder


def _histogram(path: Path) -> np.ndarray | None:
    # A reduced decode: JPEG scales down while it decodes, so a 12 MP photo costs little.
    image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
    return None if image is None else colour_histogram(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))


def unrelated_pictures(paths: list[Path]) -> bool:
    """True when most of up to SAMPLE_PAIRS consecutive pairs, spread over `paths`, are cuts."""
    if len(paths) < 2:
        return False
    starts = sorted({int(i) for i in np.linspace(0, len(paths) - 2, min(SAMPLE_PAIRS, len(paths) - 1))})
    cuts = 0
    for i in starts:
        first, second = _histogram(paths[i]), _histogram(paths[i + 1])
        cuts += first is None or second is None or is_cut(first, second)
    return cuts * 2 > len(starts)
