"""ONNX export and its checks, the engine cache, backends on the CPU, `bench`, and (on a GPU)
the CUDA stream scheduler against a plain synchronous loop."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from streamdeblur.engines.artifacts import onnx_for_weights
from streamdeblur.engines.onnx_export import PARITY_TOLERANCE, check_onnx, export_onnx, tensorrt_supported_ops
from streamdeblur.engines.shapes import parse_shapes
from streamdeblur.engines.store import matches, write_with_sidecar
from streamdeblur.errors import BadUsage, ProcessingError
from streamdeblur.inference import select
from streamdeblur.io import Frame
from streamdeblur.models import DeepDeblur, load_model_config
from tests.conftest import run_cli


@pytest.mark.slow
@pytest.mark.parametrize("config", ["tiny", "deepdeblur-light", "deepdeblur-4scale"])
def test_export_matches_pytorch_and_uses_only_tensorrt_operators(config: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = DeepDeblur(load_model_config(config)).eval()
    check = export_onnx(model, tmp_path / "model.onnx")
    assert check.max_abs_diff < PARITY_TOLERANCE
    version, supported = tensorrt_supported_ops()
    assert version == check.tensorrt_version == "10.15"
    assert set(check.operators) <= supported
    assert {"Conv", "AveragePool", "DepthToSpace", "Pad"} <= set(check.operators)

    import onnx

    graph = onnx.load(str(tmp_path / "model.onnx")).graph
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 3 and isinstance(dims[2], str) and isinstance(dims[3], str)


def test_an_operator_tensorrt_cannot_parse_is_refused(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Unique", ["blurry"], ["sharp"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("blurry", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("sharp", TensorProto.FLOAT, ["n"])],
    )
    path = tmp_path / "unique.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with pytest.raises(ProcessingError, match="cannot parse: Unique"):
        check_onnx(path, DeepDeblur(load_model_config("tiny")))


@pytest.mark.slow
def test_export_command_writes_and_then_reuses(tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.onnx"
    first = run_cli("export", "--weights", str(tiny_weights), "--out", str(out))
    assert first.returncode == 0, first.stderr
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["max_abs_diff_vs_torch"] < PARITY_TOLERANCE
    stamp = out.stat().st_mtime_ns
    assert run_cli("export", "--weights", str(tiny_weights), "--out", str(out), "-q").returncode == 0
    assert out.stat().st_mtime_ns == stamp  # matched its sidecar: not exported again


@pytest.mark.slow
def test_build_without_tensorrt_says_what_to_install(tiny_weights: Path, tmp_path: Path) -> None:
    onnx_path = onnx_for_weights(tiny_weights)
    result = run_cli("build", str(onnx_path), "--precision", "fp16", "--shapes", "720p")
    assert result.returncode == 2
    assert "streamdeblur[trt]" in result.stderr and "Traceback" not in result.stderr


def test_engine_cache_reuses_only_on_matching_facts(tmp_path: Path) -> None:
    facts = {
        "onnx_sha256": "ab",
        "shapes": parse_shapes("720p").to_dict(),
        "precision": "fp16",
        "tensorrt": "10.13",
        "gpu": "H100",
    }
    path = write_with_sidecar(tmp_path / "m.engine", b"plan", facts)
    assert matches(path, facts)
    assert not matches(path, {**facts, "precision": "int8"})
    assert not matches(path, {**facts, "gpu": "H200"})
    assert not matches(tmp_path / "other.engine", facts)


def test_shape_presets() -> None:
    hd = parse_shapes("1080p", batch=2)
    assert hd.opt == (2, 3, 1080, 1920) and hd.contains((1, 3, 1920, 1080))  # portrait fits too
    assert parse_shapes("tile:512").max == (1, 3, 512, 512)
    explicit = parse_shapes("1x64x64:2x720x1280:4x1088x1920")
    assert explicit.min == (1, 3, 64, 64) and explicit.max == (4, 3, 1088, 1920)
    with pytest.raises(BadUsage):
        parse_shapes("2x720x1280:1x64x64:4x1088x1920")


@pytest.mark.slow
def test_cpu_backends_agree_through_the_pipeline(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    """torch and onnxruntime give the same frames (PNG output: no encoder in the way)."""
    import cv2

    from tests.media import make_clip

    src = make_clip("cfr_aac", media_dir)
    outputs = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        result = run_cli("run", str(src), str(out), "--weights", str(tiny_weights), "--backend", backend, "-q")
        assert result.returncode == 0, result.stderr
        outputs[backend] = np.stack([cv2.imread(str(p)) for p in sorted(out.glob("*.png"))]).astype(int)
    assert outputs["torch"].shape[0] == 30
    assert np.abs(outputs["torch"] - outputs["onnxruntime"]).max() <= 1


@pytest.mark.slow
def test_auto_remembers_the_faster_cpu_backend(
    media_dir: Path, tmp_path: Path, tiny_weights: Path, cache_dir: Path
) -> None:
    from tests.media import make_clip

    src = make_clip("one_frame", media_dir)
    report = tmp_path / "r.json"
    assert (
        run_cli(
            "run", str(src), str(tmp_path / "o.mp4"), "--weights", str(tiny_weights), "--report", str(report), "-q"
        ).returncode
        == 0
    )
    records = json.loads((cache_dir / "cpu-backend-choice.json").read_text())
    ran = json.loads(report.read_text())
    assert f"{ran['backend']} {ran['precision']}" in {" ".join(r["choice"].split()[:2]) for r in records.values()}
    if select._openvino_available():  # among the candidates timed where installed
        assert any("openvino fp32" in record["seconds"] for record in records.values())
    for record in records.values():
        assert record["choice"] == min(record["seconds"], key=record["seconds"].get)
        assert record["cpu"]["model"] and isinstance(record["cpu"]["flags"], list)


@pytest.mark.slow
def test_bench_reports_model_pipeline_and_naive(tiny_weights: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    # --no-compile: compiling takes tens of seconds (tests/test_compile.py covers it)
    result = run_cli(
        "bench",
        "--weights",
        str(tiny_weights),
        "--size",
        "96x64",
        "--frames",
        "12",
        "--seconds",
        "0.5",
        "--no-compile",
        "--json",
        str(out),
        "-q",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    for key in (
        "frames_in",
        "frames_out",
        "frames_dropped",
        "wall_s",
        "fps",
        "latency_ms",
        "backend",
        "device",
        "precision",
        "model",
        "input",
        "output",
    ):
        assert key in data
    assert data["frames_out"] == data["frames_in"] == 12 and data["clip"] == "synthetic"
    assert data["model_fps"] > 0 and data["naive_fps"] > 0
    assert data["pipeline_vs_model"] == pytest.approx(data["pipeline_fps"] / data["model_fps"], rel=0.01)
    assert data["pipeline_vs_model_with_alignment"] is None  # a single-frame model: no window to assemble
    assert data["chosen"] in data["candidates_fps"] and data["model_fps"] == data["candidates_fps"][data["chosen"]]
    assert "torch fp32 channels-last" in data["candidates_fps"] and data["precision"] == data["chosen"].split()[1]
    assert set(data["cpu"]) == {"model", "flags", "native_bf16"}
    assert not any("compiled" in label for label in data["candidates_fps"])
    stages = data["stage_ms_per_frame"]
    assert set(stages) == {"decode", "processor", "encode"} and all(ms > 0 for ms in stages.values())
    if select._openvino_available():  # timed beside the others where installed
        assert data["candidates_fps"]["openvino fp32"] > 0
    if "onnxruntime fp32" in data["candidates_fps"]:
        assert data["model_vs_onnxruntime"] == pytest.approx(
            data["model_fps"] / data["candidates_fps"]["onnxruntime fp32"], rel=0.01
        )


@pytest.mark.slow
def test_bench_times_the_pipeline_on_a_given_clip_at_its_size(tiny_weights: Path, tmp_path: Path) -> None:
    """--clip: the user's footage goes through the pipeline, and the network is timed at its size."""
    from streamdeblur.demo import write_demo_clip

    clip = tmp_path / "mine.mp4"
    count = write_demo_clip(clip, 80, 48, seconds=0.5, fps=20)
    out = tmp_path / "bench.json"
    result = run_cli(
        "bench", "--clip", str(clip), "--weights", str(tiny_weights), "--seconds", "0.3", "--no-compile",
        "--json", str(out), "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["size"] == "80x48" and data["clip"] == str(clip)
    assert data["frames_out"] == data["frames_in"] == count
    assert data["model_fps"] > 0 and data["pipeline_fps"] > 0
    for wrong, message in (
        (["--clip", str(clip), "--size", "80x48"], "give --size or --clip, not both"),
        (["--clip", str(tmp_path / "none.mp4")], "input not found"),
    ):
        refused = run_cli("bench", *wrong, "--weights", str(tiny_weights), "-q")
        assert refused.returncode == 2 and message in refused.stderr and "Traceback" not in refused.stderr


# --- GPU: the stream scheduler (run on a lent GPU; skipped elsewhere) ------------------------


def _frames(count: int, height: int, width: int, dtype: type = np.uint8) -> list[Frame]:
    rng = np.random.default_rng(0)
    top = 65535 if dtype == np.uint16 else 255
    return [Frame(rng.integers(0, top, (height, width, 3), dtype=dtype), i, Fraction(1, 25), i) for i in range(count)]


def _run(processor, frames: list[Frame], batch: int) -> list[Frame]:  # type: ignore[no-untyped-def]
    out = []
    for i in range(0, len(frames), batch):
        out += processor.submit(frames[i : i + batch])
    return out + processor.flush()


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("in_flight, batch, tile", [(1, 1, 0), (3, 2, 0), (4, 1, 64)])
def test_scheduler_equals_a_synchronous_loop(dtype: type, in_flight: int, batch: int, tile: int) -> None:
    from streamdeblur.inference import FrameProcessor
    from streamdeblur.inference.scheduler import StreamScheduler
    from streamdeblur.inference.torch_backend import TorchBackend

    torch.manual_seed(0)
    backend = TorchBackend(DeepDeblur(load_model_config("tiny")), torch.device("cuda"))
    frames = _frames(9, 90, 130, dtype)
    expected = _run(FrameProcessor(backend, tile, 16, batch), frames, batch)
    got = _run(StreamScheduler(backend, tile, 16, batch, in_flight), frames, batch)
    assert [f.index for f in got] == list(range(9))
    for a, b in zip(got, expected):
        assert a.pixels.dtype == b.pixels.dtype and np.array_equal(a.pixels, b.pixels)


@pytest.mark.gpu
def test_on_cuda_windows_assembled_ahead_give_what_one_at_a_time_gives() -> None:
    """An offline run of a windowed model on CUDA (windowed_processor): windows assembled on
    the CPU's threads while the scheduler has earlier ones on the GPU; the same frames, in
    order, as assembling each window in turn before its call."""
    from dataclasses import replace

    from streamdeblur.inference.scheduler import StreamScheduler
    from streamdeblur.inference.torch_backend import TorchBackend
    from streamdeblur.window.assembly import WindowedProcessor, windowed_processor

    torch.manual_seed(0)
    cfg = replace(load_model_config("tiny-k3"), align="global", fuse="fba+window")
    backend = TorchBackend(DeepDeblur(cfg), torch.device("cuda"))
    frames = _frames(12, 90, 130)
    expected = _run(WindowedProcessor(StreamScheduler(backend), cfg), frames, 1)
    ahead = windowed_processor(backend, side_by_side=True)
    assert isinstance(ahead, WindowedProcessor) and ahead.ahead > 0
    got = _run(ahead, frames, 1)
    assert [f.index for f in got] == list(range(12))
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(got, expected))


@pytest.mark.gpu
def test_cuda_graphs_and_fp16_agree_with_fp32() -> None:
    from streamdeblur.inference.scheduler import StreamScheduler
    from streamdeblur.inference.torch_backend import TorchBackend

    torch.manual_seed(0)
    frames = _frames(6, 64, 96)
    plain = _run(StreamScheduler(TorchBackend(DeepDeblur(load_model_config("tiny")), torch.device("cuda"))), frames, 1)
    torch.manual_seed(0)
    graphs = TorchBackend(DeepDeblur(load_model_config("tiny")), torch.device("cuda"), cuda_graphs=True)
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(_run(StreamScheduler(graphs), frames, 1), plain))
    torch.manual_seed(0)
    half = TorchBackend(DeepDeblur(load_model_config("tiny")), torch.device("cuda"), "fp16", channels_last=True)
    diffs = [
        np.abs(a.pixels.astype(int) - b.pixels.astype(int)).max()
        for a, b in zip(_run(StreamScheduler(half), frames, 1), plain)
    ]
    assert max(diffs) <= 3
