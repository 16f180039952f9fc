"""ONNX export with dynamic batch, height and width, checked every time it is made.

Checks: the ONNX checker; ONNX Runtime against PyTorch on two frame sizes (max absolute
difference under 1e-3 in fp32); every operator is one TensorRT's ONNX parser supports (the
list in tensorrt_onnx_ops.txt, with the TensorRT version it came from).

A windowed model exports as one 3K-channel input, not K inputs: the window is stacked where
it is assembled (window/assembly.py), so the graph, the engine, tiling and the stream
scheduler stay the single-input ones, and only the channel count in the shapes changes.
"""

from __future__ import annotations

import io
import logging
import warnings
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from streamdeblur.errors import BadUsage, ProcessingError
from streamdeblur.models.deepdeblur import DeepDeblur

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "blurry", "sharp"
OPSET = 18
PARITY_TOLERANCE = 1e-3
PARITY_SIZES = ((1, 64, 96), (2, 45, 70))  # N, H, W: one aligned, one needing padding; two batch sizes
_OPS_FILE = Path(__file__).with_name("tensorrt_onnx_ops.txt")


@dataclass(frozen=True)
class ExportCheck:
    operators: tuple[str, ...]
    max_abs_diff: float
    tensorrt_version: str


def tensorrt_supported_ops() -> tuple[str, set[str]]:
    """(TensorRT version, operator names) from the list kept in the repository."""
    version, ops = "unknown", set()
    for line in _OPS_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("tensorrt_version:"):
            version = line.split(":", 1)[1].strip()
        else:
            ops.add(line)
    return version, ops


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise BadUsage("ONNX export needs the onnx extra: pip install 'streamdeblur[onnx]'") from None


def export_onnx(model: DeepDeblur, path: Path, opset: int = OPSET) -> ExportCheck:
    """Write `model` as ONNX to `path` and check it; raises ProcessingError if a check fails."""
    _require_onnx()
    model = model.float().cpu().eval()
    example = torch.rand(1, model.cfg.in_channels, 64, 96)
    dims = {
        0: torch.export.Dim("batch", min=1, max=256),
        2: torch.export.Dim("height", min=1, max=8192),
        3: torch.export.Dim("width", min=1, max=8192),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter narrates every pass on stdout and warns about unrelated modules.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings(), redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": dims},
            verbose=False,
        )
    if program is None:
        raise ProcessingError("ONNX export produced no program")
    program.save(str(path))
    return check_onnx(path, model)


def onnx_input_channels(path: Path) -> int:
    """The channel count of an exported network's input: 3, or 3K for a window of K frames."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    channels = next(i for i in graph.input if i.name == INPUT_NAME).type.tensor_type.shape.dim[1].dim_value
    return int(channels) or 3


def check_onnx(path: Path, model: DeepDeblur) -> ExportCheck:
    import onnx
    import onnxruntime as ort

    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    operators = tuple(sorted({node.op_type for node in proto.graph.node}))
    version, supported = tensorrt_supported_ops()
    unsupported = sorted(set(operators) - supported)
    if unsupported:
        raise ProcessingError(f"{path.name}: operators TensorRT {version} cannot parse: {', '.join(unsupported)}")

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    generator = torch.Generator().manual_seed(0)
    for batch, height, width in PARITY_SIZES:
        shape = (batch, model.cfg.in_channels, height, width)
        x = torch.rand(*shape, generator=generator)
        (onnx_out,) = session.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})
        with torch.no_grad():
            torch_out = model(x).numpy()
        if onnx_out.shape != torch_out.shape:
            raise ProcessingError(
                f"{path.name}: ONNX output {onnx_out.shape} for input {shape}, PyTorch {torch_out.shape}"
            )
        worst = max(worst, float(np.abs(onnx_out - torch_out).max()))
    if worst >= PARITY_TOLERANCE:
        raise ProcessingError(
            f"{path.name}: ONNX Runtime differs from PyTorch by {worst:.2e} (limit {PARITY_TOLERANCE})"
        )
    log.debug("ONNX check passed: %d operator types, max |diff| %.2e", len(operators), worst)
    return ExportCheck(operators, worst, version)
