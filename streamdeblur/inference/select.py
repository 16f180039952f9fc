"""Choosing and building a backend; `auto` picks the fastest one available.

auto: TensorRT when it is installed and there is a GPU, else PyTorch on CUDA, else the fastest
CPU candidate (torch bf16 channels-last where bf16 is native, torch fp32 channels-last, ONNX
Runtime fp32, and OpenVINO fp32, and bf16 where native, when it is installed, and OpenVINO
int8 where the weights' quantization record shows it keeping fp32's quality:
engines/openvino_int8.keeps_quality), measured once at the frame size and remembered per CPU
model and flags. For an input long enough to win back the compile, the torch candidates are
compiled ones.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamdeblur.errors import BadUsage
from streamdeblur.files import file_sha256
from streamdeblur.inference.backend import Backend, PassthroughBackend
from streamdeblur.inference.concurrent import ConcurrentCalls, runs_side_by_side
from streamdeblur.inference.measured import fastest, machine_facts
from streamdeblur.inference.openvino_backend import is_intel_gpu
from streamdeblur.inference.precision import cpu_has_native_bf16, resolve_channels_last, resolve_precision
from streamdeblur.inference.processor import FrameProcessor, Processor, infer_pixels
from streamdeblur.inference.torch_backend import TorchBackend, resolve_device
from streamdeblur.models import DeepDeblur, load_checkpoint, resolve_weights, with_config
from streamdeblur.models.checkpoint import missing_weights, never_softer_margin
from streamdeblur.stopping import stop_point

log = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "torch", "onnxruntime", "openvino", "passthrough")
CPU_CHOICES = "cpu-backend-choice.json"  # in the user cache folder
_PROBE_PIXELS = 640 * 360  # CPU speed is measured on at most this many pixels
# `--compile` auto: inputs of at least this many frames x pixels (10 s of 640x360 at 30
# frames/s). Compiling takes tens of seconds and saves a fraction of a second a frame: a
# shorter input would not win it back.
COMPILE_WORTH_PIXELS = 300 * 640 * 360


@dataclass(frozen=True)
class CpuCandidate:
    """One way to run the network on the CPU, as `auto` compares them."""

    backend: str  # torch, onnxruntime or openvino
    precision: str
    channels_last: bool = False
    compiled: bool = False  # torch: compiled by TorchInductor (torch_backend.py)

    @property
    def label(self) -> str:
        layout = (" channels-last" if self.channels_last else " NCHW") if self.backend == "torch" else ""
        return f"{self.backend} {self.precision}{layout}{' compiled' if self.compiled else ''}"


def cpu_candidates(
    precision: str = "auto", channels_last: bool | None = None, compiled: bool = False, int8_kept: bool = False
) -> list[CpuCandidate]:
    """What `--backend auto` compares on the CPU for the asked precision, fastest-expected first;
    `compiled`: the torch candidates compiled; `int8_kept`: the weights' int8 IR keeps quality
    (int8_keeps_quality), so `auto` may time it."""
    cpu = torch.device("cpu")
    openvino = _openvino_available()
    if precision == "int8":  # OpenVINO's quantized IR is the CPU's one int8
        if not openvino:
            raise BadUsage("--precision int8 on the CPU runs on OpenVINO: pip install 'streamdeblur[openvino]'")
        return [CpuCandidate("openvino", "int8")]
    resolve_precision(precision, cpu)  # validates, and warns about emulated bf16
    nhwc = resolve_channels_last(channels_last, cpu, "fp32")
    candidates = []
    if precision == "auto" and openvino and int8_kept:
        candidates.append(CpuCandidate("openvino", "int8"))
    if precision == "bf16" or (precision == "auto" and cpu_has_native_bf16()):
        candidates.append(CpuCandidate("torch", "bf16", nhwc, compiled))
        if openvino and cpu_has_native_bf16():  # OpenVINO has no emulated bf16 to offer
            candidates.append(CpuCandidate("openvino", "bf16"))
    if precision in ("auto", "fp32"):
        candidates.append(CpuCandidate("torch", "fp32", nhwc, compiled))
        if _onnxruntime_available():
            candidates.append(CpuCandidate("onnxruntime", "fp32"))
        if openvino:
            candidates.append(CpuCandidate("openvino", "fp32"))
    return candidates


def int8_keeps_quality(weights: Path) -> bool:
    """Whether the weights' int8 IR has been made and its record shows fp32's quality kept, and
    the card does not say otherwise (`int8.keeps_fp32_quality`: false where a measurement the
    record cannot hold, real footage, showed int8 losing)."""
    from streamdeblur.engines.openvino_int8 import keeps_quality, read_int8_record
    from streamdeblur.models.checkpoint import read_card

    if read_card(weights).get("int8", {}).get("keeps_fp32_quality") is False:
        return False
    return keeps_quality(read_int8_record(weights))


def build_cpu_candidate(
    candidate: CpuCandidate,
    weights: Path,
    onnx: str | Path | None = None,
    model: DeepDeblur | None = None,
) -> Backend:
    """The candidate built; `model`: the weights already loaded (a copy is used, as a backend
    converts its model in place), so that comparing candidates reads the file once."""
    model = copy.deepcopy(model) if model is not None else load_checkpoint(weights)
    if candidate.backend == "onnxruntime":
        return _onnxruntime(weights, onnx, model)
    if candidate.backend == "openvino":
        return _openvino(weights, onnx, model, "CPU", candidate.precision)
    return TorchBackend(
        _for_precision(model, weights, candidate.precision),
        torch.device("cpu"),
        candidate.precision,
        candidate.channels_last,
        compiled=candidate.compiled,
    )


def _for_precision(model: DeepDeblur, weights: Path, precision: str) -> DeepDeblur:
    """`model` with the never_softer margin its card names for `precision` (bf16's rounding
    adds detail of its own), or as it is."""
    margin = never_softer_margin(weights, precision) if model.cfg.never_softer else 0.0
    return with_config(model, never_softer_margin=margin) if margin else model


def worth_compiling(frames: int | None, frame_size: tuple[int, int] | None, batch: int = 1, tile: int = 0) -> bool:
    """`--compile` auto: an input of known length that wins the compile back, one shape for
    all of it (whole frames, one at a time: each new shape compiles again)."""
    if frames is None or frame_size is None or batch != 1 or tile:
        return False
    return frames * frame_size[0] * frame_size[1] >= COMPILE_WORTH_PIXELS


def create_backend(
    name: str = "auto",
    weights: str | Path | None = None,
    device: str = "auto",
    precision: str = "auto",
    *,
    frame_size: tuple[int, int] | None = None,
    batch: int = 1,
    tile: int = 0,
    streams: int = 3,
    engine: str | Path | None = None,
    channels_last: bool | None = None,
    cuda_graphs: bool = False,
    compile: bool | None = None,
    frames: int | None = None,
    warm: bool = True,
) -> Backend:
    """The backend to run. `frame_size` (width, height) sizes TensorRT engines and the CPU probe.

    `precision` auto and `channels_last` None mean the fastest for this device (precision.py);
    `compile` None: compile the CPU torch network when the input's `frames` win it back;
    `warm` False leaves compiling to the caller (`warmed`), who knows the threads a call gets.
    """

    def ready(backend: Backend) -> Backend:
        return warmed(backend, frame_size, batch, tile) if warm else backend

    if name not in BACKENDS:
        raise BadUsage(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    if is_intel_gpu(device) and name in ("auto", "openvino"):
        name = "openvino"  # the one backend that runs on an Intel GPU
    elif is_intel_gpu(device) and name != "passthrough":
        raise BadUsage(f"--device {device} is an Intel GPU, which --backend openvino runs; not {name}")
    if name == "openvino":
        from streamdeblur.inference.openvino_backend import openvino_target

        target = openvino_target(device)  # OpenVINO's own device: checked before anything is loaded
    torch_device = resolve_device(device)
    weights_path = resolve_weights(weights)
    if name == "passthrough":
        return PassthroughBackend(torch_device)
    if compile and torch_device.type != "cpu":
        raise BadUsage("--compile is for the torch backend on the CPU")
    if not weights_path.is_file():  # checked here, before the CPU probe or an engine cache hashes it
        raise missing_weights(weights_path)
    model = load_checkpoint(weights_path)  # once: every candidate, engine and backend below starts from it
    compiled = compile if compile is not None else worth_compiling(frames, frame_size, batch, tile)
    int8_kept = torch_device.type == "cpu" and precision == "auto" and int8_keeps_quality(weights_path)
    if name == "auto" and torch_device.type == "cpu" and not cuda_graphs:
        candidates = cpu_candidates(precision, channels_last, compiled, int8_kept)
        chosen, built = _fastest_on_cpu(weights_path, model, candidates, frame_size or (640, 360))
        log.debug("backend auto -> %s", chosen.label)
        if built is None or (engine and chosen.backend != "torch"):  # the probe timed the weights' own ONNX
            built = build_cpu_candidate(chosen, weights_path, engine, model)
        return ready(built)
    if name == "auto":
        from streamdeblur.engines.artifacts import tensorrt_available

        name = "tensorrt" if torch_device.type == "cuda" and tensorrt_available() else "torch"
    if name == "onnxruntime":
        if torch_device.type != "cpu" or precision not in ("auto", "fp32"):
            raise BadUsage("--backend onnxruntime runs on the CPU in fp32")
        return _onnxruntime(weights_path, engine, model)
    if name == "openvino":
        several = cpu_has_native_bf16() or int8_kept  # more than one precision to time
        if target != "CPU" or precision != "auto" or not several or not _openvino_available():
            return _openvino(weights_path, engine, model, target, precision)
    if name in ("torch", "openvino") and torch_device.type == "cpu" and precision == "auto" and not cuda_graphs:
        # Native bf16 is not faster on every CPU that has it: measured, as for auto.
        own = [c for c in cpu_candidates(precision, channels_last, compiled, int8_kept) if c.backend == name]
        chosen, built = _fastest_on_cpu(weights_path, model, own, frame_size or (640, 360))
        if built is None or (engine and name == "openvino"):
            built = build_cpu_candidate(chosen, weights_path, engine, model)
        return ready(built)
    resolved = resolve_precision(precision, torch_device)
    if name == "tensorrt":
        return _tensorrt(weights_path, model, torch_device, resolved, frame_size, batch, tile, streams, engine)
    if compile and name != "torch":
        raise BadUsage(f"--compile is for the torch backend, not {name}")
    nhwc = resolve_channels_last(channels_last, torch_device, resolved)
    model = _for_precision(model, weights_path, resolved)
    return ready(
        TorchBackend(model, torch_device, resolved, nhwc, cuda_graphs, compiled=compiled and torch_device.type == "cpu")
    )


def warmed(backend: Backend, frame_size: tuple[int, int] | None, batch: int, tile: int) -> Backend:
    """A compiled network compiled now, for whole frames of `frame_size`, before the run's
    clock starts (a live run would otherwise drop frames for as long as it takes). TorchInductor
    compiles for the intra-op thread count in force, so call this under the count the run's
    calls will have: under another, the run's first call compiles it all again."""
    if getattr(backend, "compiled", False) and frame_size is not None and not tile:
        cfg = backend.model_config
        channels = cfg.in_channels if cfg is not None else 3
        started = time.perf_counter()
        # An inference tensor, as FrameProcessor hands over: the compiled graph's guards tell
        # one from an ordinary tensor, and a batch unlike the run's would be compiled again.
        with torch.inference_mode():
            backend.infer(torch.zeros(batch, channels, frame_size[1], frame_size[0]))
        log.info("compiled the network for %dx%d in %.0f s", *frame_size, time.perf_counter() - started)
    return backend


