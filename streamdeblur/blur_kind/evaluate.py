"""How often the blur-kind classifier picks the right model, on clips training never saw:

    python -m streamdeblur.blur_kind.evaluate [--real REAL_FOOTAGE_SET]

Synthetic clips from the held-out photos and seeds: `varying` and `uniform` shots
(synthetic/sequences.py) are motion; a sharp scene filmed as a camera films it (filmed_sharp)
is sharp; the same sharp frames through one lens blur each (synthetic/defocus.py's kernels,
drawn per clip) with the camera's noise are defocus.
With `--real` (a `streamdeblur footage` set): each real video's untouched frames (sharp), its
blurred frames (motion), and its untouched frames through a lens blur (defocus).
A pick is right where the model chosen is the right one: defocus for defocus clips, the
motion model for motion and sharp clips (it hands sharp frames through); the classes found
are reported too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.blur_kind.decide import decide_blur
from streamdeblur.blur_kind.net import load_classifier
from streamdeblur.synthetic.blur import BlurRecipe, add_sensor_noise, to_gamma, to_linear
from streamdeblur.synthetic.defocus import DEFOCUS_PICK, draw_kernel
from streamdeblur.synthetic.scenes import HELD_OUT_PHOTOS, photo_crop, procedural_scene
from streamdeblur.synthetic.sequences import SequenceRecipe, render_sequence, through_camera

SEED_ROOT = 45_777
FRAMES = 16
# Clips as a camera films them: noise, JPEG, H.264 in some. No softened scenes (BlurRecipe's
# soft_probability): a shot softened by a Gaussian of up to 2 px is Gaussian blur, which the
# defocus model is for, and would be a wrong "sharp" truth.
CLIP_RECIPE = SequenceRecipe(degrade=BlurRecipe(soft_probability=0.0), h264_probability=0.3)


MAX_PAN_PX = 3  # a sharp clip's camera moves by whole pixels a frame, so no frame is resampled


def filmed_sharp(
    rng: np.random.Generator, height: int, width: int, count: int, photos: tuple[str, ...]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A sharp scene as a camera films it: (frames as delivered, clean frames), float RGB in
    [0, 1]. The scene is procedural or a photo never magnified, the camera still or panning by
    whole pixels, each frame through CLIP_RECIPE's noise, JPEG and H.264. (A shot warped to
    sub-pixel positions over a magnified photo, as render_sequence's are, is soft already: a
    stream upscaled and resampled, which is what the defocus model is for.)"""
    step = rng.integers(-MAX_PAN_PX, MAX_PAN_PX + 1, size=2)
    margin = MAX_PAN_PX * count
    canvas_height, canvas_width = height + 2 * margin, width + 2 * margin
    if photos and rng.uniform() < 0.5:
        photo = photos[int(rng.integers(0, len(photos)))]
        canvas = photo_crop(rng, photo, canvas_height, canvas_width, magnify=False)
    else:
        canvas = procedural_scene(rng, canvas_height, canvas_width)
    canvas = canvas.astype(np.float32)
    clean = []
    for k in range(count):
        top, left = margin + (k - count // 2) * int(step[1]), margin + (k - count // 2) * int(step[0])
        clean.append(np.ascontiguousarray(canvas[top : top + height, left : left + width]))
    delivered, _ = through_camera(rng, CLIP_RECIPE, clean)
    return delivered, clean


def lens_blurred(rng: np.random.Generator, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Float frames in [0, 1] through one drawn lens blur, each with fresh sensor noise, as uint8."""
    _, kernel, _ = draw_kernel(rng, DEFOCUS_PICK)
    shot, read = float(rng.uniform(0, 0.01)), float(rng.uniform(0, 0.015))
    blurred = []
    for frame in frames:
        soft = to_gamma(cv2.filter2D(to_linear(frame), -1, kernel, borderType=cv2.BORDER_REFLECT))
        blurred.append(add_sensor_noise(rng, soft, shot, read))
    return blurred


def _as_bytes(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.round(np.clip(f, 0, 1) * 255).astype(np.uint8) for f in frames]


def synthetic_clips(
    count: int, size: tuple[int, int] = (320, 240), seed_root: int = SEED_ROOT
) -> list[tuple[str, str, list[np.ndarray]]]:
    """(truth, name, uint8 frames) for `count` clips of each kind."""
    width, height = size
    recipe = CLIP_RECIPE
    clips = []
    for index in range(count):
        rng = np.random.default_rng([seed_root, index])
        moving = render_sequence(
            rng, height, width, FRAMES, recipe, HELD_OUT_PHOTOS, kind=("varying", "uniform")[index % 2]
        )
        clips.append(("motion", f"synthetic motion {index}", _as_bytes(moving.blurry)))
        delivered, clean = filmed_sharp(rng, height, width, FRAMES, HELD_OUT_PHOTOS)
        clips.append(("sharp", f"synthetic sharp {index}", _as_bytes(delivered)))
        clips.append(("defocus", f"synthetic defocus {index}", lens_blurred(rng, clean)))
    return clips


def real_clips(data: Path, split: str = "val", seed_root: int = SEED_ROOT) -> list[tuple[str, str, list[np.ndarray]]]:
    from streamdeblur.io.image_folder import read_image
    from streamdeblur.training.datasets import find_pairs, sequence_ranges

    pairs = find_pairs(data, split)
    clips = []
    for index, (first, last) in enumerate(sorted(set(sequence_ranges(pairs)))):
        members = pairs[first : last + 1]
        name = members[0][0].parent.parent.name
        sharp = [read_image(s) for _, s in members]
        clips.append(("sharp", f"real {name}, untouched", sharp))
        clips.append(("motion", f"real {name}, blurred", [read_image(b) for b, _ in members]))
        rng = np.random.default_rng([seed_root, 1000 + index])
        clips.append(
            ("defocus", f"real {name}, lens-blurred", lens_blurred(rng, [s.astype(np.float32) / 255 for s in sharp]))
        )
    return clips


def evaluate(clips: list[tuple[str, str, list[np.ndarray]]]) -> dict[str, object]:
    model = load_classifier()
    rows, right = [], 0
    for truth, name, frames in clips:
        verdict = decide_blur(frames[:: max(1, len(frames) // 8)], model)
        expected = "defocus" if truth == "defocus" else "motion"
        right += verdict.blur == expected
        rows.append({"clip": name, "truth": truth, "found": verdict.found, "model": verdict.blur, "why": verdict.why})
    wrong = [r for r in rows if (r["model"] == "defocus") != (r["truth"] == "defocus")]
    found_right = sum(r["found"] == r["truth"] for r in rows)
    return {
        "clips": len(rows),
        "model_right": right / len(rows),
        "class_right": found_right / len(rows),
        "wrong": wrong,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="synthetic clips of each kind")
    parser.add_argument("--real", type=Path, help="a `streamdeblur footage` validation set")
    parser.add_argument("--split", default="val", help="which split of --real (train: videos blur_kind never saw)")
    parser.add_argument(
        "--seed-root",
        type=int,
        default=SEED_ROOT,
        help="another root for a fresh synthetic mix (the default: the one measured first)",
    )
    args = parser.parse_args()
    clips = synthetic_clips(args.count, seed_root=args.seed_root) + (
        real_clips(args.real, args.split, args.seed_root) if args.real else []
    )
    print(json.dumps(evaluate(clips), indent=2))


if __name__ == "__main__":
    main()
