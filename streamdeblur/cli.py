"""The command line: the data path starts here and reads top to bottom from each command."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from streamdeblur.errors import EXIT_INTERRUPTED, BadUsage, ProcessingError, StreamdeblurError

if TYPE_CHECKING:
    from streamdeblur.pipeline.job import RunOptions

app = typer.Typer(
    name="streamdeblur",
    help="Remove motion blur from video files, cameras and network streams (DeepDeblur).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    add_completion=False,
)
log = logging.getLogger("streamdeblur")


class _LogFormat(logging.Formatter):
    """`streamdeblur: message` for information, `streamdeblur: warning: message` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return f"streamdeblur: {message}"
        return f"streamdeblur: {record.levelname.lower()}: {message}"


def _setup_logging(quiet: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("streamdeblur").setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    # FFmpeg's own log stays quiet unless asked; its errors reach us as exceptions. PyAV's
    # Python log callback is never installed: called from decoder threads it needs the GIL
    # and can deadlock against a main thread freeing a codec context.
    import av.logging

    av.logging.set_libav_level(av.logging.VERBOSE if verbose else av.logging.PANIC)


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Errors become one line on stderr and the documented exit code, never a traceback."""
    try:
        yield
    except StreamdeblurError as exc:
        typer.echo(f"streamdeblur: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        log.debug("unexpected failure", exc_info=True)
        reason = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(
            f"streamdeblur: error: {type(exc).__name__}: {reason} (run with --verbose for the traceback)",
            err=True,
        )
        raise typer.Exit(1) from None


def _parse_fraction(text: str, option: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise BadUsage(f"{option}: {text!r} is not a number or fraction such as 30000/1001") from None
    return value


QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; errors only.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging and tracebacks.")]


# The options `run` and `batch` share: what model runs where, and how the output is encoded.
WeightsOpt = Annotated[Optional[Path], typer.Option(help="Weights: .safetensors, or an official DeepDeblur-PyTorch model-*.pt. Default: the shipped light model.")]
BackendOpt = Annotated[str, typer.Option(help="auto, torch, or passthrough (no network: checks the I/O path).")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")]
PrecisionOpt = Annotated[str, typer.Option(help="fp32, or fp16/bf16 on CUDA.")]
BatchOpt = Annotated[int, typer.Option(help="Frames (or tiles) per network call.")]
TileOpt = Annotated[int, typer.Option(help="Run the network on TILE x TILE tiles (0: whole frames).")]
TileOverlapOpt = Annotated[int, typer.Option(help="Pixels neighbouring tiles share; blended, not cropped.")]
CodecOpt = Annotated[Optional[str], typer.Option(help="Video encoder. Default libx264; libx265 for >8-bit input.")]
CrfOpt = Annotated[Optional[int], typer.Option(help="Constant-quality level where the encoder has one. Default 18.")]
PresetOpt = Annotated[Optional[str], typer.Option(help="Encoder preset, e.g. medium, slow, veryfast.")]
PixFmtOpt = Annotated[Optional[str], typer.Option(help="Output pixel format. Default: the input's, where the encoder takes it.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output.")]


def _run_options(
    weights: Optional[Path], backend: str, device: str, precision: str, batch: int, tile: int, tile_overlap: int,
    codec: Optional[str], crf: Optional[int], preset: Optional[str], pix_fmt: Optional[str], overwrite: bool,
    **rest: Any,
) -> RunOptions:
    """The shared options as RunOptions; `rest` holds the command's own fields (input, output, ...)."""
    from streamdeblur.io import EncodeOptions
    from streamdeblur.pipeline.job import RunOptions

    return RunOptions(
        weights=str(weights) if weights else None, backend=backend, device=device, precision=precision,
        batch_size=batch, tile=tile, tile_overlap=tile_overlap,
        encode=EncodeOptions(codec=codec, crf=crf, preset=preset, pix_fmt=pix_fmt), overwrite=overwrite, **rest,
    )


@app.command()
def run(
    input: Annotated[str, typer.Argument(help="Video file, URL, or folder of images.")],
    output: Annotated[str, typer.Argument(help="Video file (format from the suffix), URL, or folder for PNGs.")],
    weights: WeightsOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "fp32",
    batch: BatchOpt = 1,
    tile: TileOpt = 0,
    tile_overlap: TileOverlapOpt = 32,
    codec: CodecOpt = None,
    crf: CrfOpt = None,
    preset: PresetOpt = None,
    pix_fmt: PixFmtOpt = None,
    fps: Annotated[str, typer.Option(help="Frame rate given to image-folder input.")] = "25",
    overwrite: OverwriteOpt = False,
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON run report here.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deblur INPUT into OUTPUT, keeping timestamps, audio, subtitles, rotation and colour."""
    from streamdeblur.pipeline.job import run_job
    from streamdeblur.pipeline.signals import stop_on_signals

    _setup_logging(quiet, verbose)
    with _exit_codes():
        opts = _run_options(
            weights, backend, device, precision, batch, tile, tile_overlap, codec, crf, preset, pix_fmt, overwrite,
            input=input, output=output, fps=_parse_fraction(fps, "--fps"), progress=not quiet, report=report,
        )
        with stop_on_signals(threading.Event()) as stop:
            result = run_job(opts, stop)
        if result.interrupted:
            log.warning("interrupted: %s holds the %d frames processed", output, result.frames_out)
            raise typer.Exit(EXIT_INTERRUPTED)
        if not quiet:
            log.info("%d frames in %.1f s (%.2f frames/s) -> %s", result.frames_out, result.wall_s, result.fps, output)


@app.command("batch")
def batch_command(
    input_dir: Annotated[Path, typer.Argument(help="Folder of videos, searched through all its subfolders.")],
    output_dir: Annotated[Path, typer.Argument(help="Where outputs go, at their inputs' relative paths; holds the manifest.")],
    glob: Annotated[Optional[str], typer.Option(help="Files to take, relative to INPUT_DIR, e.g. '**/*.mp4' ('**' spans folders). Default: every file with a video suffix.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Files at a time: worker processes (default 1 on the CPU, 2 per GPU); with --ray, tasks in flight (default: twice what the cluster runs at once).")] = None,
    ray: Annotated[Optional[str], typer.Option(help="One Ray task per file on the cluster at this address (auto, ray://HOST:10001, ...); 'local' starts a local Ray cluster. Needs streamdeblur[ray].")] = None,
    gpus_per_task: Annotated[float, typer.Option(help="With --ray: GPUs a task asks for when it runs on CUDA; 0.5 runs two files per GPU.")] = 1.0,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any file failed (failures are recorded either way).")] = False,
    weights: WeightsOpt = None,
    backend: BackendOpt = "auto",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "fp32",
    batch: BatchOpt = 1,
    tile: TileOpt = 0,
    tile_overlap: TileOverlapOpt = 32,
    codec: CodecOpt = None,
    crf: CrfOpt = None,
    preset: PresetOpt = None,
    pix_fmt: PixFmtOpt = None,
    overwrite: OverwriteOpt = False,
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON totals of the batch here.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deblur every video under INPUT_DIR into OUTPUT_DIR; rerun the same command to resume."""
    import functools

    from streamdeblur.batch import BatchOptions, run_batch
    from streamdeblur.batch.progress import summary_table
    from streamdeblur.pipeline.signals import stop_on_signals

    _setup_logging(quiet, verbose)
    with _exit_codes():
        opts = BatchOptions(
            input_dir=input_dir, output_dir=output_dir, pattern=glob, workers=workers, ray_address=ray,
            gpus_per_task=gpus_per_task, progress=not quiet, verbose=verbose,
            worker_setup=functools.partial(_setup_logging, quiet, verbose),
            job=_run_options(
                weights, backend, device, precision, batch, tile, tile_overlap, codec, crf, preset, pix_fmt,
                overwrite, input="", output="",
            ),
        )
        with stop_on_signals(threading.Event()) as stop:
            summary = run_batch(opts, stop)
        if report is not None:
            summary.write(report)
        if not quiet and summary.records:
            typer.echo(summary_table(summary.records))
        totals = summary.to_dict()
        log.info(
            "%d done, %d failed, %d interrupted, %d done before; %d frames in %.1f s (%.2f frames/s); manifest %s",
            totals["files_done"], totals["files_failed"], totals["files_interrupted"], totals["files_skipped"],
            totals["frames_out"], totals["wall_s"], totals["fps"], summary.manifest,
        )
        if summary.interrupted:
            log.warning("interrupted: finished files are kept, unfinished ones rolled back; run the same command to go on")
            raise typer.Exit(EXIT_INTERRUPTED)
        if strict and totals["files_failed"]:
            raise ProcessingError(f"{totals['files_failed']} of {totals['files_total']} files failed (--strict); see {summary.manifest}")


@app.command()
def demo(
    output: Annotated[Path, typer.Argument(help="Where to write the blurred clip.")] = Path("demo_blurry.mp4"),
    seconds: Annotated[float, typer.Option(help="Clip length.")] = 3.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "640x360",
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the random scene and camera path.")] = 0,
    sharp: Annotated[Optional[Path], typer.Option(help="Also write the sharp reference clip here.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", "-y", help="Replace an existing output.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a short synthetic motion-blurred clip (a shaking, panning camera) to try `run` on."""
    from streamdeblur.demo import write_demo_clip

    _setup_logging(quiet, verbose)
    with _exit_codes():
        width, height = _parse_size(size)
        if seconds <= 0 or fps <= 0:
            raise BadUsage("--seconds and --fps must be positive")
        count = write_demo_clip(output, width, height, seconds, fps, seed, overwrite, sharp)
        if not quiet:
            log.info("wrote %s (%d frames); now try: streamdeblur run %s %s", output, count, output,
                     output.with_name(output.stem.replace("_blurry", "") + "_sharp" + output.suffix))


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BadUsage(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    if width < 1 or height < 1:
        raise BadUsage(f"size {text!r} must be positive")
    return width, height


def main() -> None:
    app()


if __name__ == "__main__":
    main()
