"""TensorRT runtime: a deserialized engine, one execution context per in-flight slot.

Memory and streams come from PyTorch: tensors' data_ptr() go to set_tensor_address and the
current stream's handle to execute_async_v3. Only TensorRT calls live here; the scheduler
around it is shared with the PyTorch CUDA backend.
"""

from __future__ import annotations

from pathlib import Path

import tensorrt as trt
import torch

from streamdeblur.errors import ProcessingError
from streamdeblur.models.config import DeepDeblurConfig


class TensorRTBackend:
    name = "tensorrt"

    def __init__(
        self, engine_path: Path, device: torch.device, slots: int, precision: str, model_config: DeepDeblurConfig
    ) -> None:
        self.device, self.precision = device, precision
        self.model_config, self.model_name = model_config, model_config.name
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if engine is None:
            raise ProcessingError(
                f"cannot load TensorRT engine {engine_path} (built by another TensorRT version or for another GPU?)"
            )
        self.engine = engine
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self.input_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.contexts = [engine.create_execution_context() for _ in range(max(1, slots))]

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        context = self.contexts[slot]
        x = batch.contiguous()
        if not context.set_input_shape(self.input_name, trt.Dims(list(x.shape))):
            raise ProcessingError(
                f"input {tuple(x.shape)} is outside the engine's optimization profile; rebuild it for this size"
            )
        # (N, 3, H, W): a windowed network takes 3K channels and gives back one frame.
        dims = context.get_tensor_shape(self.output_name)
        out = torch.empty([dims[i] for i in range(len(dims))], dtype=x.dtype, device=x.device)
        context.set_tensor_address(self.input_name, x.data_ptr())
        context.set_tensor_address(self.output_name, out.data_ptr())
        if not context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream):
            raise ProcessingError("TensorRT execution failed")
        return out
