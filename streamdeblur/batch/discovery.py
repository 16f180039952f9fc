"""Which files a batch processes: the videos under INPUT_DIR, and where each one's output goes.

One rule decides what is selected (`selected`), and it serves twice: to find the inputs, and
to refuse an OUTPUT_DIR whose outputs the next run would pick up as inputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from streamdeblur.errors import BadUsage

# What is taken for a video when no --glob is given (compared without case).
VIDEO_SUFFIXES = frozenset({
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
    ".flv", ".wmv", ".3gp", ".ogv", ".mxf",
})  # fmt: skip


@dataclass(frozen=True)
class InputFile:
    """One input: `rel` (POSIX, relative to INPUT_DIR) keys the manifest and names the output."""

    rel: str
    path: Path
    size: int
    mtime_ns: int

    def output_path(self, output_dir: Path) -> Path:
        return output_path(output_dir, self.rel)


def output_path(output_dir: Path, rel: str) -> Path:
    """Where the input at `rel` (relative to INPUT_DIR) is written."""
    return output_dir.joinpath(*PurePosixPath(rel).parts)


def _match(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Glob matching by path segment; `**` stands for any number of folders, none included."""
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(parts[i:], rest) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(parts[1:], rest)


def selected(parts: tuple[str, ...], pattern: str | None) -> bool:
    """Hidden names (temporary `.NAME.partial.*` outputs among them) are never selected."""
    if any(part.startswith(".") for part in parts):
        return False
    if pattern is None:
        return Path(parts[-1]).suffix.lower() in VIDEO_SUFFIXES
    return _match(parts, PurePosixPath(pattern).parts)


def check_pattern(pattern: str | None) -> None:
    if pattern is not None and (PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts):
        raise BadUsage(f"--glob {pattern!r} must be relative to INPUT_DIR, without '..'")


def find_inputs(input_dir: Path, pattern: str | None) -> list[InputFile]:
    """Every selected file under input_dir, in a stable (sorted) order."""
    found = []
    for folder, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for name in sorted(files):
            path = base / name
            parts = path.relative_to(input_dir).parts
            if selected(parts, pattern):
                stat = path.stat()
                found.append(InputFile("/".join(parts), path, stat.st_size, stat.st_mtime_ns))
    return found


def check_layout(input_dir: Path, output_dir: Path, pattern: str | None, inputs: list[InputFile]) -> None:
    """Refuse layouts where outputs replace inputs or would be taken as inputs next time."""
    input_dir, output_dir = input_dir.resolve(), output_dir.resolve()
    if output_dir == input_dir:
        raise BadUsage("OUTPUT_DIR is INPUT_DIR: outputs would replace their inputs")
    sources = {item.path.resolve() for item in inputs}
    if any(item.output_path(output_dir) in sources for item in inputs):
        raise BadUsage("some outputs would replace inputs; choose an OUTPUT_DIR apart from INPUT_DIR")
    if input_dir in output_dir.parents:
        inside = output_dir.relative_to(input_dir).parts
        if any(selected(inside + PurePosixPath(item.rel).parts, pattern) for item in inputs):
            raise BadUsage(
                f"OUTPUT_DIR {output_dir} is inside INPUT_DIR and its outputs would be taken as inputs "
                "by the next run; choose an OUTPUT_DIR outside INPUT_DIR or a --glob that leaves it out"
            )
