"""`--still-camera` (window/still_camera.py): told the camera is fixed, a windowed model's window
is not aligned and each neighbour is refused where something moved on its own, so a plain
scene's moving object is not laid where a neighbour had it; the live window model, which it
measured worse, and single-frame models are left as they are."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from streamdeblur.inference.spec import BackendSpec
from streamdeblur.models import load_model_config
from streamdeblur.pipeline.job import RunOptions, run_job
from streamdeblur.registry import default_model, shipped_model
from streamdeblur.training.scoring import deblur_clip
from streamdeblur.window.alignment import align_window
from streamdeblur.window.assembly import stack_window
from streamdeblur.window.still_camera import assembly_config
from tests.media import frame_times, make_clip

SIZE = 128
BAR_ROWS = slice(56, 72)


def _bar_columns(index: int) -> slice:
    return slice(20 + 24 * index, 32 + 24 * index)


def _plain_wall(index: int) -> np.ndarray:
    """The coin's case: a plain wall under fresh grain of up to 2 levels (no texture to tell a
    still camera by), and a bright bar that moves 24 px a frame on its own."""
    grain = np.random.default_rng(100 + index).integers(-2, 3, (SIZE, SIZE, 3))
    frame = np.clip(np.full((SIZE, SIZE, 3), 150) + grain, 0, 255).astype(np.uint8)
    frame[BAR_ROWS, _bar_columns(index)] = 250
    return frame


def _fused_window_cfg():  # type: ignore[no-untyped-def]
    return replace(load_model_config("tiny-k3"), align="global", fuse="fba+window")


def test_without_alignment_a_neighbour_is_refused_only_where_told_to() -> None:
    frames = [_plain_wall(i) for i in (1, 0, 2)]  # network order: the frame first
    as_they_are = align_window(frames, "none", (0, -1, 1))
    assert all(a is b for a, b in zip(as_they_are, frames))
    refused = align_window(frames, "none", (0, -1, 1), refuse=True)
    assert refused[0] is frames[0]
    for neighbour, kept in zip(frames[1:], refused[1:]):
        here = (BAR_ROWS, _bar_columns(1))
        assert np.array_equal(kept[here], frames[0][here])  # the frame's bar: its own pixels
        assert np.array_equal(kept[:24, :24], neighbour[:24, :24])  # the wall: the neighbour's, grain and all


def test_the_fused_frame_lays_no_bar_where_a_neighbour_had_it() -> None:
    """Where the frame shows wall and a neighbour had the bar, the fused frame (the window's
    first slot) shows wall with --still-camera, and a ghost of the bar without refusal."""
    frames = [_plain_wall(i) for i in (1, 0, 2)]
    told = assembly_config(_fused_window_cfg(), still_camera=True)
    assert told is not None and told.align == "none" and told.refuse_mismatch
    ghost_place = (BAR_ROWS, _bar_columns(0))  # the earlier neighbour's bar; wall in the frame
    wall = frames[0][ghost_place].astype(np.float32)
    with_option = stack_window(frames, told)[..., :3][ghost_place].astype(np.float32)
    without_refusal = stack_window(frames, replace(told, refuse_mismatch=False))[..., :3][ghost_place]
    assert np.abs(with_option - wall).max() <= 8
    assert np.abs(without_refusal.astype(np.float32) - wall).mean() > 20


def test_it_applies_to_the_video_model_and_leaves_the_others_be() -> None:
    video = load_model_config(default_model("clip").name)
    assert assembly_config(video, still_camera=False) is video
    told = assembly_config(video, still_camera=True)
    assert told is not None and (told.align, told.refuse_mismatch, told.refuse_still) == ("none", True, False)
    changed = {"align": video.align, "refuse_mismatch": video.refuse_mismatch, "refuse_still": video.refuse_still}
    assert replace(told, **changed) == video  # nothing else
    live = shipped_model("deepdeblur-4scale-k3-causal-fba-window")
    assert live is not None and not live.still_camera
    live_cfg = load_model_config(live.name)
    assert assembly_config(live_cfg, still_camera=True) is live_cfg
    single = load_model_config(default_model("picture").name)
    assert assembly_config(single, still_camera=True) is single
    own = replace(video, name="my-fine-tune")  # weights not in the registry: a windowed model takes it
    told_own = replace(own, align="none", refuse_mismatch=True, refuse_still=False)
    assert assembly_config(own, still_camera=True) == told_own


def test_scoring_assembles_as_the_run_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """eval --still-camera: deblur_clip assembles each window with the option's config (here
    the fused slot handed back as the "network's" output)."""
    import streamdeblur.training.scoring as scoring

    class Unaligned:
        model_config = replace(_fused_window_cfg(), align="none")

    monkeypatch.setattr(scoring, "_deblur", lambda backend, pixels: pixels[..., :3].astype(np.float32) / 255)
    frames = [_plain_wall(i) for i in range(3)]
    told = deblur_clip(Unaligned(), frames, still_camera=True)  # type: ignore[arg-type]
    untold = deblur_clip(Unaligned(), frames)  # type: ignore[arg-type]
    ghost_place = (BAR_ROWS, _bar_columns(0))  # frame 1 shows wall where frame 0 had the bar
    wall = frames[1][ghost_place].astype(np.float32)
    assert np.abs(told[1][ghost_place] * 255 - wall).max() <= 8
    assert np.abs(untold[1][ghost_place] * 255 - wall).mean() > 20


def test_the_flag_reaches_the_spec_and_eval_keeps_cards_as_they_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from streamdeblur.cli import app

    seen = {}
    monkeypatch.setattr("streamdeblur.cli._execute", lambda opts, quiet: seen.update(opts=opts))
    result = CliRunner().invoke(app, ["run", "in.mp4", "out.mp4", "--still-camera"])
    assert result.exit_code == 0, result.output
    assert seen["opts"].spec.still_camera is True
    result = CliRunner().invoke(app, ["eval", ".", "--model", "deepdeblur-4scale", "--card", "x", "--still-camera"])
    assert result.exit_code == 2 and "--still-camera is for scoring" in result.output


@pytest.mark.parametrize(
    ("weights", "applied"),
    [("deepdeblur-4scale-k5-fba-window-gate-lean", True), ("deepdeblur-4scale-k3-causal-fba-window", False)],
)
def test_run_says_whether_it_applied(
    media_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, weights: str, applied: bool
) -> None:
    clip = make_clip("cfr_aac", media_dir)
    out = tmp_path / "out.mp4"
    spec = BackendSpec(backend="torch", device="cpu", precision="fp32", weights=weights, still_camera=True)
    with caplog.at_level(logging.INFO, logger="streamdeblur"):
        report = run_job(RunOptions(input=str(clip), output=str(out), spec=spec, progress=False))
    assert report.still_camera is applied
    assert report.frames_in == report.frames_out == len(frame_times(clip))
    assert any("--still-camera:" in r.getMessage() for r in caplog.records)
    assert ("not used with" in caplog.text) is not applied


@pytest.mark.parametrize("still_camera", [False, True])
def test_a_clip_told_nothing_hears_of_the_flag(
    media_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, still_camera: bool
) -> None:
    """Run on a clip with the default video model: the log names --still-camera for a fixed
    camera, and only where it was not given."""
    clip = make_clip("cfr_aac", media_dir)
    spec = BackendSpec(backend="torch", device="cpu", precision="fp32", blur="motion", still_camera=still_camera)
    with caplog.at_level(logging.INFO, logger="streamdeblur"):
        report = run_job(RunOptions(input=str(clip), output=str(tmp_path / "out.mp4"), spec=spec, progress=False))
    assert report.model == "deepdeblur-4scale-k5-fba-window-gate-lean"
    assert ("a fixed camera (surveillance, a tripod): add --still-camera" in caplog.text) is not still_camera


def test_many_streams_assemble_each_window_as_told(media_dir: Path, tmp_path: Path) -> None:
    """`live` with --input/--output pairs and --still-camera: one model, each stream's window
    assembled without alignment, and the report says so."""
    import json

    from tests.conftest import run_cli

    clip = make_clip("cfr_aac", media_dir)
    outs, report = [tmp_path / "a.mp4", tmp_path / "b.mp4"], tmp_path / "report.json"
    result = run_cli(
        "live", "--input", str(clip), "--output", str(outs[0]), "--input", str(clip), "--output", str(outs[1]),
        "--weights", "deepdeblur-4scale-k5-fba-window-gate-lean", "--backend", "torch", "--precision", "fp32",
        "--still-camera", "--report", str(report),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "--still-camera: neighbours are not aligned" in result.stderr
    data = json.loads(report.read_text())
    assert data["still_camera"] is True
    assert [s["frames_out"] for s in data["streams"]] == [len(frame_times(clip))] * 2


def test_bench_times_the_window_as_the_run_assembles_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench --still-camera: the window's cost and the report's alignment are the option's."""
    import streamdeblur.bench as bench

    timed: list[object] = []
    real = bench._alignment_seconds
    monkeypatch.setattr(bench, "_alignment_seconds", lambda cfg, *a, **k: timed.append(cfg) or real(cfg, *a, **k))
    spec = BackendSpec(backend="torch", device="cpu", precision="fp32", compile=False, still_camera=True)
    result = bench.run_bench(96, 64, spec, config="tiny-k3", frames=8, seconds=0.2)
    assert [(c.align, c.refuse_mismatch) for c in timed] == [("none", True)]  # type: ignore[attr-defined]
    assert result["alignment"] == "none" and result["still_camera"] is True
    with_window = result["pipeline_fps"] / result["model_with_alignment_fps"]
    assert result["pipeline_vs_model_with_alignment"] == pytest.approx(with_window, rel=0.01)
