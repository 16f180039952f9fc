"""TensorRT engine build through the TensorRT Python API (10+). Only TensorRT calls live here.

Everything else the build needs (ONNX export, shape profiles, the engine cache, calibration
frames) is shared, TensorRT-free code, so this module stays thin enough to check statically
with mypy against tensorrt-stubs (no machine here can install TensorRT itself).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import tensorrt as trt
import torch

from streamdeblur.engines.shapes import ProfileShapes
from streamdeblur.errors import ProcessingError

log = logging.getLogger(__name__)

PRECISION_FLAGS = {
    "fp32": [],
    "fp16": [trt.BuilderFlag.FP16],
    "bf16": [trt.BuilderFlag.BF16],
    "int8": [trt.BuilderFlag.INT8, trt.BuilderFlag.FP16],  # layers INT8 can't take fall back to FP16
}
_WORKSPACE_BYTES = 4 << 30


class _SyntheticCalibrator(trt.IInt8EntropyCalibrator2):
    """Feeds synthetic blurred frames (device tensors from PyTorch) to INT8 calibration."""

    def __init__(self, batches: Iterator[torch.Tensor], batch_size: int, cache: Path) -> None:
        trt.IInt8EntropyCalibrator2.__init__(self)
        self._batches, self._batch_size, self._cache = batches, batch_size, cache
        self._current: torch.Tensor | None = None  # kept alive while TensorRT reads it

    def get_batch_size(self) -> int:
        return self._batch_size

    def get_batch(self, names: list[str]) -> list[int]:
        try:
            self._current = next(self._batches).cuda().contiguous()
        except StopIteration:
            return []
        return [int(self._current.data_ptr())]

    def read_calibration_cache(self) -> bytes | None:
        return self._cache.read_bytes() if self._cache.is_file() else None

    def write_calibration_cache(self, cache: memoryview) -> None:
        self._cache.write_bytes(bytes(cache))


def tensorrt_version() -> str:
    return str(trt.__version__)


def build_serialized_engine(
    onnx_path: Path,
    input_name: str,
    shapes: ProfileShapes,
    precision: str,
    timing_cache: Path,
    version_compatible: bool = False,
    calibration: Iterator[torch.Tensor] | None = None,
    calibration_cache: Path | None = None,
) -> bytes:
    """Parse ONNX, set the profile and precision, build; returns the serialized engine."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ProcessingError(f"TensorRT cannot parse {onnx_path.name}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, _WORKSPACE_BYTES)
    for flag in PRECISION_FLAGS[precision]:
        config.set_flag(flag)
    if version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)

    profile = builder.create_optimization_profile()
    profile.set_shape(input_name, trt.Dims(list(shapes.min)), trt.Dims(list(shapes.opt)), trt.Dims(list(shapes.max)))
    config.add_optimization_profile(profile)

    if precision == "int8":
        if calibration is None or calibration_cache is None:
            raise ProcessingError("INT8 needs calibration frames")
        config.set_calibration_profile(profile)
        config.int8_calibrator = _SyntheticCalibrator(calibration, shapes.opt[0], calibration_cache)

    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, False)

    log.info("building a %s TensorRT engine for %s (this takes a while, once)", precision, shapes.opt)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ProcessingError(f"TensorRT could not build an engine from {onnx_path.name}")
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)
