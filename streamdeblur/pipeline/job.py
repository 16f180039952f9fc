"""One deblurring job, source to sink: what `run` does and what `batch` does per file."""

from __future__ import annotations

import logging
import sys
import threading
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from tqdm import tqdm

from streamdeblur.errors import BadUsage
from streamdeblur.inference import BackendSpec
from streamdeblur.inference.backend import device_label
from streamdeblur.inference.concurrent import assembles_beside_gpu, one_thread_per_call, runs_side_by_side
from streamdeblur.io import (
    EncodeOptions,
    Output,
    SinkOptions,
    Source,
    SourceOptions,
    open_sink,
    open_source,
    output_is_folder,
)  # fmt: skip
from streamdeblur.io.image_folder import ImageFolderSink, ImageFolderSource
from streamdeblur.pipeline.blur_auto import judge_blur
from streamdeblur.pipeline.live import LiveOptions, live_clock, warn_of_lookahead
from streamdeblur.pipeline.pictures import unrelated_pictures
from streamdeblur.pipeline.runner import Pipeline
from streamdeblur.pipeline.signals import starting
from streamdeblur.pipeline.stats import RunReport, RunStats
from streamdeblur.registry import AUTO_BLUR, default_model
from streamdeblur.stopping import StartStopped
from streamdeblur.window.assembly import windowed_processor
from streamdeblur.window.still_camera import announce_still_camera

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    input: str
    output: str
    spec: BackendSpec = field(default_factory=BackendSpec)  # how the network runs
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    overwrite: bool = False
    fps: Fraction = Fraction(25)  # for image-folder input
    queue_size: int = 8
    progress: bool = True  # a progress bar, when stderr is a terminal
    report: Path | None = None
    live: LiveOptions | None = None  # the `live` command: live inputs and outputs, drops, stats lines
    # `run` keeps what was done on a stop; `batch` rolls the file back and redoes it later.
    keep_partial_on_stop: bool = True

    def source_options(self) -> SourceOptions:
        return self.live.source_options(self.fps) if self.live else SourceOptions(fps=self.fps)

    def sink_options(self) -> SinkOptions:
        if self.live:
            return self.live.sink_options(self.encode, self.overwrite)
        return SinkOptions(encode=self.encode, overwrite=self.overwrite)


def check_options(opts: RunOptions) -> None:
    """Contradictions that need no input to detect."""
    if Path(opts.input).resolve() == Path(opts.output).resolve():
        raise BadUsage("output would overwrite the input; choose another output path")
    encoder_options = opts.encode.codec or opts.encode.pix_fmt or opts.encode.preset
    if encoder_options and output_is_folder(opts.output):
        raise BadUsage("--codec, --pix-fmt and --preset apply to video output, not an image folder")
    opts.spec.check()
    if opts.queue_size < 1:
        raise BadUsage("queue sizes must be at least 1")
    if opts.fps <= 0:
        raise BadUsage("--fps must be positive")
    if opts.live is not None:
        opts.live.check(opts.output)


def run_job(opts: RunOptions, stop: threading.Event | None = None) -> RunReport:
    """Deblur opts.input into opts.output; the report is also written to opts.report if set.

    Raises StreamdeblurError subclasses for bad input/usage and processing failures; the
    output is then left absent. If `stop` is set mid-run the report says interrupted and the
    output holds the frames processed so far, or, without opts.keep_partial_on_stop, is
    left absent. A live run also ends, complete, at its duration or when its window closes.
    """
    stop = stop or threading.Event()
    finish = threading.Event()  # the end of a live run's duration, or its preview window closed
    report = RunReport(
        input=opts.input,
        output=opts.output,
        backend=opts.spec.backend,
        device=opts.spec.device,
        precision=opts.spec.precision,
        model="",
    )
    stats = RunStats()
    try:
        check_options(opts)
        with ExitStack() as cleanup:
            source = open_source(opts.input, opts.source_options(), stop, finish)
            cleanup.callback(source.close)
            output = open_sink(opts.output, source, opts.sink_options(), finish)
            sink = output.sink
            try:
                _process(opts, source, output, report, stats, stop, finish, cleanup)
                if stop.is_set() and (sink.frames_written == 0 or not opts.keep_partial_on_stop):
                    sink.discard()  # stopped before any frame was done, or asked to roll back
                else:
                    sink.close(complete=not stop.is_set())
            except BaseException:
                sink.discard()
                raise
            report.interrupted = stop.is_set()
            report.frames_lost = source.stats.frames_lost
            report.decode_errors = source.stats.decode_errors
            report.live = source.info.live
            report.reconnects = getattr(source, "reconnects", 0)
            report.segments = [str(p) for p in output.segments.paths] if output.segments is not None else None
    except Exception as exc:
        report.error = str(exc) or type(exc).__name__
        raise
    finally:
        report.fill_from(stats)
        if opts.report is not None:
            report.write(opts.report)
    return report


