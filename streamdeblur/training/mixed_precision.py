"""The precision a recipe with `amp` trains in on a device.

CUDA: fp16 (with loss scaling). CPU: bf16 only where oneDNN runs it natively AND it is faster
here: on some CPUs with native bf16 a training step runs faster in bf16, on others slower than
fp32. So the two are timed once per machine, model and batch, and the answer is remembered. Emulated bf16 (no
native support) is always slower, and is never used.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import torch

from streamdeblur.inference.measured import fastest, machine_facts
from streamdeblur.inference.precision import cpu_has_native_bf16
from streamdeblur.models import DeepDeblur
from streamdeblur.training.losses import content_loss

TRAINING_CHOICES = "cpu-training-precision.json"  # in the user cache folder


def mixed_precision_dtype(
    amp: bool,
    device: torch.device,
    model: DeepDeblur | None = None,
    batch_shape: tuple[int, int, int] | None = None,
) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32. With `model` and `batch_shape` (batch,
    height, width) a CPU with native bf16 times both first; without, native bf16 is taken."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type != "cpu" or not cpu_has_native_bf16():
        return None
    if model is None or batch_shape is None:
        return torch.bfloat16
    facts: dict[str, Any] = {"model": model.cfg.to_dict(), "batch": list(batch_shape), **machine_facts()}
    choice = fastest(TRAINING_CHOICES, facts, ["bf16", "fp32"], lambda name: _step_seconds(model, batch_shape, name))
    return torch.bfloat16 if choice == "bf16" else None


def _step_seconds(model: DeepDeblur, batch_shape: tuple[int, int, int], precision: str, repeats: int = 2) -> float:
    """Forward and backward of a copy of `model` on random data; the run's own model, RNG
    state and gradients are left untouched (an exact resume must not notice the probe)."""
    probe = copy.deepcopy(model)
    batch, height, width = batch_shape
    generator = torch.Generator().manual_seed(0)
    # A window's network takes 3 channels per input slot and restores 3.
    x = torch.rand(batch, model.cfg.in_channels, height, width, generator=generator).contiguous(
        memory_format=torch.channels_last
    )

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = content_loss(probe.forward_pyramid(x), x[:, :3])
        loss.backward()

    step()  # warm-up: oneDNN picks and caches its kernels
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats
