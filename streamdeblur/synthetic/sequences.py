"""Synthetic blurred video: a camera path over time across a sharp picture.

Where `blur.render_pair` makes one blurry frame, this renders consecutive frames of one shot,
as a hand-held, vehicle-mounted or wind-shaken camera films them: a steady pan (plus sway)
shared by the whole shot, and shake whose strength changes from frame to frame, so some
frames are nearly sharp, some are long streaks, and blurred frames come in runs. Each
frame's exposure is the average of sub-frames in linear light; objects move on their own.
The sharp target of a frame is the render at its exposure's midpoint. Then every frame gets
the noise and JPEG of `blur.degrade`, and some shots go through H.264 as a whole.

A share of shots is `uniform` (every frame equally blurred: a neighbour is no sharper, and a
network must not count on one), a share `still` (a camera on a mount: only objects move) and,
where a recipe asks, a share `sharp` (a fast shutter and a clean sensor: every frame is its own
target, so a network learns to leave sharp footage alone).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import cv2
import numpy as np

from streamdeblur.synthetic.blur import (
    BlurRecipe,
    add_sensor_noise,
    as_clean_8bit,
    pose_matrix,
    random_sprite,
    through_jpeg,
    to_gamma,
    to_linear,
)
from streamdeblur.synthetic.scenes import sharp_scene

KINDS = ("varying", "uniform", "still", "sharp")


@dataclass(frozen=True)
class SequenceRecipe:
    """Ranges the sequence generator samples from; pixel figures are at the rendered size."""

    # Shake: the camera's motion over one exposure at the shakiest frame of a shot. Each
    # frame's share of it follows an AR(1) process (`calm` carries one frame's shake into the
    # next: runs of blurred and of sharp frames) mapped to [0, 1] and raised to `shake_power`,
    # so a fair share of frames is nearly sharp.
    max_shake_px: float = 36.0
    calm: float = 0.6
    shake_power: float = 1.5
    # The pan: steady motion of the view between frames, shared by the whole shot.
    max_pan_px: float = 16.0  # per frame interval
    exposure: tuple[float, float] = (0.4, 1.0)  # of the frame interval the shutter is open
    max_rotation_deg: float = 0.6  # rotation of the view per frame interval, at most
    max_zoom: float = 0.01  # per frame interval
    max_objects: int = 2
    max_object_speed: float = 20.0  # px per frame interval
    uniform_probability: float = 0.2
    still_probability: float = 0.1
    sharp_probability: float = 0.0
    # Sub-frames per exposure: enough that streaks look continuous (one per `subframe_px` of
    # motion), odd, within these bounds.
    subframe_px: float = 2.5
    subframes: tuple[int, int] = (3, 17)
    h264_probability: float = 0.3
    h264_crf: tuple[int, int] = (18, 32)
    # A real camera leaves its noise and codec in every frame, the sharp ones too. In this share
    # of shots the target carries the blurry frame's own noise field and goes through the same
    # codec, so where nothing moved the two are the same image: the network learns to hand noise
    # and codec artefacts through rather than smooth them away (which softens real footage).
    # A `sharp` shot then is such noisy frames, each its own target.
    noisy_target_probability: float = 0.0
    # Training windows with no real neighbour (every one the frame itself, as the pipeline pads
    # a lone picture or a one-frame shot): the network must deblur those alone, not take the
    # repeats for a still camera.
    lone_window_probability: float = 0.0
    # A real frame keeps the blur of what moved on its own during its exposure: a target made by
    # a real camera has a thrown ball soft, not frozen. This share of each exposure is what
    # objects moving on their own stay blurred over in the target (the camera's path is still
    # frozen at the midpoint); 0: every target instantaneous.
    object_target_exposure: float = 0.0
    # Noise, JPEG and scene softness, as for single pairs (blur.BlurRecipe's fields).
    degrade: BlurRecipe = field(default_factory=BlurRecipe)


@dataclass
class Sequence:
    blurry: list[np.ndarray]  # float32 HxWx3 in [0, 1], one per frame, as the camera delivered them
    sharp: list[np.ndarray]  # float32 HxWx3: each frame's view at its exposure's midpoint
    blur_px: list[float]  # how far the image centre moved during each exposure
    kind: str  # one of KINDS
    photo: str | None = None  # the photo the shot films; None: a procedural scene


def shake_shares(rng: np.random.Generator, count: int, recipe: SequenceRecipe, kind: str) -> np.ndarray:
    """Each frame's share of the shot's strongest shake, in [0, 1]."""
    if kind == "still":
        return np.zeros(count)
    if kind == "uniform":
        return np.full(count, float(rng.uniform(0.2, 1.0)))
    z = np.empty(count)
    z[0] = rng.standard_normal()
    for k in range(1, count):
        z[k] = recipe.calm * z[k - 1] + np.sqrt(1 - recipe.calm**2) * rng.standard_normal()
    uniform = 0.5 * (1 + np.vectorize(_erf)(z / np.sqrt(2)))
    return np.asarray(uniform**recipe.shake_power)


def _erf(value: float) -> float:
    from math import erf

    return erf(value)


@dataclass
class _Camera:
    """Where the view is at time t (frame intervals from the shot's reference frame), per frame k."""

    pan: np.ndarray  # px per frame interval
    sway: list[tuple[float, float, float]]  # (amplitude px, cycles per frame, phase) for x and y
    rotation: float  # degrees per frame interval
    zoom: float  # per frame interval
    shake: list[tuple[np.ndarray, np.ndarray]]  # per frame: motion over the exposure, curvature
    jitter: np.ndarray  # per frame: where the shake has left the view, px

    def pose(self, k: int, t: float, exposure: float, tau: float) -> tuple[float, float, float, float]:
        """(x shift, y shift, angle, scale) of frame k at exposure time tau in [-0.5, 0.5]."""
        time = t + tau * exposure
        sway = [a * np.sin(2 * np.pi * f * time + p) for a, f, p in self.sway]
        motion, bend = self.shake[k]
        shift = self.pan * time + np.array(sway) + self.jitter[k] + motion * tau + bend * (tau * tau - 1 / 12)
        return float(shift[0]), float(shift[1]), self.rotation * time, 1.0 + self.zoom * time


def _camera(rng: np.random.Generator, count: int, recipe: SequenceRecipe, kind: str) -> _Camera:
    shares = shake_shares(rng, count, recipe, kind)
    moving = kind != "still"
    pan_speed = recipe.max_pan_px * float(rng.uniform(0, 1)) ** 1.5 if moving else 0.0
    direction = float(rng.uniform(0, 2 * np.pi))
    pan = pan_speed * np.array([np.cos(direction), np.sin(direction)])
    sway = [
        (
            float(rng.uniform(0, 0.3 * recipe.max_pan_px)) if moving else 0.0,
            float(rng.uniform(0.02, 0.15)),
            float(rng.uniform(0, 2 * np.pi)),
        )
        for _ in range(2)
    ]
    shake, jitter = [], np.zeros((count, 2))
    # A uniform shot shakes the same way in every frame; a varying one in a new direction each time.
    fixed_angle = float(rng.uniform(0, 2 * np.pi))
    for k, share in enumerate(shares):
        angle = fixed_angle if kind == "uniform" else float(rng.uniform(0, 2 * np.pi))
        length = recipe.max_shake_px * float(share)
        motion = length * np.array([np.cos(angle), np.sin(angle)])
        shake.append((motion, 0.15 * length * rng.uniform(-1, 1, 2)))
        # Shake also moves the view between frames, by about as much as it streaks it.
        jitter[k] = 0.5 * length * rng.uniform(-1, 1, 2)
    rotation = recipe.max_rotation_deg * float(rng.uniform(-1, 1)) if moving else 0.0
    zoom = recipe.max_zoom * float(rng.uniform(-1, 1)) if moving else 0.0
    return _Camera(pan, sway, rotation, zoom, shake, jitter)


def _subframe_count(length_px: float, recipe: SequenceRecipe) -> int:
    low, high = recipe.subframes
    wanted = int(np.ceil(length_px / recipe.subframe_px)) | 1
    return int(min(max(wanted, low | 1), high | 1 if high % 2 else high - 1))


def render_sequence(
    rng: np.random.Generator,
    height: int,
    width: int,
    count: int,
    recipe: SequenceRecipe = SequenceRecipe(),
    photos: tuple[str, ...] | None = None,
    kind: str | None = None,
    reference: int | None = None,
) -> Sequence:
    """`count` consecutive frames of one shot; `reference` (default: the middle frame) is
    where the camera path is centred on the scene."""
    if kind is None:
        u = float(rng.uniform())
        still_to = recipe.uniform_probability + recipe.still_probability
        kind = (
            "uniform"
            if u < recipe.uniform_probability
            else "still"
            if u < still_to
            else ("sharp" if u < still_to + recipe.sharp_probability else "varying")
        )
    reference = count // 2 if reference is None else reference
    camera = _camera(rng, count, recipe, kind)
    exposure = float(rng.uniform(*recipe.exposure))

    # Enough canvas that the view never leaves it over the whole shot.
    diagonal = float(np.hypot(height, width))
    span = count + 1
    travel = (
        recipe.max_pan_px * (1 + 0.3) * span / 2
        + recipe.max_shake_px * 1.2
        + diagonal * (np.radians(recipe.max_rotation_deg) + recipe.max_zoom) * span / 2
    )
    margin = int(travel) + 8
    canvas, photo = sharp_scene(rng, height + 2 * margin, width + 2 * margin, photos)
    soft = recipe.degrade
    if rng.uniform() < soft.soft_probability:
        canvas = cv2.GaussianBlur(canvas, (0, 0), float(rng.uniform(0.5, soft.max_soft_sigma)))
    canvas_linear = to_linear(canvas)
    centre_in = ((width + 2 * margin) / 2, (height + 2 * margin) / 2)
    centre_out = (width / 2, height / 2)

    objects = []
    for _ in range(int(rng.integers(0, recipe.max_objects + 1))):
        size = int(min(height, width) * rng.uniform(0.15, 0.45)) | 1
        rgb, alpha = random_sprite(rng, size)
        # Placed in the scene (canvas coordinates) near the view, so the camera moves them too.
        start = (
            centre_in[0] + float(rng.uniform(-0.5, 0.5)) * width,
            centre_in[1] + float(rng.uniform(-0.5, 0.5)) * height,
        )
        speed = recipe.max_object_speed * float(rng.uniform(0, 1))
        direction = float(rng.uniform(0, 2 * np.pi))
        objects.append(
            (
                to_linear(rgb),
                alpha,
                start,
                speed * np.cos(direction),
                speed * np.sin(direction),
                float(rng.uniform(-3, 3)),
            )
        )

    def render(k: int, tau: float, object_tau: float | None = None) -> np.ndarray:
        """The view of frame k at exposure time tau (the objects at `object_tau`, where given),
        in linear light."""
        t = float(k - reference)
        x, y, angle, scale = camera.pose(k, t, exposure, tau)
        matrix = pose_matrix(centre_in, centre_out, angle, scale, (x, y))
        frame = cv2.warpAffine(
            canvas_linear, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        time = t + (tau if object_tau is None else object_tau) * exposure
        for rgb, alpha, start, vx, vy, spin in objects:
            half = rgb.shape[0] / 2
            m = _then(matrix, pose_matrix((half, half), start, spin * time, 1.0, (vx * time, vy * time)))
            a = cv2.warpAffine(alpha, m, (width, height), flags=cv2.INTER_LINEAR)[..., None]
            c = cv2.warpAffine(rgb, m, (width, height), flags=cv2.INTER_LINEAR)
            frame = a * c + (1 - a) * frame
        return frame

    # Drawn only where a recipe asks, so that other recipes render the same shots as before.
    noisy_target = recipe.noisy_target_probability > 0 and rng.uniform() < recipe.noisy_target_probability
    blurry, sharp, blur_px = [], [], []
    if kind == "sharp":  # the camera's path as filmed, every exposure instantaneous
        sharp = [to_gamma(render(k, 0.0)).astype(np.float32) for k in range(count)]
        if noisy_target:  # through a real camera's noise and codec, each frame its own target
            sharp = through_camera(rng, recipe, sharp)[0]
            return Sequence(sharp, sharp, [0.0] * count, kind, photo)
        return Sequence([as_clean_8bit(f) for f in sharp], sharp, [0.0] * count, kind, photo)
    for k in range(count):
        t = float(k - reference)
        ends = [np.array(camera.pose(k, t, exposure, tau)[:2]) for tau in (-0.5, 0.5)]
        length = float(np.hypot(*(ends[1] - ends[0])))
        taus = np.linspace(-0.5, 0.5, _subframe_count(length, recipe))
        total = np.zeros((height, width, 3), np.float32)
        for tau in taus:
            total += render(k, float(tau))
        blurry.append(to_gamma(total / len(taus)))
        # Rendered through the same linear-light path, so a still frame's blurry and sharp
        # versions are the same image before noise.
        sharp.append(to_gamma(_target(render, k, objects, exposure, recipe)).astype(np.float32))
        blur_px.append(length)
    blurry, noisy_sharp = through_camera(rng, recipe, blurry, sharp if noisy_target else None)
    return Sequence(blurry, noisy_sharp if noisy_target else sharp, blur_px, kind, photo)


def _target(
    render: Callable[[int, float, float | None], np.ndarray],
    k: int,
    objects: list[tuple[Any, ...]],
    exposure: float,
    recipe: SequenceRecipe,
) -> np.ndarray:
    """Frame k's target in linear light: the view at its exposure's midpoint, and where the
    recipe asks, its moving objects averaged over that share of the exposure around it."""
    share = recipe.object_target_exposure
    if share <= 0 or not objects:
        return render(k, 0.0, None)
    fastest = max(float(np.hypot(o[3], o[4])) for o in objects) * exposure * share
    taus = np.linspace(-share / 2, share / 2, _subframe_count(fastest, recipe))
    return sum(render(k, 0.0, float(tau)) for tau in taus) / len(taus)  # type: ignore[return-value]


def through_camera(
    rng: np.random.Generator,
    recipe: SequenceRecipe,
    frames: list[np.ndarray],
    targets: list[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The shot's noise and JPEG, then in some shots H.264; `targets`, where given, get the
    same noise fields and codec (else the second list is empty)."""
    frames, targets = degrade_shot(rng, frames, recipe.degrade, targets)
    height, width = frames[0].shape[:2]
    if rng.uniform() < recipe.h264_probability and height % 2 == 0 and width % 2 == 0:
        crf = int(rng.integers(recipe.h264_crf[0], recipe.h264_crf[1] + 1))
        frames, targets = through_h264(frames, crf), (through_h264(targets, crf) if targets else targets)
    return frames, targets


def _then(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2x3 affine that applies `inner`, then `outer`."""
    return np.hstack([outer[:, :2] @ inner[:, :2], outer[:, :2] @ inner[:, 2:] + outer[:, 2:]])


def degrade_shot(
    rng: np.random.Generator,
    frames: list[np.ndarray],
    recipe: BlurRecipe,
    targets: list[np.ndarray] | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One camera's noise and JPEG on every frame of a shot: strengths drawn once, noise per
    frame. `targets`, where given, get each frame's own noise field and the same JPEG (else
    the second list is empty)."""
    targets = targets or []
    if recipe.clean_probability > 0 and rng.uniform() < recipe.clean_probability:
        return [as_clean_8bit(f) for f in frames], [as_clean_8bit(f) for f in targets]
    shot = float(rng.uniform(0, recipe.max_shot_noise))
    read = float(rng.uniform(0, recipe.max_read_noise))
    quality = None
    if rng.uniform() < recipe.jpeg_probability:
        quality = int(rng.integers(recipe.jpeg_quality[0], recipe.jpeg_quality[1] + 1))

    def camera(image: np.ndarray, field: np.ndarray | None) -> np.ndarray:
        as_bytes = add_sensor_noise(rng, image, shot, read, field)
        return (as_bytes if quality is None else through_jpeg(as_bytes, quality)).astype(np.float32) / 255.0

    degraded, degraded_targets = [], []
    for k, frame in enumerate(frames):
        if k < len(targets):
            field = rng.standard_normal(frame.shape).astype(np.float32)
            degraded.append(camera(frame, field))
            degraded_targets.append(camera(targets[k], field))
        else:
            degraded.append(camera(frame, None))
    return degraded, degraded_targets


def through_h264(frames: list[np.ndarray], crf: int) -> list[np.ndarray]:
    """The frames as a camera's H.264 stream delivers them (encoded in memory, decoded back)."""
    import av

    buffer = io.BytesIO()
    height, width = frames[0].shape[:2]
    with av.open(buffer, mode="w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast", "threads": "1"}
        for frame in frames:
            pixels = np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    buffer.seek(0)
    with av.open(buffer, mode="r") as container:
        decoded = [f.to_ndarray(format="rgb24").astype(np.float32) / 255.0 for f in container.decode(video=0)]
    return decoded if len(decoded) == len(frames) else frames
