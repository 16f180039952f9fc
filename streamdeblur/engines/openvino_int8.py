"""Where a model's int8 OpenVINO IR lives, and the record that says whether it keeps quality.

The IR (model.xml, model.bin) and its record (quantization.json) lie in one folder beside the
engines, named by a key over the weights' sha256 and the OpenVINO and NNCF versions: weights,
or either version, changing makes another folder, so a stale IR is never loaded. The versions
are the installed distributions' (read without importing either package).
"""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from streamdeblur.engines.store import engine_dir, key_of
from streamdeblur.files import file_sha256
from streamdeblur.models.checkpoint import never_softer_margin

IR_NAME = "model.xml"
RECORD_NAME = "quantization.json"
# The rule `auto` applies before it will time int8: the int8 network's output within
# MIN_PARITY_DB of fp32's, and no more than MAX_LOSS_DB lost against the sharp frames of the
# model's held-out sample. The bounds are the ones a viewer cannot see: 45 dB is under a
# level's error, 0.1 dB a tenth of what the network gains.
MIN_PARITY_DB = 45.0
MAX_LOSS_DB = 0.1
# `quantize` returns layers to fp32 until parity reaches this (quantize/build.py says why 50)
PARITY_TARGET_DB = 50.0


def quantizer_versions() -> dict[str, str] | None:
    """The OpenVINO and NNCF versions installed, or None without both."""
    try:
        return {"openvino": version("openvino"), "nncf": version("nncf")}
    except PackageNotFoundError:
        return None


def int8_folder(weights: Path, versions: dict[str, str]) -> Path:
    """The folder of the int8 IR of `weights` made by these versions, and with their card's
    never_softer margin where it has one (not created here)."""
    facts: dict[str, Any] = {"weights_sha256": file_sha256(weights), **versions}
    margin = never_softer_margin(weights, "int8")
    if margin:  # named only where set, so the folders of models without one keep their keys
        facts["never_softer_margin"] = margin
    return engine_dir() / f"{weights.stem}-int8-openvino-{key_of(facts)}"


def read_int8_record(weights: Path) -> dict[str, Any] | None:
    """The record of the installed versions' int8 IR of `weights`, if it has been made."""
    versions = quantizer_versions()
    if versions is None:
        return None
    folder = int8_folder(weights, versions)
    record, ir = folder / RECORD_NAME, folder / IR_NAME
    if not (record.is_file() and ir.is_file() and ir.with_suffix(".bin").is_file()):
        return None
    try:
        found: dict[str, Any] = json.loads(record.read_text())
    except json.JSONDecodeError:
        return None
    return {**found, "ir": str(ir)}


def keeps_quality(record: dict[str, Any] | None) -> bool:
    """Whether the record shows int8 keeping fp32's quality (MIN_PARITY_DB, MAX_LOSS_DB): both
    measured, the held-out loss on the model's held-out sample."""
    if not record:
        return False
    parity = record.get("parity_db")
    held_out = record.get("held_out") or {}
    loss = held_out.get("loss_db")
    return parity is not None and loss is not None and parity >= MIN_PARITY_DB and loss <= MAX_LOSS_DB
