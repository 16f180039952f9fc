"""Training checkpoints that resume exactly: model, optimizer, scheduler, scaler, step, RNG.

Written atomically (temporary file, then rename) by rank 0; read with weights_only=True.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

LAST = "last.pt"


def save_checkpoint(folder: Path, state: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {**state, "rng_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["rng_cuda"] = torch.cuda.get_rng_state_all()
    target = folder / LAST
    partial = folder / f".{LAST}.partial"
    torch.save(state, partial)
    os.replace(partial, target)
    return target


def load_checkpoint_state(folder: Path) -> dict[str, Any] | None:
    path = folder / LAST
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    return state
