"""`streamdeblur adapt`: sharpness scoring, picking, the card, bad footage, and a whole run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from streamdeblur.adapt.command import adapt_command
from streamdeblur.adapt.evidence import Camera, render_camera_clip, write_video
from streamdeblur.adapt.picking import pick_frames
from streamdeblur.adapt.run import adapt
from streamdeblur.adapt.scan import CutDetector, ScoredFrame
from streamdeblur.adapt.sharpness import grey_thumbnail, sharpness
from streamdeblur.errors import BadInput
from streamdeblur.models import load_checkpoint, read_card
from streamdeblur.synthetic.scenes import dead_leaves, procedural_scene
from tests.conftest import ROOT, run_cli

SMALL_CAMERA = Camera(width=192, height=108, max_blur_px=12.0)


def _motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle_deg, 1.0)
    kernel = np.asarray(cv2.warpAffine(kernel, rotation, (length, length)), np.float32)
    return cv2.filter2D(image, -1, kernel / kernel.sum(), borderType=cv2.BORDER_REFLECT)


def _camera_output(image: np.ndarray, rng: np.random.Generator, noise: float, jpeg: int | None) -> np.ndarray:
    noisy = np.clip(image + rng.standard_normal(image.shape).astype(np.float32) * noise, 0, 1)
    as_bytes = np.round(noisy * 255).astype(np.uint8)
    if jpeg is not None:
        as_bytes = cv2.imdecode(
            cv2.imencode(".jpg", as_bytes, [cv2.IMWRITE_JPEG_QUALITY, jpeg])[1], cv2.IMREAD_UNCHANGED
        )
    return as_bytes


@lru_cache(maxsize=1)
def _scene() -> np.ndarray:
    """Dead leaves: edges in every direction, as in real scenes."""
    return np.clip(dead_leaves(np.random.default_rng(5), 360, 640), 0, 1)


@pytest.mark.parametrize(("noise", "jpeg"), [(0.0, None), (0.02, None), (0.02, 40)])
@pytest.mark.parametrize("angle", [0.0, 35.0, 90.0])
def test_a_sharp_frame_scores_above_its_blurred_copies(noise: float, jpeg: int | None, angle: float) -> None:
    rng, scene = np.random.default_rng(5), _scene()
    scores = [
        sharpness(
            grey_thumbnail(_camera_output(_motion_blur(scene, length, angle) if length else scene, rng, noise, jpeg))
        )
        for length in (0, 5, 11, 25)
    ]
    assert scores == sorted(scores, reverse=True), scores  # the more blur, the lower
    assert scores[0] > scores[2] + 0.05 and scores[0] > scores[3] + 0.2, scores


def test_a_flat_frame_scores_zero() -> None:
    assert sharpness(grey_thumbnail(np.full((90, 160, 3), 30, np.uint8))) == 0.0


def test_a_cut_starts_a_new_shot_and_blur_does_not() -> None:
    rng = np.random.default_rng(8)
    first, second = procedural_scene(rng, 108, 192), procedural_scene(rng, 108, 192)
    frames = [_motion_blur(first, 1 + 4 * k, 20.0 * k) for k in range(5)] + [
        _motion_blur(second, 1 + 4 * k, 0.0) for k in range(5)
    ]
    cuts = CutDetector()
    flags = [cuts.is_cut(_camera_output(f, rng, 0.01, 70)) for f in frames]
    assert flags == [False] * 5 + [True] + [False] * 4


def _frame(index: int, score: float, shot: int = 0, look: int | None = None, footage: int = 0) -> ScoredFrame:
    """A scored frame whose look (signature) is random per `look` (default: its own index)."""
    rng = np.random.default_rng(1000 * footage + (index if look is None else look))
    signature = rng.integers(0, 256, (18, 32), dtype=np.uint8)
    return ScoredFrame(footage, index, index / 25, shot, score, 0.2, signature)


def test_picking_spreads_over_time_instead_of_taking_one_burst() -> None:
    # 200 frames; a burst of very sharp frames at 40..79, fairly sharp frames elsewhere.
    frames = [_frame(i, 0.75 if 40 <= i < 80 else 0.66 if i % 10 == 0 else 0.3) for i in range(200)]
    picked = pick_frames(frames, 8, min_score=0.5)
    assert len(picked) == 8
    indices = [f.index for f in picked]
    assert indices == sorted(indices)
    assert sum(40 <= i < 80 for i in indices) <= 40 // (200 // 16) + 1  # the gap: 200 / (2 x 8) frames
    assert min(np.diff(indices)) >= 200 // 16
    assert any(i >= 80 for i in indices) and any(i < 40 for i in indices)


def test_picking_skips_near_duplicates_and_visits_every_shot() -> None:
    # Shot 0: a parked camera (every frame looks the same); shot 1: a moving one.
    parked = [_frame(i, 0.7, shot=0, look=0) for i in range(0, 100)]
    moving = [_frame(i, 0.65, shot=1) for i in range(100, 200)]
    picked = pick_frames(parked + moving, 6, min_score=0.5)
    assert sum(f.shot == 0 for f in picked) == 1  # one of the identical views, not six
    assert sum(f.shot == 1 for f in picked) == 5


def test_picking_compares_sharpness_within_a_shot() -> None:
    # Shot 1 is a softer scene: its best frames score lower than shot 0's blurry ones, and
    # still are what it has to offer; its blurry frames are not picked.
    shot0 = [_frame(i, 0.8 if i % 2 else 0.6, shot=0) for i in range(0, 50)]
    shot1 = [_frame(i, 0.58 if i % 2 else 0.4, shot=1) for i in range(50, 100)]
    picked = pick_frames(shot0 + shot1, 10, min_score=0.5)
    assert {f.shot for f in picked} == {0, 1}
    assert all(f.score >= 0.8 for f in picked if f.shot == 0)
    assert all(f.score >= 0.58 for f in picked if f.shot == 1)


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A shaky synthetic camera: some frames nearly sharp, noise and JPEG, H.264."""
    clip = render_camera_clip(np.random.default_rng(1), SMALL_CAMERA, 30)
    return write_video(tmp_path_factory.mktemp("adapt") / "cam.mp4", clip.blurry, SMALL_CAMERA.fps)


