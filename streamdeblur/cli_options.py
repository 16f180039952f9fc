"""Command-line options that several commands share, each defined once.

A command that takes `spec: BackendSpec` or `encode: EncodeOptions` and is decorated with
`takes_backend_spec` or `takes_encode_options` shows the group's flags in that parameter's
place and receives one value built from them. Each flag is named after its field (`--batch`
is `BackendSpec.batch`). Defaults are the dataclasses' own (a test checks they agree); they
are written out here so that `--help` does not have to import PyTorch.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from streamdeblur.registry import default_model, shipped_models

if TYPE_CHECKING:
    from streamdeblur.inference.spec import BackendSpec
    from streamdeblur.io import EncodeOptions

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; errors only.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]
_PICTURE, _CLIP = default_model("picture").name, default_model("clip").name
_LIGHT = next(m.name for m in shipped_models() if m.role == "light")
WeightsOpt = Annotated[
    Path | None,
    typer.Option(
        help="Weights: .safetensors, an official DeepDeblur-PyTorch model-*.pt, "
        f"or a shipped name ({_PICTURE}, {_LIGHT}, ...: `streamdeblur models`). "
        f"Default: for run and batch on video or a folder of frames the windowed {_CLIP}, otherwise {_PICTURE}."
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N; gpu or gpu:N: an Intel GPU (openvino).")]
PrecisionOpt = Annotated[
    str,
    typer.Option(
        help="auto (fp16 on CUDA; bf16 on CPUs with native bf16; else fp32), fp32, bf16, "
        "fp16 (CUDA, Intel GPU), int8 (TensorRT; OpenVINO on the CPU after `quantize`)."
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output.")]
ReportOpt = Annotated[Path | None, typer.Option(help="Write the JSON run report here.")]
FpsOpt = Annotated[str, typer.Option(help="Frame rate given to image-folder input.")]

# name: (annotation, default), in the order --help lists them.
BACKEND_OPTIONS: dict[str, tuple[Any, Any]] = {
    "weights": (WeightsOpt, None),
    "blur": (
        Annotated[
            str | None,
            typer.Option(
                help="The blur to remove, where no --weights is given: motion (camera shake, moving things), "
                "defocus (out of focus, a hazy cover, Gaussian softness), or auto (judged on the input's "
                "first frames; `run` and one-stream `live`). Default: auto for `run` on a clip or a folder of "
                "frames, motion for pictures and everything else."
            ),
        ],
        None,
    ),
    "still_camera": (
        Annotated[
            bool,
            typer.Option(
                "--still-camera",
                help="The camera is fixed (surveillance, a tripod): the video model's neighbours are not "
                "aligned, and are refused where something moved on its own. Windowed models only.",
            ),
        ],
        False,
    ),
    "backend": (
        Annotated[
            str,
            typer.Option(
                help="auto, tensorrt, torch, onnxruntime, openvino, or passthrough (no network: checks the I/O path)."
            ),
        ],
        "auto",
    ),
    "device": (DeviceOpt, "auto"),
    "precision": (PrecisionOpt, "auto"),
    "batch": (Annotated[int, typer.Option(help="Frames (or tiles) per network call.")], 1),
    "tile": (Annotated[int, typer.Option(help="Run the network on TILE x TILE tiles (0: whole frames).")], 0),
    "tile_overlap": (Annotated[int, typer.Option(help="Pixels neighbouring tiles share; blended, not cropped.")], 32),
    "streams": (
        Annotated[int, typer.Option(help="CUDA: batches in flight, copies overlapping compute (1: no overlap).")],
        3,
    ),
    "engine": (
        Annotated[
            Path | None,
            typer.Option(
                help="A TensorRT engine (--backend tensorrt) or ONNX file (--backend onnxruntime or openvino) "
                "to use as is."
            ),
        ],
        None,
    ),
    "cuda_graphs": (
        Annotated[bool, typer.Option("--cuda-graphs", help="torch on CUDA: replay captured CUDA graphs.")],
        False,
    ),
    "channels_last": (
        Annotated[
            bool | None,
            typer.Option(
                "--channels-last/--no-channels-last",
                help="torch: NHWC memory layout. Default: on for the CPU, and on CUDA in fp16/bf16.",
                show_default=False,
            ),
        ],
        None,
    ),
    "compile": (
        Annotated[
            bool | None,
            typer.Option(
                "--compile/--no-compile",
                help="torch on the CPU: compile the network with TorchInductor "
                "(tens of seconds at the start, then faster; each new frame size compiles again). "
                "Default: for inputs of 10 s of 640x360 or more.",
                show_default=False,
            ),
        ],
        None,
    ),
}
ENCODE_OPTIONS: dict[str, tuple[Any, Any]] = {
    "codec": (
        Annotated[str | None, typer.Option(help="Video encoder. Default libx264; libx265 for >8-bit input.")],
        None,
    ),
    "crf": (
        Annotated[int | None, typer.Option(help="Constant-quality level where the encoder has one. Default 18.")],
        None,
    ),
    "preset": (Annotated[str | None, typer.Option(help="Encoder preset, e.g. medium, slow, veryfast.")], None),
    "pix_fmt": (
        Annotated[
            str | None, typer.Option(help="Output pixel format. Default: the input's, where the encoder takes it.")
        ],
        None,
    ),
}


def _backend_spec(**values: Any) -> BackendSpec:
    from streamdeblur.inference.spec import BackendSpec

    paths = {name: str(value) for name, value in values.items() if isinstance(value, Path)}
    return BackendSpec(**{**values, **paths})  # the spec holds plain strings, as batch workers receive it


def _encode_options(**values: Any) -> EncodeOptions:
    from streamdeblur.io import EncodeOptions

    return EncodeOptions(**values)


def _grouped(
    parameter: str, options: dict[str, tuple[Any, Any]], build: Callable[..., Any]
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator: the command's `parameter` becomes `options` on the command line, built into one value."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command)
        names = list(signature.parameters)
        at = names.index(parameter)
        kept = [_evaluated(p, command) for p in signature.parameters.values() if p.name != parameter]
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
            for name, (annotation, default) in options.items()
        ]

        @functools.wraps(command)
        def wrapper(**kwargs: Any) -> Any:
            values = {name: kwargs.pop(name) for name in options}
            return command(**kwargs, **{parameter: build(**values)})

        # typer reads the parameters from the signature, and their types from __annotations__.
        parameters = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept[:at] + added + kept[at:]]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        return wrapper

    return decorate


def _evaluated(parameter: inspect.Parameter, command: Callable[..., Any]) -> inspect.Parameter:
    """The parameter with its annotation as an object (cli.py's are strings: `from __future__ import annotations`)."""
    if isinstance(parameter.annotation, str):
        try:
            return parameter.replace(
                annotation=eval(parameter.annotation, command.__globals__)
            )  # source text of the command's own module
        except NameError:  # a type only imported for type checkers: another group's parameter
            pass
    return parameter


takes_backend_spec = _grouped("spec", BACKEND_OPTIONS, _backend_spec)
takes_encode_options = _grouped("encode", ENCODE_OPTIONS, _encode_options)
