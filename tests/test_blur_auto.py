"""`--blur auto`: `run` judges the input's first frames, picks the model for that blur, records
why, and still writes every frame as it came."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from streamdeblur.blur_kind.decide import BlurVerdict
from streamdeblur.errors import BadUsage
from streamdeblur.inference.spec import BackendSpec
from streamdeblur.pipeline import blur_auto
from streamdeblur.pipeline.job import RunOptions, run_job
from tests.media import frame_times, make_clip


def test_auto_reads_ahead_picks_the_model_and_loses_no_frame(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    judged: list[list[np.ndarray]] = []

    def lens(frames: list[np.ndarray], model: object = None) -> BlurVerdict:
        judged.append(frames)
        return BlurVerdict("defocus", "defocus", {"sharp": 0.1, "motion": 0.1, "defocus": 0.8}, 40, len(frames))

    monkeypatch.setattr(blur_auto, "decide_blur", lens)
    clip = make_clip("cfr_aac", media_dir)
    out = tmp_path / "out.mp4"
    spec = BackendSpec(backend="torch", device="cpu", precision="fp32", blur="auto")
    report = run_job(RunOptions(input=str(clip), output=str(out), spec=spec, progress=False))
    assert len(judged) == 1 and len(judged[0]) == blur_auto.LOOK_AHEAD // blur_auto.JUDGE_STEP
    assert report.blur == "defocus" and "deepdeblur-defocus" in report.model
    assert report.blur_auto is not None and report.blur_auto["found"] == "defocus" and report.blur_auto["why"]
    assert report.frames_in == report.frames_out == len(frame_times(clip))  # the frames judged are written too
    assert frame_times(out) == pytest.approx(frame_times(clip), abs=1e-3)


def test_auto_is_the_default_where_an_input_is_judged_and_motion_stays_asked(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --blur: `run` judges a clip (docs/defocus.md: right on 95 % of held-out clips) but not
    a picture (one frame decides less surely); --blur motion is not judged; commands that cannot
    judge (batch, bench, many streams) take motion."""
    from streamdeblur.registry import default_model

    judged: list[int] = []

    def lens(frames: list[np.ndarray], model: object = None) -> BlurVerdict:
        judged.append(len(frames))
        return BlurVerdict("defocus", "defocus", {"sharp": 0.1, "motion": 0.1, "defocus": 0.8}, 40, len(frames))

    monkeypatch.setattr(blur_auto, "decide_blur", lens)
    clip = make_clip("cfr_aac", media_dir)
    default = BackendSpec(backend="torch", device="cpu", precision="fp32")
    report = run_job(RunOptions(input=str(clip), output=str(tmp_path / "a.mp4"), spec=default, progress=False))
    assert judged and report.blur == "defocus" and "deepdeblur-defocus" in report.model and report.blur_auto
    judged.clear()
    motion = BackendSpec(backend="torch", device="cpu", precision="fp32", blur="motion")
    report = run_job(RunOptions(input=str(clip), output=str(tmp_path / "m.mp4"), spec=motion, progress=False))
    assert not judged and report.blur == "motion" and report.blur_auto is None
    assert report.model == default_model("clip").name
    picture = tmp_path / "one.png"
    cv2.imwrite(str(picture), np.full((48, 64, 3), 128, np.uint8))
    report = run_job(RunOptions(input=str(picture), output=str(tmp_path / "p.png"), spec=default, progress=False))
    assert not judged and report.blur == "motion" and report.model == default_model("picture").name
    assert BackendSpec().for_input("clip").weights == default_model("clip").name
    BackendSpec(weights="deepdeblur-light").check()  # weights given: no blur to choose


def test_auto_is_for_one_input_and_never_with_weights() -> None:
    with pytest.raises(BadUsage, match="--blur auto judges one input"):
        BackendSpec(blur="auto").for_input("clip")
    with pytest.raises(BadUsage, match="with --weights, leave --blur out"):
        BackendSpec(blur="auto", weights="deepdeblur-light").check()
    BackendSpec(blur="auto").check()  # valid until a command that cannot judge resolves it


def test_the_shipped_classifier_sends_a_soft_lens_to_defocus_and_a_sharp_clip_to_motion(
    media_dir: Path, tmp_path: Path
) -> None:
    """The classifier that ships, on a clip it never saw (FFmpeg's test pattern), as it comes and
    out of focus (a 7-pixel box, an aperture's blur, then H.264): `run --blur auto` picks the
    defocus model for the soft one. (Gaussian softness through H.264 it often calls motion:
    docs/defocus.md.)"""
    import json

    from streamdeblur.blur_kind.decide import decide_blur
    from streamdeblur.io.image_folder import read_image
    from tests.conftest import run_cli
    from tests.media import ffmpeg

    clip = make_clip("cfr_aac", media_dir)
    frames = tmp_path / "sharp"
    frames.mkdir()
    ffmpeg("-i", str(clip), "-frames:v", "16", str(frames / "%03d.png"))
    sharp = decide_blur([read_image(p) for p in sorted(frames.glob("*.png"))[::2]])
    assert sharp.blur == "motion" and sharp.found in ("sharp", "motion"), sharp.why

    soft = tmp_path / "soft.mp4"
    ffmpeg("-i", str(clip), "-vf", "boxblur=3:1", "-c:v", "libx264", "-crf", "18", "-an", str(soft))
    report = tmp_path / "report.json"
    result = run_cli("run", str(soft), str(tmp_path / "out.mp4"), "--blur", "auto", "--report", str(report))
    assert result.returncode == 0, result.stderr
    facts = json.loads(report.read_text())
    assert facts["blur"] == "defocus" and "deepdeblur-defocus" in facts["model"], facts["blur_auto"]
    assert facts["blur_auto"]["found"] == "defocus" and "--blur auto: defocus blur" in result.stderr
