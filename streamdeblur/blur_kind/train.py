"""Train the blur-kind classifier on the generators' own blur, and write it with its card.

    python -m streamdeblur.blur_kind.train --out streamdeblur/blur_kind/blur-kind.safetensors

Patches are rendered from seeds: sharp pictures with a camera's noise and codec, motion blur
(synthetic/blur.py, with at least 3 px of camera travel and no softness in the scene), and
defocus (synthetic/defocus.py, discs of 1.5 px radius or more, Gaussians of sigma 1 or more).
Validation patches come from the held-out photos and seeds training never uses.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from streamdeblur.blur_kind.net import CLASSES, PATCH, WEIGHTS, BlurKindNet, save_classifier
from streamdeblur.synthetic.blur import BlurRecipe, render_pair
from streamdeblur.synthetic.defocus import DEFOCUS_PICK, DefocusRecipe, render_defocus_pair
from streamdeblur.synthetic.scenes import HELD_OUT_PHOTOS, TRAIN_PHOTOS

SHARP = DefocusRecipe(kernel_weights=(0.0, 0.0, 0.0, 1.0))
MOTION = BlurRecipe(soft_probability=0.0)
MIN_TRAVEL_PX = 3.0
SEED_ROOT = 45_000
HELD_OUT_ROOT = 45_999


def labelled_patch(rng: np.random.Generator, label: int, photos: tuple[str, ...]) -> np.ndarray:
    """A grey PATCH x PATCH picture of class CLASSES[label]."""
    kind = CLASSES[label]
    if kind == "motion":
        for _ in range(20):
            pair = render_pair(rng, PATCH, PATCH, MOTION, photos)
            if pair.pan_px >= MIN_TRAVEL_PX:
                break
        image = pair.blurry
    else:
        image = render_defocus_pair(rng, PATCH, PATCH, SHARP if kind == "sharp" else DEFOCUS_PICK, photos).blurry
    return cv2.cvtColor(image.astype(np.float32), cv2.COLOR_RGB2GRAY)


def render_set(count: int, root: int, photos: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    patches, labels = [], []
    for index in range(count):
        rng = np.random.default_rng([root, index])
        label = index % len(CLASSES)
        patches.append(labelled_patch(rng, label, photos))
        labels.append(label)
    return torch.from_numpy(np.stack(patches)[:, None]), torch.tensor(labels)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flips and quarter turns: blur has no preferred direction."""
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, turns, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if bool(torch.randint(0, 2, (1,), generator=generator)) else x


def accuracy(model: BlurKindNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        predicted = torch.cat([model(x[i : i + 256]).argmax(1) for i in range(0, len(x), 256)])
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
    out: Path, count: int, val_count: int, epochs: int, seed: int, cache: Path | None = None
) -> dict[str, object]:
    started = time.time()
    torch.manual_seed(seed)
    x, y = cached_set(count, SEED_ROOT + seed, TRAIN_PHOTOS, cache and cache / f"train-{count}-{seed}.npz")
    vx, vy = cached_set(
        val_count, HELD_OUT_ROOT + seed, HELD_OUT_PHOTOS, cache and cache / f"val-{val_count}-{seed}.npz"
    )
    model = BlurKindNet()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, epochs)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), 64):
            batch = order[i : i + 64]
            loss = F.cross_entropy(model(_augment(x[batch], generator)), y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
        model.eval()
        print(f"epoch {epoch + 1}/{epochs}: held-out patches {accuracy(model, vx, vy)}", flush=True)
    card = {
        "name": "blur-kind",
        "classes": list(CLASSES),
        "patch": PATCH,
        "training": {
            "patches": count,
            "epochs": epochs,
            "seed": seed,
            "minutes": round((time.time() - started) / 60, 1),
        },
        "held_out_patch_accuracy": accuracy(model, vx, vy),
        "reproduce": f"python -m streamdeblur.blur_kind.train --count {count} --epochs {epochs} --seed {seed}",
    }
    save_classifier(model, out, card)
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--count", type=int, default=9000)
    parser.add_argument("--val-count", type=int, default=900)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="a folder to keep the rendered patches in, for a rerun")
    args = parser.parse_args()
    train(args.out, args.count, args.val_count, args.epochs, args.seed, args.cache)


if __name__ == "__main__":
    main()
