"""Does adapting help? Two clips of one synthetic camera, from different scenes: adapt on
clip A's blurry video alone, then score the starting and the adapted weights on clip B's
blurry frames against their sharp frames (which adapt never sees).

    python -m streamdeblur.adapt.evidence OUT_DIR --minutes 8

The camera shakes by a different amount in every frame (calm and shaky stretches, so some
frames are nearly sharp), adds sensor noise and JPEG artefacts, and its video is H.264.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch

from streamdeblur.adapt.footage import Footage, decode
from streamdeblur.adapt.run import adapt
from streamdeblur.adapt.validation import deblur
from streamdeblur.models import DEFAULT_WEIGHTS, load_checkpoint
from streamdeblur.synthetic.blur import average_in_linear_light, pose_matrix
from streamdeblur.synthetic.scenes import draw_text, photo_crop, procedural_scene
from streamdeblur.training.metrics import psnr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Camera:
    """What stays the same from clip to clip: size, rate, how it shakes, noise, compression."""

    width: int = 640
    height: int = 360
    fps: int = 15
    max_blur_px: float = 24.0  # camera motion over one exposure, at the shakiest
    calm: float = 0.8  # how much one frame's shake carries into the next (AR(1) coefficient)
    drift_px: float = 2.0  # the view moves this much between frames (not during the exposure)
    subframes: int = 9
    read_noise: float = 0.01
    shot_noise: float = 0.01
    jpeg_quality: int = 60
    # The scene's smallest shapes are this many times the procedural generator's (3 px
    # leaves): a street or a room filmed from some distance, not confetti at arm's length.
    scene_scale: int = 2


@dataclass
class Clip:
    blurry: list[np.ndarray]  # uint8 RGB, as the camera delivers them
    sharp: list[np.ndarray]  # uint8 RGB: the view at the exposure's middle, no noise
    blur_px: list[float]  # the camera's motion over each exposure


def _shake_magnitudes(rng: np.random.Generator, camera: Camera, count: int) -> np.ndarray:
    """Per-frame exposure motion: an AR(1) Gaussian mapped to [0, 1] and squared, so about a
    quarter of the frames move under a sixteenth of the maximum (nearly sharp)."""
    z = np.empty(count)
    z[0] = rng.standard_normal()
    for k in range(1, count):
        z[k] = camera.calm * z[k - 1] + np.sqrt(1 - camera.calm**2) * rng.standard_normal()
    from math import erf, sqrt

    uniform = np.array([0.5 * (1 + erf(v / sqrt(2))) for v in z])
    return camera.max_blur_px * uniform**2


def _degrade(rng: np.random.Generator, image: np.ndarray, camera: Camera) -> np.ndarray:
    sigma = np.sqrt(camera.shot_noise**2 * image + camera.read_noise**2)
    noisy = np.clip(image + rng.standard_normal(image.shape).astype(np.float32) * sigma, 0.0, 1.0)
    as_bytes = np.round(noisy * 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", as_bytes, [cv2.IMWRITE_JPEG_QUALITY, camera.jpeg_quality])
    return np.asarray(cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)) if ok else as_bytes


def render_camera_clip(rng: np.random.Generator, camera: Camera, count: int, photo: str | None = None) -> Clip:
    """`count` frames through `camera` of one scene: a procedural one (with text), or a
    crop of `photo` (an image file)."""
    margin = int(camera.max_blur_px) + 8
    travel = int(np.ceil(camera.drift_px * count))
    height, width = camera.height + 2 * margin, camera.width + travel + 2 * margin
    if photo is not None:
        canvas = photo_crop(rng, photo, height, width)
    else:
        small = procedural_scene(rng, -(-height // camera.scene_scale), -(-width // camera.scene_scale))
        canvas = np.ascontiguousarray(
            cv2.resize(small, None, fx=camera.scene_scale, fy=camera.scene_scale, interpolation=cv2.INTER_LINEAR)[
                :height, :width
            ]
        )
        draw_text(rng, canvas, lines=6)
    centre_in = (canvas.shape[1] / 2, canvas.shape[0] / 2)
    centre_out = (camera.width / 2, camera.height / 2)
    size = (camera.width, camera.height)
    magnitudes = _shake_magnitudes(rng, camera, count)
    clip = Clip([], [], [])
    for k in range(count):
        # The view at the exposure's middle: drifting right across the canvas, swaying a little.
        x = -travel / 2 + camera.drift_px * k
        y = 6.0 * np.sin(0.05 * k)
        angle = float(rng.uniform(0, 2 * np.pi))
        motion = magnitudes[k] * np.array([np.cos(angle), np.sin(angle)])
        bend = 0.15 * magnitudes[k] * rng.uniform(-1, 1, 2)  # some curvature, as real shake has
        renders = []
        for t in np.linspace(-0.5, 0.5, camera.subframes):
            shift = (-x + motion[0] * t + bend[0] * (t * t - 1 / 12), y + motion[1] * t + bend[1] * (t * t - 1 / 12))
            matrix = pose_matrix(centre_in, centre_out, 0.0, 1.0, (float(shift[0]), float(shift[1])))
            renders.append(cv2.warpAffine(canvas, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        sharp = renders[camera.subframes // 2]
        clip.blurry.append(_degrade(rng, average_in_linear_light(renders), camera))
        clip.sharp.append(np.round(np.clip(sharp, 0, 1) * 255).astype(np.uint8))
        clip.blur_px.append(float(magnitudes[k]))
    return clip


def write_video(path: Path, frames: list[np.ndarray], fps: int, crf: int = 18) -> Path:
    """H.264 in MP4, as a camera would record (crf 18: little added loss on top of JPEG)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for pixels in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def score_clip(
    video: Path, sharp: list[np.ndarray], blur_px: list[float], weights: dict[str, Path], every: int = 1
) -> dict[str, Any]:
    """PSNR (dB) of the decoded blurry frames and of each weights' output against the sharp
    frames: over all scored frames, and over those moved more than 4 px in their exposure."""
    models = {name: load_checkpoint(path) for name, path in weights.items()}
    device = torch.device("cpu")
    rows: list[dict[str, float]] = []
    for decoded in decode(Footage(video, "video")):
        if decoded.index % every:
            continue
        blurry = decoded.pixels.astype(np.float32) / 255
        reference = sharp[decoded.index].astype(np.float32) / 255
        row = {"frame": decoded.index, "blur_px": blur_px[decoded.index], "blurry": psnr(blurry, reference)}
        for name, model in models.items():
            row[name] = psnr(deblur(model, blurry, device), reference)
        rows.append(row)

    def mean(selected: list[dict[str, float]]) -> dict[str, float]:
        keys = ["blurry", *models]
        return {"frames": len(selected), **{k: round(float(np.mean([r[k] for r in selected])), 3) for k in keys}}

    moved = [r for r in rows if r["blur_px"] > 4.0]
    return {"all": mean(rows), "blur_over_4px": mean(moved) if moved else {}, "per_frame": rows}


