"""PyTorch backend: CPU (fp32, or bf16 autocast) or CUDA (fp32/fp16/bf16, CUDA graphs); NCHW or NHWC."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import torch

from streamdeblur.errors import BadUsage
from streamdeblur.inference.openvino_backend import is_intel_gpu
from streamdeblur.inference.precision import DTYPES
from streamdeblur.models.deepdeblur import DeepDeblur

_GRAPH_WARMUP = 2
log = logging.getLogger(__name__)


def resolve_device(device: str) -> torch.device:
    """The PyTorch device frames go to the backend on: an Intel GPU's (OpenVINO's) are in host memory."""
    if is_intel_gpu(device):
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadUsage("--device cuda: no CUDA GPU is available (PyTorch sees none)")
    try:
        return torch.device(device)
    except RuntimeError:
        raise BadUsage(f"unknown device {device!r}; use cpu, cuda, cuda:N, or gpu for an Intel GPU") from None


class TorchBackend:
    name = "torch"

    def __init__(
        self,
        model: DeepDeblur,
        device: torch.device,
        precision: str = "fp32",
        channels_last: bool = False,
        cuda_graphs: bool = False,
        compiled: bool = False,
    ) -> None:
        if precision not in DTYPES:
            raise BadUsage(f"unknown precision {precision!r} for the torch backend")
        if device.type != "cuda" and (precision == "fp16" or cuda_graphs):
            raise BadUsage(f"--precision {precision} and --cuda-graphs need a CUDA device; on the CPU use bf16 or fp32")
        self.device, self.precision, self.channels_last = device, precision, channels_last
        self.model_config, self.model_name = model.cfg, model.cfg.name
        # CPU bf16 runs as autocast, the path oneDNN's bf16 kernels take and the one training
        # uses: convolutions in bf16, weights and the residual sums kept in fp32 (about 53 dB
        # from the fp32 output). CUDA casts the whole model.
        self.autocast = device.type == "cpu" and precision == "bf16"
        self.dtype = torch.float32 if self.autocast else DTYPES[precision]
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(device=device, dtype=self.dtype, memory_format=self.memory_format).eval()
        self.model.requires_grad_(False)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # a video's frames share one size: tune once
        self.cuda_graphs = cuda_graphs
        # CPU: the network compiled by TorchInductor with frozen weights. Eager PyTorch has
        # oneDNN reorder every convolution's weights into its blocked layout on every call,
        # and runs each ReLU and residual sum as a pass of its own; frozen, the weights are
        # packed once and those fuse into the convolutions.
        self.compiled = compiled and device.type == "cpu"
        self._forward: Callable[[torch.Tensor], torch.Tensor] = self.model
        if self.compiled:
            self._forward = torch.compile(self.model, dynamic=False)
        # (slot, shape) -> (graph, static input, static output)
        self._graphs: dict[tuple[int, tuple[int, ...]], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    @torch.inference_mode()
    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        x = batch.to(dtype=self.dtype, memory_format=self.memory_format)
        if self.compiled:
            return self._compiled_call(x)
        if not self.cuda_graphs:
            with self._autocast():
                return self.model(x).float()
        graph, static_in, static_out = self._graph(slot, x)
        static_in.copy_(x)
        graph.replay()
        # Valid until this slot's next replay, which the scheduler only issues after the
        # slot's results have been converted on this same stream.
        return static_out

    def _compiled_call(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled network (built on the first call of each shape); on a machine where
        it cannot be built (no C++ compiler, say) a warning and the eager network from then on."""
        import torch._inductor.config as inductor_config

        try:
            with self._autocast(), inductor_config.patch(freezing=True):
                return self._forward(x).float()
        except Exception as exc:  # any compiler failure: eager still works
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("cannot compile the network here (%s); running it uncompiled", reason[:200])
            self.compiled, self._forward = False, self.model
            with self._autocast():
                return self.model(x).float()

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()

    def _graph(self, slot: int, x: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]:
        key = (slot, tuple(x.shape))
        if key not in self._graphs:
            static_in = x.clone()
            for _ in range(_GRAPH_WARMUP):  # lets cuDNN pick its algorithms before capture
                self.model(static_in)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=torch.cuda.current_stream(self.device)):
                static_out = self.model(static_in).float()
            self._graphs[key] = (graph, static_in, static_out)
        return self._graphs[key]