def make_processor(
    backend: Backend,
    tile: int = 0,
    tile_overlap: int = 32,
    batch: int = 1,
    streams: int = 3,
    side_by_side: bool = False,
    overlapped: bool = True,
) -> Processor:
    """The stream scheduler on CUDA, the synchronous processor elsewhere. For a windowed
    model it takes windows: the caller assembles them in front of it (window/assembly.py).
    `side_by_side` (an offline run: frames wait in the queue): torch on a CPU runs one call per
    thread side by side, and the caller sets one thread per call for the run
    (concurrent.one_thread_per_call). `overlapped`: each of those threads then takes its next
    frame as soon as it is done with one, without waiting for the others (ConcurrentCalls);
    False where the window in front does that itself, with assembly and call together."""
    if backend.device.type == "cuda":
        from streamdeblur.inference.scheduler import StreamScheduler

        return StreamScheduler(backend, tile, tile_overlap, batch, streams)
    if side_by_side and runs_side_by_side(backend):
        return ConcurrentCalls(
            FrameProcessor(backend, tile, tile_overlap, batch), torch.get_num_threads(), batch, overlapped=overlapped
        )
    return FrameProcessor(backend, tile, tile_overlap, batch)


def _openvino_available() -> bool:
    """OpenVINO installed, and what exporting the ONNX it reads needs; without importing it."""
    from importlib.util import find_spec

    return find_spec("openvino") is not None and _onnxruntime_available()


