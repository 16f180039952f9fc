"""Pictures out of evaluation and training: images as PNG, and a run's training curves."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np


def save_rgb(path: Path, image: np.ndarray) -> None:
    as_uint8 = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    cv2.imwrite(str(path), cv2.cvtColor(as_uint8, cv2.COLOR_RGB2BGR))


def plot_training_curves(run_dir: Path, out: Path) -> Path:
    """Loss and validation PSNR over steps, from a training run's metrics.jsonl, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from streamdeblur.training.loop import METRICS_FILE

    records = [json.loads(line) for line in (run_dir / METRICS_FILE).read_text().splitlines() if line.strip()]
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_psnr" in r]
    fig, (ax_loss, ax_psnr) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8)
    ax_loss.set(xlabel="step", ylabel="multi-scale content loss", yscale="log", title="training loss")
    if val:
        steps = [r["step"] for r in val]
        ax_psnr.plot(steps, [r["val_psnr"] for r in val], marker="o", label="deblurred")
        ax_psnr.plot(steps, [r["val_psnr_input"] for r in val], ls="--", label="blurry input")
        ax_psnr.legend()
    ax_psnr.set(xlabel="step", ylabel="PSNR (dB)", title="validation PSNR")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "training_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
