"""Files written whole or not at all, and their hashes: what models/, engines/ and the rest share."""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read once per process while the file stays as it was."""
    stat = path.stat()
    return _sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@functools.cache
def _sha256(path: str, size: int, mtime_ns: int, inode: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def replace_atomically(path: Path, payload: bytes) -> None:
    """Write under a name of this process's own, then rename: readers never see half a file,
    and processes making the same artifact at once (batch workers) do not collide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_bytes(payload)
    os.replace(partial, path)
