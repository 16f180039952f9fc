"""ONNX export and TensorRT engine build, each cached under engine_dir() with a JSON sidecar."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from streamdeblur import __version__
from streamdeblur.engines.onnx_export import INPUT_NAME, OPSET, export_onnx
from streamdeblur.engines.shapes import ProfileShapes
from streamdeblur.engines.store import engine_dir, key_of, matches, write_with_sidecar
from streamdeblur.errors import BadUsage
from streamdeblur.files import file_sha256
from streamdeblur.models import DeepDeblur, load_checkpoint, with_config

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "bf16", "int8")


def onnx_for_weights(
    weights: Path,
    out: Path | None = None,
    model: DeepDeblur | None = None,
    never_softer_margin: float = 0.0,
    never_softer: bool = True,
) -> Path:
    """The ONNX export of `weights`: reused when its sidecar matches, else exported and checked;
    `model`: the weights already loaded, so they are not read again. `never_softer_margin` set
    in the graph (an int8 graph's: quantize/build.py), or with `never_softer` False the graph
    without never_softer (OpenVINO bf16 runs it after, in fp32): each a file of its own."""
    facts: dict[str, Any] = {"weights_sha256": file_sha256(weights), "opset": OPSET, "torch": torch.__version__}
    if never_softer_margin:
        facts["never_softer_margin"] = never_softer_margin
    if not never_softer:
        facts["never_softer"] = False
    path = out or engine_dir() / f"{weights.stem}-{key_of(facts)}.onnx"
    if matches(path, facts):
        return path
    log.info("exporting %s to ONNX (once; cached as %s)", weights.name, path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.export")
    if model is None:
        model = load_checkpoint(weights)
    if never_softer_margin or not never_softer:
        guarded = model.cfg.never_softer and never_softer
        model = with_config(model, never_softer_margin=never_softer_margin, never_softer=guarded)
    try:
        check = export_onnx(model, partial)
        payload = partial.read_bytes()
    finally:
        partial.unlink(missing_ok=True)
    write_with_sidecar(
        path,
        payload,
        {
            **facts,
            "weights": str(weights),
            "operators": list(check.operators),
            "max_abs_diff_vs_torch": check.max_abs_diff,
            "tensorrt_ops_checked_against": check.tensorrt_version,
            "streamdeblur": __version__,
        },
    )
    return path


def tensorrt_available() -> bool:
    """TensorRT's runtime is importable (a stubs-only `tensorrt` namespace package is not)."""
    try:
        import tensorrt
    except ImportError:
        return False
    return hasattr(tensorrt, "Builder")


def require_tensorrt() -> None:
    if not tensorrt_available():
        raise BadUsage(
            "TensorRT is not installed: on a machine with an NVIDIA GPU, pip install 'streamdeblur[trt]' "
            "(NVIDIA's tensorrt wheels), or use --backend torch"
        )
    if not torch.cuda.is_available():
        raise BadUsage("TensorRT needs a CUDA GPU and PyTorch with CUDA; none is available")


def engine_for(
    onnx: Path,
    shapes: ProfileShapes,
    precision: str = "fp16",
    version_compatible: bool = False,
    out: Path | None = None,
) -> Path:
    """A TensorRT engine for `onnx`: the cached one if its sidecar matches, else a new build."""
    if precision not in PRECISIONS:
        raise BadUsage(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    require_tensorrt()
    from streamdeblur.engines.calibration import calibration_batches
    from streamdeblur.engines.tensorrt_build import build_serialized_engine, tensorrt_version

    facts = {
        # The window (K frames, 3K input channels) is in the shapes, and named on its own too.
        "onnx_sha256": file_sha256(onnx),
        "frames": shapes.opt[1] // 3,
        "shapes": shapes.to_dict(),
        "precision": precision,
        "tensorrt": tensorrt_version(),
        "gpu": torch.cuda.get_device_name(),
        "version_compatible": version_compatible,
    }
    path = out or engine_dir() / f"{onnx.stem}-{precision}-{key_of(facts)}.engine"
    if matches(path, facts):
        log.info("reusing TensorRT engine %s", path)
        return path
    calibration = None
    if precision == "int8":
        _, _, height, width = shapes.opt
        calibration = calibration_batches(shapes.opt[0], height, width)
    payload = build_serialized_engine(
        onnx,
        INPUT_NAME,
        shapes,
        precision,
        engine_dir() / "timing.cache",
        version_compatible,
        calibration,
        path.with_suffix(".calibration"),
    )
    return write_with_sidecar(path, payload, {**facts, "onnx": str(onnx)})
