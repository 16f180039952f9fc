"""One deblurring job, source to sink: what `run` does and what `batch` does per file."""

from __future__ import annotations

import sys
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from streamdeblur.errors import BadUsage
from streamdeblur.inference import create_backend, make_processor
from streamdeblur.io import EncodeOptions, Sink, Source, open_sink, open_source, output_is_folder
from streamdeblur.pipeline.runner import Pipeline
from streamdeblur.pipeline.stats import RunReport, RunStats


@dataclass
class RunOptions:
    input: str
    output: str
    weights: str | None = None
    backend: str = "auto"
    device: str = "auto"
    precision: str = "fp32"
    batch_size: int = 1
    tile: int = 0
    tile_overlap: int = 32
    in_flight: int = 3  # CUDA: batches in flight in the stream scheduler (1: no overlap)
    engine: str | None = None  # a TensorRT engine or ONNX file to use instead of building one
    channels_last: bool = False
    cuda_graphs: bool = False
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    overwrite: bool = False
    fps: Fraction = Fraction(25)  # for image-folder input
    queue_size: int = 8
    progress: bool = True  # a progress bar, when stderr is a terminal
    report: Path | None = None


def check_options(opts: RunOptions) -> None:
    """Contradictions that need no input to detect."""
    if Path(opts.input).resolve() == Path(opts.output).resolve():
        raise BadUsage("output would overwrite the input; choose another output path")
    if output_is_folder(opts.output) and (opts.encode.codec or opts.encode.pix_fmt or opts.encode.preset):
        raise BadUsage("--codec, --pix-fmt and --preset apply to video output, not an image folder")
    if opts.batch_size < 1 or opts.queue_size < 1 or opts.in_flight < 1:
        raise BadUsage("--batch, --streams and queue sizes must be at least 1")
    if opts.fps <= 0:
        raise BadUsage("--fps must be positive")


def run_job(opts: RunOptions, stop: threading.Event | None = None) -> RunReport:
    """Deblur opts.input into opts.output; the report is also written to opts.report if set.

    Raises StreamdeblurError subclasses for bad input/usage and processing failures; the
    output is then left absent. If `stop` is set mid-run the output is finalized with the
    frames processed so far and the report says interrupted.
    """
    stop = stop or threading.Event()
    report = RunReport(input=opts.input, output=opts.output, backend=opts.backend, device=opts.device,
                       precision=opts.precision, model="")
    stats = RunStats()
    try:
        check_options(opts)
        with ExitStack() as cleanup:
            source = open_source(opts.input, opts.fps)
            cleanup.callback(source.close)
            sink = open_sink(opts.output, source.info, source.passthrough, opts.encode, opts.overwrite)
            try:
                _process(opts, source, sink, report, stats, stop, cleanup)
                if stop.is_set() and sink.frames_written == 0:
                    sink.discard()  # stopped before any frame was done: leave nothing
                else:
                    sink.close(complete=not stop.is_set())
            except BaseException:
                sink.discard()
                raise
            report.interrupted = stop.is_set()
            report.frames_lost = source.stats.frames_lost
            report.decode_errors = source.stats.decode_errors
    except Exception as exc:
        report.error = str(exc) or type(exc).__name__
        raise
    finally:
        report.fill_from(stats)
        if opts.report is not None:
            report.write(opts.report)
    return report


def _process(
    opts: RunOptions, source: Source, sink: Sink, report: RunReport, stats: RunStats, stop: threading.Event,
    cleanup: ExitStack,
) -> None:
    """Build the backend and processor, then run the three stages until the input ends or `stop`."""
    video = source.info.video
    backend = create_backend(
        opts.backend, opts.weights, opts.device, opts.precision, frame_size=(video.width, video.height),
        batch_size=opts.batch_size, tile=opts.tile, in_flight=opts.in_flight, engine=opts.engine,
        channels_last=opts.channels_last, cuda_graphs=opts.cuda_graphs,
    )
    report.backend, report.device = backend.name, str(backend.device)
    report.precision, report.model = backend.precision, backend.model_name
    processor = make_processor(backend, opts.tile, opts.tile_overlap, opts.batch_size, opts.in_flight)
    bar = tqdm(total=video.frame_count, unit="frame", dynamic_ncols=True, disable=not (opts.progress and sys.stderr.isatty()))
    cleanup.callback(bar.close)
    stats.start()  # wall time and fps count the frames' journey, not model loading
    Pipeline(source, processor, sink, stats, opts.queue_size, on_frame_written=bar.update).run(stop)
