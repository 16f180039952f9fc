"""Calibration and parity inputs: synthetic blur from the training photos and seeds only, so
nothing held out for judging the model shapes its int8 ranges. The blur is the one the model
was trained on (its card's recipe): a defocus model's features on lens blur span other ranges
than on camera shake."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamdeblur.models.checkpoint import read_card
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.synthetic.blur import render_pair
from streamdeblur.synthetic.defocus import render_defocus_pair
from streamdeblur.synthetic.scenes import TRAIN_PHOTOS
from streamdeblur.training.datasets import render_window

# Seed roots: the calibration inputs, accuracy control's and the parity check's differ, so
# parity is measured on inputs neither the ranges nor the choice of fp32 layers were fitted to.
CALIBRATION_ROOT = 4_480_000
PARITY_ROOT = 4_481_000
ACCURACY_ROOT = 4_482_000  # the inputs accuracy control judges reverting a layer on (build.py)


def trained_blur(weights: Path) -> str:
    """The blur the weights were trained on, from their card: "defocus" or "motion" (also where
    the card does not say)."""
    recipe = read_card(weights).get("training", {}).get("recipe") or {}
    return "defocus" if (recipe.get("data") or {}).get("blur_type") == "defocus" else "motion"


def network_inputs(
    cfg: DeepDeblurConfig, count: int, height: int, width: int, root: int, seed: int = 0, blur: str = "motion"
) -> list[np.ndarray]:
    """`count` inputs (1, in_channels, height, width) float32 in [0, 1]: frames with `blur`
    (motion or defocus), or for a windowed model windows assembled as the pipeline assembles them."""
    inputs = []
    for index in range(count):
        rng = np.random.default_rng([root, seed, index])
        if cfg.frames > 1:
            image, _ = render_window(rng, height, width, cfg, photos=TRAIN_PHOTOS)
        elif blur == "defocus":
            image = render_defocus_pair(rng, height, width, photos=TRAIN_PHOTOS).blurry
        else:
            image = render_pair(rng, height, width, photos=TRAIN_PHOTOS).blurry
        inputs.append(np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32))
    return inputs
