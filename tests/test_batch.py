"""`streamdeblur batch`: a folder tree in, every good output out, resumable, locally and on Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from streamdeblur.batch.discovery import InputFile, check_layout, find_inputs
from streamdeblur.batch.manifest import DONE, FAILED, INTERRUPTED, MANIFEST_NAME, FileRecord, Manifest
from streamdeblur.batch.ray_runner import task_resources
from streamdeblur.errors import BadUsage
from tests.conftest import run_cli
from tests.media import decodes_cleanly, ffmpeg, frame_times

pytestmark = pytest.mark.slow  # end to end: real media, processes, servers

GOOD = {  # relative path -> (seconds, audio)
    "day1/cam1/a.mp4": (1.0, False),
    "day1/cam2/b.mkv": (0.8, True),
    "day2/c.mov": (0.6, False),
    "d.mp4": (0.4, True),
}
BAD = "day2/broken.mp4"


def _clip(path: Path, seconds: float, audio: bool = False, size: str = "160x128") -> None:
    """Sizes are multiples of 16: there libx264 (threaded) encodes the same frames to the same
    bits run after run; at 160x120 it did not here, even with --backend passthrough."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sound = ["-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "aac", "-shortest"] if audio else []
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={size}:rate=25",
        *sound,
        "-t",
        str(seconds),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        str(path),
    )


def _records(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / MANIFEST_NAME).read_text().splitlines()]


def _latest(output_dir: Path) -> dict[str, dict]:
    return {r["input"]: r for r in _records(output_dir)}


def _partials(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".partial." in p.name]


def _decoded(path: Path) -> list[tuple[int | None, np.ndarray]]:
    """Every video frame's pts and raw planes, as decoded."""
    # Imported here, not at the top: with PyAV loaded before OpenCV, test_live.py's preview
    # window test hung in this process (PyAV's wheel brings its own libxcb).
    import av

    with av.open(str(path)) as container:
        return [(frame.pts, frame.to_ndarray()) for frame in container.decode(video=0)]


