"""Synthetic out-of-focus and Gaussian blur: a lens, not a moving camera.

A sharp scene is convolved in linear light with one of:
- a disc (a defocused lens's aperture), anti-aliased, in some pictures cut to a cat's eye (the
  vignetted aperture near a frame's corners);
- a Gaussian (a hazy dome cover, an upscaled stream, a soft lens);
- a disc softened by a small Gaussian (a soft lens that is also out of focus).
In some pictures the blur varies slowly across the frame (depth): a weaker and a stronger
version of the kernel are blended by a smooth random map. A share of pictures stays sharp, so
sharp stays sharp. Then the blurry picture gets the noise and JPEG of `blur.degrade`, and some
go through H.264. The target is the sharp scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from streamdeblur.synthetic.blur import BlurPair, BlurRecipe, degrade_pair, to_gamma, to_linear
from streamdeblur.synthetic.scenes import sharp_scene

KERNELS = ("disc", "gaussian", "soft-disc", "sharp")
SUPERSAMPLE = 8  # per pixel, for a disc's anti-aliased edge


@dataclass(frozen=True)
class DefocusRecipe:
    """Ranges the defocus generator samples from, in pixels at the rendered size."""

    disc_radius: tuple[float, float] = (1.0, 6.0)
    gaussian_sigma: tuple[float, float] = (0.8, 3.5)
    soft_sigma: tuple[float, float] = (0.4, 1.2)  # the Gaussian that softens a soft-disc
    # Shares of the kernels in KERNELS' order (normalised).
    kernel_weights: tuple[float, float, float, float] = (0.4, 0.3, 0.2, 0.1)
    cats_eye_probability: float = 0.25  # of discs
    varying_probability: float = 0.25  # blur that changes across the frame (depth)
    h264_probability: float = 0.2
    h264_crf: tuple[int, int] = (18, 32)
    # A sharp picture's target: "clean" (the picture before noise and codec: the network learns
    # to denoise what it does not deblur) or "input" (the picture as the camera gave it: nothing
    # to undo, so sharp comes out as it went in, grain and all).
    sharp_target: str = "clean"
    # Noise and JPEG, as for motion blur pairs (blur.BlurRecipe's fields; its motion ranges unused).
    degrade: BlurRecipe = field(default_factory=BlurRecipe)


# A lens blur surely visible: every kernel but `sharp`, discs from 1.5 px, Gaussians from sigma 1.
DEFOCUS_PICK = DefocusRecipe(disc_radius=(1.5, 6.0), gaussian_sigma=(1.0, 3.5), kernel_weights=(0.4, 0.3, 0.3, 0.0))


def disc_kernel(radius: float, cats_eye: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """A normalised disc of `radius` px with anti-aliased edges; `cats_eye` (dx, dy), in radii,
    intersects it with the same disc shifted by that much (vignetting cuts the aperture).

    The cut kernel is centred on its centroid: the intersection of two discs set half the shift
    either side of the centre. A kernel off its centre would also move the picture against its
    target, a shift the network cannot know and learns to hedge by blurring."""
    half = int(np.ceil(radius)) + 1
    steps = (np.arange(SUPERSAMPLE) + 0.5) / SUPERSAMPLE - 0.5
    axis = (np.arange(-half, half + 1)[:, None] + steps[None, :]).ravel()
    ys, xs = np.meshgrid(axis, axis, indexing="ij")
    dx, dy = cats_eye[0] * radius / 2, cats_eye[1] * radius / 2
    inside = (xs + dx) ** 2 + (ys + dy) ** 2 <= radius**2
    if cats_eye != (0.0, 0.0):
        inside &= (xs - dx) ** 2 + (ys - dy) ** 2 <= radius**2
    size = 2 * half + 1
    coverage = inside.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3)).astype(np.float32)
    return coverage / coverage.sum()


def gaussian_kernel(sigma: float) -> np.ndarray:
    half = int(np.ceil(3 * sigma))
    line = cv2.getGaussianKernel(2 * half + 1, sigma).astype(np.float32)
    return line @ line.T


def _soften(kernel: np.ndarray, sigma: float) -> np.ndarray:
    soft = gaussian_kernel(sigma)
    pad = soft.shape[0] // 2
    padded = np.pad(kernel, pad)
    out = cv2.filter2D(padded, -1, soft, borderType=cv2.BORDER_CONSTANT)
    return out / out.sum()


def draw_kernel(rng: np.random.Generator, recipe: DefocusRecipe) -> tuple[str, np.ndarray, float]:
    """(kind, kernel, size in px): size is a disc's radius or a Gaussian's sigma."""
    weights = np.asarray(recipe.kernel_weights, np.float64)
    kind = KERNELS[int(rng.choice(len(KERNELS), p=weights / weights.sum()))]
    if kind == "sharp":
        return kind, np.ones((1, 1), np.float32), 0.0
    if kind == "gaussian":
        sigma = float(rng.uniform(*recipe.gaussian_sigma))
        return kind, gaussian_kernel(max(sigma, 0.3)), sigma
    radius = float(rng.uniform(*recipe.disc_radius))
    cut = (0.0, 0.0)
    if rng.uniform() < recipe.cats_eye_probability:
        angle, depth = rng.uniform(0, 2 * np.pi), rng.uniform(0.3, 0.9)
        cut = (float(depth * np.cos(angle)), float(depth * np.sin(angle)))
    kernel = disc_kernel(max(radius, 0.5), cut)
    if kind == "soft-disc":
        kernel = _soften(kernel, float(rng.uniform(*recipe.soft_sigma)))
    return kind, kernel, radius


def _smooth_map(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A slowly varying field in [0, 1]: a few random values, smoothly upsampled."""
    coarse = rng.uniform(0, 1, (3, 3)).astype(np.float32)
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)[..., None]


