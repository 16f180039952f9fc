"""`streamdeblur bench`: the model alone, the whole pipeline, and the naive baseline, in one run.

- model alone: the chosen backend on a batch already on the device, timed back to back; on the
  CPU also every candidate `auto` compares (torch bf16 channels-last where bf16 is native, torch
  fp32 channels-last, ONNX Runtime fp32, OpenVINO where installed; the torch ones compiled too
  unless --no-compile), with the CPU's model name and bf16/AMX flags, and for torch on the CPU
  the calls side by side, one thread each, as an offline run makes them (`model_side_by_side_fps`);
- pipeline: `run` on a synthetic clip of the same size, or on the user's own (`--clip`, whose
  frame size the network is then timed at), decode to encode, with each stage's working time
  per frame (decode, processor, encode: `stage_ms_per_frame`). The synthetic clip is grainy, and
  grain is what H.264 spends most on: real footage of the same size encodes faster;
- naive baseline: what simple scripts do, one frame at a time, synchronous fp32 PyTorch with
  a host round trip per frame;
- a windowed model: its input is the 3K-channel window, and the time to align a window's
  neighbours (which the pipeline spends per frame on the CPU) is timed on its own and added.
Ratios within one run are what to compare; absolute frames/s only mean something on a GPU.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streamdeblur.demo import write_demo_clip
from streamdeblur.inference import BackendSpec
from streamdeblur.inference.backend import Backend, device_label
from streamdeblur.inference.concurrent import one_thread_per_call, prepare_side_by_side, runs_side_by_side
from streamdeblur.inference.precision import cpu_facts
from streamdeblur.inference.processor import infer_pixels
from streamdeblur.inference.select import CpuCandidate, build_cpu_candidate, cpu_candidates, int8_keeps_quality
from streamdeblur.inference.torch_backend import TorchBackend, resolve_device
from streamdeblur.io import EncodeOptions
from streamdeblur.io.opening import open_source
from streamdeblur.models import (
    DeepDeblur,
    DeepDeblurConfig,
    load_checkpoint,
    load_model_config,
    resolve_weights,
    save_weights,
)
from streamdeblur.pipeline.job import RunOptions, run_job
from streamdeblur.window.still_camera import assembly_config


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _frames_per_second(
    step: Callable[[], object], frames_per_step: int, device: torch.device, seconds: float, min_steps: int
) -> float:
    step()  # warm-up (allocations, cuDNN algorithm choice, graph capture)
    _synchronize(device)
    steps, started = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - started < seconds:
        step()
        steps += 1
    _synchronize(device)
    return steps * frames_per_step / (time.perf_counter() - started)


def _call(backend: Backend, pixels: torch.Tensor) -> torch.Tensor:
    """One network call on 8-bit frames already on its device, as the processor makes it (the
    conversion to float included: OpenVINO makes it in its graph)."""
    return infer_pixels(backend, pixels, np.dtype(np.uint8))


def _model_alone(backend: Backend, pixels: torch.Tensor, seconds: float) -> float:
    """Frames/s of the backend on a batch of frames already on its device, calls back to back."""
    return _frames_per_second(lambda: _call(backend, pixels), pixels.shape[0], pixels.device, seconds, 3)


def _side_by_side(backend: Backend, pixels: torch.Tensor, seconds: float) -> float:
    """Frames/s of the backend as an offline run on the CPU uses it: one call per thread, side
    by side (inference/concurrent.py)."""
    prepare_side_by_side(backend)
    with one_thread_per_call() as workers, ThreadPoolExecutor(workers) as pool:
        return _frames_per_second(
            lambda: list(pool.map(lambda p: _call(backend, p), [pixels] * workers)),
            workers * pixels.shape[0],
            pixels.device,
            seconds,
            3,
        )


def _naive(
    weights: Path, cfg: DeepDeblurConfig, device: torch.device, width: int, height: int, seconds: float
) -> float:
    """Frames/s of fp32 torch with one frame per call and its copies in line: the baseline. The
    backend is freed on return, before the pipeline runs."""
    naive = TorchBackend(load_checkpoint(weights), device, "fp32")
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    frame = np.concatenate([frame] * (cfg.in_channels // 3), axis=2)  # a stacked window: 3K channels

    def naive_step() -> None:
        tensor = torch.from_numpy(frame).permute(2, 0, 1)[None].float().div(255).to(device)
        out = naive.infer(tensor).clamp(0, 1).mul(255).round().byte().cpu().numpy()
        assert out.shape[1:] == (3, height, width)

    return _frames_per_second(naive_step, 1, device, seconds, 3)


def weights_for(config: str | None, weights: str | None, folder: Path) -> Path:
    """Given weights, or (for speed only) random weights of a named configuration."""
    if weights or config is None:
        return resolve_weights(weights)
    torch.manual_seed(0)
    model = DeepDeblur(load_model_config(config))
    return save_weights(
        model, folder / f"{model.cfg.name}-random.safetensors", {"note": "random weights, for timing only"}
    )


def label_of(backend: Backend) -> str:
    """The CpuCandidate label of a built backend ("torch bf16 channels-last", "onnxruntime fp32")."""
    return CpuCandidate(
        backend.name,
        backend.precision,
        bool(getattr(backend, "channels_last", False)),
        bool(getattr(backend, "compiled", False)),
    ).label


# bench times the steady state of a long input, so `--compile` auto treats it as one.
_STEADY_STATE_FRAMES = 1_000_000


def run_bench(
    width: int,
    height: int,
    spec: BackendSpec,
    config: str | None = None,
    frames: int = 60,
    seconds: float = 5.0,
    clip: Path | None = None,
) -> dict[str, Any]:
    """`clip`: the pipeline runs on it instead of a synthetic clip of `frames` frames (its
    size must be width x height: clip_size)."""
    torch_device = resolve_device(spec.device)
    spec = spec.for_input("picture")  # --blur picks the shipped model where no weights are given
    with tempfile.TemporaryDirectory(prefix="streamdeblur-bench-") as tmp:
        folder = Path(tmp)
        weights_path = weights_for(config, spec.weights, folder)
        spec = replace(spec, weights=str(weights_path))
        chosen = spec.create(frame_size=(width, height), frames=_STEADY_STATE_FRAMES)
        cfg = load_checkpoint(weights_path).cfg
        # Frames as a run hands them to the network: 8-bit, N x H x W x C (a window: 3K channels).
        x = torch.randint(0, 256, (spec.batch, height, width, cfg.in_channels), dtype=torch.uint8, device=torch_device)
        candidates_fps: dict[str, float] = {}
        # The CPU's candidates, where the chosen backend runs on the CPU (not an Intel GPU's OpenVINO).
        if device_label(chosen) == "cpu" and chosen.name != "passthrough":
            int8_kept = spec.precision == "auto" and int8_keeps_quality(weights_path)
            candidates = cpu_candidates(spec.precision, spec.channels_last, int8_kept=int8_kept)
            if spec.compile is not False:
                candidates += [c for c in cpu_candidates(spec.precision, spec.channels_last, True) if c.compiled]
            for candidate in candidates:
                built = chosen if candidate.label == label_of(chosen) else build_cpu_candidate(candidate, weights_path)
                candidates_fps[candidate.label] = round(_model_alone(built, x, seconds), 3)
        model_fps = candidates_fps.get(label_of(chosen)) or _model_alone(chosen, x, seconds)
        side_by_side_fps = _side_by_side(chosen, x, seconds) if runs_side_by_side(chosen) else None

        naive_fps = _naive(weights_path, cfg, torch_device, width, height, seconds)

        if clip is None:
            clip = folder / "clip.mp4"
            write_demo_clip(clip, width, height, seconds=frames / 30, fps=30)
            clip_label = "synthetic"
        else:
            clip_label = str(clip)
        # The chosen backend, named exactly: no second auto choice.
        report = run_job(
            RunOptions(
                input=str(clip),
                output=str(folder / "out.mp4"),
                spec=spec.pinned(chosen),
                encode=EncodeOptions(),
                progress=False,
            )
        )
    assembly = assembly_config(cfg, spec.still_camera) or cfg  # how the run assembled its windows
    align_s = _alignment_seconds(assembly, width, height) if cfg.frames > 1 else 0.0
    with_alignment = 1.0 / (1.0 / model_fps + align_s) if model_fps else None
    result = report.to_dict()
    result.update(
        {
            "size": f"{width}x{height}",
            "clip": clip_label,
            "batch": spec.batch,
            "streams": spec.streams,
            "chosen": label_of(chosen),
            "model_fps": round(model_fps, 3),
            "candidates_fps": candidates_fps,
            "model_side_by_side_fps": round(side_by_side_fps, 3) if side_by_side_fps else None,
            "pipeline_fps": report.fps,
            "naive_fps": round(naive_fps, 3),
            "frames_per_window": cfg.frames,
            "alignment": assembly.align,
            "fusion": cfg.fuse,
            "alignment_ms": round(align_s * 1000, 2),
            "model_with_alignment_fps": round(with_alignment, 3) if with_alignment else None,
            "pipeline_vs_model": round(report.fps / model_fps, 3) if model_fps else None,
            # A windowed model's window is assembled on the CPU beside the network: the pipeline
            # against the two together says what the reading, writing and overlap cost.
            "pipeline_vs_model_with_alignment": round(report.fps / with_alignment, 3)
            if with_alignment and cfg.frames > 1
            else None,
            "model_vs_naive": round(model_fps / naive_fps, 3) if naive_fps else None,
            # The chosen candidate against ONNX Runtime fp32, the CPU default before bf16 and channels-last.
            "model_vs_onnxruntime": round(model_fps / candidates_fps["onnxruntime fp32"], 3)
            if candidates_fps.get("onnxruntime fp32")
            else None,
            "device_name": torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda" else "cpu",
            "cpu": cpu_facts(),
            "threads": torch.get_num_threads(),
        }
    )
    return result


def clip_size(clip: Path) -> tuple[int, int]:
    """The frame size of a clip (a file, or a folder of numbered frames), read from its header."""
    source = open_source(str(clip))
    try:
        return source.info.video.width, source.info.video.height
    finally:
        source.close()


def _alignment_seconds(cfg: DeepDeblurConfig, width: int, height: int, windows: int = 8) -> float:
    """Median time a stream takes to assemble one frame's window (align, fuse when the model
    does, stack), on frames of a panning, shaking camera: what the frame shares with its
    neighbours' windows found once, as in a run."""
    from fractions import Fraction

    from streamdeblur.io.frame import Frame
    from streamdeblur.synthetic.blur import render_clip
    from streamdeblur.window.assembly import FrameWindow

    clip = [blurry for blurry, _ in render_clip(np.random.default_rng(0), width, height, cfg.frames + windows, 30)]
    window = FrameWindow(cfg)
    times = []
    for index, pixels in enumerate(clip):
        started = time.perf_counter()
        ready = window.push(Frame(pixels, index, Fraction(1, 30), index))
        if index >= cfg.frames and len(ready) == 1:  # the window full: neither padded nor a cut
            times.append(time.perf_counter() - started)
    return float(np.median(times))
