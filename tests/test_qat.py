"""Quantization-aware fine-tuning (`quantize --finetune`): the int8 network learns toward
fp32's output, ships beside the weights, and `quantize` exports it instead of quantizing after
training, only for the weights it was made from."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from pathlib import Path

import pytest
import torch

from streamdeblur.errors import BadUsage
from streamdeblur.inference.openvino_backend import import_openvino

with contextlib.suppress(BadUsage):
    import_openvino()  # first as the backend imports it: without its telemetry
pytest.importorskip("openvino")
pytest.importorskip("nncf")

from streamdeblur.engines.openvino_int8 import int8_folder, quantizer_versions, read_int8_record  # noqa: E402
from streamdeblur.files import file_sha256  # noqa: E402
from streamdeblur.inference.select import create_backend  # noqa: E402
from streamdeblur.models import DeepDeblur, load_model_config, save_weights  # noqa: E402
from streamdeblur.quantize.build import QuantizeSettings, psnr_db, quantize_weights  # noqa: E402
from streamdeblur.quantize.qat import (  # noqa: E402
    QatSettings,
    finetune_int8,
    finetuned_for,
    load_finetuned,
    qat_path,
    read_facts,
)

QUICK = QatSettings(
    steps=40, batch=2, patch=32, pool=8, pool_size=64, calibration=4, parity_count=2, log_every=20, lr=3e-4,
    compiled_quantizers=False, real_share=0.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Tiny random weights with never_softer on, their folder key before fine-tuning, fine-tuned."""
    torch.manual_seed(3)
    model = DeepDeblur(dataclasses.replace(load_model_config("tiny"), never_softer=True))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(2.0)  # outputs far from the input, so int8 costs something to win back (27 dB)
    folder = tmp_path_factory.mktemp("qat-weights")
    weights = save_weights(model, folder / "tiny-qat.safetensors", {"note": "test"})
    before = int8_folder(weights, quantizer_versions())  # type: ignore[arg-type]
    finetune_int8(weights, settings=QUICK)
    return weights, before


def test_finetuning_brings_int8_closer_to_fp32(finetuned: tuple[Path, Path]) -> None:
    weights, _ = finetuned
    facts = read_facts(qat_path(weights))
    history = facts["history"]
    assert [h["step"] for h in history] == [0, 20, 40]
    assert history[-1]["parity_db"] > history[0]["parity_db"] + 1  # it learned
    assert facts["settings"]["steps"] == 40
    model = load_finetuned(weights)
    assert model.cfg.never_softer  # off while it learned, back on as the weights have it


