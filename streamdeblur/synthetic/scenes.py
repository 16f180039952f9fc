"""Sharp content for synthetic blur, made locally: procedural scenes and bundled photos.

Nothing is downloaded. Procedural scenes (dead leaves, shapes, text, textures) come from a
seed; photographs are those bundled with scikit-image, split once into a training and a
held-out list so the held-out quality figures come from pictures training never saw. One's
own sharp frames (a folder of images) can stand beside or instead of them.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from streamdeblur.errors import BadInput
from streamdeblur.io.image_folder import IMAGE_SUFFIXES, read_image_float

# scikit-image's bundled pictures (no network). clock_motion.png is real motion blur and is
# kept out of both lists: it is the before/after example in the README.
TRAIN_PHOTOS = (
    "astronaut", "chelsea", "coffee", "hubble_deep_field", "retina", "brick", "grass",
    "camera", "coins", "page", "text", "moon", "logo",
)  # fmt: skip
HELD_OUT_PHOTOS = ("rocket", "motorcycle_left", "motorcycle_right", "gravel", "immunohistochemistry")

_FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN,
)  # fmt: skip


def sharp_images(folder: str | Path) -> tuple[str, ...]:
    """The image files under `folder` (recursive): one's own sharp frames to blur synthetically."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise BadInput(f"sharp images folder not found: {root}")
    found = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not found:
        raise BadInput(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under {root}")
    # Only the header is checked here (folders can be large); it catches a misnamed file
    # before a DataLoader worker would, which wraps the error in a traceback.
    unreadable = [path for path in found if not cv2.haveImageReader(path)]
    if unreadable:
        raise BadInput(f"not a readable image: {unreadable[0]} ({len(unreadable)} such file(s) under {root})")
    return tuple(found)


def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image picture by name, or an image file by path, as float32 RGB in [0, 1]."""
    if Path(name).suffix.lower() in IMAGE_SUFFIXES:
        return read_image_float(Path(name))  # not cached: a user's folder can outgrow memory
    return _bundled_photo(name)


@cache
def _bundled_photo(name: str) -> np.ndarray:
    from skimage import data as skdata  # only the training extra needs scikit-image

    if name in ("motorcycle_left", "motorcycle_right"):
        left, right, _ = skdata.stereo_motorcycle()
        image = left if name == "motorcycle_left" else right
    else:
        image = getattr(skdata, name)()
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3]
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return np.ascontiguousarray(image, dtype=np.float32) / np.float32(scale)


def _random_colour(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(c) for c in rng.uniform(0.0, 1.0, 3))  # type: ignore[return-value]


def grain(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Zero-mean, unit-deviation noise with a 1/f^a amplitude spectrum (a in 0.6..1.6).

    Natural surfaces (bark, asphalt, fabric, tissue) carry detail at every scale with
    roughly this spectrum. Without it, procedural scenes are flat-coloured regions, and a
    network trained on them learns to flatten real texture into blotches.
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    frequency = np.hypot(fy, fx)
    frequency[0, 0] = 1.0
    spectrum = rng.standard_normal(frequency.shape) + 1j * rng.standard_normal(frequency.shape)
    spectrum /= frequency ** float(rng.uniform(0.6, 1.6))
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=(height, width))
    return (field / max(float(field.std()), 1e-6)).astype(np.float32)


def dead_leaves(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Occluding disks and rectangles with power-law sizes: natural-image-like edge statistics.

    Most leaves are textured (their colour modulated by one of two grain fields, each leaf
    with its own strength); a quarter stay flat.
    """
    colours = np.empty((height, width, 3), np.float32)
    colours[:] = _random_colour(rng)
    # Which leaf covers each pixel (0: the background), to give each leaf its own texture.
    owner = np.zeros((height, width), np.float32)
    r_min, r_max = 3.0, max(16.0, min(height, width) / 3)
    # Enough leaves to cover the canvas one to three times over (mean leaf area of the
    # inverse-cube law is 2 pi r_min^2 ln(r_max / r_min)).
    mean_area = 2 * np.pi * r_min**2 * np.log(r_max / r_min)
    count = int(height * width / mean_area * rng.uniform(1.0, 3.0))
    # Inverse-cube size law sampled by inverse CDF, as in the dead-leaves model.
    u = rng.uniform(size=count)
    radii = (r_min**-2 - u * (r_min**-2 - r_max**-2)) ** -0.5
    for index, radius in enumerate(radii, start=1):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        colour = _random_colour(rng)
        if rng.uniform() < 0.6:
            cv2.circle(colours, centre, int(radius), colour, -1, cv2.LINE_AA)
            cv2.circle(owner, centre, int(radius), float(index), -1)
        else:
            size = (float(radius * rng.uniform(1, 2.5)), float(radius * rng.uniform(0.5, 2)))
            box = cv2.boxPoints((centre, size, float(rng.uniform(0, 180)))).astype(np.int32)
            cv2.fillConvexPoly(colours, box, colour, cv2.LINE_AA)
            cv2.fillConvexPoly(owner, box, float(index))
    strength = rng.uniform(0.05, 0.35, count + 1) * (rng.uniform(size=count + 1) > 0.25)
    which = rng.integers(0, 2, count + 1)
    grain_a, grain_b = grain(rng, height, width), grain(rng, height, width)  # own spectral slopes
    leaf = owner.astype(np.int64)
    modulation = 1.0 + strength[leaf] * np.where(which[leaf] == 0, grain_a, grain_b)
    return colours * modulation[..., None].astype(np.float32)


def texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Stripes, checkerboards or filtered noise: fine repetitive detail that blur destroys."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    kind = rng.integers(0, 3)
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(4, 40)
        phase = (x * np.cos(angle) + y * np.sin(angle)) * 2 * np.pi / period
        pattern = (np.sin(phase) > 0).astype(np.float32)
    elif kind == 1:
        cell = int(rng.integers(4, 40))
        pattern = (((x // cell) + (y // cell)) % 2).astype(np.float32)
    else:
        noise = rng.uniform(size=(height, width)).astype(np.float32)
        sigma = float(rng.uniform(0.5, 3))
        pattern = cv2.GaussianBlur(noise, (0, 0), sigma)
        pattern = (pattern - pattern.min()) / max(float(np.ptp(pattern)), 1e-6)
    a, b = np.array(_random_colour(rng), np.float32), np.array(_random_colour(rng), np.float32)
    image = pattern[..., None] * a + (1 - pattern[..., None]) * b
    return image * (1.0 + float(rng.uniform(0.0, 0.25)) * grain(rng, height, width))[..., None]


def draw_text(rng: np.random.Generator, image: np.ndarray, lines: int | None = None) -> None:
    """Random strings such as licence plates and signs, drawn in place on a float image."""
    height, width = image.shape[:2]
    alphabet = string.ascii_uppercase + string.digits + "-:. "
    for _ in range(lines if lines is not None else int(rng.integers(1, 6))):
        text = "".join(rng.choice(list(alphabet), size=int(rng.integers(3, 12))))
        font = _FONTS[int(rng.integers(0, len(_FONTS)))]
        scale = float(rng.uniform(0.4, 2.5)) * max(height, width) / 512
        thickness = int(rng.integers(1, 4))
        origin = (int(rng.integers(0, max(1, width - 40))), int(rng.integers(20, max(21, height))))
        # OpenCV draws text on 8-bit images only: draw a coverage mask, then blend the colour.
        mask = np.zeros((height, width), np.uint8)
        cv2.putText(mask, text, origin, font, scale, 255, thickness, cv2.LINE_AA)
        coverage = mask.astype(np.float32)[..., None] / 255.0
        image[:] = coverage * np.array(_random_colour(rng), np.float32) + (1 - coverage) * image


def procedural_scene(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A random procedural scene, float32 RGB in [0, 1]."""
    image = dead_leaves(rng, height, width) if rng.uniform() < 0.7 else texture(rng, height, width)
    if rng.uniform() < 0.5:
        draw_text(rng, image)
    return np.clip(image, 0.0, 1.0)


def photo_crop(rng: np.random.Generator, photo: str, height: int, width: int, magnify: bool = True) -> np.ndarray:
    """A random crop of `photo`, rescaled first when the photo is smaller. With `magnify=False`
    the photo is only ever shrunk, so the crop is as sharp as the photo (a magnified photo is
    soft, as an upscaled stream is); the photo must then be at least height x width."""
    image = load_photo(photo)
    fit = max(height / image.shape[0], width / image.shape[1])
    if not magnify and fit > 1.0:
        raise ValueError(f"{photo} ({image.shape[1]}x{image.shape[0]}) is smaller than {width}x{height}")
    scale = max(fit, float(rng.uniform(0.6, 1.2 if magnify else 1.0)))
    if scale != 1.0:
        size = (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    return np.ascontiguousarray(image[top : top + height, left : left + width])


def sharp_scene(
    rng: np.random.Generator,
    height: int,
    width: int,
    photos: tuple[str, ...] | None = TRAIN_PHOTOS,
    photo_probability: float = 0.5,
) -> tuple[np.ndarray, str | None]:
    """Procedural or photographic content, and the photo it came from (None: procedural).
    `photos=None` for procedural only (no scikit-image)."""
    if photos and rng.uniform() < photo_probability:
        photo = photos[int(rng.integers(0, len(photos)))]
        return photo_crop(rng, photo, height, width), photo
    return procedural_scene(rng, height, width), None
