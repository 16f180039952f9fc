"""Paired training data: GoPro, REDS and plain blur/sharp folders, and synthetic blur.

Every sample is a pure function of (item, sample_seed), which StepSampler derives from the
global step: a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from streamdeblur.errors import BadInput
from streamdeblur.io.image_folder import IMAGE_SUFFIXES, read_image_float
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.synthetic.blur import BlurRecipe
from streamdeblur.synthetic.defocus import DefocusRecipe
from streamdeblur.synthetic.pairs import render_any_pair
from streamdeblur.synthetic.sequences import SequenceRecipe, render_sequence
from streamdeblur.training.augment import Augment
from streamdeblur.window.assembly import stack_window, window_indices

Pair = tuple[Path, Path]


def _images(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


def _match(blur_dir: Path, sharp_dir: Path) -> list[Pair]:
    blur, sharp = _images(blur_dir), _images(sharp_dir)
    missing = sorted(set(blur) ^ set(sharp))
    if missing:
        raise BadInput(f"unmatched pairs between {blur_dir} and {sharp_dir}: {len(missing)} file(s), e.g. {missing[0]}")
    return [(blur[name], sharp[name]) for name in sorted(blur)]


def find_pairs(root: str | Path, split: str = "train", blur_kind: str = "blur") -> list[Pair]:
    """Blur/sharp pairs under root, whichever supported layout it has.

    - GoPro: root[/GOPRO_Large]/<split>/<sequence>/{blur,blur_gamma,sharp}/*.png
      (`blur_kind` picks blur or blur_gamma)
    - REDS: root/<split>/<split>_blur/<sequence>/*.png beside <split>_sharp, or
      root/<split>_blur/... at the top
    - folder pair: root/blur/*.png and root/sharp/*.png with matching names
    """
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"data folder not found: {root}")
    if (root / "GOPRO_Large").is_dir():
        root = root / "GOPRO_Large"
    if (root / "blur").is_dir() and (root / "sharp").is_dir():
        return _nonempty(_match(root / "blur", root / "sharp"), root)
    if (root / split).is_dir() and any((seq / "sharp").is_dir() for seq in (root / split).iterdir()):
        pairs = []
        for seq in sorted(p for p in (root / split).iterdir() if p.is_dir()):
            if not (seq / blur_kind).is_dir() or not (seq / "sharp").is_dir():
                raise BadInput(f"GoPro layout: {seq} lacks {blur_kind}/ or sharp/")
            pairs += _match(seq / blur_kind, seq / "sharp")
        return _nonempty(pairs, root)
    for base in (root / split, root):
        blur_root, sharp_root = base / f"{split}_blur", base / f"{split}_sharp"
        if blur_root.is_dir() and sharp_root.is_dir():
            pairs = []
            for seq in sorted(p for p in blur_root.iterdir() if p.is_dir()):
                pairs += _match(seq, sharp_root / seq.name)
            return _nonempty(pairs, root)
    raise BadInput(
        f"{root}: not a GoPro (<split>/<seq>/blur,sharp), REDS (<split>_blur, <split>_sharp) "
        "or blur/ + sharp/ folder layout"
    )


def _nonempty(pairs: list[Pair], root: Path) -> list[Pair]:
    if not pairs:
        raise BadInput(f"no image pairs found under {root}")
    return pairs


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _random_crop(
    rng: np.random.Generator,
    blur: np.ndarray,
    sharp: np.ndarray,
    size: int | None,
    centre: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A random `size` patch, or, given a (row, column) centre, the patch centred there (moved
    inside the image where the centre is near an edge)."""
    if size is None:
        return blur, sharp
    height, width = blur.shape[:2]
    if height < size or width < size:
        raise BadInput(f"image {width}x{height} is smaller than the {size}px training patch")
    if centre is None:
        top, left = int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    else:
        top = min(max(centre[0] - size // 2, 0), height - size)
        left = min(max(centre[1] - size // 2, 0), width - size)
    return blur[top : top + size, left : left + size], sharp[top : top + size, left : left + size]


def _moving_pixel(rng: np.random.Generator, blur_path: Path) -> tuple[int, int] | None:
    """A random pixel of the pair's regions moving on their own; None where it has no mask or
    the mask is empty."""
    mask = cv2.imread(str(blur_path.parent.parent / "moving" / blur_path.name), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        return None
    rows, columns = np.nonzero(mask)
    if rows.size == 0:
        return None
    pick = int(rng.integers(rows.size))
    return int(rows[pick]), int(columns[pick])


def sequence_ranges(pairs: list[Pair]) -> list[tuple[int, int]]:
    """For each pair, the first and last index of the pairs in its sequence (its folder):
    consecutive frames of one clip in GoPro, REDS and `streamdeblur synth --sequences` sets."""
    ranges: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(pairs) + 1):
        if i == len(pairs) or pairs[i][0].parent != pairs[start][0].parent:
            ranges += [(start, i - 1)] * (i - start)
            start = i
    return ranges


class PairedImages(Dataset):
    """Pairs from disk; patches are random crops, augmented when `augment` is given.

    With a windowed model's config the blurry side is its window (H x W x 3K) from the same
    sequence, padded at the sequence's ends and aligned as the pipeline aligns it. In a share
    `moving_crop_probability` of samples whose pair has a mask of regions moving on their own
    (`moving/` beside `blur/`, as `streamdeblur footage` writes), the patch is centred on one of
    those pixels.
    """

    def __init__(
        self,
        pairs: list[Pair],
        patch_size: int | None,
        augment: Augment | None,
        cfg: DeepDeblurConfig | None = None,
        moving_crop_probability: float = 0.0,
    ) -> None:
        self.pairs, self.patch_size, self.augment = pairs, patch_size, augment
        self.cfg = cfg if cfg is not None and cfg.frames > 1 else None
        self.ranges = sequence_ranges(pairs) if self.cfg is not None else []
        self.moving_crop_probability = moving_crop_probability

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        blur_path, sharp_path = self.pairs[index]
        blur, sharp = read_image_float(blur_path), read_image_float(sharp_path)
        if blur.shape != sharp.shape:
            raise BadInput(f"{blur_path} and {sharp_path} differ in size")
        if self.cfg is not None:
            blur = self._window(index, blur)
        centre = None
        if self.moving_crop_probability > 0 and rng.uniform() < self.moving_crop_probability:
            centre = _moving_pixel(rng, blur_path)
        blur, sharp = _random_crop(rng, blur, sharp, self.patch_size, centre)
        if self.augment is not None:
            blur, sharp = self.augment(rng, blur, sharp)
        return {"blur": _to_tensor(blur), "sharp": _to_tensor(sharp)}

    def _window(self, index: int, blur: np.ndarray) -> np.ndarray:
        assert self.cfg is not None
        first, last = self.ranges[index]
        loaded = {index: blur}
        for i in window_indices(index, first, last, self.cfg.offsets):
            if i not in loaded:
                loaded[i] = read_image_float(self.pairs[i][0])
        frames = [loaded[i] for i in window_indices(index, first, last, self.cfg.offsets)]
        return stack_window(frames, self.cfg)


class SyntheticPairs(Dataset):
    """Pairs rendered on the fly from a seed (no disk); `length` sets the epoch size."""

    def __init__(
        self,
        patch_size: int,
        length: int,
        photos: tuple[str, ...] | None,
        recipe: BlurRecipe | DefocusRecipe = BlurRecipe(),
        augment: Augment | None = None,
    ) -> None:
        self.patch_size, self.length, self.photos = patch_size, length, photos
        self.recipe, self.augment = recipe, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        _, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        pair = render_any_pair(rng, self.patch_size, self.patch_size, self.recipe, self.photos)
        blur, sharp = pair.blurry, pair.sharp
        if self.augment is not None:
            blur, sharp = self.augment(rng, blur, sharp)
        return {"blur": _to_tensor(blur), "sharp": _to_tensor(sharp)}


class StepSampler(Sampler[tuple[int, int]]):
    """Deterministic (item, sample_seed) keys as a function of the global step.

    Sample number n = (step * world_size + rank) * batch_size + k; items are visited in a
    fresh permutation each epoch. Starting at `start_step` resumes the exact stream.
    """

    def __init__(
        self,
        length: int,
        batch_size: int,
        seed: int,
        start_step: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.rank, self.world_size = start_step, rank, world_size
        self._perm_epoch, self._perm = -1, np.arange(length)

    def __len__(self) -> int:  # endless; the training loop counts steps
        return 2**62

    def key(self, sample_number: int) -> tuple[int, int]:
        epoch, offset = divmod(sample_number, self.length)
        if epoch != self._perm_epoch:
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.length)
            self._perm_epoch = epoch
        sample_seed = int(np.random.SeedSequence([self.seed, sample_number]).generate_state(1)[0])
        return int(self._perm[offset]), sample_seed

    def __iter__(self) -> Iterator[tuple[int, int]]:
        step = self.start_step
        while True:
            first = (step * self.world_size + self.rank) * self.batch_size
            for k in range(self.batch_size):
                yield self.key(first + k)
            step += 1


# A share of training windows is cut short, the frames past a random point on one side
# repeating the last one before it: what the pipeline feeds at a clip's ends and at cuts.
WINDOW_PAD_PROBABILITY = 0.15


class SyntheticWindows(Dataset):
    """Windows of synthetic video (synthetic/sequences.py) rendered on the fly from a seed:
    the blurry side is the aligned H x W x 3K window, the sharp side the restored frame."""

    def __init__(
        self,
        patch_size: int,
        length: int,
        photos: tuple[str, ...] | None,
        cfg: DeepDeblurConfig,
        recipe: SequenceRecipe = SequenceRecipe(),
        augment: Augment | None = None,
    ) -> None:
        self.patch_size, self.length, self.photos, self.cfg = patch_size, length, photos, cfg
        self.recipe, self.augment = recipe, augment

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        _, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        blur, sharp = render_window(rng, self.patch_size, self.patch_size, self.cfg, self.recipe, self.photos)
        if self.augment is not None:
            blur, sharp = self.augment(rng, blur, sharp)
        return {"blur": _to_tensor(blur), "sharp": _to_tensor(sharp)}


class MixedSamples(Dataset):
    """Synthetic samples, and in a share `real_probability` of them a pair (or window) of real
    footage (a `streamdeblur footage` set on disk), both chosen by the sample's seed."""

    def __init__(self, synthetic: Dataset, real: PairedImages, real_probability: float) -> None:
        self.synthetic, self.real, self.real_probability = synthetic, real, real_probability

    def __len__(self) -> int:
        return len(self.synthetic)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        index, sample_seed = key
        if np.random.default_rng([sample_seed, 1]).uniform() < self.real_probability:
            return self.real[(sample_seed % len(self.real), sample_seed)]
        return self.synthetic[(index, sample_seed)]


def render_window(
    rng: np.random.Generator,
    height: int,
    width: int,
    cfg: DeepDeblurConfig,
    recipe: SequenceRecipe = SequenceRecipe(),
    photos: tuple[str, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One training window (H x W x 3K, float32, aligned) and the sharp frame it restores."""
    span = max(cfg.offsets) - min(cfg.offsets) + 1
    position = -min(cfg.offsets)
    sequence = render_sequence(rng, height, width, span, recipe, photos, reference=position)
    first, last = 0, span - 1
    if recipe.lone_window_probability > 0 and rng.uniform() < recipe.lone_window_probability:
        first = last = position
    elif rng.uniform() < WINDOW_PAD_PROBABILITY and span > 1:
        if position > 0 and (position == last or rng.uniform() < 0.5):
            first = int(rng.integers(1, position + 1))
        else:
            last = int(rng.integers(position, last))
    # Aligned as the pipeline aligns: on the 8-bit frames the camera delivered.
    as_bytes = [np.round(f * 255).astype(np.uint8) for f in sequence.blurry]
    window = stack_window([as_bytes[i] for i in window_indices(position, first, last, cfg.offsets)], cfg)
    return window.astype(np.float32) / 255.0, sequence.sharp[position]