def _onnxruntime_available() -> bool:
    """Installed, without importing: importing onnx and onnxruntime takes seconds, and a
    remembered choice of torch never needs them."""
    from importlib.util import find_spec

    return all(find_spec(name) is not None for name in ("onnx", "onnxruntime", "onnxscript"))


def _probe_size(frame_size: tuple[int, int]) -> tuple[int, int]:
    width, height = frame_size
    scale = min(1.0, (_PROBE_PIXELS / max(1, width * height)) ** 0.5)
    return max(16, round(width * scale)), max(16, round(height * scale))


def _fastest_on_cpu(
    weights: Path,
    model: DeepDeblur,
    candidates: list[CpuCandidate],
    frame_size: tuple[int, int],
) -> tuple[CpuCandidate, Backend | None]:
    """Time the candidates on this machine once (per CPU model, flags, size, threads); remember
    the winner. With it, the winner as built for timing, when it was just timed (a compiled
    one is then compiled already), else None."""
    width, height = _probe_size(frame_size)
    # Timed from 8-bit frames, as a run calls (processor.infer_pixels): a choice timed from
    # float inputs, as before, is not reused.
    facts = {
        "weights_sha256": file_sha256(weights),
        "size": [width, height],
        "input": "8-bit frames",
        **machine_facts(),
    }
    by_label = {c.label: c for c in candidates}
    x = torch.randint(0, 256, (1, height, width, model.cfg.in_channels), dtype=torch.uint8)  # a window: 3K channels
    built: dict[str, Backend] = {}

    def seconds_of(label: str) -> float:
        built[label] = build_cpu_candidate(by_label[label], weights, model=model)
        return _seconds_per_call(built[label], x)

    choice = fastest(CPU_CHOICES, facts, list(by_label), seconds_of)
    return by_label[choice], built.get(choice)


