"""`streamdeblur models`: the registry's models with their size, cost and measured quality.

Size and precision are read off the weights; cost is counted on the network (multiply-adds of
its convolutions per megapixel, which is what time follows on every backend); quality is the
card's held-out figures, as measured by the command the card records.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from safetensors import safe_open

from streamdeblur.registry import ShippedModel, shipped_models

# The side of the square the convolutions are counted on: divisible by every pyramid's step.
_COUNT_SIDE = 64


def describe(model: ShippedModel) -> dict[str, Any]:
    """One model's row: what it is for, its size, cost and measured quality."""
    card = model.card()
    parameters, dtypes = 0, set()
    with safe_open(str(model.weights), framework="pt") as handle:
        for key in handle.keys():  # a safetensors handle is not a mapping
            tensor = handle.get_slice(key)
            parameters += math.prod(tensor.get_shape())
            dtypes.add(str(tensor.get_dtype()).lower())
    held_out = card.get("quality", {}).get("held_out", {})
    return {
        "name": model.name,
        "role": model.role,
        "default_for": list(model.default_for),
        "blur": model.blur,
        "summary": model.summary,
        "frames": card["config"].get("frames", 1),
        "parameters": parameters,
        "precision": "/".join(sorted(_PRECISIONS.get(d, d) for d in dtypes)),
        "gmac_per_megapixel": round(conv_gmac_per_megapixel(model), 2),
        "quality": {
            k: held_out.get(k) for k in ("data", "count", "input_psnr", "output_psnr", "gain_db", "sharp_in_psnr")
        },
        "quality_command": held_out.get("command"),
        "weights": str(model.weights),
        "card": str(model.card_path),
    }


_PRECISIONS = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "float32": "fp32", "float16": "fp16"}


def conv_gmac_per_megapixel(model: ShippedModel) -> float:
    """Multiply-adds of the network's convolutions for one output megapixel, in billions."""
    from streamdeblur.models.checkpoint import load_checkpoint

    network = load_checkpoint(model.weights)
    total = 0

    def count(module: torch.nn.Module, _inputs: Any, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += out.numel() * per_output

    hooks = [m.register_forward_hook(count) for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            network(torch.rand(1, network.cfg.in_channels, _COUNT_SIDE, _COUNT_SIDE))
    finally:
        for hook in hooks:
            hook.remove()
    return total / (_COUNT_SIDE * _COUNT_SIDE) * 1e6 / 1e9


def model_rows() -> list[dict[str, Any]]:
    return [describe(m) for m in shipped_models()]


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a plain text table, one model a line."""
    header = (
        "role",
        "name",
        "default for",
        "frames",
        "params",
        "precision",
        "GMAC/Mpx",
        "held-out set",
        "dB",
        "gain dB",
    )
    lines = [header]
    for row in rows:
        quality = row["quality"]
        lines.append(
            (
                row["role"],
                row["name"],
                ", ".join(row["default_for"]) or "-",
                str(row["frames"]),
                f"{row['parameters'] / 1e6:.2f} M",
                row["precision"],
                f"{row['gmac_per_megapixel']:.1f}",
                f"{quality['data']} ({quality['count']})" if quality["data"] else "-",
                _number(quality["output_psnr"]),
                _signed(quality["gain_db"]),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"
