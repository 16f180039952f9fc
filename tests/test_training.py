"""Training: data layouts, the loop (loss falls, exact resume, torchrun/DDP), evaluation."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from streamdeblur.errors import BadInput
from streamdeblur.models import load_model_config
from streamdeblur.training.datasets import find_pairs
from streamdeblur.training.loop import METRICS_FILE, train
from streamdeblur.training.metrics import psnr
from streamdeblur.training.recipe import load_recipe, recipe_from_dict
from tests.conftest import run_cli

TINY_RECIPE = {
    "name": "tiny-test",
    "model": "tiny",
    "data": {"kind": "synthetic", "patch_size": 32, "photos": False},
    "batch_size": 4,
    "steps": 40,
    "lr": 0.002,
    "workers": 0,
    "log_every": 1,
    "eval_every": 20,
    "checkpoint_every": 10,
    "val_count": 2,
    "val_size": 32,
    "threads": 1,
}


def _losses(run: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run / METRICS_FILE).read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if "loss" in r}


@pytest.mark.slow
def test_loss_falls_on_synthetic_data(tmp_path: Path) -> None:
    result = train(recipe_from_dict(TINY_RECIPE), tmp_path / "run")
    assert result.finished and result.step == 40
    losses = _losses(tmp_path / "run")
    assert np.mean([losses[s] for s in range(31, 41)]) < 0.8 * np.mean([losses[s] for s in range(1, 11)])
    assert (tmp_path / "run" / "model.safetensors").exists()


@pytest.mark.slow
def test_stop_and_resume_reproduces_the_same_losses(tmp_path: Path) -> None:
    recipe = {**TINY_RECIPE, "steps": 16}
    train(recipe_from_dict(recipe), tmp_path / "straight")
    paused = train(recipe_from_dict(recipe), tmp_path / "resumed", until_step=8)
    assert paused.step == 8 and not paused.finished
    resumed = train(recipe_from_dict(recipe), tmp_path / "resumed", resume=True)
    assert resumed.step == 16 and resumed.finished
    straight, split = _losses(tmp_path / "straight"), _losses(tmp_path / "resumed")
    assert sorted(split) == list(range(1, 17))  # steps 9.. continue from 8, none repeated
    for step in range(1, 17):
        assert split[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-7), step


def test_a_time_limit_stops_the_run_with_a_checkpoint_that_resumes(tmp_path: Path) -> None:
    recipe = recipe_from_dict({**TINY_RECIPE, "steps": 1_000_000, "checkpoint_every": 1_000_000})
    paused = train(recipe, tmp_path / "run", minutes=0.01)
    assert not paused.finished and 0 < paused.step < 1_000_000
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["step"] == paused.step  # written on stopping, not only every checkpoint_every
    resumed = train(recipe, tmp_path / "run", resume=True, until_step=paused.step + 2)
    assert resumed.step == paused.step + 2


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_process_group_stops_with_weights_and_a_checkpoint(
    sig: signal.Signals, tmp_path: Path
) -> None:
    """Ctrl-C reaches the data loader's workers too (one process group): they leave the stop to
    the trainer, which ends after its step with the weights written, rather than failing on a
    worker that died."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**TINY_RECIPE, "steps": 1_000_000, "checkpoint_every": 1_000_000, "workers": 1}))
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "streamdeblur", "train", str(recipe), "--out", str(run), "-q"],
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ((run / METRICS_FILE).exists() and (run / METRICS_FILE).read_text().count("loss") >= 3):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.2)
    os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=120)
    assert "error" not in stderr.lower(), stderr
    assert (run / "model.safetensors").exists() and (run / "checkpoints" / "last.pt").exists()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # and no worker outlives it
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail("a data loader worker outlived the trainer")


def test_wallpaper_photos_are_gathered_downscaled_or_named_as_missing(tmp_path: Path) -> None:
    from streamdeblur.training.wallpapers import gather_photos

    rng = np.random.default_rng(0)
    big, small = tmp_path / "big.jpg", tmp_path / "small.jpg"
    cv2.imwrite(str(big), rng.integers(0, 256, (1200, 1800, 3), dtype=np.uint8))
    cv2.imwrite(str(small), rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))
    written = gather_photos(tmp_path / "out", max_side=900, sources=(str(big), str(small)))
    assert [p.name for p in written] == ["big.png", "small.png"]
    assert cv2.imread(str(written[0])).shape == (600, 900, 3) and cv2.imread(str(written[1])).shape == (300, 400, 3)
    with pytest.raises(BadInput, match="apt-get install mate-backgrounds"):
        gather_photos(tmp_path / "none", sources=(str(tmp_path / "absent.jpg"),))
    assert not (tmp_path / "none").exists()


