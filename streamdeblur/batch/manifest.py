"""The batch manifest: JSON lines in OUTPUT_DIR, one record per outcome, the last one per input wins.

Append-only, so a run killed at any moment loses at most the line it was writing (a torn
last line is skipped on reading). Only the parent process writes it; workers return records.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from streamdeblur.batch.discovery import InputFile

log = logging.getLogger(__name__)

MANIFEST_NAME = "streamdeblur-batch.jsonl"
DONE, FAILED, INTERRUPTED = "done", "failed", "interrupted"


@dataclass
class FileRecord:
    """What became of one input in one attempt; `size` and `mtime_ns` say which version of it."""

    input: str
    size: int
    mtime_ns: int
    status: str
    frames_in: int = 0
    frames_out: int = 0
    wall_s: float = 0.0
    error: str | None = None
    backend: str = ""
    device: str = ""
    precision: str = ""
    model: str = ""
    resources: dict[str, float] | None = None  # what Ray gave the task (Ray runs only)
    recorded: str = ""  # UTC time the parent wrote the record

    @property
    def fps(self) -> float:
        return self.frames_out / self.wall_s if self.wall_s > 0 else 0.0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRecord:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class Manifest:
    """Open for appending; `latest` holds the last record read or written for each input."""

    def __init__(self, output_dir: Path) -> None:
        self.path = output_dir / MANIFEST_NAME
        self.latest: dict[str, FileRecord] = {}
        if self.path.exists():
            self._read()
        self._file: TextIO = self.path.open("a", encoding="utf-8")
        if self._ends_torn():
            self._file.write("\n")  # so the next record does not join the torn line

    def _ends_torn(self) -> bool:
        with self.path.open("rb") as raw:
            if raw.seek(0, 2) == 0:
                return False
            raw.seek(-1, 2)
            return raw.read(1) != b"\n"

    def _read(self) -> None:
        with self.path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    record = FileRecord.from_json(json.loads(line))
                except (ValueError, TypeError):
                    log.warning("%s line %d is unreadable and ignored", self.path, number)
                    continue
                self.latest[record.input] = record

    def is_done(self, item: InputFile, output: Path) -> bool:
        """Done means: recorded done, for this very input (size and mtime), and the output is there."""
        record = self.latest.get(item.rel)
        return (
            record is not None
            and record.status == DONE
            and (record.size, record.mtime_ns) == (item.size, item.mtime_ns)
            and output.is_file()
        )

    def knows(self, item: InputFile) -> bool:
        return item.rel in self.latest

    def append(self, record: FileRecord) -> None:
        record.recorded = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._file.write(json.dumps(asdict(record)) + "\n")
        self._file.flush()
        self.latest[record.input] = record

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
