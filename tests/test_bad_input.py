"""Bad input and bad usage: one clear line, the documented exit code, nothing half-written."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_cli, run_cli_here
from tests.media import decodes_cleanly, ffmpeg, make_clip

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers


def _assert_clean_failure(result, code: int, out_dir: Path, message: str) -> None:  # type: ignore[no-untyped-def]
    """Exit `code`, one error line that says `message`, no traceback, and no output left behind."""
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamdeblur: error:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], errors[0]
    assert [p.name for p in out_dir.iterdir() if p.name.startswith(("out", ".out"))] == []


@pytest.fixture()
def bad_inputs(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "random.mp4").write_bytes(bytes(range(256)) * 400)
    (tmp_path / "notes.txt").write_text("not a video\n" * 50)
    (tmp_path / "folder").mkdir()
    return {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "random bytes": tmp_path / "random.mp4",
        "text": tmp_path / "notes.txt",
        "folder without images": tmp_path / "folder",
    }


@pytest.mark.parametrize("kind, message", [
    ("missing", "input not found"), ("empty", "is empty"), ("random bytes", "Invalid data found"),
    ("text", "has no video stream"), ("folder without images", "is a folder with no images in it"),
])  # fmt: skip
def test_unreadable_input_exits_2(
    kind: str,
    message: str,
    bad_inputs: dict[str, Path],
    tmp_path: Path,
    tiny_weights: Path,
) -> None:
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    result = run_cli_here("run", str(bad_inputs[kind]), str(out_dir / "out.mp4"), "--weights", str(tiny_weights))
    _assert_clean_failure(result, 2, out_dir, message)


def test_a_bad_input_in_a_real_process_is_one_line_and_exit_2(
    bad_inputs: dict[str, Path],
    tmp_path: Path,
    tiny_weights: Path,
) -> None:
    """The checks above run in this process; here the whole way, interpreter and all."""
    out_dir = tmp_path / "results"
    out_dir.mkdir()
    result = run_cli("run", str(bad_inputs["random bytes"]), str(out_dir / "out.mp4"), "--weights", str(tiny_weights))
    _assert_clean_failure(result, 2, out_dir, "Invalid data found")


def test_truncated_video_keeps_what_decodes_and_counts_the_loss(tmp_path: Path, tiny_weights: Path) -> None:
    whole = tmp_path / "whole.mp4"
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=160x120:rate=25",
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
        str(whole),
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    result = run_cli("run", str(cut), str(out), "--weights", str(tiny_weights), "--report", str(report))
    assert result.returncode == 0, result.stderr
    assert "lost" in result.stderr and "Traceback" not in result.stderr
    stats = json.loads(report.read_text())
    assert 0 < stats["frames_out"] < 50
    assert stats["frames_lost"] == 50 - stats["frames_out"]
    assert decodes_cleanly(out) == stats["frames_out"]


@pytest.mark.parametrize(
    "output, extra, message",
    [
        ("no/such/folder/out.mp4", [], "does not exist"),
        ("notes.txt/out.mp4", [], "is a file, not a folder"),
        ("out.unknownsuffix", [], "cannot tell the output format"),
        ("out.mp4", ["--precision", "fp16", "--device", "cpu"], "--precision fp16 needs a CUDA device"),
        ("out.mp4", ["--tile", "64", "--tile-overlap", "40"], "--tile-overlap 40 must be less than half of --tile 64"),
        ("out.mp4", ["--codec", "no-such-encoder"], "unknown encoder 'no-such-encoder'"),
        ("out.mp4", ["--preset", "no-such-preset"], "unknown libx264 preset 'no-such-preset'"),
        ("out.mp4", ["--backend", "nope"], "unknown backend 'nope'"),
        ("out_frames/", ["--codec", "libx264"], "apply to video output, not an image folder"),
        ("out.mp4", ["--fps", "fast"], "--fps: 'fast' is not a number"),
        ("out.webm", ["--codec", "libx264"], "the webm container cannot hold libx264"),  # VP8/VP9/AV1 only
    ],
)
def test_bad_output_or_options_exit_2(
    output: str,
    extra: list[str],
    message: str,
    media_dir: Path,
    tmp_path: Path,
    tiny_weights: Path,
) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder\n")
    src = make_clip("one_frame", media_dir)
    result = run_cli_here("run", str(src), str(tmp_path / output), "--weights", str(tiny_weights), *extra)
    _assert_clean_failure(result, 2, tmp_path, message)


@pytest.mark.parametrize("backend", ["auto", "torch", "onnxruntime"])
def test_bad_weights_exit_2(backend: str, media_dir: Path, tmp_path: Path) -> None:
    weights = tmp_path / "model-1.pt"
    weights.write_bytes(b"\x80\x04not a checkpoint")
    result = run_cli_here(
        "run",
        str(make_clip("one_frame", media_dir)),
        str(tmp_path / "out.mp4"),
        "--weights",
        str(weights),
        "--backend",
        backend,
    )
    _assert_clean_failure(result, 2, tmp_path, "not a safetensors file or a PyTorch checkpoint")


@pytest.mark.parametrize("backend", ["auto", "torch", "onnxruntime"])
def test_missing_weights_exit_2(backend: str, media_dir: Path, tmp_path: Path) -> None:
    result = run_cli_here(
        "run",
        str(make_clip("one_frame", media_dir)),
        str(tmp_path / "out.mp4"),
        "--weights",
        str(tmp_path / "absent.safetensors"),
        "--backend",
        backend,
    )
    _assert_clean_failure(result, 2, tmp_path, "weights file not found")


def test_existing_output_is_kept_without_overwrite(media_dir: Path, tmp_path: Path, tiny_weights: Path) -> None:
    src = make_clip("one_frame", media_dir)
    existing = tmp_path / "out.mp4"
    existing.write_bytes(b"precious")
    result = run_cli("run", str(src), str(existing), "--weights", str(tiny_weights))
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert existing.read_bytes() == b"precious"
    assert run_cli("run", str(src), str(existing), "--weights", str(tiny_weights), "--overwrite").returncode == 0
    assert decodes_cleanly(existing) == 1


def test_input_is_never_its_own_output(media_dir: Path, tiny_weights: Path) -> None:
    src = make_clip("one_frame", media_dir)
    before = src.read_bytes()
    result = run_cli("run", str(src), str(src), "--weights", str(tiny_weights), "--overwrite")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "output would overwrite the input" in result.stderr
    assert src.read_bytes() == before


@pytest.mark.parametrize(
    "extra, fields, message",
    [
        (
            ["--backend", "torch", "--engine", "x.onnx"],
            {"backend": "torch", "engine": "x.onnx"},
            "--engine is for --backend tensorrt, onnxruntime or openvino, not torch",
        ),
        (
            ["--backend", "onnxruntime", "--cuda-graphs"],
            {"backend": "onnxruntime", "cuda_graphs": True},
            "--cuda-graphs is for --backend torch, not onnxruntime",
        ),
        (
            ["--backend", "passthrough", "--no-channels-last"],
            {"backend": "passthrough", "channels_last": False},
            "--channels-last/--no-channels-last is for --backend torch, not passthrough",
        ),
        (["--batch", "0"], {"batch": 0}, "--batch and --streams must be at least 1"),
        (
            ["--backend", "onnxruntime", "--compile"],
            {"backend": "onnxruntime", "compile": True},
            "--compile is for --backend torch, not onnxruntime",
        ),
    ],
)
def test_options_the_backend_would_ignore_are_one_line_errors(
    extra: list[str],
    fields: dict[str, Any],
    message: str,
    tmp_path: Path,
) -> None:
    from streamdeblur.errors import BadUsage
    from streamdeblur.inference import BackendSpec

    with pytest.raises(BadUsage, match=re.escape(message)):
        BackendSpec(**fields).check()
    from typer.testing import CliRunner

    from streamdeblur.cli import app

    # In this process (no interpreter start per command): the flags reach the same check.
    for command in (
        ["run", "in.mp4", str(tmp_path / "out.mp4")],
        ["bench"],
        ["batch", str(tmp_path), str(tmp_path / "o")],
    ):
        result = CliRunner().invoke(app, [*command, *extra])
        last = result.output.strip().splitlines()[-1]
        assert result.exit_code == 2 and message in last and "Traceback" not in result.output, (command, result.output)
    assert not (tmp_path / "out.mp4").exists() and not (tmp_path / "o").exists()


def test_batch_workers_run_what_auto_chose_on_the_cpu(tiny_weights: Path) -> None:
    """batch measures `auto` once and gives its workers the choice, precision and layout included."""
    from streamdeblur.inference import BackendSpec

    spec = BackendSpec(weights=str(tiny_weights), device="cpu")
    backend = spec.create(frame_size=(64, 48))
    pinned = spec.pinned(backend)
    assert pinned.backend == backend.name != "auto" and pinned.precision == backend.precision != "auto"
    rebuilt = pinned.create(frame_size=(64, 48))
    assert (rebuilt.name, rebuilt.precision, getattr(rebuilt, "channels_last", None)) == (
        backend.name,
        backend.precision,
        getattr(backend, "channels_last", None),
    )


def _stalling_http_server(payload: bytes) -> tuple[int, threading.Event]:
    """An HTTP server on loopback that sends `payload` as a transport stream, then goes silent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    done = threading.Event()

    def serve() -> None:
        with server, server.accept()[0] as conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\n\r\n" + payload)
            done.wait(60)  # silent, connection open: a stalled stream

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], done


def test_a_stalled_network_input_ends_run_instead_of_hanging(tmp_path: Path) -> None:
    """`run` gives a URL the open and read timeout of `live` (5 s): silence from the start is a
    one-line error (exit 2, no output); silence midway keeps the frames that arrived."""
    ts = tmp_path / "in.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25", "-t", "4", "-c:v", "libx264", "-f", "mpegts", str(ts))
    data = ts.read_bytes()
    for name, payload in (("silent", b""), ("midway", data[: len(data) // 2])):
        port, done = _stalling_http_server(payload)
        out = tmp_path / f"{name}.mp4"
        started = time.monotonic()
        result = run_cli("run", f"http://127.0.0.1:{port}/in.ts", str(out), "--backend", "passthrough", timeout=60)
        done.set()
        assert time.monotonic() - started < 40 and "Traceback" not in result.stderr
        assert "nothing received for 5 s" in result.stderr, result.stderr
        if name == "silent":
            assert result.returncode == 2 and not out.exists()
        else:
            assert result.returncode == 0 and 0 < decodes_cleanly(out) < 100
