"""How the weights do on the held-out picked frames, and on a real blurry frame.

Held-out frames are blurred by the same generator that training used (with a fixed seed, so
the starting and the adapted weights see the same pairs); nothing else gives a sharp
reference for one's own footage.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from streamdeblur.adapt.pictures import labelled, most_textured_box, write_png
from streamdeblur.io.image_folder import read_image_float
from streamdeblur.models import DeepDeblur
from streamdeblur.synthetic.blur import render_pair
from streamdeblur.training.metrics import psnr

PAIRS_PER_FRAME = 4
VAL_SIZE = 256  # pixels: each held-out pair is a crop this large (or the frame, if smaller)
EXAMPLE_SIZE = 320  # pixels: the before/after crop of the blurry example frame


def held_out_pairs(files: list[Path], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(blurry, sharp) crops of each held-out frame, blurred synthetically.

    render_pair draws a procedural scene instead of the given photo half the time; those
    draws are skipped (the next seed is tried), so every pair shows the footage.
    """
    pairs = []
    for number, file in enumerate(files):
        height, width = read_image_float(file).shape[:2]
        size = min(VAL_SIZE, height, width)
        for k in range(PAIRS_PER_FRAME):
            for attempt in range(64):
                rng = np.random.default_rng([seed, number, k, attempt])
                pair = render_pair(rng, size, size, photos=(str(file),))
                if pair.photo is not None:
                    pairs.append((pair.blurry, pair.sharp))
                    break
    return pairs


@torch.no_grad()
def deblur(model: DeepDeblur, image: np.ndarray, device: torch.device) -> np.ndarray:
    """float32 RGB in [0, 1] through the network."""
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(device)
    return model(x).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()


def mean_psnr(model: DeepDeblur | None, pairs: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> float:
    """Mean PSNR (dB) of the model's output, or of the blurry input for `model=None`."""
    scores = [psnr(blurry if model is None else deblur(model, blurry, device), sharp) for blurry, sharp in pairs]
    return float(np.mean(scores))


def before_after(
    example: Path,
    models: list[tuple[str, DeepDeblur]],
    label: str,
    path: Path,
    device: torch.device,
) -> Path:
    """blurry | one panel per model, on the most textured crop of the example frame."""
    frame = read_image_float(example)
    top, left, height, width = most_textured_box(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), EXAMPLE_SIZE)
    # The network sees some context around the crop, so the panels have no border effects.
    margin = 16
    y0, x0 = max(0, top - margin), max(0, left - margin)
    context = frame[y0 : top + height + margin, x0 : left + width + margin]
    panels = [labelled(frame[top : top + height, left : left + width], label)]
    for name, model in models:
        output = deblur(model, context, device)
        panels.append(labelled(output[top - y0 : top - y0 + height, left - x0 : left - x0 + width], name))
    gap = np.full((panels[0].shape[0], 4, 3), 255, np.uint8)
    row = [panels[0]]
    for panel in panels[1:]:
        row += [gap, panel]
    return write_png(path, np.hstack(row))