def _unrelated_pictures(opts: RunOptions, source: Source) -> bool:
    """A folder of images that are not one clip's frames (looked at only where it decides the model)."""
    if opts.spec.weights is not None or not isinstance(source, ImageFolderSource):
        return False
    if unrelated_pictures(source.paths):
        log.info(
            "%s holds unrelated pictures, not a clip's frames: each goes through the single-frame model %s",
            opts.input,
            default_model("picture").name,
        )
        return True
    return False


def _process(
    opts: RunOptions,
    source: Source,
    output: Output,
    report: RunReport,
    stats: RunStats,
    stop: threading.Event,
    finish: threading.Event,
    cleanup: ExitStack,
) -> None:
    """Build the backend and processor, then run the three stages until the input ends, `stop` or `finish`."""
    video = source.info.video
    # Offline, frames wait in the queue: on a CPU the network takes them side by side, one
    # thread each (inference/concurrent.py). Live, a frame leaves as soon as it can.
    side_by_side = not source.info.live
    # Without --weights, `run` on a clip gets the video model; a picture, a folder of unrelated
    # pictures, and anything `live` reads (where waiting for later frames adds latency), the
    # single-frame one.
    pictures = source.info.single_image or _unrelated_pictures(opts, source)
    if pictures and isinstance(source, ImageFolderSource) and isinstance(output.sink, ImageFolderSink):
        source.mixed_sizes = True  # each picture on its own, into a folder: each its own size
    kind = "live" if opts.live is not None else "picture" if pictures else "clip"
    asked = opts.spec
    # Not asked: a clip's first frames are judged. A picture's one frame decides less surely
    # (docs/defocus.md), and live would drop the frames held back as too old: motion for them.
    judged = asked.blur == AUTO_BLUR or (asked.blur is None and opts.live is None and not pictures)
    if asked.weights is None and judged:
        source, verdict = judge_blur(source, stop)
        asked = replace(asked, blur=verdict.blur)
        report.blur_auto = {"found": verdict.found, "scores": verdict.scores, "why": verdict.why}
    if asked.weights is None:
        report.blur = asked.blur or "motion"
    spec = asked.for_input(kind)
    if opts.spec.weights is None and spec.weights == default_model("clip").name:
        # Told nothing, the video model aligns a fixed camera's frames as a moving camera's,
        # and things that move on their own can ghost (docs/real-footage.md): say the flag.
        fixed = "" if spec.still_camera else "; a fixed camera (surveillance, a tripod): add --still-camera"
        log.info(
            "a clip: the windowed video model %s (--weights %s runs frame by frame%s)",
            spec.weights,
            default_model("picture").name,
            fixed,
        )
    try:
        with starting(stop):  # loading, exporting, timing, compiling: a stop ends it at once
            backend = spec.ready(
                frame_size=(video.width, video.height), frames=video.frame_count, side_by_side=side_by_side
            )
            processor = windowed_processor(
                backend,
                spec.tile,
                spec.tile_overlap,
                spec.batch,
                spec.streams,
                side_by_side,
                pictures,
                spec.still_camera,
            )
    except StartStopped:  # before the first frame: run_job keeps no output
        return
    close = getattr(processor, "close", None)  # threads of its own (calls side by side, window assembly)
    if close is not None:
        cleanup.callback(close)
    if side_by_side and runs_side_by_side(backend) or assembles_beside_gpu(processor):
        cleanup.enter_context(one_thread_per_call())
    report.backend, report.device = backend.name, device_label(backend)
    report.precision, report.model = backend.precision, backend.model_name
    if spec.still_camera:
        report.still_camera = announce_still_camera(backend.model_config)
    if source.info.live:
        warn_of_lookahead(backend.model_config, video.rate_or_default)
    bar = tqdm(
        total=video.frame_count,
        unit="frame",
        dynamic_ncols=True,
        disable=not (opts.progress and sys.stderr.isatty()) or opts.live is not None,  # live: stats lines
    )
    cleanup.callback(bar.close)
    pipeline = Pipeline(
        source,
        processor,
        output.sink,
        stats,
        opts.queue_size,
        on_frame_written=bar.update,
        max_latency_s=opts.live.max_latency_s(source) if opts.live else None,
        on_frame_read=output.originals.keep if output.originals is not None else None,
    )
    stats.start()  # wall time and fps count the frames' journey, not model loading
    idle = output.preview.show if output.preview is not None else None
    with live_clock(opts.live, {opts.input: stats}, finish) if opts.live else nullcontext():
        pipeline.run(stop, finish, idle)
    still = getattr(processor, "still", None)  # window/still.py: what it handed through
    if still is not None:
        report.still_pass = still.summary()
