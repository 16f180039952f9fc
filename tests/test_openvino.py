"""The openvino backend: the same frames as PyTorch fp32 (single-frame and windowed models, whole,
tiled, batched, calls side by side), its compiled-blob cache, its place among `auto`'s
candidates, its one-line errors, and `run` end to end."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from streamdeblur.errors import BadUsage
from streamdeblur.inference import select
from streamdeblur.inference.concurrent import ConcurrentCalls, one_thread_per_call
from streamdeblur.inference.openvino_backend import import_openvino
from streamdeblur.inference.processor import FrameProcessor
from streamdeblur.inference.select import cpu_candidates, create_backend
from streamdeblur.inference.torch_backend import TorchBackend
from streamdeblur.io import Frame
from streamdeblur.models import DeepDeblur, load_checkpoint, load_model_config, resolve_weights, save_weights
from tests.conftest import run_cli
from tests.media import decodes_cleanly, make_clip

with contextlib.suppress(BadUsage):
    import_openvino()  # first as the backend imports it: without its telemetry, which a plain import sends
pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")  # the ONNX export OpenVINO reads is checked against it

FP32_LIMIT = 1e-3  # max |difference| from PyTorch fp32, as the ONNX export is held to


@pytest.fixture(scope="module")
def window_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights of the tiny windowed configuration (3 frames in, 9 channels)."""
    torch.manual_seed(0)
    model = DeepDeblur(load_model_config("tiny-k3"))
    folder = tmp_path_factory.mktemp("window-weights")
    return save_weights(model, folder / "tiny-k3.safetensors", {"note": "random, for tests"})


def _max_diff_from_torch(weights: Path | str, shape: tuple[int, ...]) -> float:
    model = load_checkpoint(resolve_weights(weights)).eval()
    backend = create_backend("openvino", weights, "cpu", "fp32")
    assert backend.name == "openvino" and backend.precision == "fp32"
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(x)
    got = backend.infer(x)
    assert got.shape == expected.shape
    return float((got - expected).abs().max())


def test_single_frame_fp32_equals_torch(tiny_weights: Path) -> None:
    assert _max_diff_from_torch(tiny_weights, (2, 3, 45, 70)) < FP32_LIMIT


def test_windowed_fp32_equals_torch(window_weights: Path) -> None:
    assert _max_diff_from_torch(window_weights, (1, 9, 64, 96)) < FP32_LIMIT


@pytest.mark.slow
def test_the_default_video_model_fp32_equals_torch() -> None:
    from streamdeblur.registry import default_model

    video = default_model("clip")
    channels = load_checkpoint(video.weights).cfg.in_channels
    assert channels > 3  # a window of frames
    assert _max_diff_from_torch(video.name, (1, channels, 72, 128)) < FP32_LIMIT


def _frames(count: int, height: int, width: int) -> list[Frame]:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)
    return [Frame(p, i, Fraction(1, 25), i) for i, p in enumerate(pixels)]


def _max_pixel_diff(got: list[Frame], expected: list[Frame]) -> int:
    assert [f.index for f in got] == [f.index for f in expected]
    return max(int(np.abs(a.pixels.astype(int) - b.pixels.astype(int)).max()) for a, b in zip(got, expected))


@pytest.mark.parametrize("tile, batch", [(0, 2), (48, 1), (48, 3)])
def test_tiles_and_batches_give_torchs_frames(tiny_weights: Path, tile: int, batch: int) -> None:
    openvino = create_backend("openvino", tiny_weights, "cpu", "fp32")
    torch_fp32 = TorchBackend(load_checkpoint(tiny_weights), torch.device("cpu"), "fp32")
    frames = _frames(4, 90, 130)
    processor = FrameProcessor(openvino, tile, 16, batch)
    got = [frame for i in range(0, len(frames), batch) for frame in processor.process(frames[i : i + batch])]
    expected = FrameProcessor(torch_fp32, tile, 16, batch).process(frames)
    assert _max_pixel_diff(got, expected) <= 1