def test_a_finetuning_goes_on_from_where_an_earlier_one_stopped(finetuned: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = finetuned
    first = read_facts(qat_path(weights))
    on = finetune_int8(
        weights, tmp_path / "on.safetensors", dataclasses.replace(QUICK, steps=20), start=qat_path(weights)
    )
    facts = read_facts(on)
    assert facts["runs"] == [{k: first[k] for k in ("settings", "history", "minutes")}]
    # the network and its quantizers came back as they were saved: the same parity on the same inputs
    assert facts["history"][0]["parity_db"] == first["history"][-1]["parity_db"]


def test_quantize_exports_the_finetuned_network(finetuned: tuple[Path, Path]) -> None:
    weights, before = finetuned
    assert finetuned_for(weights) == qat_path(weights)
    ir = quantize_weights(weights, QuantizeSettings(count=2, size=(64, 64), parity_count=2))
    assert ir.parent != before  # a fine-tuning changes the IR's key
    record = read_int8_record(weights)
    assert record is not None and "fine-tuning" in record["route"]
    assert record["finetuned"]["sha256"] == file_sha256(qat_path(weights))
    assert record["parity_db"] > 20  # these random weights reach 27 dB at best (above)
    # Every convolution's weights and inputs run in int8 in the IR, as in the fine-tuned network
    network = import_openvino().Core().read_model(record["ir"])
    quantizers = sum(1 for op in network.get_ops() if op.get_type_name() == "FakeQuantize")
    convolutions = sum(1 for m in load_finetuned(weights).modules() if isinstance(m, torch.nn.Conv2d))
    assert quantizers > convolutions  # one on each weight, and on the activations they take
    x = torch.rand(1, 3, 40, 72, generator=torch.Generator().manual_seed(0))  # a size it never saw
    int8 = create_backend("openvino", weights, "cpu", "int8").infer(x).numpy()
    with torch.no_grad():
        # Loosely: NNCF's export rounds a weight here and there otherwise than its training
        # did, and these random weights amplify that (the shipped models' IRs are judged on
        # their parity to fp32 instead).
        assert psnr_db(int8, load_finetuned(weights)(x).numpy()) > 18


def test_a_finetuning_of_other_weights_is_not_used(finetuned: tuple[Path, Path], tmp_path: Path) -> None:
    weights, _ = finetuned
    torch.manual_seed(4)
    other = save_weights(DeepDeblur(load_model_config("tiny")), tmp_path / "other.safetensors", {"note": "test"})
    shutil.copy(qat_path(weights), qat_path(other))
    assert finetuned_for(other) is None  # post-training quantization, not a stale fine-tuning


@pytest.mark.parametrize("name", ["tiny", "deepdeblur-4scale", "deepdeblur-4scale-k5-fba-window-gate-lean"])
def test_what_stays_in_fp32_is_named_as_nncf_names_it(name: str) -> None:
    """The input, the restored frame and the finest scale's first and last convolutions: NNCF
    names operations by call order (qat.fp32_names), so a wrong count would keep another
    scale's convolution in fp32 and quantize the finest."""
    from nncf.torch.function_hook import wrap_model
    from nncf.torch.function_hook.nncf_graph.nncf_graph_builder import build_nncf_graph

    from streamdeblur.models.checkpoint import load_checkpoint, resolve_weights
    from streamdeblur.quantize.qat import fp32_names

    cfg = load_model_config("tiny") if name == "tiny" else load_checkpoint(resolve_weights(name)).cfg
    graph = build_nncf_graph(wrap_model(DeepDeblur(cfg)), torch.rand(1, cfg.in_channels, 32, 32))
    nodes = {node.node_name: node for node in graph.get_all_nodes()}
    x, output, first, last = fp32_names(cfg)
    assert (nodes[x].node_type, nodes[output].node_type) == ("nncf_model_input", "add")

    def shapes(node_name: str) -> list[tuple[int, ...]]:  # activation, weight
        return [tuple(edge.tensor_shape) for edge in graph.get_input_edges(nodes[node_name])][:2]

    k, feats = cfg.kernel_size, cfg.feats[0]
    assert shapes(first) == [(1, cfg.in_channels + 3, 32, 32), (feats, cfg.in_channels + 3, k, k)]
    assert shapes(last) == [(1, feats, 32, 32), (3, feats, k, k)]  # full size: the finest scale


def test_a_share_of_the_inputs_comes_from_real_videos(tmp_path: Path) -> None:
    """Cut from the training split of the real videos the card names (never another split)."""
    import cv2
    import numpy as np

    from streamdeblur.quantize.qat import _real_inputs

    for split, level in (("train", 40), ("val", 200)):
        for name in ("blur", "sharp"):
            folder = tmp_path / "real" / split / "clip_0" / name
            folder.mkdir(parents=True)
            for i in range(3):
                cv2.imwrite(str(folder / f"{i:06d}.png"), np.full((48, 64, 3), level, np.uint8))
    card = {"training": {"recipe": {"data": {"real_footage": str(tmp_path / "real")}}}}
    weights = save_weights(DeepDeblur(load_model_config("tiny")), tmp_path / "w.safetensors", card)
    cfg = load_model_config("tiny")
    found = _real_inputs(weights, cfg, 5, dataclasses.replace(QUICK, pool_size=32))
    assert found.shape == (5, 3, 32, 32)
    assert torch.allclose(found, torch.full_like(found, 40 / 255))  # the training split's frames
    assert len(_real_inputs(weights, cfg, 0, QUICK)) == 0
