"""The held-out check `auto` relies on: int8 and fp32 (both on OpenVINO) scored against the
sharp frames of a held-out set; the loss goes into the IR's record."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def held_out_loss(weights: Path, data: Path, split: str = "test", limit: int | None = None) -> dict[str, Any]:
    """Output PSNR of fp32 and int8 on `data`, and what int8 loses (dB; negative: it gains)."""
    from streamdeblur.inference import create_backend
    from streamdeblur.training.scoring import evaluate

    scores = {}
    for precision in ("fp32", "int8"):
        backend = create_backend("openvino", weights, "cpu", precision)
        scores[precision] = evaluate(backend, data, split=split, limit=limit).to_dict()
    fp32, int8 = scores["fp32"]["output_psnr"], scores["int8"]["output_psnr"]
    return {
        "data": str(data),
        "split": split,
        "limit": limit,
        "count": scores["int8"]["count"],
        "fp32_psnr": round(fp32, 4),
        "int8_psnr": round(int8, 4),
        "loss_db": round(fp32 - int8, 4),
    }
