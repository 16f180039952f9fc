"""Grey in, grey out (io/grey.py): a frame whose channels are equal is written grey."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from streamdeblur.io.frame import Frame
from streamdeblur.io.grey import GreyFrames, as_grey, is_grey
from tests.conftest import run_cli
from tests.media import ffmpeg


def _grey(height: int, width: int, seed: int = 0) -> np.ndarray:
    levels = np.random.default_rng(seed).integers(0, 256, (height, width, 1), dtype=np.uint8)
    return np.repeat(levels, 3, axis=2)


def test_a_grey_frame_is_told_apart_from_one_with_a_single_coloured_pixel() -> None:
    grey = _grey(40, 72)
    tinted = grey.copy()
    tinted[21, 5, 1] += 1  # off the sparse grid the first glance looks at
    assert is_grey(grey) and not is_grey(tinted)
    assert not is_grey(grey[..., 0])  # one channel is not an RGB frame


def test_making_an_output_grey_never_moves_it_away_from_a_grey_target() -> None:
    rng = np.random.default_rng(1)
    target = _grey(32, 32, seed=2).astype(np.float64)
    output = np.clip(target + rng.normal(0, 6, target.shape), 0, 255).astype(np.uint8)  # a tint at every pixel
    projected = as_grey(output)
    assert is_grey(projected) and projected.dtype == np.uint8
    before = np.linalg.norm(output.astype(np.float64) - target, axis=2)
    after = np.linalg.norm(projected.astype(np.float64) - target, axis=2)
    assert np.all(after <= before + 0.87)  # within the rounding to whole levels (half a level on each channel)
    assert after.mean() < 0.7 * before.mean()
    assert np.array_equal(as_grey(np.array([[[10, 11, 13], [255, 254, 255]]], np.uint8)), [[[11] * 3, [255] * 3]])


def test_the_writer_makes_grey_only_frames_that_came_in_grey_and_forgets_dropped_ones() -> None:
    grey, colour = _grey(16, 16), np.zeros((16, 16, 3), np.uint8)
    colour[..., 0] = 200
    noted = GreyFrames()
    for index, pixels in enumerate([grey, colour, grey, grey]):
        noted.note(Frame(pixels, index, Fraction(1, 25), index))
    tinted = grey.copy()
    tinted[..., 2] //= 2
    written = {i: noted.restore(Frame(tinted.copy(), i, Fraction(1, 25), i)) for i in (1, 3)}  # 0 and 2 dropped
    assert not is_grey(written[1].pixels) and is_grey(written[3].pixels)
    assert not noted._grey  # nothing held for frames that will never be written


def _grey_clip(folder: Path) -> Path:
    clip = folder / "grey.mp4"
    source = ["-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "6", "-vf", "format=gray"]
    ffmpeg(*source, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    return clip


def _chroma_is_neutral(video: Path) -> bool:
    import av

    with av.open(str(video)) as container:
        planes = [frame.to_ndarray(format="yuv444p")[1:] for frame in container.decode(video=0)]
    return len(planes) == 6 and all(np.abs(chroma.astype(int) - 128).max() <= 1 for chroma in planes)


def test_run_writes_a_grey_clip_grey(tiny_weights: Path, tmp_path: Path) -> None:
    """Random weights tint a grey frame everywhere; the written clip's chroma stays neutral
    (x264 keeps flat chroma flat)."""
    out = tmp_path / "out.mp4"
    result = run_cli("run", str(_grey_clip(tmp_path)), str(out), "--weights", str(tiny_weights), "--backend", "torch")
    assert result.returncode == 0, result.stderr
    assert _chroma_is_neutral(out)


def test_each_of_many_streams_writes_its_grey_frames_grey(tiny_weights: Path, tmp_path: Path) -> None:
    clip, outs = _grey_clip(tmp_path), [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    result = run_cli(
        "live", "--input", str(clip), "--output", str(outs[0]), "--input", str(clip), "--output", str(outs[1]),
        "--weights", str(tiny_weights), "--backend", "torch",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert all(_chroma_is_neutral(out) for out in outs)
