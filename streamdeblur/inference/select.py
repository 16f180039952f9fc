"""Choosing and building a backend; `auto` picks the fastest one available.

auto: TensorRT when it is installed and there is a GPU, else PyTorch on CUDA, else the faster
of ONNX Runtime and PyTorch on this CPU, measured once at the frame size and remembered.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from pathlib import Path

import torch

from streamdeblur.engines.store import engine_dir, file_sha256, key_of, replace_atomically
from streamdeblur.errors import BadInput, BadUsage
from streamdeblur.inference.backend import Backend, PassthroughBackend
from streamdeblur.inference.processor import FrameProcessor, Processor
from streamdeblur.inference.torch_backend import TorchBackend, resolve_device
from streamdeblur.models import DEFAULT_WEIGHTS, load_checkpoint

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime", "passthrough")
_CPU_CHOICES = "cpu-backend-choice.json"
_PROBE_PIXELS = 640 * 360  # CPU speed is measured on at most this many pixels


def create_backend(
    name: str = "auto", weights: str | Path | None = None, device: str = "auto", precision: str = "fp32",
    *, frame_size: tuple[int, int] | None = None, batch_size: int = 1, tile: int = 0, in_flight: int = 3,
    engine: str | Path | None = None, channels_last: bool = False, cuda_graphs: bool = False,
) -> Backend:
    """The backend to run. `frame_size` (width, height) sizes TensorRT engines and the CPU probe."""
    if name not in BACKENDS:
        raise BadUsage(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    torch_device = resolve_device(device)
    weights_path = Path(weights) if weights else DEFAULT_WEIGHTS
    if name == "passthrough":
        return PassthroughBackend(torch_device)
    if not weights_path.is_file():  # checked here, before the CPU probe or an engine cache hashes it
        raise BadInput(f"weights file not found: {weights_path}")
    if name == "auto":
        name = _auto_choice(torch_device, weights_path, precision, frame_size)
        log.debug("backend auto -> %s", name)
    if name == "tensorrt":
        return _tensorrt(weights_path, torch_device, precision, frame_size, batch_size, tile, in_flight, engine)
    if name == "onnxruntime":
        if torch_device.type != "cpu" or precision != "fp32":
            raise BadUsage("--backend onnxruntime runs on the CPU in fp32")
        return _onnxruntime(weights_path, engine)
    return TorchBackend(load_checkpoint(weights_path), torch_device, precision, channels_last, cuda_graphs)


def make_processor(backend: Backend, tile: int = 0, tile_overlap: int = 32, batch_size: int = 1, in_flight: int = 3) -> Processor:
    """The stream scheduler on CUDA, the synchronous processor elsewhere."""
    if backend.device.type == "cuda":
        from streamdeblur.inference.scheduler import StreamScheduler

        return StreamScheduler(backend, tile, tile_overlap, batch_size, in_flight)
    return FrameProcessor(backend, tile, tile_overlap, batch_size)


def _auto_choice(device: torch.device, weights: Path, precision: str, frame_size: tuple[int, int] | None) -> str:
    if device.type == "cuda":
        from streamdeblur.engines import tensorrt_available

        return "tensorrt" if tensorrt_available() else "torch"
    if precision != "fp32" or not _onnxruntime_available():
        return "torch"
    return _faster_on_cpu(weights, frame_size or (640, 360))


def _onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _probe_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    width, height = frame_size
    scale = min(1.0, (_PROBE_PIXELS / max(1, width * height)) ** 0.5)
    return max(16, round(width * scale)), max(16, round(height * scale))


def _faster_on_cpu(weights: Path, frame_size: tuple[int, int]) -> str:
    """Time PyTorch and ONNX Runtime on this machine once; remember the winner."""
    width, height = _probe_size(frame_size)
    facts = {
        "weights_sha256": file_sha256(weights), "size": [width, height], "threads": torch.get_num_threads(),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }
    record_path = engine_dir() / _CPU_CHOICES
    records = _read_records(record_path)
    key = key_of(facts)
    if key not in records:
        x = torch.rand(1, 3, height, width)
        timings = {
            "torch": _seconds_per_call(TorchBackend(load_checkpoint(weights), torch.device("cpu")), x),
            "onnxruntime": _seconds_per_call(_onnxruntime(weights, None), x),
        }
        records = {**_read_records(record_path), key: {**facts, "seconds": timings, "choice": min(timings, key=lambda k: timings[k])}}
        replace_atomically(record_path, (json.dumps(records, indent=2) + "\n").encode())
        log.info("CPU backend: %s (measured at %dx%d: %s)", records[key]["choice"], width, height,
                 ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in timings.items()))
    return str(records[key]["choice"])


def _read_records(path: Path) -> dict[str, dict]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:  # an older, broken file: measure again
        return {}


def _seconds_per_call(backend: Backend, x: torch.Tensor, repeats: int = 2) -> float:
    backend.infer(x)  # warm-up
    started = time.perf_counter()
    for _ in range(repeats):
        backend.infer(x)
    return (time.perf_counter() - started) / repeats


def _onnxruntime(weights: Path, onnx: str | Path | None) -> Backend:
    from streamdeblur.engines import onnx_for_weights
    from streamdeblur.inference.onnxruntime_backend import OnnxRuntimeBackend

    path = Path(onnx) if onnx else onnx_for_weights(weights)
    if not path.is_file():
        raise BadUsage(f"ONNX file not found: {path}")
    return OnnxRuntimeBackend(path, load_checkpoint(weights).cfg.name)


def _tensorrt(
    weights: Path, device: torch.device, precision: str, frame_size: tuple[int, int] | None,
    batch_size: int, tile: int, in_flight: int, engine: str | Path | None,
) -> Backend:
    from streamdeblur.engines import engine_for, onnx_for_weights, require_tensorrt
    from streamdeblur.engines.shapes import parse_shapes, profile_for_frames
    from streamdeblur.engines.store import read_sidecar

    require_tensorrt()
    if device.type != "cuda":
        raise BadUsage("--backend tensorrt needs --device cuda")
    from streamdeblur.inference.tensorrt_backend import TensorRTBackend

    if engine:
        path = Path(engine)
        if not path.is_file():
            raise BadUsage(f"engine not found: {path}")
        built_with = (read_sidecar(path) or {}).get("precision", precision)
    else:
        if frame_size is None and not tile:
            raise BadUsage("--backend tensorrt needs the frame size to build an engine; pass --engine")
        shapes = parse_shapes(f"tile:{tile}", batch_size) if tile else profile_for_frames(*frame_size, batch=batch_size)  # type: ignore[misc]
        path = engine_for(onnx_for_weights(weights), shapes, precision)
        built_with = precision
    name = load_checkpoint(weights).cfg.name
    return TensorRTBackend(path, device, in_flight, built_with, name)
