"""refuse_unsharper (window/still.py): a window is fused only where some neighbour holds a
sharper view of the frame in some direction; a frame as sharp as everything around it (a still
camera, a tree in the wind, the sharp frame of a shaking camera) is restored alone."""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from streamdeblur.models import load_model_config
from streamdeblur.models.checkpoint import load_checkpoint, resolve_weights
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.synthetic.scenes import procedural_scene
from streamdeblur.window.assembly import stack_window
from streamdeblur.window.still import refuse_unsharper, sharpness

SIZE = 96


def _scene() -> np.ndarray:
    return np.round(procedural_scene(np.random.default_rng(4), SIZE, SIZE) * 255).astype(np.uint8)


def _streaked(frame: np.ndarray, length: int, vertical: bool) -> np.ndarray:
    kernel = np.full((1, length), 1 / length, np.float32)
    return cv2.filter2D(frame, -1, kernel.T if vertical else kernel, borderType=cv2.BORDER_REFLECT)


def _grain(frame: np.ndarray, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).integers(-2, 3, frame.shape)
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def test_sharpness_falls_across_a_streak_and_not_along_it() -> None:
    sharp = _scene()
    across = sharpness(_streaked(sharp, 9, vertical=False)) / sharpness(sharp)
    assert across[0] < 0.6  # a horizontal streak takes horizontal detail away
    assert across[2] > across[0] + 0.2  # and leaves vertical detail nearer to what it was


def test_only_a_frame_with_a_sharper_neighbour_keeps_its_window() -> None:
    sharp = _scene()
    blurred = _streaked(sharp, 9, vertical=False)
    # The blurred frame, with the sharp one beside it: fused as today.
    window = [blurred, sharp, _grain(blurred, 1)]
    assert all(a is b for a, b in zip(refuse_unsharper(window, 0.1), window))
    # The sharp frame, with blurred neighbours only: alone.
    window = [sharp, blurred, _grain(blurred, 2)]
    assert all(f is sharp for f in refuse_unsharper(window, 0.1))
    # A still camera: the same picture under fresh grain. Nothing sharper: alone.
    window = [_grain(sharp, 3), _grain(sharp, 4), _grain(sharp, 5)]
    assert all(f is window[0] for f in refuse_unsharper(window, 0.1))
    # Blurred across another direction than the frame: sharper where the frame is not, so kept.
    vertical = _streaked(sharp, 9, vertical=True)
    window = [blurred, vertical, _grain(blurred, 6)]
    assert all(a is b for a, b in zip(refuse_unsharper(window, 0.1), window))


def test_a_frame_blurred_along_one_direction_keeps_its_window_where_isotropy_asks() -> None:
    """A pan blurs every frame alike: no neighbour is sharper, yet the frame has motion blur
    that the window's fusion and the network undo together, so with an isotropy floor it keeps
    its window; a frame about as sharp in every direction does not."""
    streaks = [_grain(_streaked(_scene(), 11, vertical=False), seed) for seed in (7, 8, 9)]
    detail = sharpness(streaks[0])
    assert detail.min() < 0.7 * detail.max()
    assert all(f is streaks[0] for f in refuse_unsharper(streaks, 0.1))  # no floor: alone
    assert all(a is b for a, b in zip(refuse_unsharper(streaks, 0.1, isotropy=0.7), streaks))
    still = [_grain(_scene(), seed) for seed in (7, 8, 9)]
    assert sharpness(still[0]).min() >= 0.7 * sharpness(still[0]).max()
    assert all(f is still[0] for f in refuse_unsharper(still, 0.1, isotropy=0.7))


def test_a_frame_unequal_across_directions_is_judged_by_the_directional_share() -> None:
    """A still camera filming stripes: its frames hold more detail across the stripes than along
    them, by their content, not by blur. With only an isotropy floor they keep their window;
    with a directional share they go alone unless some neighbour beats them by that share, as
    a frame of a shaking camera beside a sharper one does."""
    rows = np.arange(SIZE)[:, None, None]
    stripes = np.broadcast_to(np.where(rows % 6 < 3, 40, 210), (SIZE, SIZE, 3)).astype(np.uint8)
    scene = cv2.addWeighted(stripes, 0.8, _scene(), 0.2, 0)
    still = [_grain(scene, seed) for seed in (10, 11, 12)]
    detail = sharpness(still[0])
    assert detail.min() < 0.7 * detail.max()
    assert all(a is b for a, b in zip(refuse_unsharper(still, 0.1, isotropy=0.7), still))
    assert all(f is still[0] for f in refuse_unsharper(still, 0.1, isotropy=0.7, directional=0.05))
    shaken = [_grain(_streaked(scene, 5, vertical=True), 13), still[1], still[2]]
    assert all(a is b for a, b in zip(refuse_unsharper(shaken, 0.1, isotropy=0.7, directional=0.05), shaken))


def test_a_models_window_refuses_only_with_refuse_unsharper() -> None:
    sharp = _scene()
    frames = [sharp, _streaked(sharp, 9, vertical=False), _streaked(sharp, 7, vertical=True)]
    cfg = replace(load_model_config("tiny-k3"), align="none", fuse="none")
    on, off = stack_window(frames, replace(cfg, refuse_unsharper=0.1)), stack_window(frames, cfg)
    assert on.shape == off.shape == (SIZE, SIZE, 9)
    for slot in (1, 2):
        assert np.array_equal(on[..., 3 * slot : 3 * slot + 3], sharp)
        assert not np.array_equal(off[..., 3 * slot : 3 * slot + 3], sharp)


def test_the_config_records_refuse_unsharper_only_where_set() -> None:
    cfg = load_model_config("tiny-k3")
    assert "refuse_unsharper" not in cfg.to_dict()
    on = replace(cfg, refuse_unsharper=0.0)  # 0 is a margin, not "off"
    assert on.to_dict()["refuse_unsharper"] == 0.0
    assert DeepDeblurConfig.from_dict(on.to_dict()) == on
    both = replace(on, refuse_unsharper_isotropy=0.7)
    assert "refuse_unsharper_isotropy" not in on.to_dict() and both.to_dict()["refuse_unsharper_isotropy"] == 0.7
    assert DeepDeblurConfig.from_dict(both.to_dict()) == both
    assert "refuse_unsharper_directional" not in both.to_dict()
    tiers = replace(both, refuse_unsharper_directional=0.05)
    assert DeepDeblurConfig.from_dict(tiers.to_dict()) == tiers
    shipped = load_checkpoint(resolve_weights("deepdeblur-4scale-k5-fba-window-gate-lean")).cfg
    assert (shipped.refuse_unsharper, shipped.refuse_unsharper_isotropy) == (0.1, 0.7)  # rule U6
    assert shipped.refuse_unsharper_directional == 0.05  # rule U9
    live = load_checkpoint(resolve_weights("deepdeblur-4scale-k3-causal-fba-window")).cfg
    live_refusal = (live.refuse_unsharper, live.refuse_unsharper_isotropy, live.refuse_unsharper_directional)
    assert live_refusal == (0.02, 0.7, None)  # rule U10
