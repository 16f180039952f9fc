"""Quantizing a model's exported network to int8 with NNCF's post-training quantization, and
checking it against fp32 before it is kept."""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamdeblur import __version__
from streamdeblur.engines.artifacts import onnx_for_weights
from streamdeblur.engines.onnx_export import INPUT_NAME
from streamdeblur.engines.openvino_int8 import (
    IR_NAME,
    PARITY_TARGET_DB,
    RECORD_NAME,
    int8_folder,
    quantizer_versions,
)
from streamdeblur.files import replace_atomically
from streamdeblur.inference.openvino_backend import INSTALL, import_openvino, import_without_telemetry, openvino_core
from streamdeblur.models import load_checkpoint
from streamdeblur.models.checkpoint import never_softer_margin
from streamdeblur.quantize.calibration import ACCURACY_ROOT, CALIBRATION_ROOT, PARITY_ROOT, network_inputs, trained_blur
from streamdeblur.quantize.scopes import fp32_scope, node_modules

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QuantizeSettings:
    count: int = 64  # calibration inputs
    size: tuple[int, int] = (256, 256)  # width, height
    parity_count: int = 8
    finest: str = "ends"  # scopes.fp32_scope
    preset: str = "performance"  # NNCF: performance (symmetric) or mixed (asymmetric activations)
    fast_bias_correction: bool = False
    # How activation ranges are fitted, each tried and the one closer to fp32 kept (parity, on
    # inputs apart from calibration's): NNCF's default clips outliers, which suits the picture
    # model (48.7 dB against 47.7 with minmax); the video model's features need their whole
    # range (42.7 dB against 39.2).
    activation_ranges: tuple[str, ...] = ("default", "minmax")
    # Below this parity, NNCF's accuracy control returns to fp32, one at a time, the quantized
    # layers that cost the most, judged on inputs of its own, until parity reaches it. The video
    # model: 42.7 dB with none returned; at a target of 45, 46.4 dB (3 of 49 returned) but 0.65 dB
    # lost on real footage; at 50, 51.5 dB (9 returned), 0.12 dB lost there, 0.9x the speed; at
    # 53, no better on real footage (BENCHMARKS.md, "int8 accuracy control").
    parity_target_db: float = PARITY_TARGET_DB
    accuracy_count: int = 8


def import_nncf() -> Any:
    """nncf, imported without its usage telemetry (as openvino is: import_openvino)."""
    import_openvino()
    nncf = import_without_telemetry("nncf", f"quantize needs NNCF: {INSTALL}")
    nncf.set_log_level(logging.ERROR)
    return nncf


IDENTICAL_DB = 100.0  # psnr_db of two identical outputs (fp32 against itself)


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two outputs in [0, 1], clipped as a frame is when written."""
    mse = float(np.mean((np.clip(a, 0, 1) - np.clip(b, 0, 1)) ** 2))
    return IDENTICAL_DB if mse == 0 else float(10 * np.log10(1.0 / mse))


def quantize_weights(weights: Path, settings: QuantizeSettings = QuantizeSettings()) -> Path:
    """The int8 IR of `weights` (quantized now, replacing one made before) and its record;
    returns the IR's path."""
    ov, nncf = import_openvino(), import_nncf()
    versions = quantizer_versions()
    assert versions is not None  # both imported above
    model = load_checkpoint(weights)
    cfg = model.cfg
    margin = never_softer_margin(weights, "int8") if cfg.never_softer else 0.0
    onnx = onnx_for_weights(weights, model=model, never_softer_margin=margin)
    scope = fp32_scope(onnx, cfg, settings.finest)
    width, height = settings.size
    blur = trained_blur(weights)
    started = time.perf_counter()
    calibration = network_inputs(cfg, settings.count, height, width, CALIBRATION_ROOT, blur=blur)
    rendered_s = time.perf_counter() - started
    network = openvino_core().read_model(str(onnx))
    network.reshape({INPUT_NAME: [1, cfg.in_channels, height, width]})  # one static shape to calibrate
    parity_inputs = network_inputs(cfg, settings.parity_count, height, width, PARITY_ROOT, blur=blur)
    reference = _outputs(ov, network, parity_inputs)
    tried: dict[str, float] = {}
    best: tuple[float, str, Any] | None = None
    for ranges in settings.activation_ranges:
        log.info(
            "quantizing %s on %d calibration inputs of %dx%d (%s activation ranges)",
            weights.name,
            settings.count,
            width,
            height,
            ranges,
        )
        with redirect_stdout(io.StringIO()):  # NNCF draws progress bars on stdout, where the record goes
            candidate = nncf.quantize(
                network,
                nncf.Dataset(calibration),
                preset=nncf.QuantizationPreset(settings.preset),
                subset_size=settings.count,
                fast_bias_correction=settings.fast_bias_correction,
                ignored_scope=nncf.IgnoredScope(patterns=scope.patterns(), validate=False),
                advanced_parameters=_advanced(nncf, ranges),
            )
        tried[ranges] = round(psnr_db(_outputs(ov, candidate, parity_inputs), reference), 2)
        if best is None or tried[ranges] > best[0]:
            best = (tried[ranges], ranges, candidate)
    assert best is not None, "no activation ranges to try"
    parity, ranges, quantized = best
    restored: dict[str, Any] | None = None
    if parity < settings.parity_target_db:
        log.info("parity %.1f dB, under %.0f: the costliest layers back to fp32", parity, settings.parity_target_db)
        judged_on = network_inputs(cfg, settings.accuracy_count, height, width, ACCURACY_ROOT, blur=blur)
        candidate = _restore_accuracy(nncf, network, calibration, judged_on, scope.patterns(), ranges, settings)
        restored_parity = round(psnr_db(_outputs(ov, candidate, parity_inputs), reference), 2)
        restored = {
            "target_db": settings.parity_target_db,
            "inputs": settings.accuracy_count,
            "parity_db": restored_parity,
            "returned_to_fp32": _by_module(_quantizers(quantized) - _quantizers(candidate), node_modules(onnx)),
            "kept": restored_parity > parity,
        }
        if restored_parity > parity:
            parity, quantized = restored_parity, candidate
    quantize_s = time.perf_counter() - started - rendered_s
    quantized.reshape({INPUT_NAME: [-1, cfg.in_channels, -1, -1]})  # any size, as the ONNX takes
    folder = int8_folder(weights, versions)
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    ov.save_model(quantized, str(partial / IR_NAME), compress_to_fp16=False)
    record = {
        "weights": str(weights),
        "onnx": str(onnx),
        **versions,
        "streamdeblur": __version__,
        "route": "NNCF post-training quantization of the OpenVINO model read from the ONNX export",
        "preset": settings.preset,
        "activation_ranges": ranges,
        "parity_db_by_activation_ranges": tried,
        "fast_bias_correction": settings.fast_bias_correction,
        "kept_in_fp32": list(scope.modules),
        "never_softer_margin": margin,
        "kept_in_fp32_nodes": len(scope.nodes),
        "calibration": {
            "count": settings.count,
            "size": f"{width}x{height}",
            "data": f"synthetic {blur} blur from the training photos and seeds (quantize/calibration.py)",
        },
        "accuracy_control": restored,
        "parity_db": round(parity, 2),
        "parity_count": settings.parity_count,
        "seconds": {"render": round(rendered_s, 1), "quantize": round(quantize_s, 1)},
    }
    _write_record(partial / RECORD_NAME, record)
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    log.info("int8 IR of %s: %s (parity to fp32 %.1f dB)", weights.name, folder, parity)
    return folder / IR_NAME


