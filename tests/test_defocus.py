"""Defocus blur: the generator, its data plumbing, and `--blur` choosing the model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamdeblur.synthetic.defocus import DefocusRecipe, disc_kernel, gaussian_kernel, render_defocus_pair
from streamdeblur.training.metrics import psnr
from tests.conftest import run_cli_here


def test_a_disc_kernel_is_a_normalised_disc_and_a_cats_eye_cuts_it() -> None:
    disc = disc_kernel(4.0)
    assert disc.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(disc, disc.T) and np.allclose(disc, disc[::-1])  # round
    centre = disc.shape[0] // 2
    assert disc[centre, centre + 3] > 0 and disc[centre, centre + 5] == 0  # radius 4: edge between 4 and 5
    cut = disc_kernel(4.0, (0.6, 0.0))  # vignetted: a lens-shaped aperture, narrower than tall
    middle = cut.shape[0] // 2
    assert cut[middle, middle + 2] > 0 and cut[middle, middle - 2] > 0
    assert cut[middle, middle + 4] == 0 and cut[middle - 4, middle] > 0
    # Centred on its centroid, as every kernel: an off-centre kernel would shift the blurry
    # picture against its target (by up to 0.45 of the radius before this was fixed).
    for kernel in (cut, disc_kernel(5.5, (0.5, -0.7))):
        ys, xs = np.mgrid[: kernel.shape[0], : kernel.shape[1]] - kernel.shape[0] // 2
        assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
        assert abs(float((kernel * xs).sum())) < 0.02 and abs(float((kernel * ys).sum())) < 0.02
    assert gaussian_kernel(2.0).sum() == pytest.approx(1.0, abs=1e-5)


def test_defocus_pairs_are_seeded_and_blur_grows_with_the_kernel() -> None:
    def pair(seed: int, recipe: DefocusRecipe) -> tuple[np.ndarray, np.ndarray]:
        made = render_defocus_pair(np.random.default_rng(seed), 64, 64, recipe, None)
        return made.blurry, made.sharp

    clean = DefocusRecipe(h264_probability=0.0, varying_probability=0.0)
    first, again = pair(3, clean), pair(3, clean)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    sharp_only = DefocusRecipe(kernel_weights=(0, 0, 0, 1), h264_probability=0.0)
    small = DefocusRecipe(kernel_weights=(1, 0, 0, 0), disc_radius=(1.0, 1.0), h264_probability=0.0)
    large = DefocusRecipe(kernel_weights=(1, 0, 0, 0), disc_radius=(5.0, 5.0), h264_probability=0.0)
    scores = [np.mean([psnr(*pair(s, r)) for s in range(6)]) for r in (sharp_only, small, large)]
    assert scores[0] > scores[1] > scores[2] + 3  # sharp (noise only), then ever softer


def test_a_sharp_picture_can_be_its_own_target_grain_and_codec_included() -> None:
    """sharp_target "input": a sharp picture's target is what the camera gave (nothing to undo),
    so the network learns to hand sharp pictures through; blurred pictures keep clean targets."""
    from streamdeblur.errors import BadUsage
    from streamdeblur.training.recipe import DataSpec

    def pair(kernels: tuple[float, ...], target: str) -> tuple[np.ndarray, np.ndarray]:
        recipe = DefocusRecipe(kernel_weights=kernels, sharp_target=target, h264_probability=1.0)  # type: ignore[arg-type]
        made = render_defocus_pair(np.random.default_rng(5), 64, 64, recipe, None)
        return made.blurry, made.sharp

    blurry, target = pair((0, 0, 0, 1), "input")
    assert np.array_equal(blurry, target)
    blurry, clean = pair((0, 0, 0, 1), "clean")
    assert not np.array_equal(blurry, clean)  # the clean picture, before noise and codec
    blurry, target = pair((1, 0, 0, 0), "input")
    assert psnr(blurry, target) < 35  # a blurred picture's target stays the clean one
    with pytest.raises(BadUsage, match="sharp_target must be clean or input"):
        DataSpec(blur_type="defocus", defocus={"sharp_target": "noisy"}).pair_recipe()


def test_synth_writes_defocus_pairs_with_their_kernels_and_eval_groups_by_them(tmp_path: Path) -> None:
    from streamdeblur.training.scoring import _groups, _synth_record
    from streamdeblur.training.synth_dataset import write_synthetic_set

    write_synthetic_set(tmp_path, 8, 32, 32, seed=1, held_out=True, blur="defocus")
    record = json.loads((tmp_path / "synth.json").read_text())
    assert record["command"].endswith("--blur defocus")
    facts = list(record["pairs"].values())
    assert {f["kernel"] for f in facts} <= {"disc", "gaussian", "soft-disc", "sharp"}
    paths = [tmp_path / p for p in record["pairs"]]
    groups = _groups(tmp_path, _synth_record(tmp_path), paths, [20.0] * 8, [25.0] * 8)
    kernels = {name: g for name, g in groups.items() if name.endswith("kernel")}
    assert kernels and sum(g.count for g in kernels.values()) == 8


def test_defocus_is_for_pictures_and_single_frame_models() -> None:
    from streamdeblur.errors import BadUsage
    from streamdeblur.training.synth_dataset import write_synthetic_set

    with pytest.raises(BadUsage, match="does not change from frame to frame"):
        write_synthetic_set(Path("/nonexistent"), 2, 32, 32, frames=4, blur="defocus")
    result = run_cli_here("synth", "/tmp/never-written", "--blur", "lens")
    assert result.returncode == 2 and "--blur must be motion or defocus" in result.stderr


def test_a_recipe_asks_for_defocus_pairs_and_checks_its_keys() -> None:
    from streamdeblur.errors import BadUsage
    from streamdeblur.synthetic.defocus import DefocusRecipe
    from streamdeblur.training.recipe import DataSpec, TrainRecipe

    spec = DataSpec(blur_type="defocus", defocus={"disc_radius": [2, 3]}, blur={"jpeg_probability": 0.0})
    recipe = spec.pair_recipe()
    assert isinstance(recipe, DefocusRecipe) and recipe.disc_radius == (2, 3)
    assert recipe.degrade.jpeg_probability == 0.0  # noise and codec come from `blur`, as for motion
    with pytest.raises(BadUsage):
        TrainRecipe(name="x", data=DataSpec(blur_type="defocus", defocus={"radius": 3}))
    with pytest.raises(BadUsage, match="motion or defocus"):
        TrainRecipe(name="x", data=DataSpec(blur_type="lens"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--blur", "lens"], "--blur must be motion, defocus or auto"),
        (["--blur", "defocus", "--weights", "deepdeblur-light"], "with --weights, leave --blur out"),
    ],
)
def test_blur_option_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_cli_here("run", str(tmp_path / "in.mp4"), str(tmp_path / "out.mp4"), *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_blur_defocus_picks_the_defocus_model_for_every_input(tmp_path: Path) -> None:
    from streamdeblur.inference.spec import BackendSpec
    from streamdeblur.registry import default_model, shipped_model

    model = shipped_model("deepdeblur-defocus")
    assert model is not None and model.blur == "defocus" and model.weights.is_file()
    for kind in ("picture", "clip", "live"):
        assert default_model(kind, "defocus") == model
        chosen = BackendSpec(blur="defocus").for_input(kind)
        assert chosen.weights == model.name and chosen.blur == "motion"  # the weights name it from here on
    assert default_model("clip") != model  # the motion defaults stay


def test_run_with_blur_defocus_records_it(tmp_path: Path) -> None:
    import cv2

    from tests.conftest import run_cli

    picture = tmp_path / "soft.png"
    pair = render_defocus_pair(np.random.default_rng(2), 64, 96, DefocusRecipe(kernel_weights=(1, 0, 0, 0)), None)
    cv2.imwrite(str(picture), np.round(pair.blurry[..., ::-1] * 255).astype(np.uint8))
    report = tmp_path / "report.json"
    result = run_cli("run", str(picture), str(tmp_path / "sharp.png"), "--blur", "defocus", "--report", str(report))
    assert result.returncode == 0, result.stderr
    facts = json.loads(report.read_text())
    assert facts["blur"] == "defocus" and "deepdeblur-defocus" in facts["model"]


def test_a_defocus_model_s_card_says_it_was_trained_on_defocus() -> None:
    from streamdeblur.training.loop import _card
    from streamdeblur.training.recipe import DataSpec, TrainRecipe

    for blur_type, says in (("defocus", "synthetic defocus"), ("motion", "synthetic blur")):
        recipe = TrainRecipe(name="x", model="deepdeblur-light", data=DataSpec(blur_type=blur_type))
        assert _card(recipe, 1, True, 1.0, None)["training"]["data"].startswith(says)
