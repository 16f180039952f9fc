"""Which blur a clip holds, judged on a few of its frames.

Blur only shows where there is texture, so each frame gives its most textured patches, and the
classifier scores each patch from its spectrum (spectrum.py). A lens's blur is the same all over
the frame and in every frame, so a clip is called defocused only where most of its patches say so
(DEFOCUS_SHARE of them); a few soft patches (a smooth wall, a compressed corner, a patch that a
moving camera blurred evenly) do not make a clip defocused. Otherwise the clip is sharp or motion
by the patches' mean score, and both go to the motion model (which hands sharp frames through);
so does footage with nothing textured to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from streamdeblur.blur_kind.net import CLASSES, PATCH, BlurKindNet, load_classifier
from streamdeblur.blur_kind.spectrum import spectral_features

PATCHES_PER_FRAME = 6
# The share of patches that must score defocus (over one half) for a clip to be defocused:
# chosen on tuning clips of evaluate.py's kinds with seeds apart from its own (docs/defocus.md).
DEFOCUS_SHARE = 0.65
MIN_TEXTURE = 0.01  # mean |gradient| of a patch (grey in [0, 1]) below which it shows no blur
WORKING_SIDE = 400  # frames are shrunk by a whole factor toward this shorter side first


@dataclass(frozen=True)
class BlurVerdict:
    found: str  # sharp, motion, defocus, or unknown (nothing textured)
    blur: str  # the model chosen: motion or defocus
    scores: dict[str, float]  # mean class probabilities, and the share of patches scoring defocus
    patches: int  # how many patches were judged
    frames: int

    @property
    def why(self) -> str:
        if self.patches == 0:
            return f"no textured patch in {self.frames} frame(s) to judge: motion, the default"
        mean = ", ".join(f"{k} {v:.0%}" for k, v in self.scores.items() if k in CLASSES)
        defocused = self.scores.get("patches_defocus", 0.0)
        return (
            f"{defocused:.0%} of {self.patches} patches in {self.frames} frame(s) look out of focus "
            f"({DEFOCUS_SHARE:.0%} needed); mean scores {mean}"
        )


def grey_patches(frame: np.ndarray, count: int = PATCHES_PER_FRAME) -> list[np.ndarray]:
    """The `count` most textured PATCH x PATCH grey patches of an RGB frame (8 or 16 bit)."""
    scale = 65535.0 if frame.dtype == np.uint16 else 255.0
    grey = cv2.cvtColor(frame.astype(np.float32) / scale, cv2.COLOR_RGB2GRAY)
    shrink = max(1, min(grey.shape) // WORKING_SIDE)
    if shrink > 1:
        grey = cv2.resize(grey, (grey.shape[1] // shrink, grey.shape[0] // shrink), interpolation=cv2.INTER_AREA)
    height, width = grey.shape
    if height < PATCH or width < PATCH:
        grey = cv2.copyMakeBorder(grey, 0, max(0, PATCH - height), 0, max(0, PATCH - width), cv2.BORDER_REFLECT_101)
        height, width = grey.shape
    gradient = np.abs(cv2.Sobel(grey, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    step = PATCH // 2
    found = []
    for top in range(0, height - PATCH + 1, step):
        for left in range(0, width - PATCH + 1, step):
            texture = float(gradient[top : top + PATCH, left : left + PATCH].mean()) / 8
            if texture >= MIN_TEXTURE:
                found.append((texture, top, left))
    found.sort(reverse=True)
    return [grey[t : t + PATCH, s : s + PATCH] for _, t, s in found[:count]]


@torch.no_grad()
def class_scores(patches: list[np.ndarray], model: BlurKindNet) -> np.ndarray:
    """(len(patches), 3) probabilities."""
    features = torch.from_numpy(spectral_features(np.stack(patches)))
    return torch.softmax(model(features), dim=1).numpy()


def decide_blur(frames: list[np.ndarray], model: BlurKindNet | None = None) -> BlurVerdict:
    """Which blur `frames` (RGB, a clip's sample) hold, and the model for it."""
    patches = [p for frame in frames for p in grey_patches(frame)]
    if not patches:
        return BlurVerdict("unknown", "motion", {}, 0, len(frames))
    scores = class_scores(patches, model or load_classifier())
    mean = dict(zip(CLASSES, scores.mean(axis=0).tolist()))
    defocused = float(np.mean(scores[:, CLASSES.index("defocus")] > 0.5))
    found = "defocus" if defocused >= DEFOCUS_SHARE else max(("sharp", "motion"), key=mean.__getitem__)
    shares = {name: round(p, 3) for name, p in mean.items()} | {"patches_defocus": round(defocused, 3)}
    return BlurVerdict(found, "defocus" if found == "defocus" else "motion", shares, len(patches), len(frames))
