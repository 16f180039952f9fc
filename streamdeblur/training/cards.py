"""An evaluation's figures in the weights' model card, with the command that reproduces them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamdeblur.training.scoring import EvalResult


def record_in_card(
    weights: Path,
    name: str,
    result: EvalResult,
    data: Path,
    split: str,
    limit: int | None,
    precision: str,
) -> None:
    """Put the figures, and the command that reproduces them (in the precision they were
    scored in), into the weights' model card."""
    from streamdeblur.models.checkpoint import read_card, write_card
    from streamdeblur.training.synth_dataset import SYNTH_RECORD

    card = read_card(weights)
    limit_arg = f" --limit {limit}" if limit else ""
    made = data / SYNTH_RECORD
    card.setdefault("quality", {})[name] = {
        **_rounded(result.to_dict()),
        "data": str(data),
        "split": split,
        "limit": limit,
        "data_made_by": _without_pairs(json.loads(made.read_text())) if made.is_file() else _footage_made_by(data),
        "precision": precision,
        "command": f"streamdeblur eval {data} --model {_named(weights)} --backend torch "
        f"--precision {precision} --split {split}{limit_arg}",
    }
    write_card(weights, card)


def _footage_made_by(data: Path) -> dict[str, Any] | None:
    """How a real-footage set was made (training/real_footage.py), or None for other data."""
    from streamdeblur.training.real_footage import read_footage_record

    record = read_footage_record(data)
    if record is None:
        return None
    command = f"streamdeblur footage {data} --split {record['split']} --seed {record['seed']} --takes {record['takes']}"
    if record.get("span", 1) != 1:  # sets made before --span existed have none: 1
        command += f" --span {record['span']:g}"
    return {"command": command, "videos": [video["name"] for video in record["videos"]]}


def _named(weights: Path) -> str:
    """Shipped weights by their name (as a user passes them), others by their path."""
    from streamdeblur.models.checkpoint import WEIGHTS_DIR

    return weights.stem if weights.resolve().parent == WEIGHTS_DIR else str(weights)


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _without_pairs(record: dict[str, Any]) -> dict[str, Any]:
    """A synth record without its per-pair list (the card keeps the command, not 100 rows)."""
    return {k: v for k, v in record.items() if k != "pairs"}
