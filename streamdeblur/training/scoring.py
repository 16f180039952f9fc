"""`streamdeblur eval`: PSNR/SSIM of blurry input and of the model's output against the
sharp target, and side-by-side pictures (blurry | deblurred | sharp). The figures go into a
card in cards.py; pictures and training curves are drawn in plots.py."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamdeblur.inference import Backend
from streamdeblur.inference.processor import infer_pixels
from streamdeblur.io.grey import as_grey, is_grey
from streamdeblur.io.image_folder import read_image
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.synthetic.defocus import KERNELS
from streamdeblur.training.datasets import find_pairs
from streamdeblur.training.footage_scores import RealFootageScores, capped_psnr
from streamdeblur.training.metrics import psnr, ssim
from streamdeblur.training.plots import save_rgb
from streamdeblur.training.real_footage import read_footage_record
from streamdeblur.window.still_camera import assembly_config

# Pan buckets (the camera's translation over the exposure, pixels): where the gain comes from.
PAN_BUCKETS = (
    (0.0, 4.0, "pan under 4 px"),
    (4.0, 10.0, "pan 4-10 px"),
    (10.0, 20.0, "pan 10-20 px"),
    (20.0, math.inf, "pan over 20 px"),
)
# Synthetic video (`synth --frames`): each frame's own blur, and the kind of shot it is in.
BLUR_BUCKETS = (
    (0.0, 2.0, "blur under 2 px"),
    (2.0, 6.0, "blur 2-6 px"),
    (6.0, 15.0, "blur 6-15 px"),
    (15.0, math.inf, "blur over 15 px"),
)
BLURRED = (6.0, "blur over 6 px")  # the frames a windowed model is chiefly meant for
SHOT_KINDS = ("varying", "uniform", "still")


@dataclass
class GroupScore:
    count: int
    input_psnr: float
    output_psnr: float

    def to_dict(self) -> dict[str, float | int]:
        return {**asdict(self), "gain_db": self.output_psnr - self.input_psnr}


@dataclass
class EvalResult:
    count: int
    input_psnr: float
    input_ssim: float
    output_psnr: float
    output_ssim: float
    # Do no harm: the output for the sharp target fed in, against that target. A model that
    # invents detail or shifts colour scores low here even when it deblurs well. A windowed
    # model gets a still, sharp window: the sharp frame as every one of its frames.
    sharp_in_psnr: float = math.nan
    # Flicker, on sets of consecutive frames: the mean absolute change, in 8-bit levels,
    # between consecutive frames' errors against their sharp frames (NaN for independent pairs).
    input_flicker: float = math.nan
    output_flicker: float = math.nan
    # Real footage (training/real_footage.py): the untouched real frames through the model as
    # a clip, against themselves (PSNR of the pooled error, and the worst frame's).
    real_sharp_in_psnr: float = math.nan
    real_sharp_in_min_psnr: float = math.nan
    # The same for each camera ("still camera", "moving camera"): {"psnr": pooled, "min_psnr": worst}.
    real_sharp_in_by_camera: dict[str, dict[str, float]] = field(default_factory=dict)
    # Splits of a `streamdeblur synth` set by content (photos, procedural) and pan bucket, or
    # for synthetic video by each frame's blur and its shot's kind.
    groups: dict[str, GroupScore] = field(default_factory=dict)

    @property
    def gain_db(self) -> float:
        return self.output_psnr - self.input_psnr

    def to_dict(self) -> dict[str, Any]:
        """As JSON has it: flicker only for clips (pictures that are not a sequence have none)."""
        plain = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("groups", "real_sharp_in_by_camera")
            and not ((k.endswith("_flicker") or k.startswith("real_")) and math.isnan(v))
        }
        if self.real_sharp_in_by_camera:
            plain["real_sharp_in_by_camera"] = self.real_sharp_in_by_camera
        return {**plain, "gain_db": self.gain_db, "groups": {k: g.to_dict() for k, g in self.groups.items()}}


def _mean(values: list[float]) -> float:
    """Identical images score an infinite PSNR, and so does any mean that includes them."""
    return float(np.mean(values)) if values else math.nan


@torch.no_grad()
def _deblur(backend: Backend, pixels: np.ndarray) -> np.ndarray:
    """The network's output for an H x W x C 8- or 16-bit image (C = 3, or a window's 3K),
    handed over as the pipeline hands it (inference/processor.py)."""
    integers = pixels.view(np.int16) if pixels.dtype == np.uint16 else pixels  # as stack_pixels
    x = torch.from_numpy(np.ascontiguousarray(integers))[None].to(backend.device)
    y = infer_pixels(backend, x, pixels.dtype).clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0)
    # Score what a user gets: the 8-bit image the pipeline would write.
    return np.round(y * 255).astype(np.float32) / 255


def _to_float(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32) / np.float32(65535.0 if pixels.dtype == np.uint16 else 255.0)


def deblur_clip(
    backend: Backend, blurry: list[np.ndarray], clip: bool = True, still_camera: bool = False
) -> list[np.ndarray]:
    """Each frame of one clip (8- or 16-bit frames) restored, as floats: from its window, as
    the pipeline assembles it, for a windowed model. `clip` False: unrelated pictures, which a
    single-frame model's still_pass does not compare. `still_camera`: as `run --still-camera`."""
    cfg = assembly_config(backend.model_config, still_camera)
    if cfg is None or (cfg.frames == 1 and not (cfg.still_pass and clip)):
        restored = [_deblur(backend, b) for b in blurry]
    else:
        restored = _deblur_sequence(backend, blurry, cfg)
    # Grey in, grey out, as the pipeline's writer does (io/grey.py), on the 8-bit levels scored.
    return [_grey_levels(out) if is_grey(frame) else out for frame, out in zip(blurry, restored)]