def _seconds_per_call(backend: Backend, pixels: torch.Tensor, repeats: int = 2) -> float:
    """Seconds a call takes on 8-bit frames (N x H x W x C), as a run makes it."""
    call = functools.partial(infer_pixels, backend, pixels, np.dtype(np.uint8))
    call()  # warm-up
    elapsed = 0.0
    for _ in range(repeats):
        stop_point()  # between calls: a run's stop ends the timing (stopping.py)
        started = time.perf_counter()
        call()
        elapsed += time.perf_counter() - started
    return elapsed / repeats


def _onnxruntime(weights: Path, onnx: str | Path | None, model: DeepDeblur) -> Backend:
    from streamdeblur.engines.artifacts import onnx_for_weights
    from streamdeblur.inference.onnxruntime_backend import OnnxRuntimeBackend

    path = Path(onnx) if onnx else onnx_for_weights(weights, model=model)
    if not path.is_file():
        raise BadUsage(f"ONNX file not found: {path}")
    return OnnxRuntimeBackend(path, model.cfg)


def _openvino(weights: Path, onnx: str | Path | None, model: DeepDeblur, target: str, precision: str) -> Backend:
    """OpenVINO on `target` (its device name) in `precision` (auto: resolved without timing)."""
    from streamdeblur.engines.artifacts import onnx_for_weights
    from streamdeblur.engines.openvino_cache import openvino_cache_dir
    from streamdeblur.inference.openvino_backend import (
        OpenVinoBackend,
        device_name,
        import_openvino,
        openvino_precision,
    )

    ov = import_openvino()  # says what to install before anything is exported
    resolved = openvino_precision(precision, target)
    if resolved == "int8":
        if onnx:
            raise BadUsage("--precision int8 runs the weights' own quantized model; it takes no --engine")
        path = _int8_ir(weights)
        cache = openvino_cache_dir(path, resolved, target, ov.get_version(), device_name(target), weights)
        return OpenVinoBackend(path, model.cfg, resolved, target, cache)
    margin = None
    if resolved == "bf16" and model.cfg.never_softer and not onnx:  # never_softer after the graph, in fp32
        margin = never_softer_margin(weights, "bf16")
        path = onnx_for_weights(weights, model=model, never_softer=False)
    else:
        path = Path(onnx) if onnx else onnx_for_weights(weights, model=model)
    if not path.is_file():
        raise BadUsage(f"ONNX file not found: {path}")
    cache = openvino_cache_dir(path, resolved, target, ov.get_version(), device_name(target), None if onnx else weights)
    return OpenVinoBackend(path, model.cfg, resolved, target, cache, never_softer_margin=margin)


