"""`streamdeblur quantize` and `--precision int8` on OpenVINO: the IR and its record, its
parity to fp32, its cache key, a run end to end, and `auto` taking int8 only where the record
shows quality kept."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
import torch

from streamdeblur.errors import BadUsage
from streamdeblur.inference.openvino_backend import import_openvino

with contextlib.suppress(BadUsage):
    import_openvino()  # first as the backend imports it: without its telemetry
pytest.importorskip("openvino")
pytest.importorskip("onnxruntime")
pytest.importorskip("nncf")

from streamdeblur.engines.openvino_int8 import (  # noqa: E402
    RECORD_NAME,
    int8_folder,
    keeps_quality,
    quantizer_versions,
    read_int8_record,
)
from streamdeblur.inference import select  # noqa: E402
from streamdeblur.inference.select import create_backend, int8_keeps_quality  # noqa: E402
from streamdeblur.models import DeepDeblur, load_model_config, save_weights  # noqa: E402
from streamdeblur.models.checkpoint import read_card, write_card  # noqa: E402
from streamdeblur.quantize.build import QuantizeSettings, psnr_db, quantize_weights, update_record  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.media import decodes_cleanly, make_clip  # noqa: E402

SMALL = QuantizeSettings(count=4, size=(64, 64), parity_count=2)


@pytest.fixture(scope="module")
def quantized(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random weights of their own (their record is rewritten below), quantized."""
    torch.manual_seed(1)
    folder = tmp_path_factory.mktemp("int8-weights")
    weights = save_weights(DeepDeblur(load_model_config("tiny")), folder / "tiny-int8.safetensors", {"note": "test"})
    quantize_weights(weights, SMALL)
    return weights


def test_quantize_writes_an_ir_and_its_record(quantized: Path) -> None:
    record = read_int8_record(quantized)
    assert record is not None
    ir = Path(record["ir"])
    assert ir.is_file() and ir.with_suffix(".bin").is_file()
    assert record["calibration"] == {**record["calibration"], "count": 4, "size": "64x64"}
    assert "body_models.0.body.0" in record["kept_in_fp32"]  # the finest scale's first convolution
    assert record["parity_db"] > 30
    # Both ways of fitting activation ranges were tried; the one closer to fp32 was kept.
    tried = record["parity_db_by_activation_ranges"]
    assert set(tried) == {"default", "minmax"} and record["parity_db"] == max(tried.values())
    assert max(tried.values()) >= SMALL.parity_target_db and record["accuracy_control"] is None  # not needed
    assert tried[record["activation_ranges"]] == record["parity_db"]
    assert not keeps_quality(record)  # no held-out figure yet


def test_under_the_parity_target_the_costliest_layers_go_back_to_fp32(tmp_path: Path) -> None:
    torch.manual_seed(1)
    weights = save_weights(DeepDeblur(load_model_config("tiny")), tmp_path / "tiny-ac.safetensors", {"note": "test"})
    # In a process of its own, as a user runs it (NNCF's accuracy control starts threads of its own)
    args = ("quantize", str(weights), "--count", "4", "--size", "64x64", "--parity-target", "99", "-q")
    assert run_cli(*args).returncode == 0  # a target over any int8's parity
    record = read_int8_record(weights)
    assert record is not None
    restored, before = record["accuracy_control"], max(record["parity_db_by_activation_ranges"].values())
    assert restored["target_db"] == 99.0 and restored["parity_db"] > before and restored["kept"]
    assert record["parity_db"] == restored["parity_db"]  # the better of the two is what was saved
    returned = restored["returned_to_fp32"]
    assert returned and all("/fq_" in name for name in returned)
    assert any(module.startswith("body_models.") for module in returned.values())  # named as kept_in_fp32 is


def test_int8_output_is_close_to_fp32(quantized: Path) -> None:
    x = torch.rand(1, 3, 48, 80, generator=torch.Generator().manual_seed(0))  # another size than calibrated
    fp32 = create_backend("openvino", quantized, "cpu", "fp32").infer(x)
    int8 = create_backend("openvino", quantized, "cpu", "int8")
    assert int8.precision == "int8"
    assert psnr_db(int8.infer(x).numpy(), fp32.numpy()) > 30


def test_the_key_changes_with_the_weights(quantized: Path, tiny_weights: Path) -> None:
    versions = quantizer_versions()
    assert versions is not None
    assert int8_folder(quantized, versions) != int8_folder(tiny_weights, versions)
    assert int8_folder(quantized, versions) != int8_folder(quantized, {**versions, "nncf": "0"})


