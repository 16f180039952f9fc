"""`streamdeblur eval --picture`: one frame of a clip, its window and what models make of it.

The top row is the blurry window in time order (the frame restored in the middle of a
centred window, last in a causal one), as the pipeline pads it at the clip's ends; the bottom
row is each model's output for the frame, then its sharp frame. Each frame is restored from
its window within the clip, as `eval` scores it, so the picture shows what the figures count.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from streamdeblur.errors import BadUsage
from streamdeblur.inference import Backend
from streamdeblur.io.image_folder import read_image, read_image_float
from streamdeblur.training.datasets import find_pairs, sequence_ranges
from streamdeblur.training.metrics import psnr
from streamdeblur.training.plots import save_rgb
from streamdeblur.training.scoring import deblur_clip


def window_picture(
    backends: list[Backend], data: Path, frame: str, out: Path, split: str = "test"
) -> dict[str, object]:
    """Write the picture for `frame` (a blurry frame's path under `data`) into `out`; return
    what it shows: the frame, its window's blur where `synth` recorded it, and each model's PSNR."""
    pairs = find_pairs(data, split)
    paths = [str(Path(blur).relative_to(data)) for blur, _ in pairs]
    if frame not in paths:
        raise BadUsage(f"--picture {frame}: no such blurry frame in {data} (split {split})")
    here = paths.index(frame)
    first, last = sequence_ranges(pairs)[here]
    clip = pairs[first : last + 1]
    blurry = [read_image(b) for b, _ in clip]
    sharp = read_image_float(clip[here - first][1])
    windowed = [b for b in backends if b.model_config is not None and b.model_config.frames > 1]
    offsets = windowed[0].model_config.offsets if windowed else (0,)  # type: ignore[union-attr]
    shown = [min(max(here + o, first), last) - first for o in sorted(offsets)]
    outputs = [deblur_clip(backend, blurry)[here - first] for backend in backends]
    top = np.concatenate([blurry[i].astype(np.float32) / 255 for i in shown], axis=1)
    bottom = np.concatenate([*outputs, sharp], axis=1)
    pad = (top.shape[1] - bottom.shape[1]) // 2
    canvas = np.ones((top.shape[0] + bottom.shape[0], max(top.shape[1], bottom.shape[1]), 3), np.float32)
    canvas[: top.shape[0], max(0, -pad) : max(0, -pad) + top.shape[1]] = top
    canvas[top.shape[0] :, max(0, pad) : max(0, pad) + bottom.shape[1]] = bottom
    out.mkdir(parents=True, exist_ok=True)
    picture = out / f"window_{Path(frame).parent.parent.name}_{Path(frame).stem}.png"
    save_rgb(picture, canvas)
    described = _described(data, paths, first, last)
    return {
        "picture": str(picture),
        "frame": frame,
        "window": [paths[first + i] for i in shown],
        "blur_px": [described.get(paths[first + i]) for i in shown],
        "input_psnr": psnr(blurry[here - first].astype(np.float32) / 255, sharp),
        "output_psnr": {backend.model_name: psnr(o, sharp) for backend, o in zip(backends, outputs)},
    }


def _described(data: Path, paths: list[str], first: int, last: int) -> dict[str, float]:
    """Each frame's blur in pixels, as `streamdeblur synth` recorded it (nothing for other data)."""
    from streamdeblur.training.synth_dataset import SYNTH_RECORD

    record = data / SYNTH_RECORD
    pairs = json.loads(record.read_text()).get("pairs", {}) if record.is_file() else {}
    return {p: round(pairs[p]["blur_px"], 1) for p in paths[first : last + 1] if "blur_px" in pairs.get(p, {})}