def test_adversarial_term_trains_and_resumes(tmp_path: Path) -> None:
    recipe = {**TINY_RECIPE, "steps": 6, "adversarial_weight": 1e-4, "checkpoint_every": 3}
    train(recipe_from_dict(recipe), tmp_path / "run", until_step=3)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert "discriminator" in state and "disc_optimizer" in state
    result = train(recipe_from_dict(recipe), tmp_path / "run", resume=True)
    assert result.finished
    records = [json.loads(line) for line in (tmp_path / "run" / METRICS_FILE).read_text().splitlines()]
    adversarial = [r["adversarial"] for r in records if "adversarial" in r]
    assert len(adversarial) == 6 and all(a > 0 for a in adversarial)


def test_fine_tuning_starts_from_given_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from streamdeblur.errors import BadInput

    base = train(recipe_from_dict({**TINY_RECIPE, "steps": 3}), tmp_path / "base")
    start = tmp_path / "base" / "model.safetensors"
    # lr 0: the run changes nothing, so its model must be exactly the weights it started from
    tuned = train(recipe_from_dict({**TINY_RECIPE, "steps": 2, "lr": 0.0, "init": str(start)}), tmp_path / "tuned")
    assert base.finished and tuned.finished
    before, after = load_file(str(start)), load_file(str(tmp_path / "tuned" / "model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(BadInput, match="not found"):
        train(
            recipe_from_dict({**TINY_RECIPE, "steps": 1, "init": str(tmp_path / "absent.safetensors")}),
            tmp_path / "absent",
        )


@pytest.mark.slow
def test_train_init_shipped_fine_tunes_the_default_weights(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from streamdeblur.models import DEFAULT_WEIGHTS

    default = tmp_path / "default.yaml"
    default.write_text(
        yaml.safe_dump({**TINY_RECIPE, "model": "deepdeblur-4scale", "steps": 1, "lr": 0.0, "batch_size": 1})
    )
    result = run_cli("train", str(default), "--out", str(tmp_path / "run"), "--init", "shipped", "-q")
    assert result.returncode == 0, result.stderr
    shipped, tuned = load_file(str(DEFAULT_WEIGHTS)), load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.equal(shipped[k], tuned[k]) for k in shipped)

    tiny = tmp_path / "tiny.yaml"  # the shipped network is the 4-scale one: a tiny run cannot start from it
    tiny.write_text(yaml.safe_dump({**TINY_RECIPE, "steps": 1}))
    result = run_cli("train", str(tiny), "--out", str(tmp_path / "wrong"), "--init", "shipped", "-q")
    assert result.returncode == 2 and "network; the recipe trains tiny" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_finished_run_is_not_overwritten(tmp_path: Path) -> None:
    from streamdeblur.errors import BadUsage

    recipe = recipe_from_dict({**TINY_RECIPE, "steps": 2})
    train(recipe, tmp_path / "run")
    with pytest.raises(BadUsage, match="--resume"):
        train(recipe, tmp_path / "run")


def test_mixed_precision_is_fp16_on_cuda_and_bf16_only_on_cpus_that_have_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from streamdeblur.training.mixed_precision import mixed_precision_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert mixed_precision_dtype(False, cuda) is None and mixed_precision_dtype(False, cpu) is None
    assert mixed_precision_dtype(True, cuda) == torch.float16
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert mixed_precision_dtype(True, cpu) == torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert mixed_precision_dtype(True, cpu) is None  # emulated bf16 would be slower than fp32


@pytest.mark.parametrize("faster", ["bf16", "fp32"])
def test_cpu_training_runs_in_the_precision_it_timed_faster_as_its_card_records(
    faster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Native bf16 is not faster on every CPU: `amp` times bf16 against fp32 once per machine,
    model and batch, and trains in the faster (here the timing is faked, the training real)."""
    from streamdeblur.models import read_card
    from streamdeblur.training import mixed_precision

    monkeypatch.setenv("STREAMDEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(mixed_precision, "cpu_has_native_bf16", lambda: True)
    timed: list[str] = []

    def seconds(model: object, shape: tuple[int, int, int], precision: str) -> float:
        timed.append(precision)
        return 1.0 if precision == faster else 2.0

    monkeypatch.setattr(mixed_precision, "_step_seconds", seconds)
    expected = {  # amp -> (the card's precision, dtypes of conv outputs; validation runs in fp32)
        False: ("fp32", {torch.float32}),
        True: ("bf16 mixed", {torch.bfloat16, torch.float32}) if faster == "bf16" else ("fp32", {torch.float32}),
    }
    for amp, (precision, conv_dtypes) in [*expected.items(), (True, expected[True])]:  # amp twice: timed once
        seen: set[torch.dtype] = set()
        hook = torch.nn.modules.module.register_module_forward_hook(
            lambda module, args, out, seen=seen: seen.add(out.dtype) if isinstance(module, torch.nn.Conv2d) else None
        )
        run = tmp_path / f"{amp}-{len(timed)}"
        try:
            train(recipe_from_dict({**TINY_RECIPE, "steps": 2, "amp": amp}), run)
        finally:
            hook.remove()
        assert read_card(run / "model.safetensors")["training"]["precision"] == precision
        assert seen == conv_dtypes, amp
    assert timed == ["bf16", "fp32"], "measured once, then read back from the cache"


def test_the_timing_probe_leaves_the_model_and_the_random_state_alone() -> None:
    from streamdeblur.models import DeepDeblur, load_model_config
    from streamdeblur.training.mixed_precision import _step_seconds

    model = DeepDeblur(load_model_config("deepdeblur-light"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng_before = torch.get_rng_state()
    assert _step_seconds(model, (1, 32, 32), "fp32") > 0
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    # A windowed network is timed on its own input: 3 channels per input slot, 3 restored.
    assert _step_seconds(DeepDeblur(load_model_config("deepdeblur-4scale-k5-fba-window")), (1, 16, 16), "fp32") > 0


@pytest.mark.slow
def test_torchrun_two_ranks_only_rank_zero_writes(tmp_path: Path) -> None:
    recipe_path = tmp_path / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump({**TINY_RECIPE, "steps": 6, "checkpoint_every": 3, "eval_every": 3}))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [*torchrun, "-m", "streamdeblur", "train", str(recipe_path), "--out", str(tmp_path / "run"), "-q"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    assert sorted(_losses(run)) == list(range(1, 7))  # one line per step: one writer
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.pt"]
    assert len(list((run / "tensorboard").iterdir())) == 1
    assert (run / "model.safetensors").exists()


def _write_pair(folder: Path, name: str, image: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / name), image)


def test_layouts_are_found(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    for seq in ("GOPR0001", "GOPR0002"):
        for kind in ("blur", "blur_gamma", "sharp"):
            _write_pair(tmp_path / "gopro" / "GOPRO_Large" / "train" / seq / kind, "000001.png", image)
    assert len(find_pairs(tmp_path / "gopro", "train")) == 2
    assert find_pairs(tmp_path / "gopro", "train", "blur_gamma")[0][0].parent.name == "blur_gamma"

    for kind in ("train_blur", "train_sharp"):
        _write_pair(tmp_path / "reds" / "train" / kind / "000", "00000000.png", image)
    assert len(find_pairs(tmp_path / "reds", "train")) == 1

    for kind in ("blur", "sharp"):
        _write_pair(tmp_path / "plain" / kind, "a.png", image)
    assert len(find_pairs(tmp_path / "plain")) == 1


def test_layout_errors_are_clear(tmp_path: Path) -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    _write_pair(tmp_path / "plain" / "blur", "a.png", image)
    _write_pair(tmp_path / "plain" / "sharp", "b.png", image)
    with pytest.raises(BadInput, match="unmatched"):
        find_pairs(tmp_path / "plain")
    (tmp_path / "nothing").mkdir()
    with pytest.raises(BadInput, match="not a GoPro"):
        find_pairs(tmp_path / "nothing")


def test_synth_writes_a_set_that_trains_and_evaluates(tmp_path: Path) -> None:
    result = run_cli("synth", str(tmp_path / "set"), "--count", "3", "--size", "48x40", "-q")
    assert result.returncode == 0, result.stderr
    pairs = find_pairs(tmp_path / "set", "train")
    assert len(pairs) == 3
    assert cv2.imread(str(pairs[0][0])).shape == (40, 48, 3)
    again = run_cli("synth", str(tmp_path / "again"), "--count", "3", "--size", "48x40", "-q")
    assert again.returncode == 0
    first_again = find_pairs(tmp_path / "again", "train")[0][0]
    assert first_again.read_bytes() == pairs[0][0].read_bytes()  # same seed, same set


@pytest.mark.slow
def test_eval_card_records_the_figures_and_how_to_reproduce_them(tmp_path: Path, tiny_weights: Path) -> None:
    from streamdeblur.models import read_card

    weights = tmp_path / "model.safetensors"
    shutil.copy(tiny_weights, weights)
    shutil.copy(tiny_weights.with_suffix(".json"), weights.with_suffix(".json"))  # its card
    assert run_cli("synth", str(tmp_path / "set"), "--count", "2", "--size", "48x40", "-q").returncode == 0
    result = run_cli(
        "eval",
        str(tmp_path / "set"),
        "--model",
        str(weights),
        "--backend",
        "torch",
        "--split",
        "train",
        "--card",
        "mine",
    )
    assert result.returncode == 0, result.stderr
    scores, recorded = json.loads(result.stdout), read_card(weights)["quality"]["mine"]
    assert recorded["output_psnr"] == pytest.approx(scores["output_psnr"], abs=1e-4) and recorded["count"] == 2
    assert recorded["data_made_by"]["count"] == 2 and "--split train" in recorded["command"]
    # the precision it was scored in, in the command that reproduces it; weights not shipped go by path
    assert (
        f"--precision {recorded['precision']}" in recorded["command"] and f"--model {weights} " in recorded["command"]
    )
    assert "pairs" not in recorded["data_made_by"]  # the per-pair facts stay in the set's synth.json
    # Do no harm: the tiny model's output for a sharp input, against it (finite: not a passthrough).
    assert 0 < scores["sharp_in_psnr"] < math.inf and recorded["sharp_in_psnr"] == pytest.approx(
        scores["sharp_in_psnr"], abs=1e-4
    )


@pytest.mark.slow
def test_eval_splits_a_synth_set_by_content_and_pan(tmp_path: Path) -> None:
    assert run_cli("synth", str(tmp_path / "set"), "--count", "12", "--size", "48x40", "-q").returncode == 0
    described = json.loads((tmp_path / "set" / "synth.json").read_text())["pairs"]
    assert len(described) == 12
    scores = _eval(tmp_path / "set")
    groups = scores["groups"]
    by_content = [groups[name] for name in ("photos", "procedural") if name in groups]
    by_pan = [g for name, g in groups.items() if name.startswith("pan ")]
    assert sum(g["count"] for g in by_content) == 12 and sum(g["count"] for g in by_pan) == 12
    photos = sum(1 for facts in described.values() if facts["photo"])
    assert groups.get("photos", {"count": 0})["count"] == photos
    # Each group's mean is over its own pairs: the count-weighted means give the overall one.
    weighted = sum(g["count"] * g["input_psnr"] for g in by_pan) / 12
    assert weighted == pytest.approx(scores["input_psnr"], rel=1e-9)
    assert math.isinf(scores["sharp_in_psnr"])  # passthrough returns the sharp input unchanged


def _eval(data: Path, *extra: str) -> dict:
    result = run_cli("eval", str(data), "--backend", "passthrough", "--split", "train", *extra)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_eval_of_an_image_against_itself_and_known_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    sharp = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    _write_pair(tmp_path / "same" / "blur", "x.png", sharp)
    _write_pair(tmp_path / "same" / "sharp", "x.png", sharp)
    same = _eval(tmp_path / "same")
    assert math.isinf(same["input_psnr"]) and same["input_ssim"] == pytest.approx(1.0)

    # Add exactly +-8 to every value (clipping avoided): MSE = (8/255)^2, so PSNR = 20 log10(255/8).
    base = rng.integers(20, 236, (64, 80, 3), dtype=np.uint8)
    noisy = (base.astype(int) + rng.choice([-8, 8], base.shape)).astype(np.uint8)
    _write_pair(tmp_path / "noisy" / "blur", "x.png", noisy)
    _write_pair(tmp_path / "noisy" / "sharp", "x.png", base)
    scores = _eval(tmp_path / "noisy", "--out", str(tmp_path / "report"))
    assert scores["input_psnr"] == pytest.approx(20 * math.log10(255 / 8), abs=1e-6)
    assert scores["output_psnr"] == pytest.approx(scores["input_psnr"])  # passthrough
    assert (tmp_path / "report" / "side_by_side_000.png").exists()


def test_shipped_recipes_parse() -> None:
    root = Path(__file__).resolve().parents[1] / "configs" / "train"
    recipes = sorted(root.glob("*.yaml"))
    assert recipes
    for path in recipes:
        load_recipe(path)


def test_every_named_photo_is_bundled_and_the_lists_do_not_overlap() -> None:
    """Photos come from scikit-image's own files (no download); held-out ones never train."""
    from streamdeblur.synthetic.scenes import HELD_OUT_PHOTOS, TRAIN_PHOTOS, load_photo

    assert not set(TRAIN_PHOTOS) & set(HELD_OUT_PHOTOS)
    for name in TRAIN_PHOTOS + HELD_OUT_PHOTOS:
        photo = load_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 128, name
        assert 0.0 <= photo.min() < photo.max() <= 1.0, name


def test_synthetic_target_is_the_centre_of_the_exposure() -> None:
    """Pure linear camera motion: the blur is centred on the sharp target, with no offset.

    The blurry image cannot show which way time ran, so a target taken off the exposure's
    centre (an even sub-frame count) would be a shift that no network can learn.
    """
    from streamdeblur.synthetic.blur import BlurRecipe, render_pair, subframe_count

    counts = {subframe_count(np.random.default_rng(seed), BlurRecipe()) for seed in range(200)}
    assert counts == {7, 9, 11, 13}
    linear_pan = BlurRecipe(
        max_rotation_deg=0.0,
        max_zoom=0.0,
        acceleration_fraction=0.0,
        shake_fraction=0.0,
        max_objects=0,
        max_read_noise=0.0,
        max_shot_noise=0.0,
        jpeg_probability=0.0,
    )
    pairs = []
    for seed in range(8):
        pair = render_pair(np.random.default_rng(seed), 192, 192, linear_pan)
        grey = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in (pair.blurry, pair.sharp)]
        (dx, dy), _ = cv2.phaseCorrelate(*grey)
        assert math.hypot(dx, dy) < 0.5, (seed, dx, dy)
        pairs.append(pair)
    # The recorded pan is the blur's length: the longest pan blurs most, the shortest least.
    shortest, longest = min(pairs, key=lambda p: p.pan_px), max(pairs, key=lambda p: p.pan_px)
    assert shortest.pan_px < 4 < 20 < longest.pan_px
    assert psnr(shortest.blurry, shortest.sharp) > psnr(longest.blurry, longest.sharp) + 6


def test_procedural_scenes_are_textured_not_flat() -> None:
    """A model trained on flat-coloured leaves learns to flatten real texture into blotches.

    Most pixels of a dead-leaves scene must differ from their neighbours (flat leaves left
    about 70 % unchanging), and the grain must fall off with frequency like natural texture
    rather than be white noise.
    """
    from streamdeblur.synthetic.scenes import dead_leaves, grain

    flat_shares = []
    for seed in range(8):
        image = dead_leaves(np.random.default_rng(seed), 160, 160)
        laplacian = np.abs(cv2.Laplacian(image.mean(axis=2), cv2.CV_32F))
        flat_shares.append(float((laplacian < 1e-4).mean()))
    assert np.mean(flat_shares) < 0.4, flat_shares

    field = grain(np.random.default_rng(0), 256, 256)
    assert abs(float(field.mean())) < 1e-3 and abs(float(field.std()) - 1.0) < 1e-3
    power = np.abs(np.fft.rfft2(field)) ** 2
    frequency = np.hypot(np.fft.fftfreq(256)[:, None], np.fft.rfftfreq(256)[None, :])
    coarse, fine = power[(frequency > 0) & (frequency < 0.05)].mean(), power[frequency > 0.25].mean()
    assert coarse > 100 * fine, (coarse, fine)


def test_soft_scenes_stay_soft_in_the_target() -> None:
    """Defocus is part of the scene, not of the blur: the target keeps it, so the network
    learns to remove motion blur without sharpening what is only soft."""
    from streamdeblur.synthetic.blur import BlurRecipe, render_pair

    still = BlurRecipe(
        max_translation=0.0,
        max_rotation_deg=0.0,
        max_zoom=0.0,
        max_objects=0,
        max_read_noise=0.0,
        max_shot_noise=0.0,
        jpeg_probability=0.0,
    )

    def detail(image: np.ndarray) -> float:
        return float(np.abs(cv2.Laplacian(image.mean(axis=2), cv2.CV_32F)).mean())

    for seed in range(4):
        crisp = render_pair(np.random.default_rng(seed), 128, 128, replace(still, soft_probability=0.0))
        soft = render_pair(np.random.default_rng(seed), 128, 128, replace(still, soft_probability=1.0))
        assert detail(soft.sharp) < 0.8 * detail(crisp.sharp), seed
        assert np.abs(soft.blurry - soft.sharp).max() <= 1.0 / 255, seed  # no motion: input = soft target


def test_clean_pairs_get_neither_noise_nor_compression() -> None:
    """clean_probability: a share of blurry frames exactly as the sensor averaged them."""
    from streamdeblur.synthetic.blur import BlurRecipe, degrade

    image = np.random.default_rng(0).uniform(0.2, 0.8, (64, 64, 3)).astype(np.float32)
    quantised = np.round(image * 255) / 255
    clean = [degrade(np.random.default_rng(k), image, BlurRecipe(clean_probability=1.0)) for k in range(4)]
    noisy = [degrade(np.random.default_rng(k), image, BlurRecipe(max_read_noise=0.02)) for k in range(4)]
    assert all(np.abs(c - quantised).max() < 1e-6 for c in clean)
    assert all(np.abs(n - quantised).max() > 2 / 255 for n in noisy)
    half = [
        degrade(np.random.default_rng(k), image, BlurRecipe(clean_probability=0.5, max_read_noise=0.02))
        for k in range(40)
    ]
    assert 8 <= sum(np.abs(h - quantised).max() < 1e-6 for h in half) <= 32


def test_a_recipe_sets_the_generator_ranges_and_unknown_ones_are_refused(tmp_path: Path) -> None:
    from streamdeblur.errors import BadUsage

    recipe = recipe_from_dict(
        {**TINY_RECIPE, "data": {**TINY_RECIPE["data"], "blur": {"clean_probability": 0.25, "jpeg_quality": [50, 60]}}}
    )
    blur = recipe.data.blur_recipe()
    assert blur.clean_probability == 0.25 and blur.jpeg_quality == (50, 60) and blur.max_translation == 32.0
    with pytest.raises(BadUsage, match="unknown keys clean_share"):
        recipe_from_dict({**TINY_RECIPE, "data": {**TINY_RECIPE["data"], "blur": {"clean_share": 0.25}}})
    # and the loop renders with them: no motion and all pairs clean means input = target
    still = {
        "max_translation": 0.0,
        "max_rotation_deg": 0.0,
        "max_zoom": 0.0,
        "max_objects": 0,
        "clean_probability": 1.0,
    }
    run = recipe_from_dict({**TINY_RECIPE, "steps": 2, "data": {**TINY_RECIPE["data"], "blur": still}})
    from streamdeblur.training.loop import _val_pairs

    pairs = _val_pairs(run, load_model_config(run.model), None)
    assert pairs and all(np.abs(blurry - sharp).max() <= 1.0 / 255 for blurry, sharp in pairs)


def _stripes(path: Path) -> None:
    """A sharp image of pure magenta and green stripes, colours no procedural scene is made of."""
    image = np.zeros((160, 200, 3), np.uint8)
    image[:, :] = (255, 0, 255)
    image[::8] = image[1::8] = image[2::8] = image[3::8] = (0, 255, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def _stripe_share(image: np.ndarray) -> float:
    magenta = (image[..., 0] > 200) & (image[..., 1] < 60) & (image[..., 2] > 200)
    green = (image[..., 0] < 60) & (image[..., 1] > 200) & (image[..., 2] < 60)
    return float((magenta | green).mean())


@pytest.mark.slow
def test_synthetic_blur_on_your_own_sharp_images(tmp_path: Path) -> None:
    """`synth --sharp DIR` and a recipe's `data.sharp_dir` render blur on the user's pictures."""
    from streamdeblur.training.loop import _photos

    _stripes(tmp_path / "mine" / "a.png")
    _stripes(tmp_path / "mine" / "nested" / "b.jpg")
    result = run_cli(
        "synth", str(tmp_path / "set"), "--count", "8", "--size", "64x64", "--sharp", str(tmp_path / "mine"), "-q"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "set" / "synth.json").read_text())
    assert sorted(Path(p).name for p in record["photos"]) == ["a.png", "b.jpg"]
    assert f"--sharp {tmp_path / 'mine'}" in record["command"]
    shares = [_stripe_share(cv2.imread(str(sharp))) for _, sharp in find_pairs(tmp_path / "set", "train")]
    assert max(shares) > 0.5 and min(shares) < 0.05  # some scenes are the user's, some procedural
    for (blur, _), share in zip(find_pairs(tmp_path / "set", "train"), shares):  # and synth.json says which
        photo = record["pairs"][str(blur.relative_to(tmp_path / "set"))]["photo"]
        assert (photo in ("a", "b")) == (share > 0.5), (blur, photo, share)

    spec = recipe_from_dict(
        {**TINY_RECIPE, "data": {"kind": "synthetic", "photos": True, "sharp_dir": str(tmp_path / "mine")}}
    ).data
    photos = _photos(spec)
    assert photos is not None and "astronaut" in photos and str(tmp_path / "mine" / "a.png") in photos

    (tmp_path / "empty").mkdir()
    (tmp_path / "misnamed").mkdir()
    (tmp_path / "misnamed" / "notes.png").write_text("not an image")
    for folder, message in (
        ("empty", "no images"),
        ("missing", "folder not found"),
        ("misnamed", "not a readable image"),
    ):
        bad = run_cli("synth", str(tmp_path / "bad"), "--count", "1", "--sharp", str(tmp_path / folder))
        assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert message in bad.stderr, bad.stderr


def test_recipes_and_model_configs_resolve_by_name_installed_or_not(monkeypatch: pytest.MonkeyPatch) -> None:
    """By name from the installed package, and from a plain checkout where streamdeblur.configs does not exist."""
    from importlib import resources

    from streamdeblur.errors import BadUsage
    from streamdeblur.models import config

    assert load_recipe("light-synthetic").model == "deepdeblur-light"
    with pytest.raises(BadUsage, match="unknown training recipe 'nope'; known: .*light-synthetic"):
        load_recipe("nope")

    def no_package(name: str) -> None:
        raise ModuleNotFoundError(name)

    monkeypatch.setattr(resources, "files", no_package)
    assert config.config_dir() == Path(__file__).resolve().parents[1] / "configs"
    assert load_recipe("long-per-scale").model == "deepdeblur-4scale"
    assert config.load_model_config("deepdeblur-4scale").n_scales == 4


def test_quiet_training_makes_no_progress_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train -q` and `adapt -q`: errors only, so no bar even on a terminal."""
    import tqdm

    def no_bar(*args: object, **kwargs: object) -> None:
        raise AssertionError("a progress bar was made")

    monkeypatch.setattr(tqdm, "tqdm", no_bar)
    result = train(recipe_from_dict({**TINY_RECIPE, "steps": 2}), tmp_path / "run", progress_bar=False)
    assert result.step == 2
    with pytest.raises(AssertionError, match="a progress bar was made"):
        train(recipe_from_dict({**TINY_RECIPE, "steps": 2}), tmp_path / "run2")


def test_every_shipped_recipe_starts_from_weights_of_its_own_network() -> None:
    """`init: shipped` is the default network, other shipped weights go by name: a recipe whose
    init does not fit its model would fail only when a user runs it. A windowed model may
    start from weights of the same network with another window or gate, or more ResBlocks;
    the training loop's own start (`_start_from`) decides."""
    from streamdeblur.models import DeepDeblur, load_model_config
    from streamdeblur.models.config import config_dir
    from streamdeblur.training.loop import _start_from

    for path in sorted((config_dir() / "train").glob("*.yaml")):
        recipe = load_recipe(path.stem)
        start = recipe.init_weights()
        if start is None:  # identity or default init
            continue
        assert start.is_file(), (path.stem, recipe.init)
        _start_from(DeepDeblur(load_model_config(recipe.model)), start)  # a one-line error where it does not fit


def test_synth_writes_clips_of_one_kind_of_shot_clean(tmp_path: Path) -> None:
    """`--kind still --clean`: every clip a still shot with no noise, JPEG or H.264 (crisp
    footage, to validate on), recorded in the command that writes the set again."""
    args = ("--count", "2", "--frames", "3", "--size", "48x40", "--kind", "still", "--clean", "-q")
    assert run_cli("synth", str(tmp_path / "set"), *args).returncode == 0
    record = json.loads((tmp_path / "set" / "synth.json").read_text())
    assert {p["kind"] for p in record["pairs"].values()} == {"still"}
    assert all(p["blur_px"] == 0 for p in record["pairs"].values())  # the camera did not move
    assert "--kind still --clean" in record["command"]
    # A still, clean shot of a scene whose objects stand still would be its own target; here
    # at least the background is: most pixels of each blurry frame equal the sharp frame's.
    for blurry, sharp in find_pairs(tmp_path / "set", "train"):
        same = np.all(cv2.imread(str(blurry)) == cv2.imread(str(sharp)), axis=2).mean()
        assert same > 0.5, (blurry, same)
    # Without --clean the same clips carry a camera's noise: far fewer pixels left as they were.
    assert run_cli("synth", str(tmp_path / "noisy"), *args[:8], "-q").returncode == 0
    noisy = [
        np.all(cv2.imread(str(b)) == cv2.imread(str(s)), axis=2).mean()
        for b, s in find_pairs(tmp_path / "noisy", "train")
    ]
    assert max(noisy) < 0.5, noisy


def test_synth_kind_is_a_one_line_error_where_it_cannot_apply(tmp_path: Path) -> None:
    for args in (("--kind", "shaky", "--frames", "3"), ("--kind", "still")):
        result = run_cli("synth", str(tmp_path / "set"), "--count", "1", "--size", "48x40", *args)
        assert result.returncode != 0 and "--kind" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_recipe_in_stages_runs_each_from_the_one_before(tmp_path: Path) -> None:
    """`stages`: overrides run one after another, each from the previous stage's weights; with
    --resume, finished stages are skipped."""
    from safetensors.torch import load_file

    from streamdeblur.errors import BadUsage
    from streamdeblur.models import read_card

    staged = {
        **TINY_RECIPE,
        "steps": 3,
        "eval_every": 3,
        "checkpoint_every": 3,
        "stages": [{"lr": 0.002}, {"steps": 2, "lr": 0.0, "data": {"patch_size": 16}}],
    }
    recipe = recipe_from_dict(staged)
    first, second = recipe.stage_recipes()
    assert (first.steps, second.steps, second.lr, second.data.patch_size, second.data.photos) == (3, 2, 0.0, 16, False)
    assert first.name == "tiny-test-stage-1" and not first.stages
    out = tmp_path / "run"
    result = train(recipe, out, progress_bar=False)
    assert result.finished and result.step == 2
    stage1, stage2 = out / "stage-1" / "model.safetensors", out / "stage-2" / "model.safetensors"
    assert read_card(stage1)["training"]["steps"] == 3 and read_card(stage2)["training"]["steps"] == 2
    assert read_card(stage2)["training"]["recipe"]["init"] == str(stage1)
    # The second stage learns nothing (lr 0): it ends where the first did, so it started there.
    weights1, weights2 = load_file(str(stage1)), load_file(str(stage2))
    assert all(torch.equal(weights1[k], weights2[k]) for k in weights1)
    assert (out / "model.safetensors").read_bytes() == stage2.read_bytes()
    # Resumed, every stage is done: nothing runs again.
    before = stage1.stat().st_mtime_ns, stage2.stat().st_mtime_ns
    assert train(recipe, out, resume=True, progress_bar=False).finished
    assert (stage1.stat().st_mtime_ns, stage2.stat().st_mtime_ns) == before
    with pytest.raises(BadUsage, match="stage 2"):
        recipe_from_dict({**staged, "stages": [{}, {"nope": 1}]})
    with pytest.raises(BadUsage, match="stop_at"):
        recipe_from_dict({**TINY_RECIPE, "stop_at": 99})