def test_a_cards_never_softer_margin_goes_into_the_int8_graph(tmp_path: Path) -> None:
    import dataclasses

    import numpy as np
    import onnxruntime as ort

    from streamdeblur.engines.artifacts import onnx_for_weights
    from streamdeblur.models import with_config

    torch.manual_seed(2)
    model = DeepDeblur(dataclasses.replace(load_model_config("tiny"), never_softer=True)).eval()
    weights = save_weights(model, tmp_path / "tiny-margin.safetensors", {"note": "test"})
    versions = quantizer_versions()
    assert versions is not None
    plain_folder = int8_folder(weights, versions)
    card = weights.with_suffix(".json")
    card.write_text(json.dumps({**json.loads(card.read_text()), "int8": {"never_softer_margin": 0.02}}))
    assert int8_folder(weights, versions) != plain_folder  # a new margin is a new IR, never a stale one
    quantize_weights(weights, SMALL)
    record = read_int8_record(weights)
    assert record is not None and record["never_softer_margin"] == 0.02
    # The graph quantized is the weights' with the margin: a file of its own, computing what the margin's model does.
    assert Path(record["onnx"]) != onnx_for_weights(weights)
    coarse = torch.rand(1, 3, 4, 6, generator=torch.Generator().manual_seed(3))  # a soft picture, to which
    x = torch.nn.functional.interpolate(coarse, size=(32, 48), mode="bilinear")  # the network adds detail
    (graph,) = ort.InferenceSession(record["onnx"]).run(None, {"blurry": x.numpy()})
    with torch.no_grad():
        with_margin, without = with_config(model, never_softer_margin=0.02)(x).numpy(), model(x).numpy()
    assert np.abs(graph - with_margin).max() < 1e-4 and np.abs(with_margin - without).max() > 1e-3


def test_int8_without_an_ir_says_the_command_to_run(tiny_weights: Path) -> None:
    with pytest.raises(BadUsage, match="streamdeblur quantize"):
        create_backend("openvino", tiny_weights, "cpu", "int8")


def test_auto_times_int8_only_where_the_record_keeps_quality(
    quantized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ir = Path(read_int8_record(quantized)["ir"])  # type: ignore[index]
    assert not int8_keeps_quality(quantized)
    labels = [c.label for c in select.cpu_candidates("auto", int8_kept=int8_keeps_quality(quantized))]
    assert "openvino int8" not in labels
    original, card = json.loads((ir.parent / RECORD_NAME).read_text()), read_card(quantized)
    try:
        update_record(ir, parity_db=50.0, held_out={"loss_db": 0.05})
        assert int8_keeps_quality(quantized)
        monkeypatch.setenv("STREAMDEBLUR_CACHE_DIR", str(tmp_path))  # nothing remembered: all timed
        create_backend("auto", quantized, "cpu", "auto", frame_size=(64, 48))
        timed = json.loads((tmp_path / select.CPU_CHOICES).read_text())
        assert any("openvino int8" in entry["seconds"] for entry in timed.values())
        update_record(ir, held_out={"loss_db": 0.3})  # measured, but it loses quality
        assert not int8_keeps_quality(quantized)
        update_record(ir, held_out={"loss_db": 0.05})
        write_card(quantized, {**card, "int8": {"keeps_fp32_quality": False}})  # real footage said no
        assert not int8_keeps_quality(quantized)
        write_card(quantized, card)
        assert int8_keeps_quality(quantized)
    finally:
        (ir.parent / RECORD_NAME).write_text(json.dumps(original))
        write_card(quantized, card)


def test_quantize_and_run_int8_end_to_end(media_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(2)  # weights of its own: the IR is keyed by their hash, and tiny_weights stay unquantized
    weights = save_weights(DeepDeblur(load_model_config("tiny")), tmp_path / "tiny-run.safetensors", {"note": "test"})
    quantize = run_cli("quantize", str(weights), "--count", "2", "--size", "64x64", "--quiet")
    assert quantize.returncode == 0, quantize.stderr
    assert json.loads(quantize.stdout)["parity_db"] > 0
    clip = make_clip("cfr_aac", media_dir)
    out, report = tmp_path / "out.mp4", tmp_path / "report.json"
    result = run_cli(
        "run", str(clip), str(out), "--weights", str(weights), "--backend", "openvino",
        "--precision", "int8", "--report", str(report), "-q",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    facts = json.loads(report.read_text())
    assert facts["backend"] == "openvino" and facts["precision"] == "int8"
    assert facts["frames_out"] == facts["frames_in"] == 30
    assert decodes_cleanly(out)


def test_a_defocus_model_is_calibrated_on_lens_blur(tmp_path: Path) -> None:
    """The int8 ranges come from the blur the weights were trained on, which their card names."""
    import numpy as np

    from streamdeblur.quantize.calibration import network_inputs, trained_blur
    from streamdeblur.synthetic.defocus import render_defocus_pair
    from streamdeblur.synthetic.scenes import TRAIN_PHOTOS

    cfg = load_model_config("tiny")
    lens = save_weights(
        DeepDeblur(cfg), tmp_path / "lens.safetensors", {"training": {"recipe": {"data": {"blur_type": "defocus"}}}}
    )
    shake = save_weights(DeepDeblur(cfg), tmp_path / "shake.safetensors", {"note": "no recipe: motion"})
    assert (trained_blur(lens), trained_blur(shake)) == ("defocus", "motion")
    made = network_inputs(cfg, 2, 48, 64, root=7, blur="defocus")
    expected = render_defocus_pair(np.random.default_rng([7, 0, 1]), 48, 64, photos=TRAIN_PHOTOS).blurry
    assert made[1].shape == (1, 3, 48, 64) and np.array_equal(made[1][0], expected.transpose(2, 0, 1))
    assert not np.array_equal(made[1], network_inputs(cfg, 2, 48, 64, root=7)[1])  # motion blur differs
