"""`streamdeblur adapt`: find the sharp frames of one's footage, blur them synthetically,
fine-tune on them, and say what was done (weights, card, pictures)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from streamdeblur.adapt.defaults import DEFAULT_FRAMES, DEFAULT_STEPS, MIN_SHARPNESS
from streamdeblur.adapt.footage import Footage, find_footage, footage_sha256
from streamdeblur.adapt.picking import pick_frames
from streamdeblur.adapt.scan import scan
from streamdeblur.adapt.selection import Selection, read_selection, write_selection
from streamdeblur.adapt.validation import before_after, held_out_pairs, mean_psnr
from streamdeblur.errors import BadInput, BadUsage
from streamdeblur.files import file_sha256
from streamdeblur.inference.torch_backend import resolve_device
from streamdeblur.models import DEFAULT_WEIGHTS, load_checkpoint, read_card, resolve_weights, save_weights
from streamdeblur.training.checkpointing import LAST
from streamdeblur.training.loop import WEIGHTS, train
from streamdeblur.training.recipe import DataSpec, TrainRecipe

log = logging.getLogger(__name__)

MIN_PICKED = 2  # one to learn from and one to check on
VAL_SHARE = 0.2
BEFORE_AFTER = "before_after.png"


@dataclass
class AdaptResult:
    weights: Path
    work: Path
    contact_sheet: Path
    before_after: Path
    step: int
    finished: bool
    interrupted: bool
    card: dict[str, Any]


def default_work_dir(out: Path) -> Path:
    return out.with_name(f"{out.stem}.adapt")


def adapt(
    inputs: Sequence[Path],
    out: Path,
    *,
    init: Path | None = None,
    frames: int = DEFAULT_FRAMES,
    steps: int = DEFAULT_STEPS,
    minutes: float | None = None,
    resume: bool = False,
    work: Path | None = None,
    device: str | None = None,
    overwrite: bool = False,
    min_sharpness: float = MIN_SHARPNESS,
    batch_size: int = 8,
    patch_size: int = 128,
    lr: float = 1e-4,
    seed: int = 0,
    workers: int = 1,
    progress_bar: bool = True,
) -> AdaptResult:
    """Adapt `init` (default: the shipped weights) to the camera of `inputs`; write `out`
    (.safetensors) with its card. A stop (SIGINT/SIGTERM, `minutes`) still writes the weights
    so far; `resume` continues the run in `work` without rescanning."""
    started = time.perf_counter()
    out = Path(out).with_suffix(".safetensors")
    work = Path(work) if work is not None else default_work_dir(out)
    init = resolve_weights(init)
    if frames < MIN_PICKED:
        raise BadUsage(f"--frames must be at least {MIN_PICKED} (one to learn from, one to check on)")
    if steps < 1 or batch_size < 1 or patch_size < 16:
        raise BadUsage("--steps and the batch must be positive, the patch at least 16 pixels")
    if out.exists() and not (overwrite or resume):
        raise BadUsage(f"{out} exists; pass --overwrite to replace it")
    if not resume and (work / "checkpoints" / LAST).exists():
        raise BadUsage(f"{work} already holds an adapt run; pass --resume to continue it, or another --work")
    starting = load_checkpoint(init)  # unreadable weights: a one-line error before any work
    if starting.cfg.frames > 1:
        # It learns from single sharp frames and checks itself on single frames; a windowed
        # model needs sequences of the camera's footage for both, which adapt does not make yet.
        raise BadUsage(
            f"adapt fine-tunes single-frame weights, and {init.stem} is a windowed model ({starting.cfg.frames} "
            f"frames): give --init a single-frame model (without --init: the shipped {DEFAULT_WEIGHTS.stem})"
        )

    footage = find_footage(list(inputs))
    if resume:
        selection = read_selection(work)
        _check_same_footage(selection, footage)
    else:
        selection = _select(footage, work, frames, min_sharpness)
    scan_seconds = time.perf_counter() - started

    recipe = _recipe(selection, starting.cfg.to_dict(), init, out, steps, batch_size, patch_size, lr, seed, workers)
    result = train(recipe, work, resume=resume, device=device, minutes=minutes, progress_bar=progress_bar)
    adapted = load_checkpoint(work / WEIGHTS)

    torch_device = resolve_device(device or "auto")
    starting, adapted = starting.to(torch_device), adapted.to(torch_device)
    pairs = held_out_pairs(selection.val_files, seed)
    validation = {
        "frames": len(selection.val_files),
        "pairs": len(pairs),
        "psnr_blurry": round(mean_psnr(None, pairs, torch_device), 3),
        "psnr_start": round(mean_psnr(starting, pairs, torch_device), 3),
        "psnr_adapted": round(mean_psnr(adapted, pairs, torch_device), 3),
    }
    log.info(
        "held-out picked frames (synthetic blur, %d pairs): blurry %.2f dB, starting weights %.2f dB, adapted %.2f dB",
        len(pairs),
        validation["psnr_blurry"],
        validation["psnr_start"],
        validation["psnr_adapted"],
    )
    example = selection.manifest["example"]
    picture = before_after(
        selection.example,
        [("starting weights", starting), ("adapted", adapted)],
        f"blurry: {example['footage']} #{example['frame']} ({example['score']:.2f})",
        work / BEFORE_AFTER,
        torch_device,
    )
    card = _card(
        out,
        selection,
        init,
        result.step,
        result.finished,
        result.interrupted,
        validation,
        work,
        picture,
        scan_seconds,
        time.perf_counter() - started,
    )
    save_weights(adapted.cpu(), out, card)
    log.info(
        "wrote %s (card %s); picked frames %s; before/after %s",
        out,
        out.with_suffix(".json"),
        selection.contact_sheet,
        picture,
    )
    return AdaptResult(
        out, work, selection.contact_sheet, picture, result.step, result.finished, result.interrupted, read_card(out)
    )


def _select(footage: list[Footage], work: Path, frames: int, min_sharpness: float) -> Selection:
    """Scan, pick and write the picks; nothing is written when too few frames are sharp."""
    scanned = scan(footage)
    picks = pick_frames(scanned.frames, frames, min_sharpness)
    if len(picks) < MIN_PICKED:
        best = max(f.score for f in scanned.frames)
        raise BadInput(
            f"no frames sharp enough to learn from: the sharpest of {len(scanned.frames)} frames scores {best:.2f} "
            f"({len(picks)} distinct frame(s) at {min_sharpness:.2f} or more), and adapt needs {MIN_PICKED} distinct "
            f"frames scoring at least {min_sharpness:.2f} "
            "(0 smooth, crisp about 0.5 to 0.8; --min-sharpness lowers the bar)"
        )
    log.info(
        "picked %d of %d frames (%d shots) from %d piece(s) of footage",
        len(picks),
        len(scanned.frames),
        scanned.shots,
        len(scanned.footage),
    )
    hashes = [footage_sha256(piece) for piece in scanned.footage]
    summary = {"min_sharpness": min_sharpness, "best_score": round(max(f.score for f in scanned.frames), 4)}
    selection = write_selection(work, scanned, picks, hashes, VAL_SHARE, summary)
    log.info("the picked frames and their scores: %s", selection.contact_sheet)
    return selection


def _check_same_footage(selection: Selection, footage: list[Footage]) -> None:
    recorded = {(f["path"], f["sha256"]) for f in selection.manifest["footage"]}
    given = {(str(piece.path), footage_sha256(piece)) for piece in footage}
    if not recorded <= given:
        raise BadUsage(f"--resume: the footage differs from what the run in {selection.work} was adapted on")


def _recipe(
    selection: Selection,
    model_config: dict[str, Any],
    init: Path,
    out: Path,
    steps: int,
    batch_size: int,
    patch_size: int,
    lr: float,
    seed: int,
    workers: int,
) -> TrainRecipe:
    """The existing synthetic recipe on the picked frames: half the scenes are still procedural,
    which keeps what the starting weights know while they learn the footage."""
    config_file = selection.work / "model.yaml"  # the starting weights' architecture, for the loop
    config_file.write_text(yaml.safe_dump(model_config, sort_keys=False))
    return TrainRecipe(
        name=f"adapt-{out.stem}",
        model=str(config_file),
        init=str(init.resolve()),
        data=DataSpec(kind="synthetic", sharp_dir=str(selection.train_dir), photos=False, patch_size=patch_size),
        batch_size=batch_size,
        steps=steps,
        lr=lr,
        seed=seed,
        workers=workers,
        log_every=10,
        eval_every=steps + 1,
        checkpoint_every=50,
        val_count=0,  # validation: on held-out frames, after
    )


def _train_seconds(work: Path) -> float:
    state = torch.load(work / "checkpoints" / LAST, map_location="cpu", weights_only=True)
    return float(state.get("train_seconds", 0.0))


def _card(
    out: Path,
    selection: Selection,
    init: Path,
    step: int,
    finished: bool,
    interrupted: bool,
    validation: dict[str, Any],
    work: Path,
    picture: Path,
    scan_seconds: float,
    wall_seconds: float,
) -> dict[str, Any]:
    manifest = selection.manifest
    training = read_card(work / WEIGHTS).get("training", {})
    return {
        "name": out.stem,
        "adapted": {
            "footage": manifest["footage"],
            "skipped": manifest["skipped"],
            "frames_scored": manifest["frames_scored"],
            "shots": manifest["shots"],
            "frames_picked": manifest["frames_picked"],
            "frames_train": sum(p["use"] == "train" for p in manifest["picked"]),
            "frames_held_out": sum(p["use"] == "val" for p in manifest["picked"]),
            "min_sharpness": manifest["min_sharpness"],
            "picked": manifest["picked"],
            "init": str(init),
            "init_sha256": file_sha256(init),
            "steps": step,
            "finished": finished,
            "interrupted": interrupted,
            "train_seconds": round(_train_seconds(work), 1),
            "scan_seconds": round(scan_seconds, 1),
            "wall_seconds_this_session": round(wall_seconds, 1),
            "validation": validation,
            "contact_sheet": str(selection.contact_sheet),
            "before_after": str(picture),
            "example": manifest["example"],
            "work": str(work),
        },
        "training": training,
    }
