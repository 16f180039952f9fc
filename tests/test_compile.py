"""The compiled CPU path (issue 25): when `--compile` auto compiles, that a compiled network is
really compiled, before the run's clock, and gives the eager network's output, and that a
machine that cannot compile runs the eager network with a warning."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch._dynamo
import torch._inductor.config as inductor_config

from streamdeblur.errors import BadUsage
from streamdeblur.inference import BackendSpec
from streamdeblur.inference.concurrent import SIDE_BY_SIDE_THREADS, ConcurrentCalls, one_thread_per_call
from streamdeblur.inference.select import create_backend, worth_compiling
from streamdeblur.inference.torch_backend import TorchBackend
from streamdeblur.io.frame import Frame
from streamdeblur.models import DeepDeblur, load_checkpoint, load_model_config
from streamdeblur.window.assembly import windowed_processor


@pytest.mark.parametrize(
    "frames, size, batch, tile, worth",
    [
        (300, (640, 360), 1, 0, True),  # 10 s at 30 frames/s
        (299, (640, 360), 1, 0, False),
        (75, (1280, 720), 1, 0, True),  # the same pixels in fewer, larger frames
        (None, (640, 360), 1, 0, False),  # a live input: its length is unknown
        (10_000, (640, 360), 2, 0, False),  # the last batch's other shape would compile again
        (10_000, (640, 360), 1, 256, False),
    ],
)
def test_compile_auto_is_for_long_inputs_of_one_shape(
    frames: int | None,
    size: tuple[int, int],
    batch: int,
    tile: int,
    worth: bool,
) -> None:
    assert worth_compiling(frames, size, batch, tile) is worth


@pytest.mark.parametrize("backend", ["onnxruntime", "passthrough", "tensorrt"])
def test_compile_is_refused_for_other_backends(backend: str) -> None:
    with pytest.raises(BadUsage, match=f"--compile is for --backend torch, not {backend}"):
        BackendSpec(backend=backend, compile=True).check()


def test_a_compiled_network_is_compiled_before_the_first_frame_and_matches_eager(tiny_weights: Path) -> None:
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    backend = create_backend("torch", tiny_weights, "cpu", "fp32", frame_size=(64, 48), compile=True)
    assert backend.compiled  # type: ignore[attr-defined]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # compiled while being built
    x = torch.rand(1, 3, 48, 64)
    eager = TorchBackend(load_checkpoint(tiny_weights), torch.device("cpu"), "fp32", channels_last=True)
    assert (backend.infer(x) - eager.infer(x)).abs().max() < 1e-5
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # the frame ran what was compiled


def test_a_machine_that_cannot_compile_runs_the_network_uncompiled() -> None:
    from unittest import mock

    from streamdeblur.inference import torch_backend

    torch._dynamo.reset()
    model = DeepDeblur(load_model_config("tiny"))
    eager = TorchBackend(DeepDeblur(load_model_config("tiny")), torch.device("cpu"), "fp32")
    eager.model.load_state_dict(model.state_dict())
    backend = TorchBackend(model, torch.device("cpu"), "fp32", compiled=True)
    x = torch.rand(1, 3, 32, 48)
    # The module's logger itself: an in-process CLI run elsewhere may have stopped propagation.
    with (
        inductor_config.patch({"cpp.cxx": ("no-such-compiler",), "force_disable_caches": True}),
        mock.patch.object(torch_backend.log, "warning") as warning,
    ):
        out = backend.infer(x)
    assert "cannot compile the network here" in warning.call_args.args[0] and not backend.compiled
    assert torch.equal(out, eager.infer(x))


def test_an_offline_run_compiles_the_network_once_for_the_threads_its_calls_run_on(tiny_weights: Path) -> None:
    """Side by side, each call runs on one thread, and TorchInductor's graph holds for one
    thread count and one kind of input tensor: a warm-up on all threads, or on another kind
    of tensor, made the run's first call compile the network all over again (5 s at
    640x360, with the other call waiting)."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    threads = torch.get_num_threads()
    torch.set_num_threads(SIDE_BY_SIDE_THREADS)
    try:
        spec = BackendSpec(backend="torch", weights=str(tiny_weights), device="cpu", precision="fp32", compile=True)
        backend = spec.ready(frame_size=(64, 48), side_by_side=True)
        processor = windowed_processor(backend, side_by_side=True)  # as pipeline/job.py builds it
        assert isinstance(processor, ConcurrentCalls) and torch.get_num_threads() == SIDE_BY_SIDE_THREADS
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
        rng = np.random.default_rng(0)
        frames = [Frame(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), i, Fraction(1, 25), i) for i in range(4)]
        with one_thread_per_call():  # as pipeline/job.py runs it
            out = processor.submit(frames) + processor.flush()
        assert [f.pts for f in out] == [0, 1, 2, 3]
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # the calls ran what was warmed
    finally:
        torch.set_num_threads(threads)