def _grey_levels(output: np.ndarray) -> np.ndarray:
    """A float output on 8-bit levels made grey as the writer makes an 8-bit frame grey."""
    return as_grey(np.round(output * 255).astype(np.uint8)).astype(np.float32) / 255


def _deblur_sequence(backend: Backend, blurry: list[np.ndarray], cfg: DeepDeblurConfig) -> list[np.ndarray]:
    """Each frame of one clip restored from its window, as the pipeline assembles it (for a
    single-frame model with still_pass, the frame alone, and the frames before it for that)."""
    from streamdeblur.io.frame import Frame
    from streamdeblur.window.assembly import FrameWindow
    from streamdeblur.window.still import StillHistory, hand_through

    window = FrameWindow(cfg) if cfg.frames > 1 else StillHistory(cfg)
    stacks: list[Frame] = []
    for index, pixels in enumerate(blurry):
        stacks += window.push_all([Frame(pixels, index, Fraction(1, 25), index)])
    stacks += window.flush()
    restored = []
    for stack in sorted(stacks, key=lambda f: f.index):
        output = _deblur(backend, stack.pixels)
        still = window.take_still(stack.index)  # where nothing moved, the frame (cfg.still_pass)
        if still is not None:
            output = np.round(hand_through(output, _to_float(still[1]), still[0]) * 255).astype(np.float32) / 255
        restored.append(output)
    return restored


def _sharp_in(backend: Backend, sharp: np.ndarray, cfg: DeepDeblurConfig | None) -> np.ndarray:
    """The sharp frame's pixels through the network (a windowed model: as a still's window)."""
    if cfg is None or cfg.frames == 1:
        return _deblur(backend, sharp)
    from streamdeblur.window.assembly import stack_window

    return _deblur(backend, stack_window([sharp] * cfg.frames, cfg))  # as the pipeline pads a still


def _flicker(errors: list[np.ndarray]) -> list[float]:
    """Mean absolute change between consecutive errors, in 8-bit levels."""
    return [float(np.mean(np.abs(b - a))) * 255 for a, b in zip(errors, errors[1:])]


