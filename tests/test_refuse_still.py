"""refuse_still (window/still.py): a still camera is told by its textured blocks, not by global
alignment, and there a neighbour's regions that still differ from the frame (something moving
on its own) are refused; a pan, a flat frame and a model without it keep their neighbours."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from streamdeblur.models import load_model_config
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.synthetic.scenes import procedural_scene
from streamdeblur.window.assembly import stack_window
from streamdeblur.window.still import camera_still, refuse_where_still

SIZE = 128  # 4 x 4 blocks of STILL_BLOCK
BAR = (slice(72, 88), slice(68, 78))  # the bright bar in frame 0; in every frame within one block


def _wall() -> np.ndarray:
    return np.round(procedural_scene(np.random.default_rng(3), SIZE, SIZE) * 255).astype(np.uint8)


def _still_camera(index: int) -> np.ndarray:
    """The same wall under fresh grain of up to 2 levels, and a bright bar that moves 8 px a
    frame on its own."""
    grain = np.random.default_rng(100 + index).integers(-2, 3, (SIZE, SIZE, 3))
    frame = np.clip(_wall().astype(np.int16) + grain, 0, 255).astype(np.uint8)
    frame[BAR[0], BAR[1].start + 8 * index : BAR[1].stop + 8 * index] = 250
    return frame


def _panning_camera(index: int) -> np.ndarray:
    """The camera moving 4 px a frame over a scene as textured as the wall."""
    scene = np.round(procedural_scene(np.random.default_rng(3), SIZE, SIZE + 40) * 255).astype(np.uint8)
    return np.ascontiguousarray(scene[:, 4 * index : 4 * index + SIZE])


def _cfg(refuse_still: bool) -> DeepDeblurConfig:
    return replace(load_model_config("tiny-k3"), align="global", fuse="none", refuse_still=refuse_still)


def test_a_still_camera_is_told_from_a_pan_and_from_a_flat_frame() -> None:
    assert camera_still(_still_camera(0), _still_camera(1))  # the bar covers one block of 16
    assert not camera_still(_panning_camera(0), _panning_camera(1))
    flat = np.full((SIZE, SIZE, 3), 120, np.uint8)
    assert not camera_still(flat, flat.copy())  # no texture: nothing to tell by


def test_under_a_still_camera_what_moved_is_refused_and_the_rest_kept() -> None:
    frames = [_still_camera(i) for i in (0, 1, 2)]  # the bar ends at x 94, inside the block 64-96
    refused = refuse_where_still(frames, list(frames))
    assert refused[0] is frames[0]
    for neighbour, kept in zip(frames[1:], refused[1:]):
        assert np.array_equal(kept[BAR], frames[0][BAR])  # the bar's place: the frame's own pixels
        assert np.array_equal(kept[:32, :32], neighbour[:32, :32])  # the wall: the neighbour's
    pan = [_panning_camera(i) for i in (0, 1, 2)]
    assert all(a is b for a, b in zip(refuse_where_still(pan, list(pan)), pan))


def test_a_models_window_refuses_only_with_refuse_still() -> None:
    frames = [_still_camera(i) for i in (0, 1, 2)]  # network order: the frame first
    on, off = stack_window(frames, _cfg(True)), stack_window(frames, _cfg(False))
    assert on.shape == off.shape == (SIZE, SIZE, 9)
    for slot in (1, 2):
        neighbour_on, neighbour_off = on[..., 3 * slot : 3 * slot + 3], off[..., 3 * slot : 3 * slot + 3]
        assert np.array_equal(neighbour_on[BAR], frames[0][BAR])
        assert not np.array_equal(neighbour_off[BAR], frames[0][BAR])


def test_the_config_records_refuse_still_only_where_set() -> None:
    cfg = load_model_config("tiny-k3")
    assert "refuse_still" not in cfg.to_dict()
    on = replace(cfg, refuse_still=True)
    assert on.to_dict()["refuse_still"] is True
    assert DeepDeblurConfig.from_dict(on.to_dict()) == on
