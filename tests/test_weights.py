"""The shipped weights: `run` loads the default with no flags, and every card's figures hold."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest

from streamdeblur.models import DEFAULT_WEIGHTS, VIDEO_WEIGHTS, load_checkpoint, read_card, shipped_weights
from streamdeblur.models.checkpoint import WEIGHTS_DIR
from tests.conftest import run_cli
from tests.media import ffmpeg, make_clip

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers


SHIPPED = [WEIGHTS_DIR / f"{name}.safetensors" for name in shipped_weights()]


@pytest.mark.parametrize("weights", SHIPPED, ids=[w.stem for w in SHIPPED])
def test_shipped_weights_come_with_a_card(weights: Path) -> None:
    model = load_checkpoint(weights)
    card = read_card(weights)
    assert model.cfg.name == card["config"]["name"] == weights.stem
    assert card["training"]["steps"] > 0 and card["training"]["hardware"]
    held_out = card["quality"]["held_out"]
    assert held_out["output_psnr"] > held_out["input_psnr"]
    assert held_out["sharp_in_psnr"] > 30


# By name with --backend torch: the name is what is tested, not auto's probe (the flagless run has that).
@pytest.mark.parametrize(
    "flags, model",
    [([], "deepdeblur-4scale"), (["--weights", "deepdeblur-light", "--backend", "torch"], "deepdeblur-light")],
    ids=["no flags", "shipped name"],
)
def test_run_uses_the_default_weights_without_flags_or_others_by_name(
    media_dir: Path,
    tmp_path: Path,
    flags: list[str],
    model: str,
) -> None:
    report = tmp_path / "report.json"
    clip = make_clip("one_frame", media_dir)
    result = run_cli("run", str(clip), str(tmp_path / "out.mp4"), "--report", str(report), "-q", *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["model"] == model


def test_without_weights_a_clip_gets_the_video_model_and_a_picture_or_live_the_single_frame_one(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=64x48:rate=25",
        "-frames:v",
        "6",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(clip),
    )
    picture = tmp_path / "still.png"
    cv2.imwrite(str(picture), np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i:04d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    photos = tmp_path / "photos"  # unrelated pictures: each its own colour, every pair a cut
    photos.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        cv2.imwrite(str(photos / f"IMG_{i}.png"), np.full((48, 64, 3), colour, np.uint8))
    video_model, single_model = VIDEO_WEIGHTS.stem, DEFAULT_WEIGHTS.stem
    assert load_checkpoint(VIDEO_WEIGHTS).cfg.frames > 1 and load_checkpoint(DEFAULT_WEIGHTS).cfg.frames == 1
    cases = [
        (["run", str(clip), "clip-out.mp4"], video_model, 6),
        (["run", str(frames), "frames-out/"], video_model, 3),
        (["run", str(photos), "photos-out/"], single_model, 3),
        (["run", str(picture), "still-out.png"], single_model, 1),
        (["run", str(clip), "light-out.mp4", "--weights", "deepdeblur-light"], "deepdeblur-light", 6),
        (["live", str(clip), "live-out.mp4"], single_model, 6),
    ]
    for args, model, frames_out in cases:
        report = tmp_path / "report.json"
        result = run_cli(*args, "--backend", "torch", "--report", str(report), "-q", cwd=tmp_path)
        assert result.returncode == 0, (args, result.stderr)
        facts = json.loads(report.read_text())
        assert (facts["model"], facts["frames_out"]) == (model, frames_out), args


def _but_count(synth: list[str]) -> list[str]:
    """A synth command's options without its output folder and --count."""
    at = synth.index("--count")
    return synth[3:at] + synth[at + 2 :]


@pytest.mark.parametrize("weights", SHIPPED, ids=[w.stem for w in SHIPPED])
def test_the_card_figures_are_reproduced_by_its_commands(tmp_path: Path, weights: Path) -> None:
    """The card names how its held-out set was made and scored; doing it again gives its figures.

    On the card's `held_out_sample` (the first pairs or clips of the held-out set, made by the
    same command with a smaller --count, so the same pictures), which CI can afford."""
    quality = read_card(weights)["quality"]
    held_out = quality["held_out_sample"]
    made = held_out["data_made_by"]
    synth = shlex.split(made["command"])
    assert _but_count(synth) == _but_count(shlex.split(quality["held_out"]["data_made_by"]["command"]))
    assert made["count"] < quality["held_out"]["count"]
    assert synth[:2] == ["streamdeblur", "synth"] and "--held-out" in synth
    assert run_cli(*synth[1:], "-q", cwd=tmp_path).returncode == 0
    assert f"--split {held_out['split']}" in held_out["command"] and "--backend torch" in held_out["command"]
    # In fp32, as the cards are scored: bf16 moves flicker by a few hundredths
    result = run_cli(
        "eval",
        held_out["data"],
        "--model",
        str(weights),
        "--backend",
        "torch",
        "--precision",
        "fp32",
        "--split",
        held_out["split"],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["count"] == held_out["count"] == made["count"] * made.get("frames", 1)  # clips: frames
    # CPUs round differently; near 34 dB a tiny difference in pixels is a larger one in dB
    for key, tolerance in (("input_psnr", 0.02), ("output_psnr", 0.02)):
        assert scores[key] == pytest.approx(held_out[key], abs=tolerance), key
    # A gated model hands sharp frames through: at 70 dB and more the error is a few pixels a
    # level off, and a few more rounding the other way on another CPU move it by tenths of a dB.
    sharp_in, card_sharp_in = scores["sharp_in_psnr"], held_out["sharp_in_psnr"]
    assert sharp_in == pytest.approx(card_sharp_in, abs=0.1) or min(sharp_in, card_sharp_in) > 60, "sharp_in_psnr"
    for key in ("input_ssim", "output_ssim"):
        assert scores[key] == pytest.approx(held_out[key], abs=0.002), key
    for key in ("input_flicker", "output_flicker"):  # clips only
        assert (key in scores) == (key in held_out)
        if key in held_out:
            assert scores[key] == pytest.approx(held_out[key], abs=0.02), key
