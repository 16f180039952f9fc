"""How the network runs, as one value: from the command line's flags to the built backend.

`run`, `live`, `batch` and `bench` all describe the backend with a BackendSpec and build it
with `create()` or, for a run, `ready()`; each field is named after its flag (`--batch` is
`batch`, `--streams` is `streams`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

from streamdeblur.errors import BadUsage
from streamdeblur.inference.backend import Backend
from streamdeblur.inference.concurrent import one_thread_per_call, prepare_side_by_side, runs_side_by_side
from streamdeblur.inference.select import create_backend, warmed
from streamdeblur.inference.tiling import validate_tiling
from streamdeblur.registry import AUTO_BLUR, BLURS, default_model


@dataclass(frozen=True)
class BackendSpec:
    backend: str = "auto"  # auto, tensorrt, torch, onnxruntime, openvino, passthrough
    weights: str | None = None  # None: the shipped default weights
    device: str = "auto"
    precision: str = "auto"  # precision.py: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32
    batch: int = 1  # frames (or tiles) per network call
    tile: int = 0  # 0: whole frames
    tile_overlap: int = 32
    streams: int = 3  # CUDA: batches in flight in the stream scheduler (1: no overlap)
    engine: str | None = None  # a TensorRT engine or ONNX file to use as is
    cuda_graphs: bool = False
    channels_last: bool | None = None  # None: the faster layout for the device
    compile: bool | None = None  # CPU torch: TorchInductor; None: for inputs that win the compile back
    # The kind of blur to remove where no weights are given (registry.BLURS), or AUTO_BLUR: `run`
    # judges the input's first frames (pipeline/blur_auto.py) and sets one of them before for_input.
    # None, not asked: `run` judges a clip (pipeline/job.py); motion for everything else.
    blur: str | None = None
    # --still-camera: the user says the camera is fixed; a windowed model's windows are then
    # assembled without alignment (window/still_camera.py). About the footage, like blur.
    still_camera: bool = False

    def for_input(self, input_kind: str) -> BackendSpec:
        """This spec with its weights chosen for the input (`picture`, `clip` or `live`) and its
        blur where none were given: the registry's default for them (registry.py). By name, not
        path, so Ray workers find it in their own install; unchanged where that default is what
        no weights resolve to anyway."""
        if self.weights is not None:
            return self
        if self.blur is None:  # no input judged here: the motion model, as before auto
            return replace(self, blur="motion").for_input(input_kind)
        if self.blur == AUTO_BLUR:
            raise BadUsage(
                "--blur auto judges one input's first frames: use it with `run` or a one-stream `live`; "
                "here give --blur motion or --blur defocus"
            )
        chosen = default_model(input_kind, self.blur)
        if chosen == default_model("picture"):
            return self if self.blur == "motion" else replace(self, blur="motion")
        return replace(self, weights=chosen.name, blur="motion")  # the weights name the model from here on

    def check(self) -> None:
        """Contradictions that need no input: values out of range, options the backend would ignore."""
        if self.batch < 1 or self.streams < 1:
            raise BadUsage("--batch and --streams must be at least 1")
        if self.blur not in (*BLURS, AUTO_BLUR, None):
            raise BadUsage(f"--blur must be {', '.join(BLURS)} or {AUTO_BLUR}, not {self.blur!r}")
        if self.weights is not None and self.blur not in ("motion", None):
            raise BadUsage("--blur picks a shipped model; with --weights, leave --blur out")
        validate_tiling(self.tile, self.tile_overlap)  # before any backend is built or measured
        if self.engine and self.backend not in ("tensorrt", "onnxruntime", "openvino", "auto"):
            raise BadUsage(f"--engine is for --backend tensorrt, onnxruntime or openvino, not {self.backend}")
        if self.cuda_graphs and self.backend not in ("torch", "auto"):
            raise BadUsage(f"--cuda-graphs is for --backend torch, not {self.backend}")
        if self.channels_last is not None and self.backend not in ("torch", "auto"):
            raise BadUsage(f"--channels-last/--no-channels-last is for --backend torch, not {self.backend}")
        if self.compile and self.backend not in ("torch", "auto"):
            raise BadUsage(f"--compile is for --backend torch, not {self.backend}")

    def create(
        self,
        frame_size: tuple[int, int] | None = None,
        frames: int | None = None,
        warm: bool = True,
    ) -> Backend:
        """The backend alone; `frame_size` (width, height) sizes TensorRT engines and the CPU
        probe; `frames`, the input's length where known, decides `compile` auto; `warm`: see
        select.create_backend."""
        self.check()
        return create_backend(
            self.backend,
            self.weights,
            self.device,
            self.precision,
            frame_size=frame_size,
            batch=self.batch,
            tile=self.tile,
            streams=self.streams,
            engine=self.engine,
            channels_last=self.channels_last,
            cuda_graphs=self.cuda_graphs,
            compile=self.compile,
            frames=frames,
            warm=warm,
        )

    def ready(
        self,
        frame_size: tuple[int, int] | None = None,
        frames: int | None = None,
        side_by_side: bool = False,
    ) -> Backend:
        """The backend, compiled (where it is) for the threads the run's calls will have;
        `side_by_side`: see select.make_processor, which builds the processor around it."""
        backend = self.create(frame_size, frames, warm=not side_by_side)
        if side_by_side and runs_side_by_side(backend):
            prepare_side_by_side(backend)
        if side_by_side:
            # Compiled for the threads each call will have: one, where calls run side by side
            # (code compiled for two threads runs slower on one).
            with one_thread_per_call() if runs_side_by_side(backend) else contextlib.nullcontext():
                warmed(backend, frame_size, self.batch, self.tile)
        return backend

    def pinned(self, backend: Backend) -> BackendSpec:
        """This spec with `auto`'s choices replaced by what `backend` is, so that other processes
        (batch workers) build the same thing without measuring again."""
        if backend.name == "passthrough":
            return replace(self, backend="passthrough")
        channels_last = getattr(backend, "channels_last", None) if backend.name == "torch" else None
        compiled = bool(getattr(backend, "compiled", False)) if backend.name == "torch" else None
        engine = self.engine if backend.name != "torch" else None
        return replace(
            self,
            backend=backend.name,
            precision=backend.precision,
            channels_last=channels_last,
            compile=compiled,
            engine=engine,
        )
