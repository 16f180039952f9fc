"""Fused windows (issue 23): Fourier burst accumulation, and a single-frame network behind it."""

from __future__ import annotations

import dataclasses
import warnings
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamdeblur.errors import BadUsage
from streamdeblur.inference.processor import FrameProcessor
from streamdeblur.inference.torch_backend import TorchBackend
from streamdeblur.io import Frame
from streamdeblur.models import DeepDeblur, DeepDeblurConfig, load_checkpoint, load_model_config, save_weights
from streamdeblur.models.deepdeblur import transplant
from streamdeblur.synthetic.scenes import procedural_scene
from streamdeblur.window.assembly import WindowedProcessor, stack_window
from streamdeblur.window.fusion import _raise, fourier_burst_accumulation, frame_spectrum, smoothed_magnitude

TB = Fraction(1, 25)


def _fused_cfg(frames: int = 5, causal: bool = False) -> DeepDeblurConfig:
    return dataclasses.replace(load_model_config("tiny"), name="tiny-fused", frames=frames, causal=causal, fuse="fba")


def _scene(seed: int = 0, size: int = 96) -> np.ndarray:
    return procedural_scene(np.random.default_rng(seed), size, size).astype(np.float32)


def _streak(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    """Linear motion blur of `length` pixels at `angle` degrees (wrapping, like a camera's shake)."""
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(line, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_WRAP)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a.astype(np.float64) - b) ** 2)))


def test_a_fused_config_feeds_one_frame_to_the_network_and_keeps_its_window() -> None:
    cfg = _fused_cfg()
    assert cfg.offsets == (0, -2, -1, 1, 2) and cfg.lookahead == 2
    assert cfg.input_slots == ("fused",) and cfg.in_channels == 3
    assert cfg.to_dict()["fuse"] == "fba"
    assert "fuse" not in load_model_config("deepdeblur-4scale-k5-global").to_dict()  # stacked records unchanged
    with pytest.raises(BadUsage, match="fuse"):
        dataclasses.replace(cfg, fuse="median")


def test_identical_frames_come_out_unchanged() -> None:
    frame = np.round(_scene() * 255).astype(np.uint8)
    assert fourier_burst_accumulation([frame] * 5) is frame  # padding: the same array, passed through
    copies = [frame] + [frame.copy() for _ in range(4)]
    fused = fourier_burst_accumulation(copies)
    assert fused.dtype == np.uint8 and fused.shape == frame.shape
    assert int(np.abs(fused.astype(int) - frame).max()) == 0


