"""Synthetic motion blur made the way GoPro and REDS were: average sharp sub-frames.

A sharp scene (defocused first in a share of pairs: softness belongs to the scene and stays
in the target) is moved along a random smooth camera trajectory (rotation, translation, zoom,
plus shake), with independently moving objects on top, rendered at 7 to 13 sub-frames across
the exposure (an odd count, so that the middle one is the exposure's centre). The sub-frames
are averaged in linear light (undo gamma, average, redo gamma); the middle sub-frame is the
sharp target. Then the blurry frame gets the sensor noise and compression artefacts of
dashcams and surveillance cameras.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from streamdeblur.synthetic.scenes import draw_text, procedural_scene, sharp_scene

GAMMA = 2.2


@dataclass(frozen=True)
class BlurRecipe:
    """Ranges the generator samples from; pixel figures are per exposure."""

    subframes: tuple[int, int] = (7, 13)  # odd counts only: 7, 9, 11 or 13
    max_translation: float = 32.0
    max_rotation_deg: float = 2.0
    max_zoom: float = 0.04
    # Within one exposure (1/30 s or shorter) camera motion is nearly linear: some curvature,
    # and shake at under one cycle per exposure. Faster, larger wiggles would put the middle
    # sub-frame (the target) several pixels from the blur's centre in a direction the blurry
    # image does not reveal, which no network can learn.
    acceleration_fraction: float = 0.2
    shake_fraction: float = 0.1
    shake_cycles: tuple[float, float] = (0.2, 0.7)
    # Defocus and lens softness of the scene itself (kept in the target): without soft
    # targets the network learns that everything should be crisp, and "sharpens" soft
    # pictures (a microscopy photo) into posterised blobs.
    soft_probability: float = 0.3
    max_soft_sigma: float = 2.0
    max_objects: int = 3
    max_object_speed: float = 32.0
    max_read_noise: float = 0.015
    max_shot_noise: float = 0.01
    jpeg_probability: float = 0.6
    jpeg_quality: tuple[int, int] = (35, 95)
    # The share of pairs whose blurry frame gets neither noise nor compression: a network that
    # never sees a clean input treats fine, faint texture as noise and smooths it away.
    clean_probability: float = 0.0
    # The share of pairs whose sharp target carries the blurry frame's own sensor noise field and
    # JPEG, as a real camera's sharp frames do: the network learns to hand them through rather
    # than smooth them away (0 by default: the target is the clean render).
    noisy_target_probability: float = 0.0


@dataclass
class BlurPair:
    blurry: np.ndarray  # float32 HxWx3 in [0, 1]
    sharp: np.ndarray  # float32 HxWx3 in [0, 1]
    photo: str | None = None  # the photo the scene was cut from; None: procedural
    pan_px: float = 0.0  # the camera's translation over the exposure, in pixels


def to_linear(image: np.ndarray) -> np.ndarray:
    return np.power(np.clip(image, 0.0, 1.0), GAMMA)


def to_gamma(image: np.ndarray) -> np.ndarray:
    return np.power(np.clip(image, 0.0, 1.0), 1.0 / GAMMA)


def as_clean_8bit(image: np.ndarray) -> np.ndarray:
    """The image as a noiseless 8-bit camera stores it, back in float."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.float32) / 255.0


def average_in_linear_light(subframes: list[np.ndarray]) -> np.ndarray:
    """What a sensor integrates over the exposure: the mean of the sub-frames' radiance."""
    total = np.zeros_like(subframes[0])
    for frame in subframes:
        total += to_linear(frame)
    return to_gamma(total / len(subframes))


def pose_matrix(
    centre_in: tuple[float, float],
    centre_out: tuple[float, float],
    angle_deg: float,
    scale: float,
    shift: tuple[float, float],
) -> np.ndarray:
    """2x3 affine that rotates/zooms about centre_in, then places it at centre_out + shift."""
    matrix = cv2.getRotationMatrix2D(centre_in, angle_deg, scale)
    matrix[0, 2] += centre_out[0] - centre_in[0] + shift[0]
    matrix[1, 2] += centre_out[1] - centre_in[1] + shift[1]
    return matrix


class _Trajectory:
    """A smooth random path over normalised exposure time t in [-0.5, 0.5], zero at t=0."""

    def __init__(self, rng: np.random.Generator, magnitude: float, recipe: BlurRecipe, shake: bool = True) -> None:
        self.velocity = magnitude * rng.uniform(-1, 1)
        self.acceleration = recipe.acceleration_fraction * magnitude * rng.uniform(-1, 1)
        amplitude = recipe.shake_fraction * magnitude if shake else 0.0
        self.shake = [
            (amplitude * rng.uniform(-1, 1), rng.uniform(*recipe.shake_cycles), rng.uniform(0, 2 * np.pi))
            for _ in range(2)
        ]

    def __call__(self, t: float) -> float:
        value = self.velocity * t + self.acceleration * t * t
        value += sum(a * (np.sin(2 * np.pi * f * t + p) - np.sin(p)) for a, f, p in self.shake)
        return float(value)


