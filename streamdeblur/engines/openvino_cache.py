"""Where OpenVINO keeps the blobs it compiles: one folder per network, precision, OpenVINO version
and device, named by a key over them as engines are, with a JSON sidecar saying what it holds.

OpenVINO names each blob by a hash of its own (the graph, the input shape, the settings) and
checks it on load; the key keeps blobs of other weights, versions or devices apart, so that
one folder can be deleted alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from streamdeblur.engines.store import engine_dir, key_of
from streamdeblur.files import file_sha256, replace_atomically


def openvino_cache_dir(
    onnx: Path, precision: str, target: str, version: str, device_name: str, weights: Path | None = None
) -> Path:
    """The cache folder for `onnx` compiled in `precision` by OpenVINO `version` for its device
    `target` (full name `device_name`); `weights`: the weights the ONNX was exported from, when
    it was. The caller asks OpenVINO for version and name: engines/ does not import inference/."""
    facts = {
        "weights_sha256": file_sha256(weights) if weights is not None else None,
        "onnx_sha256": file_sha256(onnx),
        "precision": precision,
        "openvino": version,
        "device": target,
        "device_name": device_name,
    }
    name = f"openvino-{onnx.stem}-{precision}-{key_of(facts)}"
    folder, record = engine_dir() / name, engine_dir() / f"{name}.json"
    folder.mkdir(parents=True, exist_ok=True)
    if not record.is_file():  # the key in the name is what matches; the record says what it stands for
        replace_atomically(record, (json.dumps({**facts, "onnx": str(onnx)}, indent=2, sort_keys=True) + "\n").encode())
    return folder
