"""What is owed on a GPU, in one prepared run for a lent GPU machine (it has PyTorch with CUDA
but not PyAV, so nothing here decodes or encodes: frames are made in memory).

    python -m tests.device_check --out $OUT            # on the GPU machine: about 4 minutes
    python -m tests.device_check --device cpu --quick  # here: the same steps, tiny, to check them

Each step's figures go into `device_check.json` (in --out) as soon as it ends, and a step that
fails records its error and the next one runs:

- `gpu_tests`: `pytest -m gpu tests/test_engines.py` (the stream scheduler against a plain
  loop, CUDA graphs and fp16, windows assembled ahead on CUDA).
- `network`: the single-frame default and the default video model alone through the stream scheduler (upload,
  network, download), fp16 and fp32, one batch in flight or three (overlap off and on).
- `windowed`: issue 23's cost beside a GPU: the single-frame default against the default video model, its
  windows assembled in the processor's thread (as before) or on the CPU's cores ahead of the
  GPU (`WindowedProcessor.beside_gpu`).
- `streams`: issue 24: eight cameras' frames through one scheduler, a round of all eight one
  batch, against eight separate processes each running its own one frame at a time.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamdeblur.inference.concurrent import assembly_threads, one_thread_per_call
from streamdeblur.inference.processor import FrameProcessor, Processor
from streamdeblur.inference.select import create_backend
from streamdeblur.io.frame import Frame
from streamdeblur.memory import keep_freed_memory
from streamdeblur.synthetic.blur import render_clip
from streamdeblur.window.assembly import WindowedProcessor

ROOT = Path(__file__).resolve().parents[1]
DEFAULT, VIDEO = (
    "deepdeblur-4scale",
    "deepdeblur-4scale-k5-fba-window-gate-lean",
)  # the defaults for a picture and for video
SHOT_FRAMES = 12


@functools.lru_cache(maxsize=16)
def _shot(width: int, height: int, seed: int) -> tuple[np.ndarray, ...]:
    """A shaken synthetic shot (render_clip), as a camera would deliver it: rendering takes
    most of a second a 1080p frame on a CPU, so a short one, played round."""
    return tuple(blurry for blurry, _ in render_clip(np.random.default_rng(seed), width, height, SHOT_FRAMES, 30))


def _clip(width: int, height: int, count: int, seed: int = 0) -> list[Frame]:
    shot = _shot(width, height, seed)
    return [Frame(shot[i % len(shot)], i, Fraction(1, 30), i) for i in range(count)]


def _processor(backend: Any, device: str, in_flight: int = 3, batch: int = 1) -> Processor:
    if device == "cuda":
        from streamdeblur.inference.scheduler import StreamScheduler

        return StreamScheduler(backend, batch_size=batch, in_flight=in_flight)
    return FrameProcessor(backend, batch_size=batch)  # --device cpu: the steps' plumbing only


def _frames_per_second(processor: Processor, frames: list[Frame], batch: int = 1) -> float:
    """Every frame through `processor` (after one batch to warm up), `batch` at a time."""
    out = processor.submit(frames[:batch])
    started = time.perf_counter()
    for i in range(batch, len(frames), batch):
        out += processor.submit(frames[i : i + batch])
    out += processor.flush()
    seconds = time.perf_counter() - started
    if sorted(f.index for f in out) != [f.index for f in frames]:
        raise AssertionError("frames lost or repeated")
    return round((len(frames) - batch) / seconds, 2)


def gpu_tests(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "tests/test_engines.py", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
    return {"returncode": done.returncode, "tail": done.stdout[-1500:] + done.stderr[-500:]}


def network(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for width, height in args.sizes:
        for model in (DEFAULT, VIDEO):
            frames = _clip(width, height, args.frames)
            for precision in args.precisions:
                backend = create_backend(
                    "torch", model, args.device, precision, frame_size=(width, height), compile=False
                )
                channels = backend.model_config.in_channels if backend.model_config else 3
                # The network's input as it arrives: a window is 3K channels (its frames repeated here)
                inputs = [
                    Frame(np.ascontiguousarray(np.tile(f.pixels, (1, 1, channels // 3))), f.pts, f.time_base, f.index)
                    for f in frames
                ]
                for in_flight in (1, 3):
                    key = f"{model} {width}x{height} {precision} in_flight={in_flight}"
                    figures[key] = _frames_per_second(_processor(backend, args.device, in_flight), inputs)
    return figures


def windowed(args: argparse.Namespace) -> dict[str, Any]:
    width, height = args.sizes[0]
    frames = _clip(width, height, args.frames)
    threads = assembly_threads()
    figures: dict[str, Any] = {"size": f"{width}x{height}", "assembly_threads": threads}
    default = create_backend(
        "torch", DEFAULT, args.device, args.precisions[0], frame_size=(width, height), compile=False
    )
    figures["default"] = _frames_per_second(_processor(default, args.device), frames)
    video = create_backend("torch", VIDEO, args.device, args.precisions[0], frame_size=(width, height), compile=False)
    assert video.model_config is not None
    one_thread = WindowedProcessor(_processor(video, args.device), video.model_config)
    figures["video, windows in the processor's thread"] = _frames_per_second(one_thread, frames)
    with one_thread_per_call():
        ahead = WindowedProcessor.beside_gpu(_processor(video, args.device), video.model_config, threads, offline=True)
        figures["video, windows ahead on the CPU's cores"] = _frames_per_second(ahead, frames)
    figures["cost, ahead"] = round(figures["default"] / figures["video, windows ahead on the CPU's cores"], 3)
    return figures


def _one_stream(args: argparse.Namespace, seconds: float, seed: int) -> float:
    """One camera's frames through its own scheduler, one at a time, for `seconds`: frames/s."""
    width, height = args.stream_size
    backend = create_backend(
        "torch", DEFAULT, args.device, args.precisions[0], frame_size=(width, height), compile=False
    )
    frames = _clip(width, height, SHOT_FRAMES, seed)
    processor = _processor(backend, args.device)
    done = len(processor.submit(frames[:1]))
    started, sent = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        frame = frames[sent % len(frames)]
        done += len(processor.submit([Frame(frame.pixels, sent, frame.time_base, sent)]))
        sent += 1
    done += len(processor.flush())
    return sent / (time.perf_counter() - started)


