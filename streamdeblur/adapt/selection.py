"""The picked frames on disk: training and held-out sharp frames, the blurry example, the
contact sheet, and a manifest (adapt.json) that a resumed run reads instead of rescanning."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from streamdeblur.adapt.footage import decode
from streamdeblur.adapt.pictures import contact_sheet
from streamdeblur.adapt.scan import Scan, ScoredFrame
from streamdeblur.errors import BadUsage

MANIFEST = "adapt.json"
TRAIN_DIR = "frames/train"
VAL_DIR = "frames/val"
EXAMPLE = "blurry_example.png"
CONTACT_SHEET = "picked.png"


@dataclass
class Selection:
    """What a run learns from; `manifest` is the JSON written to MANIFEST."""

    work: Path
    manifest: dict[str, Any]

    @property
    def train_dir(self) -> Path:
        return self.work / TRAIN_DIR

    @property
    def val_files(self) -> list[Path]:
        return [self.work / p["file"] for p in self.manifest["picked"] if p["use"] == "val"]

    @property
    def example(self) -> Path:
        return self.work / EXAMPLE

    @property
    def contact_sheet(self) -> Path:
        return self.work / CONTACT_SHEET


def held_out(count: int, share: float) -> set[int]:
    """Positions (of `count` picks in time order) kept for validation: evenly spread, at
    least one, and at least one left to train on."""
    n_val = min(count - 1, max(1, round(count * share)))
    return {int(i) for i in np.linspace(0, count - 1, n_val + 2)[1:-1].round()} if n_val else set()


def blurriest_textured(frames: list[ScoredFrame]) -> ScoredFrame:
    """The least sharp frame among those with at least half the median contrast (a black or
    a sky frame scores low too, but shows nothing)."""
    median = float(np.median([f.contrast for f in frames]))
    return min((f for f in frames if f.contrast >= 0.5 * median), key=lambda f: f.score)


def _write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")


def write_selection(
    work: Path,
    scan: Scan,
    picks: list[ScoredFrame],
    hashes: list[str],
    val_share: float,
    summary: dict[str, Any],
) -> Selection:
    """Decode the picked frames (and the example) again and write them under `work`."""
    validation = held_out(len(picks), val_share)
    example = blurriest_textured(scan.frames)
    wanted: dict[tuple[int, int], str] = {}
    records: list[dict[str, Any]] = []
    for position, frame in enumerate(picks):
        use = "val" if position in validation else "train"
        stem = scan.footage[frame.footage].path.stem
        file = f"{VAL_DIR if use == 'val' else TRAIN_DIR}/{position:03d}_{stem}_{frame.index:06d}.png"
        wanted[(frame.footage, frame.index)] = file
        records.append(
            {
                "footage": scan.footage[frame.footage].name,
                "frame": frame.index,
                "time_s": round(frame.time_s, 3),
                "shot": frame.shot,
                "score": round(frame.score, 4),
                "use": use,
                "file": file,
            }
        )
    wanted.setdefault((example.footage, example.index), EXAMPLE)
    thumbnails: dict[str, np.ndarray] = {}
    for footage in sorted({key[0] for key in wanted}):
        last = max(index for f, index in wanted if f == footage)
        for decoded in decode(scan.footage[footage]):
            files = [wanted[(footage, decoded.index)]] if (footage, decoded.index) in wanted else []
            if (footage, decoded.index) == (example.footage, example.index):
                files.append(EXAMPLE)
            for file in dict.fromkeys(files):
                _write_image(work / file, decoded.pixels)
                width = 240
                height = max(1, round(decoded.pixels.shape[0] * width / decoded.pixels.shape[1]))
                thumbnails[file] = cv2.resize(decoded.pixels, (width, height), interpolation=cv2.INTER_AREA)
            if decoded.index >= last:
                break
    missing = [r["file"] for r in records if r["file"] not in thumbnails]
    if missing:  # decoding differed from the scan's: the footage changed under us
        raise BadUsage(f"the footage changed while adapt read it ({len(missing)} picked frame(s) not found again)")
    contact_sheet(
        [thumbnails[r["file"]] for r in records],
        [f"{r['footage']} #{r['frame']} {r['score']:.2f}{' (held out)' if r['use'] == 'val' else ''}" for r in records],
        work / CONTACT_SHEET,
    )
    manifest = {
        **summary,
        "footage": [
            {"name": piece.name, "path": str(piece.path), "kind": piece.kind, "sha256": digest, "frames": count}
            for piece, digest, count in zip(scan.footage, hashes, scan.frame_counts)
        ],
        "skipped": [{"path": path, "reason": reason} for path, reason in scan.skipped],
        "frames_scored": len(scan.frames),
        "shots": scan.shots,
        "frames_picked": len(picks),
        "picked": records,
        "example": {
            "footage": scan.footage[example.footage].name,
            "frame": example.index,
            "time_s": round(example.time_s, 3),
            "score": round(example.score, 4),
            "file": EXAMPLE,
        },
    }
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return Selection(work, manifest)


def read_selection(work: Path) -> Selection:
    path = work / MANIFEST
    if not path.is_file():
        raise BadUsage(f"--resume: {work} holds no adapt run ({MANIFEST} missing)")
    return Selection(work, json.loads(path.read_text()))
