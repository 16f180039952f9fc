"""`streamdeblur synth`: write synthetic blur pairs to disk in the GoPro layout.

OUT/<split>/<sequence>/blur/NNNNNN.png and .../sharp/NNNNNN.png, so the set can be looked
at, shared, and trained or evaluated on like GoPro. Pairs are independent (50 to a folder),
or, with `frames`, each folder is one clip of consecutive frames (synthetic/sequences.py),
as GoPro's are: what windowed models are trained and scored on. Every pair is a pure function of
(seed, index); `held_out=True` draws from scikit-image photos and a seed range that training
never uses, which is how the shipped model's quality figures are measured.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.errors import BadUsage
from streamdeblur.registry import BLURS
from streamdeblur.synthetic.blur import BlurRecipe
from streamdeblur.synthetic.defocus import DefocusPair, DefocusRecipe
from streamdeblur.synthetic.pairs import render_any_pair
from streamdeblur.synthetic.scenes import HELD_OUT_PHOTOS, TRAIN_PHOTOS, sharp_images
from streamdeblur.synthetic.sequences import KINDS, SequenceRecipe, render_sequence

# Training samples draw seeds from SeedSequence([recipe seed, sample number]); held-out
# pairs use this separate root so no held-out scene can coincide with a training one.
HELD_OUT_SEED_ROOT = 90_210_000
SYNTH_RECORD = "synth.json"  # what a set was made from, and the command that makes it again


def pair_seed(seed: int, index: int, held_out: bool) -> np.random.SeedSequence:
    root = [HELD_OUT_SEED_ROOT, seed] if held_out else [seed]
    return np.random.SeedSequence([*root, index])


def _write_png(path: Path, image: np.ndarray) -> None:
    as_uint8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    if not cv2.imwrite(str(path), cv2.cvtColor(as_uint8, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_synthetic_set(
    out: Path,
    count: int,
    width: int = 256,
    height: int = 256,
    seed: int = 0,
    held_out: bool = False,
    split: str | None = None,
    per_sequence: int = 50,
    recipe: BlurRecipe = BlurRecipe(),
    sharp_dir: Path | None = None,
    frames: int = 1,
    kind: str | None = None,
    clean: bool = False,
    blur: str = "motion",
) -> list[Path]:
    """Render `count` pairs, or with `frames` > 1 `count` clips of that many frames; returns
    the sequence folders written.

    `sharp_dir`: a folder of one's own sharp images, used instead of the bundled photos.
    `kind`: every clip of this kind of shot (sequences.KINDS) rather than the usual mix, e.g.
    `still` with `clean` for footage that was crisp to begin with. `clean`: no sensor noise,
    JPEG or H.264 (the blur only). `blur`: motion, or defocus (synthetic/defocus.py; pairs only).
    """
    if count < 1 or width < 8 or height < 8 or frames < 1:
        raise BadUsage("synth: --count and --frames must be positive and the size at least 8x8")
    if kind is not None and kind not in KINDS:
        raise BadUsage(f"synth: --kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind is not None and frames == 1:
        raise BadUsage("synth: --kind is a kind of shot, so it needs clips (--frames 2 or more)")
    if blur not in BLURS:
        raise BadUsage(f"synth: --blur must be {' or '.join(BLURS)}, not {blur!r}")
    if blur == "defocus" and frames > 1:
        raise BadUsage("synth: --blur defocus writes pictures: a lens's blur does not change from frame to frame")
    if clean:
        recipe = replace(recipe, clean_probability=1.0)
    split = split or ("test" if held_out else "train")
    if sharp_dir is not None:
        photos = sharp_images(sharp_dir)
    else:
        photos = HELD_OUT_PHOTOS if held_out else TRAIN_PHOTOS
    out.mkdir(parents=True, exist_ok=True)
    flags = (" --held-out" if held_out else "") + (f" --sharp {sharp_dir}" if sharp_dir is not None else "")
    flags += f" --frames {frames}" if frames > 1 else ""
    flags += f" --split {split}" if split != ("test" if held_out else "train") else ""
    flags += (f" --kind {kind}" if kind else "") + (" --clean" if clean else "")
    flags += " --blur defocus" if blur == "defocus" else ""
    recipe_note = {
        "count": count,
        "size": f"{width}x{height}",
        "seed": seed,
        "held_out": held_out,
        "split": split,
        "photos": list(photos),
        "command": f"streamdeblur synth {out} --count {count} --size {width}x{height} --seed {seed}{flags}",
    }
    if frames > 1:
        sequence_recipe = SequenceRecipe(
            degrade=recipe, h264_probability=0.0 if clean else SequenceRecipe.h264_probability
        )
        clips = _write_clips(
            out, split, count, frames, width, height, seed, held_out, sequence_recipe, photos, shot_kind=kind
        )
        (out / SYNTH_RECORD).write_text(
            json.dumps({**recipe_note, "frames": frames, "pairs": clips[1]}, indent=2) + "\n"
        )
        return clips[0]
    sequences: list[Path] = []
    pairs: dict[str, dict[str, str | float | None]] = {}
    pair_recipe: BlurRecipe | DefocusRecipe = recipe
    if blur == "defocus":
        pair_recipe = DefocusRecipe(degrade=recipe, h264_probability=0.0 if clean else DefocusRecipe.h264_probability)
    for index in range(count):
        seq = out / split / f"{'heldout' if held_out else 'synthetic'}_{seed:04d}_{index // per_sequence:03d}"
        if index % per_sequence == 0:
            for half in ("blur", "sharp"):
                (seq / half).mkdir(parents=True, exist_ok=True)
            sequences.append(seq)
        rng = np.random.default_rng(pair_seed(seed, index, held_out))
        pair = render_any_pair(rng, height, width, pair_recipe, photos)
        name = f"{index:06d}.png"
        _write_png(seq / "blur" / name, pair.blurry)
        _write_png(seq / "sharp" / name, pair.sharp)
        # What each pair shows, so that `eval` can split its scores by content and blur length.
        pairs[str((seq / "blur" / name).relative_to(out))] = {
            "photo": Path(pair.photo).stem if pair.photo else None,
            "pan_px": round(pair.pan_px, 2),
        }
        if isinstance(pair, DefocusPair):
            pairs[str((seq / "blur" / name).relative_to(out))].update(
                {"kernel": pair.kernel, "defocus_px": round(pair.blur_size, 2)}
            )
    (out / SYNTH_RECORD).write_text(json.dumps({**recipe_note, "pairs": pairs}, indent=2) + "\n")
    return sequences


def _write_clips(
    out: Path,
    split: str,
    count: int,
    frames: int,
    width: int,
    height: int,
    seed: int,
    held_out: bool,
    recipe: SequenceRecipe,
    photos: tuple[str, ...],
    shot_kind: str | None = None,
) -> tuple[list[Path], dict[str, dict[str, str | float | None]]]:
    """`count` clips of `frames` consecutive frames, one folder each; and what each frame shows."""
    folders: list[Path] = []
    described: dict[str, dict[str, str | float | None]] = {}
    for index in range(count):
        seq = out / split / f"{'heldout' if held_out else 'synthetic'}_video_{seed:04d}_{index:03d}"
        for half in ("blur", "sharp"):
            (seq / half).mkdir(parents=True, exist_ok=True)
        folders.append(seq)
        rng = np.random.default_rng(pair_seed(seed, index, held_out))
        clip = render_sequence(rng, height, width, frames, recipe, photos, kind=shot_kind)
        for k in range(frames):
            name = f"{k:06d}.png"
            _write_png(seq / "blur" / name, clip.blurry[k])
            _write_png(seq / "sharp" / name, clip.sharp[k])
            described[str((seq / "blur" / name).relative_to(out))] = {
                "photo": Path(clip.photo).stem if clip.photo else None,
                "blur_px": round(clip.blur_px[k], 2),
                "kind": clip.kind,
            }
    return folders, described
