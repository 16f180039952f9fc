"""`--blur auto`: the classifier's patches, its verdicts on clips it never saw, and a run."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.blur_kind.decide import PATCH, decide_blur, grey_patches
from streamdeblur.blur_kind.evaluate import evaluate, lens_blurred, synthetic_clips
from tests.conftest import run_cli


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


def test_the_shipped_classifier_picks_the_right_model_on_held_out_clips() -> None:
    result = evaluate(synthetic_clips(2))  # 2 each of motion, sharp and defocus, from held-out photos
    assert result["clips"] == 6 and result["model_right"] >= 5 / 6, result["wrong"]


def test_run_with_blur_auto_finds_defocus_and_runs_the_defocus_model(tmp_path: Path) -> None:
    frames = lens_blurred(np.random.default_rng(5), [f.astype(np.float32) / 255 for f in synthetic_clips(1)[1][2]])
    folder = tmp_path / "soft"
    folder.mkdir()
    for k, frame in enumerate(frames[:6]):
        cv2.imwrite(str(folder / f"{k:03d}.png"), frame[..., ::-1])
    report = tmp_path / "report.json"
    result = run_cli(
        "run", str(folder), str(tmp_path / "out"), "--blur", "auto", "--backend", "torch", "--report", str(report)
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(report.read_text())
    assert facts["blur"]["asked"] == "auto" and facts["blur"]["found"] == "defocus", facts["blur"]
    assert facts["model"].startswith("deepdeblur-defocus") and "blur: defocus" in result.stderr
    live = run_cli("live", str(folder), str(tmp_path / "live.mp4"), "--blur", "auto", "--duration", "1")
    assert live.returncode == 2 and "--blur auto" in live.stderr and "Traceback" not in live.stderr
