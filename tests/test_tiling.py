"""Tiled inference agrees with whole-frame inference; overlaps are blended, not cropped."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from streamdeblur.inference.tiling import tile_starts, tiled
from streamdeblur.models import DEFAULT_WEIGHTS, DeepDeblur, load_checkpoint, load_model_config


@pytest.mark.parametrize("length, tile, overlap", [(100, 64, 16), (64, 64, 8), (300, 96, 32), (97, 40, 12)])
def test_tiles_cover_the_frame_with_the_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == max(length, tile)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_constant_function_is_reproduced_exactly() -> None:
    """Blend weights sum to one everywhere: an identity network gives back its input."""
    x = torch.rand(1, 3, 150, 230)
    assert torch.allclose(tiled(lambda t: t, x, 64, 16), x, atol=1e-6)


def _mean_abs_diff_255(model: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int) -> float:
    with torch.no_grad():
        whole = model(x)
        tiles = tiled(model, x, tile, overlap, max_batch=4)
    return float((whole - tiles).abs().mean() * 255)


def test_tiled_matches_untiled_with_the_tiny_model() -> None:
    torch.manual_seed(0)
    model = DeepDeblur(load_model_config("tiny")).eval()
    x = torch.rand(1, 3, 200, 264)
    assert _mean_abs_diff_255(model, x, 96, 32) < 0.5


@pytest.mark.skipif(not DEFAULT_WEIGHTS.exists(), reason="no shipped weights yet")
def test_tiled_matches_untiled_with_the_shipped_model() -> None:
    from streamdeblur.synthetic.blur import render_pair

    pair = render_pair(np.random.default_rng(5), 256, 320)
    x = torch.from_numpy(pair.blurry).permute(2, 0, 1)[None]
    assert _mean_abs_diff_255(load_checkpoint(DEFAULT_WEIGHTS), x, 128, 32) < 0.5