def _convolve_linear(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    if kernel.shape == (1, 1):
        return image
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


@dataclass
class DefocusPair(BlurPair):
    kernel: str = "sharp"  # KERNELS
    blur_size: float = 0.0  # a disc's radius or a Gaussian's sigma, px


def render_defocus_pair(
    rng: np.random.Generator,
    height: int,
    width: int,
    recipe: DefocusRecipe = DefocusRecipe(),
    photos: tuple[str, ...] | None = None,
) -> DefocusPair:
    """One (blurry, sharp) defocus pair of the given size."""
    sharp, photo = sharp_scene(rng, height, width, photos)
    sharp = np.clip(sharp, 0.0, 1.0).astype(np.float32)
    kind, kernel, size = draw_kernel(rng, recipe)
    linear = to_linear(sharp)
    blurred = _convolve_linear(linear, kernel)
    if kind != "sharp" and rng.uniform() < recipe.varying_probability:
        # Depth: a weaker blur of the same kind where the map is low (nearer the focal plane).
        weaker = _convolve_linear(linear, _resize_kernel(kernel, float(rng.uniform(0.0, 0.6))))
        depth = _smooth_map(rng, height, width)
        blurred = depth * blurred + (1 - depth) * weaker
    blurry, _ = degrade_pair(rng, to_gamma(blurred), None, recipe.degrade)
    if rng.uniform() < recipe.h264_probability and height % 2 == 0 and width % 2 == 0:
        from streamdeblur.synthetic.sequences import through_h264

        blurry = through_h264([blurry], int(rng.integers(recipe.h264_crf[0], recipe.h264_crf[1] + 1)))[0]
    if kind == "sharp" and recipe.sharp_target == "input":
        sharp = blurry.copy()
    return DefocusPair(blurry=blurry, sharp=sharp, photo=photo, kernel=kind, blur_size=size)


def _resize_kernel(kernel: np.ndarray, scale: float) -> np.ndarray:
    """The kernel shrunk by `scale` (0: a point), normalised."""
    size = max(1, int(round(kernel.shape[0] * scale)) | 1)
    if size == 1:
        return np.ones((1, 1), np.float32)
    small = cv2.resize(kernel, (size, size), interpolation=cv2.INTER_AREA)
    return (small / small.sum()).astype(np.float32)
