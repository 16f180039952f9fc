"""A live run of many streams in one process: one backend, one copy of the weights, batches
across streams (fan_in.py), each stream with its own reader, writer and output (lane.py).

What `run_job` is to one stream: check everything, open every input and output, build the
backend once, run, and report each stream and the totals.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from streamdeblur.errors import BadUsage, ProcessingError, StreamdeblurError
from streamdeblur.inference import Backend, BackendSpec, FrameProcessor, Processor, make_processor
from streamdeblur.inference.backend import device_label
from streamdeblur.inference.concurrent import ConcurrentCalls, assembly_pool, one_thread_per_call
from streamdeblur.inference.torch_backend import resolve_device
from streamdeblur.io import Source, open_sink, open_source
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.pipeline.fan_in import BatchAcrossStreams
from streamdeblur.pipeline.lane import StreamLane
from streamdeblur.pipeline.live import LiveOptions, live_clock, warn_of_lookahead
from streamdeblur.pipeline.signals import starting
from streamdeblur.pipeline.sources_file import StreamEntry, check_streams
from streamdeblur.pipeline.stats import LatencySamples, RunReport, RunStats
from streamdeblur.pipeline.streams_runner import ManyStreams
from streamdeblur.stopping import StartStopped
from streamdeblur.window.assembly import FrameWindow
from streamdeblur.window.still import StillHistory
from streamdeblur.window.still_camera import announce_still_camera, assembly_config


@dataclass
class StreamsOptions:
    streams: list[StreamEntry]
    spec: BackendSpec  # one backend for all
    live: LiveOptions  # the run's duration and stats lines (each stream's own options are in its entry)
    batch_wait_ms: float = 20.0  # the longest a round waits for more streams' frames
    report: Path | None = None
    sources: str | None = None  # the sources file, named as the report's input

    @property
    def batch(self) -> int:
        """Frames a round takes (on CUDA, one network call): at least one of every stream;
        `--batch` may raise it."""
        return max(self.spec.batch, len(self.streams))


def run_streams(opts: StreamsOptions, stop: threading.Event | None = None) -> RunReport:
    """Deblur every stream into its output until the inputs end, the duration is over or
    `stop` is set (the report then says interrupted; every output holds what was processed).

    Raises StreamdeblurError subclasses: bad usage or an input that does not open (before any
    stream starts, naming the stream), the processor failing, or, once every stream has
    ended, some stream having failed.
    """
    stop = stop or threading.Event()
    finish = threading.Event()  # the end of the run's duration
    report = RunReport(
        input=opts.sources or ", ".join(e.job.input for e in opts.streams),
        output=", ".join(e.job.output for e in opts.streams),
        backend=opts.spec.backend,
        device=opts.spec.device,
        precision=opts.spec.precision,
        model="",
    )
    run_latency = LatencySamples()
    lanes: list[StreamLane] = []
    started = time.monotonic()
    try:
        check_streams(opts.streams)
        if opts.batch_wait_ms < 0:
            raise BadUsage("--batch-wait-ms must not be negative")
        arrivals = threading.Condition()  # shared by every stream's decoded queue
        with ExitStack() as running:
            try:
                lanes, processor = _open(opts, stop, arrivals, run_latency, report, running)
            except StartStopped:  # before the first frame: every output was removed
                report.interrupted = True
                return report
            assembly = _assembly_pool(processor, lanes, running)
            started = time.monotonic()  # wall time and fps count the frames' journey, not model loading
            for lane in lanes:
                lane.stats.start()
            batcher = BatchAcrossStreams(
                lanes, processor, opts.batch, opts.batch_wait_ms / 1000, arrivals, stop, assembly
            )
            with live_clock(opts.live, {lane.name: lane.stats for lane in lanes}, finish):
                ManyStreams(batcher).run(finish)
        report.interrupted = stop.is_set()
        failed = [lane for lane in lanes if lane.error is not None]
        if failed and not report.interrupted:
            reasons = "; ".join(f"{lane.name}: {lane.result.error if lane.result else lane.error}" for lane in failed)
            raise ProcessingError(f"{len(failed)} of {len(lanes)} streams failed ({reasons}); the others completed")
    except Exception as exc:
        report.error = str(exc) or type(exc).__name__
        raise
    finally:
        ended = [lane.result for lane in lanes if lane.result is not None]
        report.fill_from_streams(ended, time.monotonic() - started, run_latency)
        if opts.report is not None:
            report.write(opts.report)
    return report


def _open(
    opts: StreamsOptions,
    stop: threading.Event,
    arrivals: threading.Condition,
    run_latency: LatencySamples,
    report: RunReport,
    running: ExitStack,
) -> tuple[list[StreamLane], Processor]:
    """Every input and output opened, the backend built once: the streams, ready to start.
    Anything that fails closes what was opened before it; `running` holds what lasts as long
    as the run (the CPU's calls side by side)."""
    entries = opts.streams
    finishes = [threading.Event() for _ in entries]  # each stream's own end, for its live input
    with ExitStack() as opened:
        sources = _open_sources(entries, stop, finishes, opened)
        outputs = []
        for entry, source in zip(entries, sources):
            try:
                output = open_sink(entry.job.output, source, entry.job.sink_options())
            except StreamdeblurError as exc:
                raise type(exc)(f"{entry.where}: {exc}") from None
            opened.callback(output.sink.discard)
            outputs.append(output)
        largest = max((s.info.video for s in sources), key=lambda v: v.width * v.height)
        with starting(stop):  # loading, exporting, timing, compiling: a stop ends it at once
            backend, processor = _build(opts, (largest.width, largest.height), running)
        report.backend, report.device = backend.name, device_label(backend)
        report.precision, report.model = backend.precision, backend.model_name
        cfg = backend.model_config
        if opts.spec.still_camera:
            report.still_camera = announce_still_camera(cfg)
        live_rates = [s.info.video.rate_or_default for s in sources if s.info.live]
        if live_rates:  # once for all streams: the slowest waits longest
            warn_of_lookahead(cfg, min(live_rates))
        lanes = []
        for entry, source, output, finish in zip(entries, sources, outputs, finishes):
            assert entry.job.live is not None  # many streams are a `live` run
            lanes.append(
                StreamLane(
                    entry.name,
                    entry.job.input,
                    entry.job.output,
                    source,
                    output,
                    RunStats(run_latency),
                    stop,
                    finish,
                    arrivals,
                    entry.job.queue_size,
                    entry.job.live.max_latency_s(source),
                    _window(assembly_config(cfg, opts.spec.still_camera)),
                )
            )
        opened.pop_all()  # from here each stream closes its own input and output
    return lanes, processor


def _window(cfg: DeepDeblurConfig | None) -> FrameWindow | StillHistory | None:
    """What a stream keeps of its frames for the network: a windowed model's window, or for a
    single-frame model with still_pass the frames before each one (window/still.py)."""
    if cfg is not None and cfg.frames > 1:
        return FrameWindow(cfg)
    return StillHistory(cfg) if cfg is not None and cfg.still_pass else None


def _assembly_pool(processor: Processor, lanes: list[StreamLane], running: ExitStack) -> Executor | None:
    """Threads to assemble the streams' windows on, side by side (a windowed model only): on
    the CPU those of the calls, which wait meanwhile; beside a GPU the CPU's cores, less the
    codecs'."""
    if not any(isinstance(lane.window, FrameWindow) for lane in lanes):
        return None
    if isinstance(processor, ConcurrentCalls):
        return processor.pool
    running.enter_context(one_thread_per_call())  # each assembly's transforms on its own thread
    pool = assembly_pool()
    running.callback(pool.shutdown)
    return pool


def _build(opts: StreamsOptions, frame_size: tuple[int, int], running: ExitStack) -> tuple[Backend, Processor]:
    """The one backend, and the processor a round of every stream's frames goes through: on
    CUDA one batch (a TensorRT engine's profile is built for it), on the CPU calls of --batch
    frames side by side, one thread each (inference/concurrent.py says why)."""
    if resolve_device(opts.spec.device).type != "cpu":
        spec = dataclasses.replace(opts.spec, batch=opts.batch)
        backend = spec.ready(frame_size)
        return backend, make_processor(backend, spec.tile, spec.tile_overlap, spec.batch, spec.streams)
    workers = running.enter_context(one_thread_per_call())
    spec = opts.spec
    backend = spec.ready(frame_size)
    calls = ConcurrentCalls(FrameProcessor(backend, spec.tile, spec.tile_overlap, spec.batch), workers, spec.batch)
    running.callback(calls.close)
    return backend, calls


def _open_sources(
    entries: list[StreamEntry],
    stop: threading.Event,
    finishes: list[threading.Event],
    opened: ExitStack,
) -> list[Source]:
    """All inputs opened at once (a network input may take its whole timeout to open); the
    first that fails is the error, named by its stream."""
    with ThreadPoolExecutor(max_workers=len(entries), thread_name_prefix="streamdeblur-open") as pool:
        futures = [
            pool.submit(open_source, e.job.input, e.job.source_options(), stop, finish)
            for e, finish in zip(entries, finishes)
        ]
    sources, errors = [], []
    for entry, future in zip(entries, futures):
        try:
            source = future.result()
        except Exception as exc:  # raised below, once the others are in `opened`
            errors.append((entry, exc))
            continue
        opened.callback(source.close)
        sources.append(source)
    if errors:
        failed, error = errors[0]
        if isinstance(error, StreamdeblurError):
            raise type(error)(f"{failed.where}: {error}") from None
        raise error
    return sources
