"""still_pass (window/still.py): where nothing in a window moved against the camera, the frame
passes through after the network, in every path that restores windows (a run's processor,
many streams, eval), and never where the camera pans or the window has no real neighbour."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from streamdeblur.inference.concurrent import ConcurrentCalls, one_thread_per_call
from streamdeblur.inference.processor import FrameProcessor
from streamdeblur.io import Frame, Output
from streamdeblur.io.live_source import LiveSource
from streamdeblur.models import load_model_config
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.pipeline.fan_in import BatchAcrossStreams
from streamdeblur.pipeline.lane import StreamLane
from streamdeblur.pipeline.stats import RunStats
from streamdeblur.pipeline.streams_runner import ManyStreams
from streamdeblur.synthetic.scenes import procedural_scene
from streamdeblur.window.assembly import FrameWindow, WindowedProcessor
from streamdeblur.window.still import STILL_BLOCK, hand_through, still_keep
from tests.fakes import TB, Connection, ListSink, SleepyBackend

SIZE = 64  # two blocks of STILL_BLOCK a side


def _wall() -> np.ndarray:
    return np.round(procedural_scene(np.random.default_rng(3), SIZE, SIZE) * 255).astype(np.uint8)


def _still_camera(index: int) -> np.ndarray:
    """A still camera's frame: the same wall under fresh grain of up to 2 levels, and a bright
    bar that crosses the bottom right block, 4 px a frame."""
    grain = np.random.default_rng(100 + index).integers(-2, 3, (SIZE, SIZE, 3))
    frame = np.clip(_wall().astype(np.int16) + grain, 0, 255).astype(np.uint8)
    frame[44:60, 34 + 3 * (index % 5) : 42 + 3 * (index % 5)] = 250
    return frame


def _panning_camera(index: int) -> np.ndarray:
    """A steady pan, 3 px a frame, each frame blurred alike along it."""
    scene = np.round(procedural_scene(np.random.default_rng(4), SIZE, SIZE + 60) * 255).astype(np.uint8)
    blurred = np.mean([scene[:, 3 * index + k : 3 * index + k + SIZE] for k in range(3)], axis=0)
    return np.round(blurred).astype(np.uint8)


def _still_cfg(name: str = "tiny-k3") -> DeepDeblurConfig:
    return replace(load_model_config(name), align="none", still_pass=True)


def test_a_still_cameras_blocks_are_kept_and_the_block_where_something_moved_is_not() -> None:
    frames = [_still_camera(i) for i in (1, 0, 2)]
    keep = still_keep(frames)
    assert keep is not None and keep.shape == (2, 2)
    assert keep[0, 0] == 1.0 and keep[0, 1] == 1.0  # grain alone: still
    assert keep[1, 1] == 0.0  # the bar moved there


def test_a_window_without_real_neighbours_and_a_steady_pan_keep_nothing() -> None:
    frame = _still_camera(0)
    assert still_keep([frame, frame, frame]) is None  # padding: a picture, or a shot's first frame
    pan = [_panning_camera(i) for i in (1, 0, 2)]
    keep = still_keep(pan)
    assert keep is not None and not keep.any()  # aligned these would agree; as the camera gave them, they moved


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_hand_through_gives_the_frame_where_kept_and_the_output_elsewhere(dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = 255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1
    frame, output = (rng.uniform(0, top, (SIZE, 40, 3)).astype(dtype) for _ in range(2))
    keep = np.array([[1.0, 1.0], [0.0, 0.0]], np.float32)
    blended = hand_through(output, frame, keep)
    assert blended.dtype == frame.dtype and blended.shape == frame.shape
    assert np.array_equal(
        blended[: STILL_BLOCK // 2], frame[: STILL_BLOCK // 2]
    )  # a kept block's first half: the frame
    assert np.array_equal(blended[-STILL_BLOCK // 2 :], output[-STILL_BLOCK // 2 :])
    assert hand_through(output, frame, np.zeros_like(keep)) is output


def test_a_models_levels_say_how_little_the_frames_may_differ() -> None:
    """The grain differs by up to 4 levels between frames (about 1 on the smaller copy): under
    3 levels that is still, under a tenth of a level it is not; the config's levels reach the
    window and survive the weights' record."""
    frames = [_still_camera(i) for i in (1, 0, 2)]
    assert still_keep(frames, low=3.0)[0, 0] == 1.0  # type: ignore[index]
    assert still_keep(frames, low=0.1)[0, 0] == 0.0  # type: ignore[index]
    strict = replace(_still_cfg(), still_pass_levels=0.1)
    assert DeepDeblurConfig.from_dict(strict.to_dict()).still_pass_levels == 0.1
    assert "still_pass_levels" not in _still_cfg().to_dict()  # the default is not written
    window = FrameWindow(strict)
    for index in range(3):
        window.push(Frame(_still_camera(index), index, TB, index))
    window.flush()
    assert window.take_still(1) is None  # nothing still enough at a tenth of a level