def _int8_ir(weights: Path) -> Path:
    """The weights' int8 IR, made by `streamdeblur quantize` (calibrating and checking it takes
    minutes, and a command of its own says what it measured)."""
    from streamdeblur.engines.openvino_int8 import quantizer_versions, read_int8_record

    if quantizer_versions() is None:
        raise BadUsage("--precision int8 with --backend openvino needs NNCF: pip install 'streamdeblur[openvino]'")
    record = read_int8_record(weights)
    if record is None:
        named = weights.stem if weights.parent.name == "weights" else str(weights)
        raise BadUsage(f"no int8 model of {weights.name} yet: run `streamdeblur quantize {named}` once")
    return Path(record["ir"])


def _tensorrt(
    weights: Path,
    model: DeepDeblur,
    device: torch.device,
    precision: str,
    frame_size: tuple[int, int] | None,
    batch: int,
    tile: int,
    streams: int,
    engine: str | Path | None,
) -> Backend:
    from streamdeblur.engines.artifacts import engine_for, onnx_for_weights, require_tensorrt
    from streamdeblur.engines.shapes import parse_shapes, profile_for_frames
    from streamdeblur.engines.store import read_sidecar

    require_tensorrt()
    if device.type != "cuda":
        raise BadUsage("--backend tensorrt needs --device cuda")
    from streamdeblur.inference.tensorrt_backend import TensorRTBackend

    cfg = model.cfg
    if engine:
        path = Path(engine)
        if not path.is_file():
            raise BadUsage(f"engine not found: {path}")
        built_with = (read_sidecar(path) or {}).get("precision", precision)
    else:
        if frame_size is None and not tile:
            raise BadUsage("--backend tensorrt needs the frame size to build an engine; pass --engine")
        channels = cfg.in_channels
        shapes = (
            parse_shapes(f"tile:{tile}", batch, channels)
            if tile
            else profile_for_frames(*frame_size, batch=batch, channels=channels)
        )  # type: ignore[misc]
        path = engine_for(onnx_for_weights(weights, model=model), shapes, precision)
        built_with = precision
    return TensorRTBackend(path, device, streams, built_with, cfg)  # an execution context per stream slot
