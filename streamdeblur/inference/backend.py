"""The one interface every backend implements, and the trivial passthrough backend."""

from __future__ import annotations

from typing import Protocol

import torch

from streamdeblur.models.config import DeepDeblurConfig


class Backend(Protocol):
    """Runs the network on a batch already on `device`.

    `infer` takes (N, 3, H, W) float32 RGB in [0, 1] on `device` (a windowed model: N, 3K,
    H, W, its window stacked, model_config.offsets) and returns (N, 3, H, W) of that dtype,
    enqueued on the current CUDA stream where there is one. `slot` names the
    in-flight batch (0 when there is only one), so a backend can keep per-slot state such as
    TensorRT execution contexts or CUDA graphs. Everything around it (conversion, padding,
    tiling, batching, streams) is shared code, so backends stay thin.
    """

    name: str
    device: torch.device
    precision: str
    model_name: str

    @property
    def model_config(self) -> DeepDeblurConfig | None:
        """The network's configuration (its window among it); None: no network (passthrough)."""
        ...

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor: ...


def device_label(backend: Backend) -> str:
    """The device as a run report names it: the backend's own name for it where it has one (an
    Intel GPU, which OpenVINO feeds from host memory), else where its batches are."""
    return str(getattr(backend, "device_label", backend.device))


class PassthroughBackend:
    """Returns its input: checks and times the I/O path without a network."""

    name = "passthrough"
    precision = "fp32"
    model_name = "none"
    model_config = None

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        return batch
