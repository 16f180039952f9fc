"""CPU precision and layout: bf16 stays close to fp32, `auto` follows the bf16 probe, and the
pipeline writes exactly what the backend computed."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from streamdeblur.inference import BackendSpec, create_backend, precision
from streamdeblur.inference.precision import resolve_channels_last, resolve_precision
from streamdeblur.inference.processor import stack_pixels, to_float, to_integers
from streamdeblur.inference.select import cpu_candidates
from streamdeblur.inference.torch_backend import TorchBackend
from streamdeblur.io.frame import Frame
from streamdeblur.models import DEFAULT_WEIGHTS, load_checkpoint
from streamdeblur.pipeline.job import RunOptions, run_job
from streamdeblur.synthetic.blur import render_pair
from streamdeblur.training.metrics import psnr

CPU = torch.device("cpu")


def _native_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "native"), [(False, False, False), (True, False, True), (False, True, True)]
)
def test_bf16_is_native_only_with_avx512_bf16_or_amx(
    monkeypatch: pytest.MonkeyPatch,
    avx512_bf16: bool,
    amx: bool,
    native: bool,
) -> None:
    """oneDNN's own probe says yes on plain AVX-512 too, where bf16 is emulated and slow."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert precision.cpu_has_native_bf16() is native


def test_bf16_output_of_the_shipped_weights_is_within_45_db_of_fp32() -> None:
    rng = np.random.default_rng(5)
    blurry = np.stack([render_pair(rng, 96, 128, photos=None).blurry for _ in range(3)])
    x = torch.from_numpy(blurry.transpose(0, 3, 1, 2).copy()).float()
    fp32 = TorchBackend(load_checkpoint(DEFAULT_WEIGHTS), CPU, "fp32").infer(x).clamp(0, 1)
    bf16_backend = TorchBackend(load_checkpoint(DEFAULT_WEIGHTS), CPU, "bf16", channels_last=True)
    bf16 = bf16_backend.infer(x).clamp(0, 1)
    assert bf16.dtype == torch.float32 and bf16.shape == fp32.shape
    assert not torch.equal(bf16, fp32)  # it really ran in bf16
    for a, b in zip(bf16, fp32):
        assert psnr(a.numpy().transpose(1, 2, 0), b.numpy().transpose(1, 2, 0)) >= 45.0


def test_auto_is_fp32_where_the_bf16_probe_says_no(monkeypatch: pytest.MonkeyPatch, tiny_weights: Path) -> None:
    _native_bf16(monkeypatch, False)
    assert resolve_precision("auto", CPU) == "fp32"
    assert all(c.precision == "fp32" for c in cpu_candidates("auto"))
    backend = create_backend("torch", tiny_weights, "cpu", "auto")
    assert backend.precision == "fp32" and not backend.autocast and backend.channels_last  # type: ignore[attr-defined]


def test_auto_offers_bf16_where_the_bf16_probe_says_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    _native_bf16(monkeypatch, True)
    assert resolve_precision("auto", CPU) == "bf16"
    labels = [c.label for c in cpu_candidates("auto")]
    assert labels[0] == "torch bf16 channels-last" and "torch fp32 channels-last" in labels
    assert [c.label for c in cpu_candidates("auto", channels_last=False)][0] == "torch bf16 NCHW"
    # An explicit fp32 keeps bf16 out (torch's, and OpenVINO's where it is installed).
    assert [c.label for c in cpu_candidates("fp32")] == [label for label in labels if " bf16" not in label]


def test_auto_precision_and_layout_on_cuda_and_explicit_choices() -> None:
    cuda = torch.device("cuda")
    assert resolve_precision("auto", cuda) == "fp16" and resolve_precision("bf16", cuda) == "bf16"
    assert resolve_channels_last(None, cuda, "fp16") and not resolve_channels_last(None, cuda, "fp32")
    assert resolve_channels_last(None, CPU, "fp32") and not resolve_channels_last(False, CPU, "fp32")
    with pytest.raises(Exception, match="fp16 needs a CUDA device"):
        resolve_precision("fp16", CPU)
    with pytest.raises(Exception, match="unknown precision"):
        resolve_precision("fp64", CPU)


def test_bf16_without_native_support_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(precision.log, "warning", lambda message, *args: warnings.append(message % args))
    _native_bf16(monkeypatch, True)
    assert resolve_precision("bf16", CPU) == "bf16" and not warnings
    _native_bf16(monkeypatch, False)
    assert resolve_precision("bf16", CPU) == "bf16"
    assert len(warnings) == 1 and "emulated" in warnings[0]