def test_footage_without_a_sharp_frame_is_refused_and_nothing_is_written(tmp_path: Path, tiny_weights: Path) -> None:
    rng = np.random.default_rng(3)
    scene = procedural_scene(rng, 108, 192)
    frames = [
        _camera_output(_motion_blur(np.roll(scene, 3 * k, axis=1), 21, 10.0 * k), rng, 0.01, None) for k in range(12)
    ]
    video = write_video(tmp_path / "shaky.mp4", frames, 15)
    out = tmp_path / "out" / "cam.safetensors"
    with pytest.raises(BadInput) as caught:
        adapt([video], out, init=tiny_weights, steps=2)
    message = str(caught.value)
    assert "\n" not in message
    assert "no frames sharp enough" in message and "scores 0." in message and "at least 0.45" in message
    best = float(message.split("scores ")[1].split(" ")[0])
    assert best < 0.45
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shaky.mp4"]  # no out/, no work folder


def test_unreadable_footage_alone_is_bad_input(tmp_path: Path, tiny_weights: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    app = _app()
    result = CliRunner().invoke(
        app, ["adapt", str(broken), "--out", str(tmp_path / "w.safetensors"), "--init", str(tiny_weights)]
    )
    assert result.exit_code == 2, result.output
    assert "none of the footage could be read" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_a_windowed_model_to_start_from_is_refused_before_any_work(tmp_path: Path, camera_clip: Path) -> None:
    """The default for video is windowed; adapt learns from single frames, so it says so at once."""
    app = _app()
    result = CliRunner().invoke(
        app,
        [
            "adapt",
            str(camera_clip),
            "--out",
            str(tmp_path / "w.safetensors"),
            "--init",
            "deepdeblur-4scale-k5-fba-window-gate-lean",
        ],
    )
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "windowed model (5 frames)" in message and "deepdeblur-4scale" in message
    assert list(tmp_path.iterdir()) == []  # no weights, no work folder


def _app() -> typer.Typer:
    """The command on an app of its own, registered as cli.py registers it."""
    app = typer.Typer()
    app.command("adapt")(adapt_command)

    @app.callback()
    def main() -> None:  # with a callback, typer keeps "adapt" a subcommand
        pass

    return app


@pytest.mark.slow
def test_adapt_end_to_end_through_the_command(tmp_path: Path, camera_clip: Path, tiny_weights: Path) -> None:
    broken = tmp_path / "broken.mov"
    broken.write_bytes(b"\x00" * 1000)
    out = tmp_path / "mycam.safetensors"
    result = CliRunner().invoke(
        _app(),
        [
            "adapt",
            str(camera_clip),
            str(broken),
            "--out",
            str(out),
            "--init",
            str(tiny_weights),
            "--frames",
            "6",
            "--steps",
            "3",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "skipping" in result.output and "broken.mov" in result.output  # warned, not fatal

    model = load_checkpoint(out)
    assert model.cfg.n_feats == 8  # the tiny network it started from
    card = read_card(out)
    adapted = card["adapted"]
    assert adapted["footage"][0]["name"] == "cam.mp4" and len(adapted["footage"][0]["sha256"]) == 64
    assert adapted["skipped"][0]["path"] == str(broken)
    assert adapted["frames_scored"] == 30
    assert 2 <= adapted["frames_picked"] <= 6 and adapted["frames_held_out"] >= 1
    assert adapted["frames_train"] + adapted["frames_held_out"] == adapted["frames_picked"] == len(adapted["picked"])
    assert adapted["steps"] == 3 and adapted["finished"] and adapted["train_seconds"] > 0
    validation = adapted["validation"]
    assert validation["frames"] == adapted["frames_held_out"] and validation["pairs"] > 0
    for key in ("psnr_blurry", "psnr_start", "psnr_adapted"):
        assert 5 < validation[key] < 60
    assert card["training"]["steps"] == 3 and card["config"]["name"] == "tiny"
    # The picked frames are the sharp ones: every pick scores above the example blurry frame.
    assert min(p["score"] for p in adapted["picked"]) > adapted["example"]["score"]
    sheet, picture = Path(adapted["contact_sheet"]), Path(adapted["before_after"])
    for png in (sheet, picture):
        image = cv2.imread(str(png))
        assert image is not None and image.shape[0] > 50
    side_by_side = cv2.imread(str(picture))
    assert side_by_side is not None and side_by_side.shape[1] > 3 * 100  # blurry | starting | adapted

    # A second run into the same folder must be asked for; --resume continues to more steps.
    again = CliRunner().invoke(_app(), ["adapt", str(camera_clip), "--out", str(out), "--init", str(tiny_weights)])
    assert again.exit_code == 2 and "exists" in again.output
    resumed = CliRunner().invoke(
        _app(),
        [
            "adapt",
            str(camera_clip),
            "--out",
            str(out),
            "--init",
            str(tiny_weights),
            "--steps",
            "5",
            "--resume",
            "--device",
            "cpu",
        ],
    )
    assert resumed.exit_code == 0, resumed.output
    assert read_card(out)["adapted"]["steps"] == 5
    assert read_card(out)["adapted"]["picked"] == adapted["picked"]  # no rescan, the same frames

    # `run --weights` takes the adapted weights as any weights.
    deblurred = tmp_path / "deblurred.mp4"
    ran = run_cli(
        "run",
        str(camera_clip),
        str(deblurred),
        "--weights",
        str(out),
        "--backend",
        "torch",
        "--report",
        str(tmp_path / "report.json"),
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames_out"] == 30 and "tiny" in json.dumps(report["model"])


@pytest.mark.slow
def test_ctrl_c_writes_the_weights_so_far(tmp_path: Path, camera_clip: Path, tiny_weights: Path) -> None:
    out, work = tmp_path / "cam.safetensors", tmp_path / "run"
    command = "import sys; from tests.test_adapt import _app; _app()(prog_name='streamdeblur')"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            command,
            "adapt",
            str(camera_clip),
            "--out",
            str(out),
            "--init",
            str(tiny_weights),
            "--frames",
            "6",
            "--steps",
            "100000",
            "--work",
            str(work),
            "--device",
            "cpu",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (work / "metrics.jsonl").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the loop opens its metrics file just before the first step
        time.sleep(2)
        proc.send_signal(signal.SIGINT)  # only the child this test started
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "continue with --resume" in stderr
    card = read_card(out)["adapted"]
    assert card["interrupted"] and not card["finished"] and 0 < card["steps"] < 100000
    assert load_checkpoint(out).cfg.name == "tiny"