def test_eight_bit_frames_go_into_the_graph_as_they_are(tiny_weights: Path) -> None:
    """Whole 8-bit frames reach OpenVINO as they are (its graph converts them); tiles and 16-bit
    frames take the float copy. Both give PyTorch fp32's frames."""
    from streamdeblur.inference.openvino_backend import Call

    openvino = create_backend("openvino", tiny_weights, "cpu", "fp32")
    torch_fp32 = TorchBackend(load_checkpoint(tiny_weights), torch.device("cpu"), "fp32")
    frames = _frames(2, 40, 64)
    got = FrameProcessor(openvino, batch_size=2).process(frames)
    assert _max_pixel_diff(got, FrameProcessor(torch_fp32, batch_size=2).process(frames)) <= 1
    assert set(openvino._compiled) == {Call((2, 40, 64, 3), pixels=True)}
    FrameProcessor(openvino, tile=32, tile_overlap=8).process(frames[:1])
    assert Call((2, 40, 64, 3), pixels=True) in openvino._compiled
    assert any(not call.pixels for call in openvino._compiled)  # the tiles: float
    deep = [Frame(f.pixels.astype(np.uint16) * 257, f.pts, f.time_base, f.index) for f in frames]
    got16 = FrameProcessor(openvino, batch_size=2).process(deep)
    expected16 = FrameProcessor(torch_fp32, batch_size=2).process(deep)
    assert max(int(np.abs(a.pixels.astype(int) - b.pixels.astype(int)).max()) for a, b in zip(got16, expected16)) <= 257
    assert Call((2, 3, 40, 64), pixels=False) in openvino._compiled


def test_calls_side_by_side_as_many_streams_make_them(tiny_weights: Path) -> None:
    """Many streams on the CPU call the backend from several threads at once."""
    with one_thread_per_call():
        backend = create_backend("openvino", tiny_weights, "cpu", "fp32")
        calls = ConcurrentCalls(FrameProcessor(backend), workers=2)
        frames = _frames(6, 64, 96)
        got = calls.submit(frames)
        calls.close()
    assert _max_pixel_diff(got, FrameProcessor(backend).process(frames)) == 0


