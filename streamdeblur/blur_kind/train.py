"""Train the blur-kind classifier on the generators' own blur, and write it with its card.

    python -m streamdeblur.blur_kind.train --photos ~/.cache/streamdeblur/photos

Patches are rendered from seeds: sharp pictures with a camera's noise and codec, motion blur
(synthetic/blur.py, with at least 3 px of camera travel and no softness in the scene), and
defocus (synthetic/defocus.py, discs of 1.5 px radius or more, Gaussians of sigma 1 or more),
from procedural scenes, scikit-image's training photos and, with --photos, a folder of one's
own (the wallpapers `streamdeblur photos` gathers). Validation patches come from the held-out
photos and seeds training never uses. Only the patches' spectral features (spectrum.py) are
kept; the perceptron trains on them in a minute.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from streamdeblur.blur_kind.evaluate import CLIP_RECIPE, lens_blurred
from streamdeblur.blur_kind.net import CLASSES, PATCH, WEIGHTS, BlurKindNet, save_classifier
from streamdeblur.blur_kind.spectrum import spectral_features
from streamdeblur.synthetic.blur import BlurRecipe, render_pair
from streamdeblur.synthetic.defocus import DEFOCUS_PICK, DefocusRecipe, render_defocus_pair
from streamdeblur.synthetic.scenes import HELD_OUT_PHOTOS, TRAIN_PHOTOS, sharp_images
from streamdeblur.synthetic.sequences import render_sequence

SHARP = DefocusRecipe(kernel_weights=(0.0, 0.0, 0.0, 1.0))
MOTION = BlurRecipe(soft_probability=0.0)
MIN_TRAVEL_PX = 3.0
CLIP_SHARE = 0.5  # of each class's patches, made as a clip's frames are
SEED_ROOT = 45_000
HELD_OUT_ROOT = 45_999


def labelled_patch(rng: np.random.Generator, label: int, photos: tuple[str, ...]) -> np.ndarray:
    """A grey PATCH x PATCH picture of class CLASSES[label]: half as single pictures are made
    (synthetic/blur.py, synthetic/defocus.py), half as a clip's frames are (synthetic/sequences.py:
    the view warped across the scene, which softens it a little, then noise and codec)."""
    kind = CLASSES[label]
    if rng.uniform() < CLIP_SHARE:
        return cv2.cvtColor(_clip_frame(rng, kind, photos), cv2.COLOR_RGB2GRAY)
    if kind == "motion":
        for _ in range(20):
            pair = render_pair(rng, PATCH, PATCH, MOTION, photos)
            if pair.pan_px >= MIN_TRAVEL_PX:
                break
        image = pair.blurry
    else:
        image = render_defocus_pair(rng, PATCH, PATCH, SHARP if kind == "sharp" else DEFOCUS_PICK, photos).blurry
    return cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)


def _clip_frame(rng: np.random.Generator, kind: str, photos: tuple[str, ...]) -> np.ndarray:
    """One frame of a clip of that kind, float RGB in [0, 1], as evaluate.py's clips are made."""
    if kind == "motion":
        for _ in range(20):
            shot = render_sequence(rng, PATCH, PATCH, 1, CLIP_RECIPE, photos, kind="uniform")
            if shot.blur_px[0] >= MIN_TRAVEL_PX:
                break
        return shot.blurry[0]
    shot = render_sequence(rng, PATCH, PATCH, 1, CLIP_RECIPE, photos, kind="sharp")
    if kind == "sharp":
        return shot.blurry[0]
    return lens_blurred(rng, shot.sharp)[0].astype(np.float32) / 255


def render_set(count: int, root: int, photos: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral features of `count` patches, the classes in turn, and their labels."""
    features, labels = [], []
    for index in range(count):
        rng = np.random.default_rng([root, index])
        label = index % len(CLASSES)
        features.append(spectral_features(labelled_patch(rng, label, photos)[None])[0])
        labels.append(label)
    return torch.from_numpy(np.stack(features)), torch.tensor(labels)


def accuracy(model: BlurKindNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        predicted = model(x).argmax(1)
    scores = {name: float((predicted[y == k] == k).float().mean()) for k, name in enumerate(CLASSES)}
    return {"all": float((predicted == y).float().mean()), **scores}


def cached_set(count: int, root: int, photos: tuple[str, ...], cache: Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    """render_set, kept in `cache` (an .npz) so that a second run does not render again."""
    if cache is not None and cache.is_file():
        stored = np.load(cache)
        return torch.from_numpy(stored["x"]), torch.from_numpy(stored["y"])
    x, y = render_set(count, root, photos)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, x=x.numpy(), y=y.numpy())
    return x, y


def train(
    out: Path,
    count: int,
    val_count: int,
    epochs: int,
    seed: int,
    cache: Path | None = None,
    own_photos: tuple[str, ...] = (),
) -> dict[str, object]:
    started = time.time()
    torch.manual_seed(seed)
    photos = TRAIN_PHOTOS + own_photos
    tag = f"{count}-{seed}-clips{CLIP_SHARE}" + (f"-own{len(own_photos)}" if own_photos else "")
    x, y = cached_set(count, SEED_ROOT + seed, photos, cache and cache / f"features-train-{tag}.npz")
    vx, vy = cached_set(
        val_count,
        HELD_OUT_ROOT + seed,
        HELD_OUT_PHOTOS,
        cache and cache / f"features-val-{val_count}-{seed}-clips{CLIP_SHARE}.npz",
    )
    model = BlurKindNet()
    model.mean.copy_(x.mean(dim=0))
    model.spread.copy_(x.std(dim=0).clamp_min(1e-3))  # the lowest ring against itself is always 0
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 128):
            batch = order[i : i + 128]
            loss = F.cross_entropy(model(x[batch]), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            model.eval()
            print(f"epoch {epoch + 1}/{epochs}: held-out patches {accuracy(model, vx, vy)}", flush=True)
    model.eval()
    card = {
        "name": "blur-kind",
        "classes": list(CLASSES),
        "patch": PATCH,
        "input": "spectral features of grey patches (streamdeblur/blur_kind/spectrum.py)",
        "training": {
            "patches": count,
            "photos": f"scikit-image's training photos and {len(own_photos)} of one's own",
            "epochs": epochs,
            "seed": seed,
            "minutes": round((time.time() - started) / 60, 1),
        },
        "held_out_patch_accuracy": accuracy(model, vx, vy),
        "reproduce": f"python -m streamdeblur.blur_kind.train --count {count} --epochs {epochs} --seed {seed}"
        + (" --photos ~/.cache/streamdeblur/photos" if own_photos else ""),
    }
    save_classifier(model, out, card)
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--count", type=int, default=18000)
    parser.add_argument("--val-count", type=int, default=900)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photos", type=Path, help="a folder of one's own sharp pictures to render from too")
    parser.add_argument("--cache", type=Path, help="a folder to keep the patches' features in, for a rerun")
    args = parser.parse_args()
    own = sharp_images(args.photos) if args.photos else ()
    train(args.out, args.count, args.val_count, args.epochs, args.seed, args.cache, own)


if __name__ == "__main__":
    main()