def subframe_count(rng: np.random.Generator, recipe: BlurRecipe) -> int:
    """An odd count in recipe.subframes, so that a middle sub-frame exists at t = 0.

    With an even count the "middle" render sits half a sub-frame after the exposure's
    centre, in the direction of motion; the blurry image cannot tell which way time ran,
    so the target would be off by up to a few pixels in a way no network can learn.
    """
    low, high = recipe.subframes
    first_odd = low | 1
    if first_odd > high:
        raise ValueError(f"sub-frame range {recipe.subframes} holds no odd count")
    return first_odd + 2 * int(rng.integers(0, (high - first_odd) // 2 + 1))


def random_sprite(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """An object to move over the scene: RGB content and a soft alpha mask."""
    rgb = procedural_scene(rng, size, size)
    alpha = np.zeros((size, size), np.float32)
    kind = rng.integers(0, 3)
    centre = (size // 2, size // 2)
    if kind == 0:
        cv2.circle(alpha, centre, int(size * rng.uniform(0.25, 0.48)), 1.0, -1, cv2.LINE_AA)
    elif kind == 1:
        w, h = rng.uniform(0.3, 0.95, 2) * size
        box = cv2.boxPoints((centre, (float(w), float(h)), float(rng.uniform(0, 180))))
        cv2.fillConvexPoly(alpha, box.astype(np.int32), 1.0, cv2.LINE_AA)
    else:
        alpha[:] = 0.0
        draw_text(rng, rgb, lines=1)
        points = rng.uniform(0.05, 0.95, size=(int(rng.integers(3, 7)), 2)) * size
        cv2.fillConvexPoly(alpha, cv2.convexHull(points.astype(np.int32)), 1.0, cv2.LINE_AA)
    return rgb, alpha


def render_pair(
    rng: np.random.Generator,
    height: int,
    width: int,
    recipe: BlurRecipe = BlurRecipe(),
    photos: tuple[str, ...] | None = None,
) -> BlurPair:
    """One (blurry, sharp) pair of the given size."""
    n = subframe_count(rng, recipe)
    times = np.linspace(-0.5, 0.5, n)
    strength = float(rng.uniform(0.0, 1.0)) ** 1.5  # more small blurs than large ones
    tx = _Trajectory(rng, recipe.max_translation * strength, recipe)
    ty = _Trajectory(rng, recipe.max_translation * strength, recipe)
    rot = _Trajectory(rng, recipe.max_rotation_deg * strength, recipe)
    zoom = _Trajectory(rng, recipe.max_zoom * strength, recipe, shake=False)

    # A margin so the moving camera never shows the canvas edge.
    diagonal = float(np.hypot(height, width))
    margin = int(recipe.max_translation * 2 + diagonal * (np.radians(recipe.max_rotation_deg) + recipe.max_zoom)) + 4
    canvas, photo = sharp_scene(rng, height + 2 * margin, width + 2 * margin, photos)
    if rng.uniform() < recipe.soft_probability:
        canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.5, recipe.max_soft_sigma)))
    centre_in = ((width + 2 * margin) / 2, (height + 2 * margin) / 2)
    centre_out = (width / 2, height / 2)

    objects = []
    for _ in range(int(rng.integers(0, recipe.max_objects + 1))):
        size = int(min(height, width) * rng.uniform(0.15, 0.5)) | 1
        rgb, alpha = random_sprite(rng, size)
        start = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
        speed = recipe.max_object_speed * float(rng.uniform(0, 1))
        direction = float(rng.uniform(0, 2 * np.pi))
        spin = float(rng.uniform(-10, 10))
        objects.append((rgb, alpha, start, speed * np.cos(direction), speed * np.sin(direction), spin))

    subframes = []
    for t in times:
        matrix = pose_matrix(centre_in, centre_out, rot(t), 1.0 + zoom(t), (tx(t), ty(t)))
        frame = cv2.warpAffine(canvas, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for rgb, alpha, start, vx, vy, spin in objects:
            half = rgb.shape[0] / 2
            m = pose_matrix((half, half), start, spin * t, 1.0, (vx * t, vy * t))
            a = cv2.warpAffine(alpha, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            c = cv2.warpAffine(rgb, m, (width, height), flags=cv2.INTER_LINEAR)
            frame = a * c + (1 - a) * frame
        subframes.append(frame.astype(np.float32))

    sharp = np.clip(subframes[n // 2], 0.0, 1.0)
    # Drawn only where a recipe asks, so that other recipes render the same pairs as before.
    noisy_target = recipe.noisy_target_probability > 0 and rng.uniform() < recipe.noisy_target_probability
    blurry, noisy_sharp = degrade_pair(rng, average_in_linear_light(subframes), sharp if noisy_target else None, recipe)
    pan = float(np.hypot(tx(0.5) - tx(-0.5), ty(0.5) - ty(-0.5)))
    return BlurPair(blurry=blurry, sharp=sharp if noisy_sharp is None else noisy_sharp, photo=photo, pan_px=pan)


def degrade(rng: np.random.Generator, image: np.ndarray, recipe: BlurRecipe) -> np.ndarray:
    """Sensor noise (signal-dependent shot noise plus read noise) and JPEG artefacts."""
    return degrade_pair(rng, image, None, recipe)[0]


def degrade_pair(
    rng: np.random.Generator,
    image: np.ndarray,
    target: np.ndarray | None,
    recipe: BlurRecipe,
) -> tuple[np.ndarray, np.ndarray | None]:
    """`degrade` on the image and, where given, the same noise field and JPEG on `target`."""
    # No draw at all when clean pairs are off, so that recipes without them render the same
    # pairs as before (an exact resume of a run begun earlier depends on it).
    if recipe.clean_probability > 0 and rng.uniform() < recipe.clean_probability:
        return as_clean_8bit(image), None if target is None else as_clean_8bit(target)
    shot = float(rng.uniform(0, recipe.max_shot_noise))
    read = float(rng.uniform(0, recipe.max_read_noise))
    field = None if target is None else rng.standard_normal(image.shape).astype(np.float32)
    made = [add_sensor_noise(rng, image, shot, read, field)]
    if target is not None:
        made.append(add_sensor_noise(rng, target, shot, read, field))
    if rng.uniform() < recipe.jpeg_probability:
        quality = int(rng.integers(recipe.jpeg_quality[0], recipe.jpeg_quality[1] + 1))
        made = [through_jpeg(m, quality) for m in made]
    floats = [m.astype(np.float32) / 255.0 for m in made]
    return floats[0], floats[1] if target is not None else None


def add_sensor_noise(
    rng: np.random.Generator,
    image: np.ndarray,
    shot: float,
    read: float,
    field: np.ndarray | None = None,
) -> np.ndarray:
    """Signal-dependent shot noise plus read noise, quantised to 8 bits. `field`: the unit
    normal noise to scale (drawn here when None), so two images can share one exposure's."""
    sigma = np.sqrt(shot * shot * image + read * read)
    field = rng.standard_normal(image.shape).astype(np.float32) if field is None else field
    noisy = np.clip(image + field * sigma, 0.0, 1.0)
    return np.round(noisy * 255).astype(np.uint8)


def through_jpeg(as_bytes: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(".jpg", as_bytes, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)) if ok else as_bytes


def render_clip(
    rng: np.random.Generator,
    width: int,
    height: int,
    n_frames: int,
    fps: float,
    subframes: int = 9,
    exposure: float = 0.9,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(blurry, sharp) uint8 frames of a procedural scene filmed by a panning, shaking camera.

    The camera sways (up to ~20 px of motion per exposure at 30 frames/s) with a faster
    shake on top; each frame averages `subframes` renders across `exposure` of the frame
    interval in linear light, like the training pairs.
    """
    sway = np.array([width, height], np.float32) * 0.2
    margin = int(max(sway) + 0.1 * max(width, height)) + 8
    canvas = procedural_scene(rng, height + 2 * margin, width + 2 * margin)
    draw_text(rng, canvas, lines=8)
    centre_in = ((width + 2 * margin) / 2, (height + 2 * margin) / 2)
    centre_out = (width / 2, height / 2)
    freq = rng.uniform(0.25, 0.45, 2)
    phase = rng.uniform(0, 2 * np.pi, 2)
    shake_freq, shake_amp = rng.uniform(4, 7, 2), rng.uniform(2, 5, 2)

    def pose(t: float) -> np.ndarray:
        shift = sway * np.sin(2 * np.pi * freq * t + phase) + shake_amp * np.sin(2 * np.pi * shake_freq * t)
        angle = 1.5 * np.sin(2 * np.pi * 0.3 * t)
        return pose_matrix(centre_in, centre_out, float(angle), 1.0, (float(shift[0]), float(shift[1])))

    frames = []
    for k in range(n_frames):
        times = k / fps + np.linspace(-0.5, 0.5, subframes) * exposure / fps
        renders = [
            cv2.warpAffine(
                canvas, pose(float(t)), (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
            )
            for t in times
        ]
        blurry = average_in_linear_light(renders)
        noisy = blurry + rng.standard_normal(blurry.shape).astype(np.float32) * 0.005
        as_uint8 = [np.round(np.clip(img, 0, 1) * 255).astype(np.uint8) for img in (noisy, renders[subframes // 2])]
        frames.append((as_uint8[0], as_uint8[1]))
    return frames
