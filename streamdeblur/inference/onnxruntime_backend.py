"""ONNX Runtime backend for the CPU, running the exported (and parity-checked) ONNX graph."""

from __future__ import annotations

from pathlib import Path

import torch

from streamdeblur.engines.onnx_export import INPUT_NAME, OUTPUT_NAME
from streamdeblur.errors import BadUsage
from streamdeblur.models.config import DeepDeblurConfig


class OnnxRuntimeBackend:
    name = "onnxruntime"
    precision = "fp32"

    def __init__(self, onnx_path: Path, model_config: DeepDeblurConfig, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise BadUsage("--backend onnxruntime needs: pip install 'streamdeblur[onnx]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.device = torch.device("cpu")
        self.model_config, self.model_name = model_config, model_config.name

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        (out,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch.contiguous().numpy()})
        return torch.from_numpy(out)