def test_an_offline_run_compiles_a_windowed_model_for_its_calls_side_by_side(
    tiny_weights: Path, tmp_path: Path
) -> None:
    """Offline, a model's calls go two at once on two streams of one thread each, a windowed
    model's and a single-frame model's alike (BENCHMARKS.md, "int8 for the defocus model" and
    "Calls side by side for single-frame models"); live, one stream for the one call, whose
    frame must not wait."""
    import dataclasses

    from streamdeblur.inference import BackendSpec, make_processor
    from streamdeblur.models import DeepDeblur, load_model_config, save_weights

    ov = import_openvino()
    torch.manual_seed(3)
    cfg = dataclasses.replace(load_model_config("tiny-k3"), name="tiny-k3-sbs")
    windowed = save_weights(DeepDeblur(cfg), tmp_path / "tiny-k3-sbs.safetensors", {"note": "test"})
    spec = BackendSpec(backend="openvino", weights=str(windowed), precision="fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the side-by-side setting is for 2 threads, as measured
    try:
        offline = spec.ready(frame_size=(96, 64), side_by_side=True)
        live = spec.ready(frame_size=(96, 64), side_by_side=False)
        single = BackendSpec(backend="openvino", weights=str(tiny_weights), precision="fp32")
        single_offline = single.ready(frame_size=(96, 64), side_by_side=True)
        processor = make_processor(offline, side_by_side=True)
        pixels = np.random.default_rng(4).integers(0, 256, (6, 64, 96, cfg.in_channels), dtype=np.uint8)
        windows = [Frame(p, i, Fraction(1, 25), i) for i, p in enumerate(pixels)]  # as assembly stacks them
        with one_thread_per_call():
            got = processor.submit(windows) + processor.flush()
        processor.close()
    finally:
        torch.set_num_threads(threads)
    assert isinstance(processor, ConcurrentCalls)
    assert offline.config[ov.properties.num_streams()] == 2
    assert ov.properties.num_streams() not in live.config
    assert single_offline.config[ov.properties.num_streams()] == 2
    single_processor = make_processor(single_offline, side_by_side=True)
    assert isinstance(single_processor, ConcurrentCalls)
    single_processor.close()
    assert _max_pixel_diff(got, FrameProcessor(live).process(windows)) == 0


def test_compiled_blobs_are_cached_by_weights_precision_version_and_device(tiny_weights: Path) -> None:
    from streamdeblur.engines.artifacts import onnx_for_weights
    from streamdeblur.engines.openvino_cache import openvino_cache_dir
    from streamdeblur.inference.openvino_backend import device_name, import_openvino

    onnx = onnx_for_weights(tiny_weights)
    runtime = (import_openvino().get_version(), device_name("CPU"))
    folder = openvino_cache_dir(onnx, "fp32", "CPU", *runtime, tiny_weights)
    assert folder != openvino_cache_dir(onnx, "bf16", "CPU", *runtime, tiny_weights)
    before = set(folder.glob("*.blob"))
    x = torch.rand(1, 3, 40, 56)  # a shape no other test compiles
    create_backend("openvino", tiny_weights, "cpu", "fp32").infer(x)
    compiled = set(folder.glob("*.blob"))
    assert len(compiled - before) == 1
    create_backend("openvino", tiny_weights, "cpu", "fp32").infer(x)
    assert set(folder.glob("*.blob")) == compiled  # read back, not compiled anew
    record = json.loads(folder.with_name(folder.name + ".json").read_text())
    assert record["precision"] == "fp32" and record["device"] == "CPU"
    assert record["weights_sha256"] and record["onnx_sha256"] and record["openvino"] and record["device_name"]


def test_auto_times_openvino_only_when_it_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    labels = [c.label for c in cpu_candidates("fp32")]
    assert "openvino fp32" in labels
    monkeypatch.setattr(select, "_openvino_available", lambda: False)
    assert not any(c.backend == "openvino" for c in cpu_candidates("auto"))


@pytest.mark.parametrize(
    "device, precision, message",
    [
        ("cpu", "int8", "run `streamdeblur quantize"),  # tiny_weights are never quantized
        ("cpu", "fp16", "--precision fp16 with --backend openvino needs --device gpu"),
        ("cuda", "fp32", "--backend openvino runs on --device cpu or gpu"),
    ],
)
def test_what_openvino_cannot_run_is_a_one_line_error(
    tiny_weights: Path, device: str, precision: str, message: str
) -> None:
    with pytest.raises(BadUsage, match=message):
        create_backend("openvino", tiny_weights, device, precision)


def test_an_intel_gpu_openvino_does_not_see_is_a_one_line_error(tiny_weights: Path, tmp_path: Path) -> None:
    import openvino

    if any(name.startswith("GPU") for name in openvino.Core().available_devices):
        pytest.skip("OpenVINO sees an Intel GPU here")
    src = make_clip("one_frame", tmp_path)
    result = run_cli("run", str(src), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "--device", "gpu")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "OpenVINO sees no Intel GPU (it sees: CPU" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = run_cli("run", str(src), str(tmp_path / "o.mp4"), "--backend", "torch", "--device", "gpu")
    assert result.returncode == 2 and "which --backend openvino runs" in result.stderr
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_run_through_openvino_gives_torchs_frames(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """End to end, as test_engines does for ONNX Runtime: PNG output, no encoder in the way."""
    import cv2

    src = make_clip("cfr_aac", media_dir)
    outputs, reports = {}, {}
    for backend in ("torch", "openvino"):
        out, report = tmp_path / backend, tmp_path / f"{backend}.json"
        result = run_cli(
            "run", str(src), str(out), "--weights", str(tiny_weights), "--backend", backend,
            "--precision", "fp32", "--report", str(report), "-q",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[backend] = np.stack([cv2.imread(str(p)) for p in sorted(out.glob("*.png"))]).astype(int)
        reports[backend] = json.loads(report.read_text())
    assert outputs["torch"].shape[0] == 30
    assert np.abs(outputs["torch"] - outputs["openvino"]).max() <= 1
    assert reports["openvino"]["backend"] == "openvino" and reports["openvino"]["precision"] == "fp32"
    assert reports["openvino"]["device"] == "cpu"


@pytest.mark.slow
def test_run_of_the_demo_clip_with_a_windowed_model(tmp_path: Path, window_weights: Path) -> None:
    from streamdeblur.demo import write_demo_clip

    clip, out, report = tmp_path / "demo.mp4", tmp_path / "sharp.mp4", tmp_path / "report.json"
    frames = write_demo_clip(clip, 160, 96, seconds=1.0, fps=25)
    result = run_cli(
        "run", str(clip), str(out), "--weights", str(window_weights), "--backend", "openvino",
        "--tile", "64", "--tile-overlap", "16", "--report", str(report), "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ran = json.loads(report.read_text())
    assert ran["backend"] == "openvino" and ran["model"] == "tiny-k3"
    assert ran["frames_in"] == ran["frames_out"] == frames == decodes_cleanly(out)


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env={**os.environ, **(env or {})}
    )


def test_openvino_is_imported_without_its_telemetry(tmp_path: Path) -> None:
    """Its model converter would otherwise send a usage event and keep a client ID in ~/intel."""
    result = _python(
        "import sys; from streamdeblur.inference.openvino_backend import import_openvino; import_openvino(); "
        "tm = sys.modules.get('openvino.tools.ovc.telemetry_utils'); print(tm.tm.__name__ if tm else 'absent')",
        {"HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("openvino.tools.ovc.telemetry_stub", "absent")
    assert not (tmp_path / "intel").exists()


@pytest.mark.slow
def test_ctrl_c_after_candidates_were_built_and_dropped_does_not_crash(tiny_weights: Path) -> None:
    """Each OpenVINO Core gives the thread that loads its CPU plugin a signal stack and puts the
    one it found back when freed: Cores freed in the order made left the thread on an unmapped
    stack, and the next SIGINT crashed the process (the backends share one Core now)."""
    code = f"""
import gc, os, signal, sys, time, torch
from streamdeblur.inference.select import create_backend
first = create_backend("openvino", {str(tiny_weights)!r}, "cpu", "fp32")
second = create_backend("openvino", {str(tiny_weights)!r}, "cpu", "fp32")
first.infer(torch.rand(1, 3, 32, 48)); second.infer(torch.rand(1, 3, 32, 48))
del first; gc.collect(); del second; gc.collect()  # freed in the order made
caught = []
signal.signal(signal.SIGINT, lambda *_: caught.append(1))
for _ in range(50):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.001)
print(len(caught))
"""
    result = _python(code)
    assert result.returncode == 0 and result.stdout.strip() == "50", (result.returncode, result.stderr[-2000:])


def _guarded_flat_weights(folder: Path) -> Path:
    """A network with never_softer that smooths everything flat (all weights zero), whose card
    names a bf16 margin."""
    import dataclasses

    model = DeepDeblur(dataclasses.replace(load_model_config("tiny"), never_softer=True)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    card = {"note": "test", "bf16": {"never_softer_margin": 0.02}}
    return save_weights(model, folder / "tiny-guarded.safetensors", card)


def _grainy_wall() -> torch.Tensor:
    """A still camera's plain wall: mid grey and sensor grain, which a flat network wipes out."""
    noise = torch.rand(1, 1, 16, 24, generator=torch.Generator().manual_seed(0)) - 0.5
    grain = torch.nn.functional.interpolate(noise, scale_factor=2, mode="nearest")
    return (0.5 + grain * (3 / 255)).repeat(1, 3, 1, 1)


@pytest.mark.skipif(not select.cpu_has_native_bf16(), reason="OpenVINO runs bf16 only on a CPU with native bf16")
def test_openvino_bf16_hands_a_sharp_frame_back_exactly(tmp_path: Path) -> None:
    weights = _guarded_flat_weights(tmp_path)
    backend = create_backend("openvino", weights, "cpu", "bf16")
    assert backend.never_softer_margin == 0.02  # type: ignore[attr-defined]  # the card's, run after the graph
    frame = _grainy_wall()
    assert torch.equal(backend.infer(frame), frame)  # in the graph, bf16 would round the frame it hands through


def test_torch_bf16_takes_the_cards_never_softer_margin(tmp_path: Path) -> None:
    weights = _guarded_flat_weights(tmp_path)
    bf16, fp32 = (create_backend("torch", weights, "cpu", p) for p in ("bf16", "fp32"))
    assert bf16.model.cfg.never_softer_margin == 0.02 and fp32.model.cfg.never_softer_margin == 0.0  # type: ignore[attr-defined]
    frame = _grainy_wall()
    assert torch.equal(bf16.infer(frame), frame) and torch.equal(fp32.infer(frame), frame)
