"""INT8 calibration input: synthetic blurred frames, like those the network deblurs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from streamdeblur.synthetic.blur import render_pair


def calibration_batches(batch: int, height: int, width: int, count: int = 16, seed: int = 0) -> Iterator[torch.Tensor]:
    """`count` batches of (batch, 3, height, width) float frames in [0, 1] (procedural scenes)."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        frames = [render_pair(rng, height, width).blurry for _ in range(batch)]
        yield torch.from_numpy(np.stack(frames).transpose(0, 3, 1, 2).copy())