def _advanced(nncf: Any, ranges: str) -> Any:
    """NNCF's advanced parameters for `ranges` ("default": its own; "minmax": the whole range)."""
    if ranges == "default":
        return None
    if ranges != "minmax":
        raise ValueError(f"unknown activation ranges {ranges!r}")
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    return AdvancedQuantizationParameters(activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX)


def _restore_accuracy(
    nncf: Any,
    network: Any,
    calibration: list[np.ndarray],
    inputs: list[np.ndarray],
    ignored: list[str],
    ranges: str,
    settings: QuantizeSettings,
) -> Any:
    """NNCF's accuracy control: quantized as with `ranges`, then the layers whose int8 costs
    the most returned to fp32 until parity to fp32 on `inputs` (not the parity check's) reaches
    the target."""
    from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

    references = np.split(_outputs(import_openvino(), network, inputs), len(inputs))

    def parity(compiled: Any, items: Any) -> float:
        pairs = list(items)
        return psnr_db(np.concatenate([compiled(x)[0] for x, _ in pairs]), np.concatenate([r for _, r in pairs]))

    with redirect_stdout(io.StringIO()):
        return nncf.quantize_with_accuracy_control(
            network,
            nncf.Dataset(calibration),
            nncf.Dataset(list(zip(inputs, references, strict=True)), lambda item: item[0]),
            validation_fn=parity,
            max_drop=IDENTICAL_DB - settings.parity_target_db,  # from fp32's own score on `parity`
            drop_type=nncf.DropType.ABSOLUTE,
            preset=nncf.QuantizationPreset(settings.preset),
            subset_size=settings.count,
            fast_bias_correction=settings.fast_bias_correction,
            ignored_scope=nncf.IgnoredScope(patterns=ignored, validate=False),
            advanced_quantization_parameters=_advanced(nncf, ranges),
            advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(max_num_iterations=40),
        )


def _by_module(quantizers: set[str], modules: dict[str, str]) -> dict[str, str]:
    """Each FakeQuantize (named NODE/fq_...) and the module its ONNX node came from."""
    return {name: modules.get(name.split("/")[0]) or "top level" for name in sorted(quantizers)}


def _quantizers(network: Any) -> set[str]:
    """The names of the network's FakeQuantize operations (what runs in int8)."""
    return {op.get_friendly_name() for op in network.get_ops() if op.get_type_name() == "FakeQuantize"}


def _outputs(ov: Any, network: Any, inputs: list[np.ndarray]) -> np.ndarray:
    """The network's outputs for `inputs`, computed in fp32 (int8 layers stay int8)."""
    compiled = openvino_core().compile_model(network, "CPU", {ov.properties.hint.inference_precision(): "f32"})
    return np.concatenate([compiled(x)[0] for x in inputs])


def _write_record(path: Path, record: dict[str, Any]) -> None:
    replace_atomically(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


def update_record(ir: Path, **facts: Any) -> dict[str, Any]:
    """The IR's record with `facts` added (the held-out check's figures)."""
    path = ir.with_name(RECORD_NAME)
    record: dict[str, Any] = {**json.loads(path.read_text()), **facts}
    _write_record(path, record)
    return record