def run_evidence(
    out_dir: Path,
    minutes: float,
    frames_a: int = 180,
    frames_b: int = 60,
    score_every: int = 2,
    pick: int = 48,
    camera: Camera = Camera(),
    photo_a: str | None = None,
    photo_b: str | None = None,
) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    clip_a = render_camera_clip(np.random.default_rng(1), camera, frames_a, photo_a)
    clip_b = render_camera_clip(np.random.default_rng(2), camera, frames_b, photo_b)
    video_a = write_video(out_dir / "clip_a_blurry.mp4", clip_a.blurry, camera.fps)
    video_b = write_video(out_dir / "clip_b_blurry.mp4", clip_b.blurry, camera.fps)
    log.info("rendered clip A (%d frames) and clip B (%d) in %.0f s", frames_a, frames_b, time.perf_counter() - started)
    adapted = adapt(
        [video_a],
        out_dir / "camera.safetensors",
        minutes=minutes,
        frames=pick,
        overwrite=True,
        work=out_dir / "camera.adapt",
        device="cpu",
    )
    scores = score_clip(
        video_b,
        clip_b.sharp,
        clip_b.blur_px,
        {"shipped": DEFAULT_WEIGHTS, "adapted": adapted.weights},
        every=score_every,
    )
    result = {
        "camera": asdict(camera),
        "photo_a": photo_a,
        "photo_b": photo_b,
        "frames_a": frames_a,
        "frames_b": frames_b,
        "minutes": minutes,
        "clip_a_sharp_share": float(np.mean(np.array(clip_a.blur_px) < 1.5)),
        "adapt": {
            k: adapted.card["adapted"][k]
            for k in ("steps", "train_seconds", "frames_scored", "frames_picked", "validation")
        },
        "picked_blur_px": [round(clip_a.blur_px[p["frame"]], 2) for p in adapted.card["adapted"]["picked"]],
        "clip_b": scores,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (out_dir / "evidence.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time limit")
    parser.add_argument("--frames-a", type=int, default=180)
    parser.add_argument("--frames-b", type=int, default=60)
    parser.add_argument("--score-every", type=int, default=2, help="score every Nth frame of clip B")
    # The camera's own look: the further from what the shipped weights were trained on (read
    # noise up to 0.015, shot noise up to 0.01, JPEG 35 to 95 on 60 % of pairs: synthetic/blur.py),
    # the more there is to adapt to.
    parser.add_argument("--read-noise", type=float, default=Camera.read_noise)
    parser.add_argument("--shot-noise", type=float, default=Camera.shot_noise)
    parser.add_argument("--jpeg-quality", type=int, default=Camera.jpeg_quality)
    # Real content instead of procedural scenes (which the shipped weights were trained on):
    # each clip films a crop of one photograph, for example two of `streamdeblur photos`.
    parser.add_argument("--photo-a", help="image file clip A films (default: a procedural scene)")
    parser.add_argument("--photo-b", help="image file clip B films (default: a procedural scene)")
    args = parser.parse_args()
    camera = Camera(read_noise=args.read_noise, shot_noise=args.shot_noise, jpeg_quality=args.jpeg_quality)
    from streamdeblur.logs import setup_logging

    setup_logging(quiet=False, verbose=False)
    result = run_evidence(
        args.out_dir,
        args.minutes,
        args.frames_a,
        args.frames_b,
        args.score_every,
        camera=camera,
        photo_a=args.photo_a,
        photo_b=args.photo_b,
    )
    summary = {k: v for k, v in result["clip_b"].items() if k != "per_frame"}
    print(json.dumps({"adapt": result["adapt"], "clip_b": summary}, indent=2))


if __name__ == "__main__":
    main()