def test_flat_frames_come_out_unchanged() -> None:
    """A flat frame (a camera's no-signal screen, a fade) has nothing at most frequencies in
    any frame: those are shared equally, not divided by zero into a black frame."""
    flat = [np.full((48, 64, 3), (128, 40, 200), np.uint8) for _ in range(5)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused = fourier_burst_accumulation(flat)
    assert np.array_equal(fused, flat[0])


def test_each_frequency_comes_from_the_frame_that_kept_it() -> None:
    sharp = _scene(1)
    # Streaks in four directions: each frame loses the detail across its streak, a different
    # detail in each, and the fusion gathers back what any of them kept.
    blurred = [_streak(sharp, 15, angle) for angle in (0, 45, 90, 135)]
    fused = fourier_burst_accumulation(blurred)
    best_single = max(_psnr(b, sharp) for b in blurred)
    average = _psnr(np.mean(blurred, axis=0), sharp)
    assert _psnr(fused, sharp) > best_single + 1.0 and _psnr(fused, sharp) > average + 1.0
    # One sharp neighbour among blurred frames lends its detail.
    with_sharp = fourier_burst_accumulation([blurred[0], blurred[1], sharp, blurred[2], blurred[3]])
    assert _psnr(with_sharp, sharp) > _psnr(fused, sharp) + 3.0
    # The weights at each frequency sum to one: the picture's mean (its zero frequency) is kept.
    assert float(fused.mean()) == pytest.approx(float(sharp.mean()), abs=1e-3)


def test_a_repeated_frame_counts_as_often_as_it_appears_and_weights_can_come_from_before_alignment() -> None:
    sharp = _scene(4)
    blurred = [_streak(sharp, 15, angle) for angle in (0, 45, 90)]
    repeated = fourier_burst_accumulation([blurred[0], blurred[1], blurred[1], blurred[2]])  # padding: one array twice
    copied = fourier_burst_accumulation([blurred[0], blurred[1], blurred[1].copy(), blurred[2]])
    assert np.abs(repeated - copied).max() < 1e-5
    assert np.abs(repeated - fourier_burst_accumulation(blurred)).max() > 1e-3  # and twice is not once
    # a shifted frame's Fourier magnitude is its own: weights from before a (circular) shift are the same
    shifted = [np.roll(b, 3 * i, axis=1) for i, b in enumerate(blurred)]
    before = [smoothed_magnitude(b) for b in blurred]
    assert np.allclose(
        fourier_burst_accumulation(shifted, magnitudes=before), fourier_burst_accumulation(shifted), atol=1e-4
    )
    # a spectrum already known (the restored frame's) is the one the fusion would compute
    known = [frame_spectrum(shifted[0]), None, None]
    assert np.array_equal(fourier_burst_accumulation(shifted, spectra=known), fourier_burst_accumulation(shifted))
    assert np.array_equal(smoothed_magnitude(shifted[0], known[0]), smoothed_magnitude(shifted[0]))


@pytest.mark.parametrize("power", [0, 1, 2, 5, 11, 12])
def test_weights_raise_to_integer_powers_as_numpy_does(power: int) -> None:
    x = np.random.default_rng(power).random((7, 9)).astype(np.float32)
    out = np.empty_like(x)
    _raise(x.copy(), power, out)
    assert np.allclose(out, x**power, rtol=1e-5)


def test_a_fused_window_started_from_single_frame_weights_is_that_network_behind_the_fusion() -> None:
    torch.manual_seed(0)
    single = DeepDeblur(load_model_config("tiny")).eval()
    fused_model = DeepDeblur(_fused_cfg()).eval()
    transplant(fused_model, single)
    for mine, theirs in zip(fused_model.state_dict().values(), single.state_dict().values()):
        assert torch.equal(mine, theirs)
    scene = np.round(_scene(2, 64) * 255).astype(np.uint8)
    frames = [Frame(np.ascontiguousarray(np.roll(scene, i, axis=1)), 3 * i, TB, i) for i in range(5)]
    processor = WindowedProcessor(FrameProcessor(TorchBackend(fused_model, torch.device("cpu"))), fused_model.cfg)
    out = processor.submit(frames) + processor.flush()
    assert [(f.index, f.pts) for f in out] == [(i, 3 * i) for i in range(5)]
    # frame 2's window (2, 0, 1, 3, 4), aligned and fused, is what the single-frame network restored
    stack = stack_window([frames[i].pixels for i in (2, 0, 1, 3, 4)], fused_model.cfg)
    assert stack.shape == (64, 64, 3) and stack.dtype == np.uint8
    with torch.no_grad():
        expected = single(torch.from_numpy(stack).permute(2, 0, 1)[None].float() / 255)
    expected_pixels = (expected.clamp(0, 1) * 255).round()[0].permute(1, 2, 0).to(torch.uint8).numpy()
    assert np.array_equal(out[2].pixels, expected_pixels)


def test_fused_weights_round_trip_with_their_window_and_fusion(tmp_path: Path) -> None:
    loaded = load_checkpoint(save_weights(DeepDeblur(_fused_cfg(3, causal=True)), tmp_path / "f.safetensors", {}))
    assert (loaded.cfg.frames, loaded.cfg.causal, loaded.cfg.fuse, loaded.cfg.in_channels) == (3, True, "fba", 3)


def test_the_fused_frame_comes_first_and_the_window_after_it() -> None:
    cfg = _fused_cfg()
    both = dataclasses.replace(cfg, fuse="fba+window")
    assert both.input_slots == ("fused", 0, -2, -1, 1, 2) and both.in_channels == 18
    assert both.to_dict()["fuse"] == "fba+window" and DeepDeblurConfig.from_dict(both.to_dict()) == both
    scene = np.round(_scene(3, 48) * 255).astype(np.uint8)
    frames = [np.ascontiguousarray(np.roll(scene, 2 * i, axis=0)) for i in range(5)]
    stack = stack_window(frames, both)
    assert stack.shape == (48, 48, 18) and stack.dtype == np.uint8
    assert np.array_equal(stack[..., :3], stack_window(frames, cfg))  # the fused frame, as fba alone makes it
    assert np.array_equal(stack[..., 3:6], frames[0])  # then the restored frame itself


@pytest.mark.parametrize("source_fuse", ["single", "fba"])
def test_fused_plus_window_starts_as_the_network_behind_the_fusion(source_fuse: str) -> None:
    """From single-frame or fused-only weights, the fused frame takes the filters and the
    window's frames zero: the network computes what its source computes on the fused frame."""
    torch.manual_seed(0)
    source = DeepDeblur(load_model_config("tiny") if source_fuse == "single" else _fused_cfg()).eval()
    both = DeepDeblur(dataclasses.replace(_fused_cfg(), fuse="fba+window")).eval()
    transplant(both, source)
    fused, window = torch.rand(1, 3, 32, 40), torch.rand(1, 15, 32, 40)
    with torch.no_grad():
        assert torch.allclose(both(torch.cat([fused, window], 1)), source(fused), atol=1e-6)
    # and the other way round: a stacked window's filters land on its frames, the fused frame gets zero
    stacked = DeepDeblur(dataclasses.replace(_fused_cfg(), fuse="none")).eval()
    transplant(both, stacked)
    with torch.no_grad():
        assert torch.allclose(both(torch.cat([fused, window], 1)), stacked(window), atol=1e-6)
