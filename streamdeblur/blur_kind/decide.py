"""Which blur a clip holds, judged on a few of its frames.

Blur only shows where there is texture, so each frame gives its most textured patches; the
classifier's probabilities are averaged over all of them. Sharp footage goes to the motion
model (which hands sharp frames through); so does footage with nothing textured to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from streamdeblur.blur_kind.net import CLASSES, PATCH, BlurKindNet, load_classifier

PATCHES_PER_FRAME = 6
MIN_TEXTURE = 0.01  # mean |gradient| of a patch (grey in [0, 1]) below which it shows no blur
WORKING_SIDE = 400  # frames are shrunk by a whole factor toward this shorter side first


@dataclass(frozen=True)
class BlurVerdict:
    found: str  # sharp, motion, defocus, or unknown (nothing textured)
    blur: str  # the model chosen: motion or defocus
    scores: dict[str, float]  # mean class probabilities
    patches: int  # how many patches were judged
    frames: int

    @property
    def why(self) -> str:
        if self.patches == 0:
            return f"no textured patch in {self.frames} frame(s) to judge: motion, the default"
        shares = ", ".join(f"{k} {v:.0%}" for k, v in self.scores.items())
        return f"{shares} over {self.patches} patches of {self.frames} frame(s)"


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
    x = torch.from_numpy(np.stack(patches)[:, None].astype(np.float32))
    return torch.softmax(model(x), dim=1).numpy()


def decide_blur(frames: list[np.ndarray], model: BlurKindNet | None = None) -> BlurVerdict:
    """Which blur `frames` (RGB, a clip's sample) hold, and the model for it."""
    patches = [p for frame in frames for p in grey_patches(frame)]
    if not patches:
        return BlurVerdict("unknown", "motion", {}, 0, len(frames))
    mean = class_scores(patches, model or load_classifier()).mean(axis=0)
    found = CLASSES[int(np.argmax(mean))]
    scores = {name: round(float(p), 3) for name, p in zip(CLASSES, mean)}
    return BlurVerdict(found, "defocus" if found == "defocus" else "motion", scores, len(patches), len(frames))
