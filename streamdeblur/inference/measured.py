"""Choices measured once on this machine and remembered in the user's cache folder.

Which way of running the network is fastest depends on the CPU (native bf16 is several times
faster than fp32 on one CPU and slower on another), its thread count and the work's size, so
it is timed rather than guessed, once per set of such facts.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from streamdeblur.cache import user_cache_dir
from streamdeblur.engines.store import key_of
from streamdeblur.files import replace_atomically
from streamdeblur.inference.precision import cpu_facts
from streamdeblur.stopping import stop_point

log = logging.getLogger(__name__)


def machine_facts() -> dict[str, Any]:
    """What makes a CPU timing this machine's: the CPU, its threads, PyTorch, OpenMP's waiting."""
    return {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": cpu_facts(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", ""),
    }


def fastest(record: str, facts: dict[str, Any], options: list[str], seconds_of: Callable[[str], float]) -> str:
    """The option with the fewest `seconds_of(option)`, read from `record` (a JSON file in the
    user cache) when these `facts` and options were measured before, else measured now."""
    if len(options) == 1:
        return options[0]
    facts = {**facts, "options": options}
    path = user_cache_dir() / record
    key = key_of(facts)
    known = _read(path).get(key, {}).get("choice")
    if known in options:
        return str(known)
    log.info("timing %d ways to run the network on this machine, once: %s", len(options), ", ".join(options))
    seconds = {}
    for option in options:
        stop_point()  # a run's stop ends its start between candidates, not after all of them
        seconds[option] = seconds_of(option)
    choice = min(seconds, key=lambda option: seconds[option])
    path.parent.mkdir(parents=True, exist_ok=True)
    records = {**_read(path), key: {**facts, "seconds": seconds, "choice": choice}}
    replace_atomically(path, (json.dumps(records, indent=2) + "\n").encode())
    log.info(
        "measured on this machine: %s (%s); remembered in %s",
        choice,
        ", ".join(f"{option} {s * 1000:.0f} ms" for option, s in seconds.items()),
        path,
    )
    return choice


def _read(path: Path) -> dict[str, dict[str, Any]]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:  # an older, broken file: measure again
        return {}