def test_the_single_frame_model_hands_through_frames_that_differ_by_four_levels() -> None:
    """Taped still footage differs between frames by a few levels of noise and jitter: the
    single-frame model takes up to 5 (rule W7 in docs/real-footage-rules.md), where 3 would blend
    its own output into blocks 4 levels apart."""
    from streamdeblur.models import load_checkpoint
    from streamdeblur.window.still import StillHistory

    cfg = load_checkpoint("deepdeblur-4scale").cfg  # as shipped, not the architecture's defaults
    base = np.full((64, 96, 3), 120, np.uint8)
    frames = [Frame(base + np.uint8(4 * (i % 2)), i, TB, i) for i in range(3)]
    history = StillHistory(cfg)
    history.push_all(frames)
    keep, _ = history.take_still(2)  # type: ignore[misc]
    assert cfg.still_pass_levels == 5.0 and keep.min() == 1.0
    assert still_keep([f.pixels for f in reversed(frames)], low=3.0).max() < 1.0  # type: ignore[union-attr]


def test_a_neighbour_of_another_size_is_no_neighbour() -> None:
    """A folder of photos of different sizes through a single-frame model: nothing to compare."""
    frame = _still_camera(0)
    assert still_keep([frame, frame[:48].copy()]) is None


class _Smear(SleepyBackend):
    """A network that changes every pixel: the mean of the window's frames, a level darker."""

    def __init__(self, cfg: DeepDeblurConfig) -> None:
        super().__init__(0.0)
        self.model_config = cfg  # type: ignore[misc]

    def infer(self, batch: torch.Tensor, slot: int = 0) -> torch.Tensor:
        n, channels, height, width = batch.shape
        return batch.view(n, channels // 3, 3, height, width).mean(1) - 1 / 255


def _check_still_handed_through(done: list[Frame]) -> None:
    assert [f.index for f in done] == list(range(len(done)))
    for frame in done[1:-1]:
        original = _still_camera(frame.index)
        assert np.array_equal(frame.pixels[:16], original[:16])  # the top blocks' outer half: the frame itself
        assert not np.array_equal(frame.pixels[44:60, 34:56], original[44:60, 34:56])  # the bar: the network's work


@pytest.mark.parametrize("side_by_side", [False, True])
def test_a_runs_processor_hands_the_still_blocks_through(side_by_side: bool) -> None:
    cfg = _still_cfg()
    frames = [Frame(_still_camera(i), i, TB, i) for i in range(6)]
    if side_by_side:
        with one_thread_per_call():
            processor = WindowedProcessor.end_to_end(ConcurrentCalls(FrameProcessor(_Smear(cfg)), 2, 1), cfg)
            done = processor.submit(frames[:3]) + processor.submit(frames[3:]) + processor.flush()
            processor.close()
    else:
        processor = WindowedProcessor(FrameProcessor(_Smear(cfg)), cfg)
        done = processor.submit(frames[:3]) + processor.submit(frames[3:]) + processor.flush()
    _check_still_handed_through(done)


@pytest.mark.parametrize("side_by_side", [False, True])
def test_a_single_frame_models_run_compares_each_frame_with_the_ones_before(side_by_side: bool) -> None:
    """live's default and pictures' model: no window of its own, so the frames before each one
    in the stream tell where nothing moved; the first frame has none and is the network's."""
    from streamdeblur.window.assembly import windowed_processor

    cfg = _still_cfg("tiny")
    backend = _Smear(cfg)
    frames = [Frame(_still_camera(i), i, TB, i) for i in range(6)]
    with one_thread_per_call():
        processor = windowed_processor(backend, side_by_side=side_by_side)
        done = processor.submit(frames[:2]) + processor.submit(frames[2:]) + processor.flush()
        getattr(processor, "close", lambda: None)()
    assert [f.index for f in done] == list(range(6))
    assert not np.array_equal(done[0].pixels[:16], frames[0].pixels[:16])  # nothing before it
    _check_still_handed_through(done)


def test_unrelated_pictures_are_not_compared_with_one_another() -> None:
    from streamdeblur.window.assembly import windowed_processor
    from streamdeblur.window.still import StillProcessor

    backend = _Smear(_still_cfg("tiny"))
    assert isinstance(windowed_processor(backend), StillProcessor)
    assert not isinstance(windowed_processor(backend, pictures=True), StillProcessor)


class _StillCamera(Connection):
    def frames(self) -> Iterator[Frame]:
        for frame in super().frames():
            yield Frame(_still_camera(frame.index), frame.pts, frame.time_base, frame.index)


@pytest.mark.parametrize("model", ["tiny-k3", "tiny"])
def test_many_streams_hand_each_streams_still_blocks_through(model: str) -> None:
    from streamdeblur.pipeline.streams_job import _window

    cfg = _still_cfg(model)
    stop, arrivals = threading.Event(), threading.Condition()
    lanes = []
    for number in range(2):
        finish = threading.Event()
        source = LiveSource(_StillCamera(0, 8, (SIZE, SIZE)), stop, finish, pace=True)
        lanes.append(
            StreamLane(
                f"s{number}", "mem", "list", source, Output(ListSink()), RunStats(), stop, finish, arrivals,
                max_latency_s=None, window=_window(cfg),
            )
        )  # fmt: skip
    for lane in lanes:
        lane.stats.start()
    batcher = BatchAcrossStreams(lanes, FrameProcessor(_Smear(cfg)), 2, 0.02, arrivals, stop)
    ManyStreams(batcher).run(threading.Event())
    for lane in lanes:
        sink = lane.output.sink
        assert isinstance(sink, ListSink) and len(sink.frames) == 8
        _check_still_handed_through(sink.frames)
        assert lane.result is not None and lane.result.still_pass is not None  # each stream's report says so
        assert lane.result.still_pass["frames"] == 8 and lane.result.still_pass["frames_handed_through"] >= 6


def test_the_video_default_hands_a_still_cameras_background_back_exactly() -> None:
    """The shipped video model, scored as `eval` scores it: what did not move comes back bit
    for bit in 8 bits; where the bar moved, the network's work, fused from the neighbours
    (without refuse_unsharper) or, as it ships, from the frame alone: no neighbour is sharper
    than these sharp frames, and the sharp bar comes back as it went in."""
    from dataclasses import replace

    from streamdeblur.inference import create_backend
    from streamdeblur.training.scoring import deblur_clip

    backend = create_backend("torch", "deepdeblur-4scale-k5-fba-window-gate-lean", "cpu", "fp32")
    assert backend.model_config is not None and backend.model_config.still_pass
    clip = [_still_camera(i) for i in range(7)]
    alone = [np.round(out * 255).astype(np.uint8) for out in deblur_clip(backend, clip)]
    assert np.array_equal(alone[3], clip[3])
    backend.model_config = replace(backend.model_config, refuse_unsharper=None)
    fused = [np.round(out * 255).astype(np.uint8) for out in deblur_clip(backend, clip)]
    assert np.array_equal(fused[3][:16], clip[3][:16])
    assert not np.array_equal(fused[3][44:60, 34:56], clip[3][44:60, 34:56])


def test_the_run_report_says_what_was_handed_through(tmp_path: Path) -> None:
    """`run` on a still camera's frames with the video default: the report names the levels and
    how much of the clip went out as it came in; a single picture has nothing to compare."""
    import json

    import cv2

    from tests.conftest import run_cli

    frames = tmp_path / "frames"
    frames.mkdir()
    for index in range(6):
        cv2.imwrite(str(frames / f"frame_{index:03d}.png"), cv2.cvtColor(_still_camera(index), cv2.COLOR_RGB2BGR))
    result = run_cli(
        "run", str(frames), f"{tmp_path / 'out'}/", "--backend", "torch", "--report", str(tmp_path / "r.json"), "-q"
    )
    assert result.returncode == 0, result.stderr
    still = json.loads((tmp_path / "r.json").read_text())["still_pass"]
    assert still["levels"] == 3.0 and still["frames"] == 6
    assert still["frames_handed_through"] >= 4 and still["share"] > 0.3  # the wall, in every frame with neighbours
    picture = frames / "frame_000.png"
    result = run_cli(
        "run", str(picture), str(tmp_path / "one.png"), "--backend", "torch", "--report", str(tmp_path / "p.json"), "-q"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "p.json").read_text())["still_pass"] is None
