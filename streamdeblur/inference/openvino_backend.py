"""OpenVINO backend: the exported ONNX graph on the CPU or an Intel GPU.

The graph is compiled once for each input shape it meets (a run's frames share one; tiles
add one or two): on the CPU, OpenVINO's static-shape kernels ran the video model about 1.4x
faster than its dynamic-shape ones. Compiled blobs are kept in a cache folder keyed like the
engines (engines/openvino_cache.py), which spares an Intel GPU its long compile on later runs.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from streamdeblur.engines.onnx_export import INPUT_NAME
from streamdeblur.errors import BadUsage
from streamdeblur.inference.precision import PRECISIONS, cpu_has_native_bf16
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.models.deepdeblur import never_softer_after

INSTALL = "pip install 'streamdeblur[openvino]'"
# OpenVINO's inference precision for each of ours. Set always: on a CPU with native bf16,
# OpenVINO's own default is bf16, which would run `fp32` in bf16 without saying so. int8: the
# quantized IR's int8 layers run in int8, and the layers kept out of it in fp32, as measured.
_OV_TYPES = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}


def import_without_telemetry(module: str, missing: str) -> Any:
    """`module` (openvino, or a package built on it such as nncf), imported while its usage
    telemetry package reads as absent; BadUsage(`missing`) where it is not installed."""
    blocked = module not in sys.modules and "openvino_telemetry" not in sys.modules
    if blocked:
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        return importlib.import_module(module)
    except ImportError:
        raise BadUsage(missing) from None
    finally:
        if blocked and sys.modules.get("openvino_telemetry", 0) is None:
            del sys.modules["openvino_telemetry"]


def import_openvino() -> Any:
    """openvino, imported without its usage telemetry. Importing it imports its model converter,
    which (unless the user opted out) writes a client ID under ~/intel and sends an event to
    Google Analytics from a forked process; streamdeblur sends nothing anywhere, so while it is
    imported the telemetry package reads as absent and the converter falls back to its stub."""
    return import_without_telemetry("openvino", f"--backend openvino needs: {INSTALL}")


@functools.cache
def openvino_core() -> Any:
    """The process's one OpenVINO Core, kept to its end. Each Core's CPU plugin gives the thread
    that loads it an alternate signal stack, and when freed puts back the stack it found: Cores
    freed out of order leave a thread on an unmapped stack, and the next Ctrl-C crashes."""
    return import_openvino().Core()


def is_intel_gpu(device: str) -> bool:
    """`--device gpu` or `gpu:N`: an Intel GPU, which only OpenVINO runs."""
    return device == "gpu" or device.startswith("gpu:")


def openvino_target(device: str) -> str:
    """OpenVINO's name for `--device`: CPU for auto and cpu; GPU (GPU.N) for gpu (gpu:N), when
    OpenVINO sees that GPU."""
    if device in ("auto", "cpu"):
        return "CPU"
    if not is_intel_gpu(device):
        raise BadUsage(f"--backend openvino runs on --device cpu or gpu (an Intel GPU), not {device}")
    index = device.partition(":")[2]
    if index and not index.isdigit():
        raise BadUsage(f"unknown device {device!r}; use gpu or gpu:N for an Intel GPU")
    seen = list(openvino_core().available_devices)
    gpus = [name for name in seen if name.split(".")[0] == "GPU"]
    if not gpus:
        raise BadUsage(f"--device {device}: OpenVINO sees no Intel GPU (it sees: {', '.join(seen) or 'nothing'})")
    if not index or (index == "0" and gpus == ["GPU"]):  # one GPU is listed as GPU alone
        return "GPU"
    if f"GPU.{index}" not in gpus:
        raise BadUsage(f"--device {device}: OpenVINO sees no such GPU (it sees: {', '.join(seen)})")
    return f"GPU.{index}"


def openvino_precision(precision: str, target: str) -> str:
    """The precision `precision` means for OpenVINO on `target`; a one-line error where it cannot run."""
    if precision not in PRECISIONS:
        raise BadUsage(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if precision == "int8" and target != "CPU":
        raise BadUsage("--precision int8 with --backend openvino needs the CPU; on a GPU use auto, fp16 or fp32")
    if target != "CPU":  # a GPU computes in fp16 natively; it has no bf16
        if precision == "bf16":
            raise BadUsage("--precision bf16 with --backend openvino needs the CPU; on a GPU use auto, fp16 or fp32")
        return "fp16" if precision == "auto" else precision
    if precision == "fp16":
        raise BadUsage("--precision fp16 with --backend openvino needs --device gpu; on the CPU use auto, bf16 or fp32")
    if precision == "bf16" and not cpu_has_native_bf16():
        raise BadUsage(
            "--precision bf16 with --backend openvino needs a CPU with native bf16 (AVX512-BF16 or AMX); use fp32"
        )
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return precision


def device_name(target: str) -> str:
    """The device's full name as OpenVINO gives it (the CPU's or GPU's model)."""
    ov = import_openvino()
    return str(openvino_core().get_property(target, ov.properties.device.full_name()))


