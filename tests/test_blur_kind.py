"""The blur-kind classifier's parts that need no trained weights: which patches it judges, and
a clip with nothing to judge."""

from __future__ import annotations

import cv2
import numpy as np

from streamdeblur.blur_kind.decide import PATCH, decide_blur, grey_patches
from streamdeblur.blur_kind.net import CLASSES, BlurKindNet


def test_patches_are_the_most_textured_and_a_flat_frame_goes_to_the_motion_model() -> None:
    frame = np.full((240, 320, 3), 128, np.uint8)
    frame[:, 200:] = np.random.default_rng(0).integers(0, 255, (240, 120, 3), dtype=np.uint8)
    patches = grey_patches(frame, count=2)
    assert len(patches) == 2 and all(p.shape == (PATCH, PATCH) for p in patches)
    assert all(p.std() > 0.1 for p in patches)  # from the textured side, not the flat one
    flat = decide_blur([np.full((240, 320, 3), 90, np.uint8)] * 3)
    assert flat.found == "unknown" and flat.blur == "motion" and "no textured patch" in flat.why
    small = grey_patches(cv2.resize(frame, (100, 60)))  # smaller than a patch: padded, still judged
    assert small and small[0].shape == (PATCH, PATCH)


def test_a_verdict_averages_the_patches_and_names_the_model() -> None:
    import torch

    class Leaning(BlurKindNet):  # a stand-in network that always leans to defocus
        def forward(self, grey: torch.Tensor) -> torch.Tensor:
            return torch.tensor([[0.0, 0.5, 2.0]]).repeat(len(grey), 1)

    textured = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    verdict = decide_blur([textured] * 2, Leaning())
    assert verdict.found == "defocus" and verdict.blur == "defocus" and verdict.patches > 0
    assert list(verdict.scores) == list(CLASSES) and abs(sum(verdict.scores.values()) - 1) < 0.01