def _run_until(args: list[str], moment: Callable[[], bool], new_session: bool = False) -> subprocess.Popen[str]:
    """Start `streamdeblur ARGS`; return, with it still running, once `moment()` holds."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamdeblur", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )
    deadline = time.monotonic() + 150
    while not moment():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(0.05)
    return proc


def _interrupt(args: list[str], moment: Callable[[], bool]) -> None:
    """Run `streamdeblur ARGS`, send it one SIGINT at `moment`; it must stop cleanly with 130."""
    proc = _run_until(args, moment)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree") / "in"
    for rel, (seconds, audio) in GOOD.items():
        _clip(root / rel, seconds, audio)
    (root / BAD).write_bytes(np.random.default_rng(0).integers(0, 256, 60_000, dtype=np.uint8).tobytes())
    (root / "notes.txt").write_text("not a video, and no video suffix\n")
    return root


@pytest.fixture(scope="module")
def local_run(
    tree: Path, tmp_path_factory: pytest.TempPathFactory, tiny_weights: Path
) -> tuple[Path, subprocess.CompletedProcess[str], Path]:
    """The tree through two local workers; one thread each, as a Ray task with one CPU has.

    `--backend torch` on both sides of the Ray comparison: `auto` measures this CPU and might
    pick ONNX Runtime on one side and PyTorch on the other.
    """
    out = tmp_path_factory.mktemp("local") / "out"
    report = out.parent / "report.json"
    result = run_cli(
        "batch",
        str(tree),
        str(out),
        "--weights",
        str(tiny_weights),
        "--backend",
        "torch",
        "--workers",
        "2",
        "--report",
        str(report),
    )
    return out, result, report


def test_batch_makes_every_good_output_and_records_the_bad_file(
    tree: Path, local_run: tuple[Path, subprocess.CompletedProcess[str], Path]
) -> None:
    out, result, report = local_run
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for rel in GOOD:
        assert decodes_cleanly(out / rel) == len(frame_times(tree / rel)), rel
    assert not (out / BAD).exists() and not _partials(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        [*GOOD, MANIFEST_NAME]
    )

    latest = _latest(out)
    assert set(latest) == {*GOOD, BAD}
    assert latest[BAD]["status"] == FAILED and latest[BAD]["error"]
    for rel in GOOD:
        assert latest[rel]["status"] == DONE
        assert latest[rel]["frames_out"] == latest[rel]["frames_in"] == len(frame_times(tree / rel))
        assert latest[rel]["size"] == (tree / rel).stat().st_size
    assert BAD in result.stdout and "failed" in result.stdout  # the summary table

    totals = json.loads(report.read_text())
    assert (totals["files_done"], totals["files_failed"], totals["files_skipped"]) == (len(GOOD), 1, 0)
    assert totals["frames_out"] == sum(len(frame_times(tree / rel)) for rel in GOOD)
    assert totals["backend"] == "torch" and totals["model"] == "tiny" and totals["fps"] > 0
    assert set(totals["errors"]) == {BAD}


def test_rerun_skips_done_files_redoes_a_changed_one_and_strict_fails(
    tree: Path, local_run: tuple[Path, subprocess.CompletedProcess[str], Path], tiny_weights: Path, tmp_path: Path
) -> None:
    first_out, first, _ = local_run
    assert first.returncode == 0, first.stderr
    # Copies (mtimes kept), so the tree and outputs the other tests use stay as they are.
    tree, out = shutil.copytree(tree, tmp_path / "in"), shutil.copytree(first_out, tmp_path / "out")
    changed = "day2/c.mov"
    kept = {rel: (out / rel).stat() for rel in GOOD if rel != changed}
    _clip(tree / changed, 1.2)  # a new version of one input: new size and mtime
    report = tmp_path / "report.json"
    result = run_cli("batch", str(tree), str(out), "--weights", str(tiny_weights), "--strict", "--report", str(report))
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamdeblur: error:")]
    assert len(errors) == 1 and "1 of" in errors[0] and "Traceback" not in result.stderr

    for rel, stat in kept.items():  # finished work is not redone
        now = (out / rel).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), rel
    assert decodes_cleanly(out / changed) == len(frame_times(tree / changed)) == 30
    totals = json.loads(report.read_text())
    assert (totals["files_done"], totals["files_failed"], totals["files_skipped"]) == (1, 1, len(GOOD) - 1)
    assert _latest(out)[changed]["size"] == (tree / changed).stat().st_size


def test_sigint_rolls_back_the_file_in_flight_and_a_rerun_finishes(tmp_path: Path, tiny_weights: Path) -> None:
    tree, out = tmp_path / "in", tmp_path / "out"
    # Taken in this order by one worker: the long one is in flight when the first is done.
    seconds = {"cams/0/clip.mp4": 1.0, "cams/1/clip.mp4": 20.0, "cams/2/clip.mp4": 1.0}
    names = list(seconds)
    for rel, length in seconds.items():
        _clip(tree / rel, length, size="128x96")
    manifest = out / MANIFEST_NAME
    _interrupt(  # once a file is done and another in flight
        ["batch", str(tree), str(out), "--weights", str(tiny_weights), "--workers", "1"],
        lambda: manifest.exists() and f'"{DONE}"' in manifest.read_text() and bool(_partials(out)),
    )
    assert not _partials(out)

    latest = _latest(out)
    done = [rel for rel in names if latest.get(rel, {}).get("status") == DONE]
    rolled_back = [rel for rel in names if latest.get(rel, {}).get("status") == INTERRUPTED]
    assert done and rolled_back and len(done) < len(names)
    assert all(not (out / rel).exists() for rel in rolled_back)  # never a partial file at an output path
    kept = {rel: (out / rel).stat() for rel in done}
    records_before = len(_records(out))

    result = run_cli("batch", str(tree), str(out), "--weights", str(tiny_weights), "--workers", "2")
    assert result.returncode == 0, result.stderr
    for rel, stat in kept.items():
        now = (out / rel).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns), rel
    assert all(record["status"] == DONE for record in _latest(out).values())
    for rel, length in seconds.items():
        assert decodes_cleanly(out / rel) == round(length * 25)
    assert not _partials(out)
    assert {r["input"] for r in _records(out)[records_before:]} == set(names) - set(done)


def test_ray_local_cluster_gives_the_same_outputs(
    tree: Path, local_run: tuple[Path, subprocess.CompletedProcess[str], Path], tiny_weights: Path, tmp_path: Path
) -> None:
    local_out, local_result, _ = local_run
    assert local_result.returncode == 0, local_result.stderr
    out = tmp_path / "out"
    result = run_cli(
        "batch",
        str(tree),
        str(out),
        "--weights",
        str(tiny_weights),
        "--backend",
        "torch",
        "--ray",
        "local",
        "--workers",
        "2",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    latest = _latest(out)
    assert latest[BAD]["status"] == FAILED
    for rel in GOOD:
        assert latest[rel]["status"] == DONE
        # Ray ran the task with the resources it declared: one CPU, no GPU on this machine.
        assert latest[rel]["resources"] == {"CPU": 1.0}
        ray_frames, local_frames = _decoded(out / rel), _decoded(local_out / rel)
        assert [pts for pts, _ in ray_frames] == [pts for pts, _ in local_frames]
        # The same network on the same frames; a float rounding that tips one 8-bit level can
        # make x264 choose differently, so "the same" is near-identical pictures, not bytes.
        for (_, a), (_, b) in zip(ray_frames, local_frames):
            mse = np.mean((a.astype(np.float64) - b) ** 2)
            assert mse == 0 or 10 * np.log10(255**2 / mse) > 40, rel


def test_sigint_reaches_running_ray_tasks_and_they_roll_back(tmp_path: Path, tiny_weights: Path) -> None:
    tree, out = tmp_path / "in", tmp_path / "out"
    names = [f"long{i}.mp4" for i in range(3)]  # two run at once on 2 CPUs, the third waits
    for rel in names:
        _clip(tree / rel, 20.0, size="128x96")
    _interrupt(  # once a task is writing
        ["batch", str(tree), str(out), "--weights", str(tiny_weights), "--ray", "local"],
        lambda: bool(_partials(out)),
    )
    assert not _partials(out)
    latest = _latest(out)
    assert set(latest) == set(names)
    assert INTERRUPTED in {r["status"] for r in latest.values()}
    for rel, record in latest.items():
        assert (out / rel).exists() == (record["status"] == DONE), rel


def test_sigterm_to_the_whole_process_group_stops_cleanly(tmp_path: Path, tiny_weights: Path) -> None:
    """A service stop signals every process: workers leave it to the parent, which rolls back."""
    tree, out = tmp_path / "in", tmp_path / "out"
    _clip(tree / "long.mp4", 20.0, size="128x96")
    proc = _run_until(
        ["batch", str(tree), str(out), "--weights", str(tiny_weights), "--workers", "1"],
        lambda: bool(_partials(out)),
        new_session=True,
    )
    os.killpg(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert _latest(out)["long.mp4"]["status"] == INTERRUPTED  # stopped, not killed
    assert not (out / "long.mp4").exists() and not _partials(out)


def _workers_of(pid: int) -> list[int]:
    """The spawned worker processes among `pid`'s children (not multiprocessing's resource tracker)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def test_a_worker_killed_mid_file_fails_only_that_file(tmp_path: Path, tiny_weights: Path) -> None:
    """As the OOM killer would: SIGKILL the worker; its file is failed and cleaned up, the batch goes on."""
    tree, out = tmp_path / "in", tmp_path / "out"
    _clip(tree / "a_long.mp4", 20.0, size="128x96")  # taken first
    _clip(tree / "b_short.mp4", 0.4)
    proc = _run_until(
        ["batch", str(tree), str(out), "--weights", str(tiny_weights), "--workers", "1"],
        lambda: bool(_partials(out)),
    )
    (worker,) = _workers_of(proc.pid)
    os.kill(worker, signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    latest = _latest(out)
    assert latest["a_long.mp4"]["status"] == FAILED and "signal 9" in latest["a_long.mp4"]["error"]
    assert latest["b_short.mp4"]["status"] == DONE  # done by a fresh worker
    assert decodes_cleanly(out / "b_short.mp4") == 10
    assert not (out / "a_long.mp4").exists() and not _partials(out)


def test_ray_tasks_ask_for_a_gpu_only_when_they_run_on_cuda() -> None:
    assert task_resources("torch", "cpu", cluster_gpus=8, gpus_per_task=1) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources("torch", "cuda", cluster_gpus=8, gpus_per_task=1) == {"num_cpus": 1, "num_gpus": 1}
    assert task_resources("auto", "auto", cluster_gpus=8, gpus_per_task=0.5) == {"num_cpus": 1, "num_gpus": 0.5}
    assert task_resources("auto", "auto", cluster_gpus=0, gpus_per_task=1) == {"num_cpus": 1, "num_gpus": 0}
    assert task_resources("passthrough", "cuda:1", cluster_gpus=8, gpus_per_task=1)["num_gpus"] == 0


def test_ray_missing_is_one_clear_line(tree: Path, tmp_path: Path, tiny_weights: Path) -> None:
    # Python treats a None entry in sys.modules as "not installed": ImportError on import.
    code = "import sys; sys.modules['ray'] = None; from streamdeblur.cli import main; main()"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "batch",
            str(tree),
            str(tmp_path / "out"),
            "--weights",
            str(tiny_weights),
            "--ray",
            "local",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert (
        result.stderr.strip().splitlines()[-1]
        == "streamdeblur: error: --ray needs Ray: pip install 'streamdeblur[ray]'"
    )
    assert not (tmp_path / "out" / MANIFEST_NAME).exists()


@pytest.mark.parametrize(
    "layout, extra, message",
    [
        ("missing input", [], "is not a folder"),
        ("output inside input", [], "is inside INPUT_DIR"),
        ("output is input", [], "OUTPUT_DIR is INPUT_DIR"),
        ("no matching files", ["--glob", "**/*.webm"], "match --glob '**/*.webm'"),
        ("bad glob", ["--glob", "../*.mp4"], "must be relative to INPUT_DIR"),
        ("bad workers", ["--workers", "0"], "--workers must be at least 1"),
        ("bad backend", ["--backend", "nope"], "unknown backend 'nope'"),
        ("bad precision", ["--precision", "fp16", "--device", "cpu"], "--precision fp16 needs a CUDA device"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    layout: str,
    extra: list[str],
    message: str,
    tree: Path,
    tmp_path: Path,
    tiny_weights: Path,
) -> None:
    source, target = {
        "missing input": (tmp_path / "nowhere", tmp_path / "out"),
        "output inside input": (tree, tree / "deblurred"),
        "output is input": (tree, tree),
    }.get(layout, (tree, tmp_path / "out"))
    result = run_cli("batch", str(source), str(target), "--weights", str(tiny_weights), *extra)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("streamdeblur: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not (target / MANIFEST_NAME).exists()  # nothing written


def _item(root: Path, rel: str) -> InputFile:
    stat = (root / rel).stat()
    return InputFile(rel, root / rel, stat.st_size, stat.st_mtime_ns)


def test_discovery_glob_and_an_output_folder_the_glob_leaves_out(tmp_path: Path) -> None:
    for rel in ("a.mp4", "x/b.MP4", "x/y/c.mkv", "x/.hidden.mp4", ".cache/d.mp4", "x/.e.partial.mp4", "x/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [i.rel for i in find_inputs(tmp_path, None)] == ["a.mp4", "x/b.MP4", "x/y/c.mkv"]
    assert [i.rel for i in find_inputs(tmp_path, "**/*.mkv")] == ["x/y/c.mkv"]
    assert [i.rel for i in find_inputs(tmp_path, "*.mp4")] == ["a.mp4"]
    assert [i.rel for i in find_inputs(tmp_path, "x/**/*")] == ["x/b.MP4", "x/notes.txt", "x/y/c.mkv"]
    # An output folder inside the input folder is fine when the glob cannot reach it...
    top_level = find_inputs(tmp_path, "*.mp4")
    check_layout(tmp_path, tmp_path / "deblurred", "*.mp4", top_level)
    # ...and refused when the next run would take the outputs for inputs.
    with pytest.raises(BadUsage):
        check_layout(tmp_path, tmp_path / "deblurred", None, find_inputs(tmp_path, None))


def test_manifest_done_needs_same_input_and_an_output_and_survives_a_torn_line(tmp_path: Path) -> None:
    (tmp_path / "in.mp4").write_bytes(b"12345")
    output = tmp_path / "out.mp4"
    item = _item(tmp_path, "in.mp4")
    with Manifest(tmp_path) as manifest:
        manifest.append(FileRecord(item.rel, item.size, item.mtime_ns, DONE, frames_in=3, frames_out=3))
    with (tmp_path / MANIFEST_NAME).open("a") as raw:
        raw.write('{"input": "torn')  # a run killed while writing
    output.write_bytes(b"video")
    with Manifest(tmp_path) as manifest:
        assert manifest.is_done(item, output)
        assert not manifest.is_done(item, tmp_path / "missing.mp4")
        os.utime(tmp_path / "in.mp4", ns=(item.mtime_ns + 10**9, item.mtime_ns + 10**9))
        assert not manifest.is_done(_item(tmp_path, "in.mp4"), output)
        manifest.append(FileRecord(item.rel, item.size, item.mtime_ns, FAILED, error="x"))
    with Manifest(tmp_path) as manifest:  # the record after the torn line is read, and it wins
        assert manifest.latest[item.rel].status == FAILED
        assert not manifest.is_done(item, output)
