"""`streamdeblur eval`: PSNR/SSIM of blurry input and of the model's output against the
sharp target, side-by-side pictures (blurry | deblurred | sharp), and training curves."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from streamdeblur.inference import Backend
from streamdeblur.io.image_folder import read_image_float
from streamdeblur.training.datasets import find_pairs
from streamdeblur.training.metrics import psnr, ssim


# Pan buckets (the camera's translation over the exposure, pixels): where the gain comes from.
PAN_BUCKETS = ((0.0, 4.0, "pan under 4 px"), (4.0, 10.0, "pan 4-10 px"), (10.0, 20.0, "pan 10-20 px"), (20.0, math.inf, "pan over 20 px"))


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
    # invents detail or shifts colour scores low here even when it deblurs well.
    sharp_in_psnr: float = math.nan
    # Splits of a `streamdeblur synth` set by content (photos, procedural) and pan bucket.
    groups: dict[str, GroupScore] = field(default_factory=dict)

    @property
    def gain_db(self) -> float:
        return self.output_psnr - self.input_psnr

    def to_dict(self) -> dict[str, Any]:
        plain = {k: v for k, v in asdict(self).items() if k != "groups"}
        return {**plain, "gain_db": self.gain_db, "groups": {k: g.to_dict() for k, g in self.groups.items()}}


def _mean(values: list[float]) -> float:
    """Identical images score an infinite PSNR, and so does any mean that includes them."""
    return float(np.mean(values)) if values else math.nan


@torch.no_grad()
def _deblur(backend: Backend, image: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None].to(backend.device)
    y = backend.infer(x).clamp(0, 1)[0].cpu().numpy().transpose(1, 2, 0)
    # Score what a user gets: the 8-bit image the pipeline would write.
    return np.round(y * 255).astype(np.float32) / 255


def evaluate(
    backend: Backend, data: Path, out: Path | None = None, split: str = "test",
    limit: int | None = None, examples: int = 8,
) -> EvalResult:
    pairs = find_pairs(data, split)[:limit]
    scores: dict[str, list[float]] = {k: [] for k in ("in_psnr", "in_ssim", "out_psnr", "out_ssim", "sharp_in")}
    rows = []
    for i, (blur_path, sharp_path) in enumerate(pairs):
        blur, sharp = read_image_float(blur_path), read_image_float(sharp_path)
        deblurred = _deblur(backend, blur)
        scores["in_psnr"].append(psnr(blur, sharp))
        scores["in_ssim"].append(ssim(blur, sharp))
        scores["out_psnr"].append(psnr(deblurred, sharp))
        scores["out_ssim"].append(ssim(deblurred, sharp))
        scores["sharp_in"].append(psnr(_deblur(backend, sharp), sharp))
        if out is not None and i < examples:
            rows.append(np.concatenate([blur, deblurred, sharp], axis=1))
    result = EvalResult(
        count=len(pairs), input_psnr=_mean(scores["in_psnr"]), input_ssim=_mean(scores["in_ssim"]),
        output_psnr=_mean(scores["out_psnr"]), output_ssim=_mean(scores["out_ssim"]),
        sharp_in_psnr=_mean(scores["sharp_in"]),
        groups=_groups(data, [blur for blur, _ in pairs], scores["in_psnr"], scores["out_psnr"]),
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
        for i, row in enumerate(rows):
            save_rgb(out / f"side_by_side_{i:03d}.png", row)
    return result


def _groups(data: Path, blur_paths: list[Path], in_psnr: list[float], out_psnr: list[float]) -> dict[str, GroupScore]:
    """Scores split by what each pair shows, when `streamdeblur synth` recorded it (else none)."""
    from streamdeblur.training.synth_dataset import SYNTH_RECORD

    record = data / SYNTH_RECORD
    described = json.loads(record.read_text()).get("pairs", {}) if record.is_file() else {}
    members: dict[str, list[int]] = {}
    for i, path in enumerate(blur_paths):
        facts = described.get(str(Path(path).relative_to(data)))
        if facts is None:
            continue
        members.setdefault("photos" if facts["photo"] else "procedural", []).append(i)
        for low, high, name in PAN_BUCKETS:
            if low <= facts["pan_px"] < high:
                members.setdefault(name, []).append(i)
    order = ["photos", "procedural", *(name for _, _, name in PAN_BUCKETS)]
    return {
        name: GroupScore(len(members[name]), _mean([in_psnr[i] for i in members[name]]), _mean([out_psnr[i] for i in members[name]]))
        for name in order if name in members
    }


def record_in_card(weights: Path, name: str, result: EvalResult, data: Path, split: str, limit: int | None) -> None:
    """Put the figures, and the command that reproduces them, into the weights' model card."""
    from streamdeblur.models.checkpoint import read_card, write_card

    from streamdeblur.training.synth_dataset import SYNTH_RECORD

    card = read_card(weights)
    limit_arg = f" --limit {limit}" if limit else ""
    made = data / SYNTH_RECORD
    card.setdefault("quality", {})[name] = {
        **_rounded(result.to_dict()),
        "data": str(data), "split": split, "limit": limit,
        "data_made_by": _without_pairs(json.loads(made.read_text())) if made.is_file() else None,
        "command": f"streamdeblur eval {data} --model {weights} --backend torch --split {split}{limit_arg}",
    }
    write_card(weights, card)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _without_pairs(record: dict[str, Any]) -> dict[str, Any]:
    """A synth record without its per-pair list (the card keeps the command, not 100 rows)."""
    return {k: v for k, v in record.items() if k != "pairs"}


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