def evaluate(
    backend: Backend,
    data: Path,
    out: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    examples: int = 8,
    still_camera: bool = False,
) -> EvalResult:
    """Scores over the pairs of `data`; a windowed model restores each frame from its
    window within its sequence folder (a clip), padded at the clip's ends (assembled as
    `run --still-camera` does where `still_camera`)."""
    from streamdeblur.training.datasets import sequence_ranges

    pairs = find_pairs(data, split)[:limit]
    cfg = backend.model_config
    record = _synth_record(data)
    real = RealFootageScores(data) if read_footage_record(data) is not None else None
    clips = record is None or record.get("frames", 1) > 1  # GoPro and REDS folders are clips too
    scores: dict[str, list[float]] = {k: [] for k in ("in_psnr", "in_ssim", "out_psnr", "out_ssim", "sharp_in")}
    flicker: dict[str, list[float]] = {"in": [], "out": []}
    rows: list[np.ndarray] = []
    per_frame: list[dict[str, Any]] = []
    ranges = sorted(set(sequence_ranges(pairs)))
    for first, last in ranges:
        members = pairs[first : last + 1]
        blurry_pixels = [read_image(b) for b, _ in members]
        sharp_pixels = [read_image(s) for _, s in members]
        sharp = [_to_float(s) for s in sharp_pixels]
        blurry = [_to_float(b) for b in blurry_pixels]
        deblurred = deblur_clip(backend, blurry_pixels, clips, still_camera)
        if real is not None:
            real.add_clip(
                [b for b, _ in members],
                blurry,
                deblurred,
                sharp,
                deblur_clip(backend, sharp_pixels, clips, still_camera),
            )
        for k, (blur_path, _) in enumerate(members):
            scores["in_psnr"].append(psnr(blurry[k], sharp[k]) if real is None else capped_psnr(blurry[k], sharp[k]))
            scores["in_ssim"].append(ssim(blurry[k], sharp[k]))
            scores["out_psnr"].append(
                psnr(deblurred[k], sharp[k]) if real is None else capped_psnr(deblurred[k], sharp[k])
            )
            scores["out_ssim"].append(ssim(deblurred[k], sharp[k]))
            scores["sharp_in"].append(psnr(_sharp_in(backend, sharp_pixels[k], cfg), sharp[k]))
            per_frame.append(
                {
                    "frame": str(Path(blur_path).relative_to(data)),
                    "input_psnr": scores["in_psnr"][-1],
                    "output_psnr": scores["out_psnr"][-1],
                }
            )
            if out is not None and len(rows) < examples:
                rows.append(np.concatenate([blurry[k], deblurred[k], sharp[k]], axis=1))
        if clips:
            flicker["in"] += _flicker([b - s for b, s in zip(blurry, sharp)])
            flicker["out"] += _flicker([d - s for d, s in zip(deblurred, sharp)])
    result = EvalResult(
        count=len(pairs),
        input_psnr=_mean(scores["in_psnr"]),
        input_ssim=_mean(scores["in_ssim"]),
        output_psnr=_mean(scores["out_psnr"]),
        output_ssim=_mean(scores["out_ssim"]),
        sharp_in_psnr=_mean(scores["sharp_in"]),
        input_flicker=_mean(flicker["in"]),
        output_flicker=_mean(flicker["out"]),
        groups=_groups(data, record, [blur for blur, _ in pairs], scores["in_psnr"], scores["out_psnr"]),
    )
    if real is not None:
        result.real_sharp_in_psnr, result.real_sharp_in_min_psnr = real.sharp_in()
        result.real_sharp_in_by_camera = {
            camera: {"psnr": pooled, "min_psnr": worst} for camera, (pooled, worst) in real.sharp_in_by_camera().items()
        }
        result.groups.update({name: GroupScore(*scores) for name, scores in real.groups().items()})
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps({**result.to_dict(), "frames": per_frame}, indent=2) + "\n")
        for i, row in enumerate(rows):
            save_rgb(out / f"side_by_side_{i:03d}.png", row)
    return result


def _synth_record(data: Path) -> dict[str, Any] | None:
    """What `streamdeblur synth` recorded about the set, or None for other data."""
    from streamdeblur.training.synth_dataset import SYNTH_RECORD

    record = data / SYNTH_RECORD
    if not record.is_file():
        return None
    loaded: dict[str, Any] = json.loads(record.read_text())
    return loaded


def _groups(
    data: Path,
    record: dict[str, Any] | None,
    blur_paths: list[Path],
    in_psnr: list[float],
    out_psnr: list[float],
) -> dict[str, GroupScore]:
    """Scores split by what each pair shows, when `streamdeblur synth` recorded it (else none)."""
    described = (record or {}).get("pairs", {})
    members: dict[str, list[int]] = {}
    for i, path in enumerate(blur_paths):
        facts = described.get(str(Path(path).relative_to(data)))
        if facts is None:
            continue
        members.setdefault("photos" if facts["photo"] else "procedural", []).append(i)
        if "kernel" in facts:  # a defocus pair (synthetic/defocus.py)
            members.setdefault(f"{facts['kernel']} kernel", []).append(i)
        elif "blur_px" in facts:  # a frame of synthetic video
            for low, high, name in BLUR_BUCKETS:
                if low <= facts["blur_px"] < high:
                    members.setdefault(name, []).append(i)
            if facts["blur_px"] > BLURRED[0]:
                members.setdefault(BLURRED[1], []).append(i)
            members.setdefault(f"{facts['kind']} shots", []).append(i)
        else:
            for low, high, name in PAN_BUCKETS:
                if low <= facts["pan_px"] < high:
                    members.setdefault(name, []).append(i)
    order = [
        "photos",
        "procedural",
        *(name for _, _, name in PAN_BUCKETS),
        *(name for _, _, name in BLUR_BUCKETS),
        BLURRED[1],
        *(f"{kind} shots" for kind in SHOT_KINDS),
        *(f"{kernel} kernel" for kernel in KERNELS),
    ]
    return {
        name: GroupScore(
            len(members[name]), _mean([in_psnr[i] for i in members[name]]), _mean([out_psnr[i] for i in members[name]])
        )
        for name in order
        if name in members
    }
