"""Where ONNX files and engines live, and how a cached one is found again.

Every artifact has a JSON sidecar (`NAME.json`) recording what it was made from; an artifact
is reused only when its sidecar matches what is asked for, and rebuilt otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from streamdeblur.cache import user_cache_dir
from streamdeblur.files import replace_atomically

_CHECKOUT_ENGINES = Path(__file__).resolve().parents[2] / "engines"


def engine_dir() -> Path:
    """$STREAMDEBLUR_ENGINE_DIR, else the checkout's engines/, else the user cache's engines/."""
    if os.environ.get("STREAMDEBLUR_ENGINE_DIR"):
        folder = Path(os.environ["STREAMDEBLUR_ENGINE_DIR"])
    elif (_CHECKOUT_ENGINES / "README.md").is_file():
        folder = _CHECKOUT_ENGINES
    else:
        folder = user_cache_dir() / "engines"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def key_of(facts: dict[str, Any]) -> str:
    """A short stable name for a set of facts (what an artifact was built from)."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def read_sidecar(path: Path) -> dict[str, Any] | None:
    meta = sidecar(path)
    if not (path.is_file() and meta.is_file()):
        return None
    try:
        return json.loads(meta.read_text())
    except json.JSONDecodeError:
        return None


def write_with_sidecar(path: Path, payload: bytes, facts: dict[str, Any]) -> Path:
    """The artifact, then its sidecar, each atomically."""
    replace_atomically(path, payload)
    replace_atomically(sidecar(path), (json.dumps(facts, indent=2, sort_keys=True) + "\n").encode())
    return path


def matches(path: Path, facts: dict[str, Any]) -> bool:
    recorded = read_sidecar(path)
    return recorded is not None and all(recorded.get(k) == v for k, v in facts.items())