def _write_frames(folder: Path, dtype: type, count: int = 3) -> list[np.ndarray]:
    """RGB frames of blurred synthetic scenes, stored as PNG (lossless, 8 or 16 bit)."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    top = np.iinfo(dtype).max
    frames = []
    for i in range(count):
        rgb = (render_pair(rng, 72, 104, photos=None).blurry * top).round().astype(dtype)
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        frames.append(rgb)
    return frames


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels_last", [None, False])
def test_pipeline_output_is_the_backends_output(
    tmp_path: Path,
    tiny_weights: Path,
    dtype: type,
    channels_last: bool | None,
) -> None:
    frames = _write_frames(tmp_path / "in", dtype)
    spec = BackendSpec(backend="torch", weights=str(tiny_weights), device="cpu", channels_last=channels_last)
    report = run_job(RunOptions(input=str(tmp_path / "in"), output=str(tmp_path / "out"), spec=spec, progress=False))
    timed = {c.precision for c in cpu_candidates("auto", channels_last) if c.backend == "torch"}
    assert report.frames_out == len(frames) and report.precision in timed  # auto: the faster here
    written = [
        cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
        for p in sorted((tmp_path / "out").glob("*.png"))
    ]
    backend = create_backend("torch", tiny_weights, "cpu", report.precision, channels_last=channels_last)
    for rgb, got in zip(frames, written, strict=True):
        pixels = torch.from_numpy(stack_pixels([Frame(rgb, 0, Fraction(1, 25), 0)]))
        expected = to_integers(backend.infer(to_float(pixels, rgb.dtype)), rgb.dtype).numpy()[0]
        expected = expected.view(np.uint16) if dtype == np.uint16 else expected
        assert got.dtype == dtype and np.array_equal(got, expected)
        assert not np.array_equal(got, rgb)  # the network changed the frame


def test_a_run_ends_the_threads_its_calls_side_by_side_ran_on(tmp_path: Path, tiny_weights: Path) -> None:
    """A process that runs file after file (a batch worker) must not gather a pool a file."""
    import threading

    from streamdeblur.inference.concurrent import SIDE_BY_SIDE_THREADS

    _write_frames(tmp_path / "in", np.uint8, count=2)
    spec = BackendSpec(backend="torch", weights=str(tiny_weights), device="cpu", precision="fp32", compile=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(SIDE_BY_SIDE_THREADS)  # what side by side needs
    try:
        counts = []
        for run in range(3):
            report = run_job(
                RunOptions(input=str(tmp_path / "in"), output=str(tmp_path / f"out{run}"), spec=spec, progress=False)
            )
            assert report.frames_out == 2
            counts.append(threading.active_count())
    finally:
        torch.set_num_threads(threads)
    assert counts[0] == counts[1] == counts[2], counts


def test_run_in_bf16_on_the_cpu_reports_it(tmp_path: Path, tiny_weights: Path) -> None:
    _write_frames(tmp_path / "in", np.uint8, count=2)
    spec = BackendSpec(backend="torch", weights=str(tiny_weights), device="cpu", precision="bf16")
    report = run_job(RunOptions(input=str(tmp_path / "in"), output=str(tmp_path / "out"), spec=spec, progress=False))
    assert report.frames_out == 2 and report.precision == "bf16"


def test_a_measured_choice_is_remembered_per_facts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamdeblur.inference.measured import fastest

    monkeypatch.setenv("STREAMDEBLUR_CACHE_DIR", str(tmp_path))
    calls: list[str] = []

    def seconds(option: str) -> float:
        calls.append(option)
        return {"a": 2.0, "b": 1.0}[option]

    assert fastest("r.json", {"cpu": "x"}, ["a", "b"], seconds) == "b"
    assert fastest("r.json", {"cpu": "x"}, ["a", "b"], seconds) == "b"
    assert calls == ["a", "b"]  # the second answer came from the record
    assert fastest("r.json", {"cpu": "y"}, ["a", "b"], seconds) == "b" and len(calls) == 4  # other facts: timed
    assert fastest("r.json", {"cpu": "x"}, ["a"], seconds) == "a" and len(calls) == 4  # nothing to choose
    (tmp_path / "r.json").write_text("{broken")
    assert fastest("r.json", {"cpu": "x"}, ["a", "b"], seconds) == "b" and len(calls) == 6  # unreadable: timed again


@pytest.mark.parametrize("faster", ["bf16", "fp32"])
def test_torch_on_a_native_bf16_cpu_times_bf16_against_fp32(
    faster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--backend torch --precision auto`: native bf16 is not faster on every CPU that has it."""
    from streamdeblur.inference import select

    monkeypatch.setenv("STREAMDEBLUR_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(select, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(select, "_seconds_per_call", lambda backend, x: 1.0 if backend.precision == faster else 2.0)
    backend = create_backend("torch", DEFAULT_WEIGHTS, "cpu", "auto", frame_size=(64, 48))
    assert backend.name == "torch" and backend.precision == faster
    assert create_backend("torch", DEFAULT_WEIGHTS, "cpu", "fp32").precision == "fp32"  # asked for: not timed
