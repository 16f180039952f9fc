"""PyTorch backend: CPU or CUDA, fp32 or fp16/bf16 (CUDA), optionally channels_last."""

from __future__ import annotations

import torch

from streamdeblur.errors import BadUsage
from streamdeblur.models.deepdeblur import DeepDeblur

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadUsage("--device cuda: no CUDA GPU is available (PyTorch sees none)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise BadUsage(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None


class TorchBackend:
    name = "torch"

    def __init__(
        self, model: DeepDeblur, device: torch.device, precision: str = "fp32",
        channels_last: bool = False,
    ) -> None:
        if precision not in DTYPES:
            raise BadUsage(f"unknown precision {precision!r} for the torch backend")
        if precision != "fp32" and device.type != "cuda":
            raise BadUsage(f"--precision {precision} needs a CUDA device; on the CPU use fp32")
        self.device, self.precision = device, precision
        self.model_name = model.cfg.name
        self.dtype = DTYPES[precision]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device=device, dtype=self.dtype, memory_format=self.memory_format).eval()

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.to(dtype=self.dtype, memory_format=self.memory_format)
        return self.model(x).float()