class OpenVinoBackend:
    """The network from its ONNX export, or (int8) from its quantized IR (quantize/build.py)."""

    name = "openvino"

    def __init__(
        self,
        onnx_path: Path,
        model_config: DeepDeblurConfig,
        precision: str = "fp32",
        target: str = "CPU",
        cache_dir: Path | None = None,
        threads: int | None = None,
        never_softer_margin: float | None = None,
    ) -> None:
        ov = import_openvino()
        hint = ov.properties.hint
        self.core = openvino_core()
        self.network = self.core.read_model(str(onnx_path))
        self.config: dict[str, Any] = {
            hint.inference_precision(): _OV_TYPES[precision],
            hint.performance_mode(): hint.PerformanceMode.LATENCY,
        }
        if target == "CPU":  # as many threads as PyTorch has been given, as ONNX Runtime gets
            self.config[ov.properties.inference_num_threads()] = threads or torch.get_num_threads()
        if cache_dir is not None:
            self.config[ov.properties.cache_dir()] = str(cache_dir)
        # Batches stay in host memory: OpenVINO moves them to a GPU itself.
        self.device, self.target, self.precision = torch.device("cpu"), target, precision
        self.model_config, self.model_name = model_config, model_config.name
        # Not None: the graph was exported without never_softer, which runs after it, in fp32,
        # with this margin (bf16 would round the frame it hands through: models.deepdeblur).
        self.never_softer_margin = never_softer_margin
        self._compiled: dict[Call, Any] = {}
        self._lock = threading.Lock()
        self._local = threading.local()  # an infer request per thread and shape: one is not shared

    def run_side_by_side(self, calls: int) -> None:
        """Compile for `calls` requests at once, one thread each, as an offline run makes its
        calls on the CPU (inference/concurrent.py). A call alone then gets one thread, so live
        runs and auto's one-call timing keep the one-stream setting. Drops what was compiled."""
        if self.target != "CPU":
            return
        ov = import_openvino()
        hint = ov.properties.hint
        with self._lock:
            self.config[hint.performance_mode()] = hint.PerformanceMode.THROUGHPUT
            self.config[ov.properties.num_streams()] = calls
            self.config[ov.properties.inference_num_threads()] = calls
            self._compiled.clear()
        self._local = threading.local()

    @property
    def device_label(self) -> str:
        """The device as the run report names it: cpu, or OpenVINO's GPU."""
        return "cpu" if self.target == "CPU" else self.target.lower().replace(".", ":")

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        x = batch.contiguous().numpy()
        output = self._run(Call(tuple(x.shape), pixels=False), x)
        if self.never_softer_margin is not None:
            output = never_softer_after(self.model_config, batch, output, self.never_softer_margin)
        return output

    def infer_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """The output for 8-bit frames as they are (N x H x W x C, uint8): the graph converts
        them to float in [0, 1] and to its own layout itself, which saves the float copy and
        most of the reorders a float input costs in it (the video model's int8 call 21 % faster
        at 640x360: BENCHMARKS.md, "8-bit frames straight into OpenVINO")."""
        x = pixels.contiguous().numpy()
        output = self._run(Call(tuple(x.shape), pixels=True), x)
        if self.never_softer_margin is not None:
            batch = pixels.permute(0, 3, 1, 2).float().div_(255.0)
            output = never_softer_after(self.model_config, batch, output, self.never_softer_margin)
        return output

    def _run(self, call: Call, x: Any) -> torch.Tensor:
        """The network's output for `x`, through this thread's request for `call`. A request's
        first inference runs alone, under the lock: requests making their first inference at
        once were reported to deadlock OpenVINO's CPU plugin on machines with few cores
        (ultralytics/ultralytics#25923), and an offline run starts two calls at once."""
        requests: dict[Call, Any] = self._local.__dict__.setdefault("requests", {})
        request = requests.get(call)
        if request is None:
            request = requests[call] = self._compiled_for(call).create_infer_request()
            with self._lock:
                results = request.infer({INPUT_NAME: x}, share_inputs=True)
        else:
            results = request.infer({INPUT_NAME: x}, share_inputs=True)
        return torch.from_numpy(results[0])  # a copy: the request's own buffer is reused

    def _compiled_for(self, call: Call) -> Any:
        with self._lock:
            if call not in self._compiled:
                network = self.network.clone()
                if call.pixels:
                    n, height, width, channels = call.shape
                    network.reshape({INPUT_NAME: [n, channels, height, width]})
                    network = _from_pixels(network)
                else:
                    network.reshape({INPUT_NAME: list(call.shape)})
                self._compiled[call] = self.core.compile_model(network, self.target, self.config)
            return self._compiled[call]


@dataclass(frozen=True)
class Call:
    """What a compiled network is compiled for: the input's shape, and whether it takes 8-bit
    frames (N x H x W x C) rather than float (N x C x H x W)."""

    shape: tuple[int, ...]
    pixels: bool


def _from_pixels(network: Any) -> Any:
    """`network` taking 8-bit N x H x W x C frames, converted to float in [0, 1], N x C x H x W,
    inside the graph (OpenVINO's preprocessing, which it fuses with its first reorders)."""
    ov = import_openvino()
    from openvino.preprocess import PrePostProcessor

    steps = PrePostProcessor(network)
    steps.input().tensor().set_layout(ov.Layout("NHWC")).set_element_type(ov.Type.u8)
    steps.input().preprocess().convert_element_type(ov.Type.f32).scale(255.0)
    steps.input().model().set_layout(ov.Layout("NCHW"))
    return steps.build()
