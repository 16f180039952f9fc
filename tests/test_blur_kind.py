"""The blur-kind classifier's parts that need no trained weights: which patches it judges, what
their spectra say, how a clip's patches make a verdict, and a clip with nothing to judge."""

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


def test_the_spectrum_tells_a_lens_from_a_moving_camera_and_from_sharp() -> None:
    """A disc takes high frequencies away in every direction; a horizontal streak only across it."""
    from streamdeblur.blur_kind.spectrum import FEATURES, RADIAL_BANDS, spectral_features
    from streamdeblur.synthetic.defocus import disc_kernel

    sharp = np.random.default_rng(2).uniform(0, 1, (PATCH, PATCH)).astype(np.float32)
    sharp = cv2.GaussianBlur(sharp, (0, 0), 0.7)  # texture with some correlation, as a picture's
    lens = cv2.filter2D(sharp, -1, disc_kernel(4.0), borderType=cv2.BORDER_REFLECT)
    streak = cv2.filter2D(sharp, -1, np.full((1, 9), 1 / 9, np.float32), borderType=cv2.BORDER_REFLECT)
    features = spectral_features(np.stack([sharp, lens, streak]))
    assert features.shape == (3, FEATURES)
    falloff = features[:, RADIAL_BANDS - 2]  # power of a fine ring against the coarsest
    assert falloff[0] > falloff[2] > falloff[1]  # sharp keeps most; the lens takes most away
    unequal = np.abs(features[:, RADIAL_BANDS:]).reshape(3, RADIAL_BANDS, -1)[:, 2:].mean(axis=(1, 2))
    assert unequal[2] > 2 * max(unequal[0], unequal[1])  # only the streak favours a direction


class _Fixed(BlurKindNet):
    """A stand-in network that scores patches in turn from `rows` (logits)."""

    def __init__(self, rows: list[list[float]]) -> None:
        super().__init__()
        self.rows = rows

    def forward(self, features):  # type: ignore[no-untyped-def]
        import torch

        return torch.tensor([self.rows[i % len(self.rows)] for i in range(len(features))])


def test_a_clip_is_defocused_only_where_most_patches_say_so() -> None:
    from streamdeblur.blur_kind.decide import DEFOCUS_SHARE

    textured = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    lens, shake = [0.0, 0.5, 3.0], [0.0, 3.0, 0.5]
    verdict = decide_blur([textured] * 2, _Fixed([lens]))
    assert verdict.found == "defocus" and verdict.blur == "defocus" and verdict.patches > 0
    assert verdict.scores["patches_defocus"] == 1.0 and "look out of focus" in verdict.why
    assert abs(sum(verdict.scores[c] for c in CLASSES) - 1) < 0.01
    # Half the patches soft and half streaked: a lens would blur them all alike.
    mixed = decide_blur([textured] * 2, _Fixed([lens, shake]))
    assert mixed.scores["patches_defocus"] == 0.5
    assert mixed.scores["patches_defocus"] < DEFOCUS_SHARE and mixed.found == "motion" and mixed.blur == "motion"


def test_a_fresh_mix_is_other_clips_and_the_first_mix_stays_as_it_was() -> None:
    """evaluate.py's --seed-root makes a mix of its own (to measure again without tuning on the
    first), while the default still makes the mix measured first."""
    from streamdeblur.blur_kind.evaluate import SEED_ROOT, synthetic_clips

    first, again = synthetic_clips(1, (64, 48)), synthetic_clips(1, (64, 48), seed_root=SEED_ROOT)
    fresh = synthetic_clips(1, (64, 48), seed_root=SEED_ROOT + 1)
    assert [t for t, _, _ in fresh] == ["motion", "sharp", "defocus"]
    for (_, _, a), (_, _, b), (_, _, c) in zip(first, again, fresh):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
        assert not all(np.array_equal(x, z) for x, z in zip(a, c))


def test_a_sharp_clip_is_filmed_without_resampling_and_never_from_a_magnified_photo() -> None:
    """evaluate.py's sharp clips: a magnified photo, or a frame warped to sub-pixel positions, is
    soft already (an upscaled stream), so neither may stand for sharp."""
    import pytest

    from streamdeblur.blur_kind.evaluate import filmed_sharp
    from streamdeblur.synthetic.scenes import photo_crop

    for seed in range(6):
        delivered, clean = filmed_sharp(np.random.default_rng(seed), 48, 64, 4, ("gravel",))
        assert len(delivered) == len(clean) == 4 and clean[0].shape == (48, 64, 3)
        # The camera moved by whole pixels: each clean frame is the last one shifted, not resampled.
        shift = [
            (dy, dx)
            for dy in range(-3, 4)
            for dx in range(-3, 4)
            if np.array_equal(
                clean[1][max(0, -dy) : 48 - max(0, dy), max(0, -dx) : 64 - max(0, dx)],
                clean[0][max(0, dy) : 48 - max(0, -dy), max(0, dx) : 64 - max(0, -dx)],
            )
        ]
        assert shift, f"seed {seed}: frame 1 is no whole-pixel shift of frame 0"
        assert not np.array_equal(delivered[0], clean[0])  # the camera's noise and codec on top
    rng = np.random.default_rng(0)
    crops = [photo_crop(rng, "gravel", 400, 400, magnify=False) for _ in range(8)]
    # Shrunk by at most 400/512 or shown as it is: as much detail as the photo has, never less.
    assert all(c.shape == (400, 400, 3) for c in crops)
    with pytest.raises(ValueError, match="smaller than"):
        photo_crop(rng, "gravel", 600, 400, magnify=False)  # 512 px tall: only magnified would fill it