def streams(args: argparse.Namespace) -> dict[str, Any]:
    width, height = args.stream_size
    count, seconds = args.streams, args.stream_seconds
    backend = create_backend(
        "torch", DEFAULT, args.device, args.precisions[0], frame_size=(width, height), compile=False
    )
    cameras = [_shot(width, height, seed) for seed in range(count)]

    def round_of(n: int) -> list[Frame]:  # the n-th frame of every camera
        return [Frame(c[n % len(c)], n * count + k, Fraction(1, 30), n * count + k) for k, c in enumerate(cameras)]

    processor = _processor(backend, args.device, batch=count)
    processor.submit(round_of(0))
    started, sent = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        processor.submit(round_of(1 + sent // count))
        sent += count
    processor.flush()
    one_process = sent / (time.perf_counter() - started)
    command = [sys.executable, "-m", "tests.device_check", "--one-stream", str(seconds), *args.passed]
    # On a CPU (--quick) processes with a thread per core each would spin against each other.
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if args.device == "cpu" else None
    workers = [
        subprocess.Popen([*command, "--seed", str(seed)], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
        for seed in range(count)
    ]
    rates = [float(w.communicate(timeout=args.timeout)[0].strip().splitlines()[-1]) for w in workers]
    return {
        "size": f"{width}x{height}",
        "streams": count,
        "one process, a round one batch": round(one_process, 2),
        "separate processes, total": round(sum(rates), 2),
        "separate processes, each": [round(r, 2) for r in rates],
        "one / separate": round(one_process / sum(rates), 3),
    }


STEPS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "gpu_tests": gpu_tests,
    "network": network,
    "windowed": windowed,
    "streams": streams,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and counts: checks the steps, measures nothing"
    )
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--one-stream", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    kept = keep_freed_memory()  # as the command line sets it, before any thread starts
    args.passed = ["--device", args.device] + (["--quick"] if args.quick else [])
    args.timeout = 300
    if args.quick:
        args.sizes, args.stream_size, args.frames = [(96, 64)], (64, 48), 6
        args.precisions, args.streams, args.stream_seconds = ["fp32"], 2, 1.0
    else:
        args.sizes, args.stream_size, args.frames = [(1280, 720), (1920, 1080)], (1280, 720), 60
        args.precisions, args.streams, args.stream_seconds = ["fp16", "fp32"], 8, 15.0
    if args.one_stream:
        print(_one_stream(args, args.one_stream, args.seed))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "cores": os.cpu_count(),
        "quick": args.quick,
        "freed_memory_kept": kept,
    }
    for name in args.steps.split(","):
        started = time.perf_counter()
        try:
            report[name] = STEPS[name](args)
        except Exception:  # one step failing must not cost the others
            report[name] = {"error": traceback.format_exc()[-2000:]}
        report[name]["seconds"] = round(time.perf_counter() - started, 1)
        (args.out / "device_check.json").write_text(json.dumps(report, indent=1))
        print(name, json.dumps(report[name])[:800], flush=True)
    return 0 if all("error" not in report[name] for name in args.steps.split(",")) else 1


if __name__ == "__main__":
    sys.exit(main())
