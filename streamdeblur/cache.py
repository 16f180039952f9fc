"""The user's cache folder: what the tool measures or gathers once and keeps between runs."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """$STREAMDEBLUR_CACHE_DIR, else $XDG_CACHE_HOME/streamdeblur, else ~/.cache/streamdeblur."""
    if os.environ.get("STREAMDEBLUR_CACHE_DIR"):
        return Path(os.environ["STREAMDEBLUR_CACHE_DIR"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "streamdeblur"
