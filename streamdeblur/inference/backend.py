"""The one interface every backend implements, and the trivial passthrough backend."""

from __future__ import annotations

from typing import Protocol

import torch


class Backend(Protocol):
    """Runs the network on a batch already on `device`.

    `infer` takes (N, 3, H, W) float32 RGB in [0, 1] on `device` and returns the same shape
    and dtype. Everything around it (conversion, padding, tiling, batching, streams) is
    shared code, so backends stay thin.
    """

    name: str
    device: torch.device
    precision: str
    model_name: str

    def infer(self, batch: torch.Tensor) -> torch.Tensor: ...


class PassthroughBackend:
    """Returns its input: checks and times the I/O path without a network."""

    name = "passthrough"
    precision = "fp32"
    model_name = "none"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def infer(self, batch: torch.Tensor) -> torch.Tensor:
        return batch
