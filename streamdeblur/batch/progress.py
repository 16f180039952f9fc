"""The batch's progress bar (frames, with files in the postfix) and its closing summary table."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tqdm import tqdm

from streamdeblur.batch.discovery import InputFile
from streamdeblur.batch.manifest import FileRecord


def declared_frames(item: InputFile) -> int:
    """The frame count the container declares (else duration x rate); 0 if it cannot be read.

    Only the header is read, so probing thousands of files stays cheap.
    """
    # Imported here: PyAV loaded before OpenCV made OpenCV's preview window hang (seen under
    # Xvfb; PyAV's wheel brings its own libxcb). streamdeblur.io loads OpenCV first.
    import av

    try:
        with av.open(str(item.path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            rate = stream.average_rate or stream.guessed_rate
            if container.duration and rate:
                return round(container.duration / av.time_base * rate)
    except (av.FFmpegError, IndexError, ValueError, OSError):
        pass
    return 0


class BatchProgress:
    """Advances by each finished file's frames; shown only when stderr is a terminal.

    The total starts as the files' declared frames and is corrected as files finish (a bad or
    truncated file holds fewer), so the bar ends at 100 % and the ETA stays honest.
    """

    def __init__(self, items: Sequence[InputFile], enabled: bool) -> None:
        enabled = enabled and sys.stderr.isatty()
        self._declared = {item.rel: declared_frames(item) for item in items} if enabled else {}
        self._files, self._finished = len(items), 0
        self._bar = tqdm(total=sum(self._declared.values()), unit="frame", dynamic_ncols=True, disable=not enabled)
        self._bar.set_postfix_str(f"files 0/{self._files}")

    def update(self, record: FileRecord) -> None:
        self._finished += 1
        if self._bar.total is not None:
            self._bar.total += record.frames_out - self._declared.get(record.input, 0)
        self._bar.update(record.frames_out)
        self._bar.set_postfix_str(f"files {self._finished}/{self._files}")

    def close(self) -> None:
        self._bar.close()


def summary_table(records: Sequence[FileRecord]) -> str:
    """One row per file, by name: status, frames, frames/s, seconds, file and error, in aligned columns."""
    header = ("status", "frames", "fps", "wall_s", "file", "error")
    rows = [header] + [
        (
            r.status,
            str(r.frames_out),
            f"{r.fps:.2f}" if r.frames_out else "-",
            f"{r.wall_s:.1f}",
            r.input,
            r.error or "",
        )
        for r in sorted(records, key=lambda r: r.input)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    right = {1, 2, 3}  # numbers
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width) for i, (cell, width) in enumerate(zip(row, widths))
        ]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
