"""The streams of a run of many, from a sources file (YAML) or from --input/--output pairs.

```yaml
streams:
  - name: gate                      # optional; default s1, s2, ... by position
    input: rtsp://10.0.0.5/stream   # anything `live` takes as SOURCE
    output: gate.mp4                # anything `live` takes as SINK, but a window
    max_latency_ms: 300             # optional: the stream's own options, named as the flags
  - input: udp://0.0.0.0:5001
    output: rtsp://server:8554/yard
    reconnect: false
```

The command line's options are every stream's defaults. Every entry is checked before
anything is opened; a bad one is a one-line error naming it (file, position and name).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streamdeblur.errors import BadUsage, StreamdeblurError
from streamdeblur.io import PREVIEW_ONLY
from streamdeblur.pipeline.job import RunOptions, check_options

# The options a stream may set for itself: key -> (the value it belongs to, its field, type).
_STREAM_OPTIONS: dict[str, tuple[str, str, type]] = {
    "live": ("live", "force", bool),
    "max_latency_ms": ("live", "max_latency_ms", float),
    "reconnect": ("live", "reconnect", bool),
    "timeout": ("live", "timeout_s", float),
    "rtsp_transport": ("live", "rtsp_transport", str),
    "segment_seconds": ("live", "segment_seconds", float),
    "compare": ("live", "compare", bool),
    "codec": ("encode", "codec", str),
    "crf": ("encode", "crf", int),
    "preset": ("encode", "preset", str),
    "pix_fmt": ("encode", "pix_fmt", str),
}
_KEYS = ("name", "input", "output", *_STREAM_OPTIONS)


@dataclass(frozen=True)
class StreamEntry:
    name: str
    job: RunOptions  # its input and output, and its options (the command line's, and its own)
    where: str  # how errors name it: "cams.yaml: stream 2 (yard)"


def streams_from_pairs(inputs: list[str], outputs: list[str], defaults: RunOptions) -> list[StreamEntry]:
    """--input A --output B --input C --output D ...: the streams in the order given."""
    if len(inputs) != len(outputs):
        raise BadUsage(f"give one --output for each --input ({len(inputs)} inputs, {len(outputs)} outputs)")
    entries = [
        _entry({"input": i, "output": o}, position, "", defaults)
        for position, (i, o) in enumerate(zip(inputs, outputs), start=1)
    ]
    check_streams(entries)
    return entries


def streams_from_file(path: Path, defaults: RunOptions) -> list[StreamEntry]:
    if not path.is_file():
        raise BadUsage(f"sources file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise BadUsage(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    streams = data.get("streams") if isinstance(data, dict) else None
    if not isinstance(streams, list) or not streams or set(data) != {"streams"}:
        raise BadUsage(f"{path}: expected a `streams:` list of entries with input and output (and nothing else)")
    entries = [_entry(item, position, f"{path}: ", defaults) for position, item in enumerate(streams, start=1)]
    check_streams(entries)
    return entries


def check_streams(entries: list[StreamEntry]) -> None:
    """What each entry's options allow (as `live` checks them), and what streams may not share."""
    names: set[str] = set()
    outputs: dict[str, StreamEntry] = {}
    inputs = {_identity(e.job.input) for e in entries}
    for entry in entries:
        job = entry.job
        if entry.name in names:
            raise BadUsage(f"{entry.where}: another stream is named {entry.name!r}")
        names.add(entry.name)
        if job.output == PREVIEW_ONLY or (job.live is not None and job.live.preview):
            raise BadUsage(
                f"{entry.where}: a preview window is for a single stream (live SOURCE SINK); "
                "give each stream a file or a stream output"
            )
        output = _identity(job.output)
        if output in outputs:
            raise BadUsage(f"{entry.where}: writes to {job.output}, as {outputs[output].where} does")
        if output in inputs:
            raise BadUsage(f"{entry.where}: writes to {job.output}, which is an input")
        outputs[output] = entry
        try:
            check_options(job)
        except StreamdeblurError as exc:
            raise BadUsage(f"{entry.where}: {exc}") from None


def _entry(item: Any, position: int, prefix: str, defaults: RunOptions) -> StreamEntry:
    unnamed = f"{prefix}stream {position}"
    if not isinstance(item, dict):
        raise BadUsage(f"{unnamed}: expected a mapping with input and output, got {item!r}")
    name = item.get("name", f"s{position}")
    if not isinstance(name, str) or not name.strip():
        raise BadUsage(f"{unnamed}: name must be a non-empty text")
    where = f"{unnamed} ({name})"
    unknown = sorted(str(key) for key in item if key not in _KEYS)
    if unknown:
        raise BadUsage(f"{where}: unknown key {unknown[0]!r}; an entry takes {', '.join(_KEYS)}")
    for key in ("input", "output"):
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
            raise BadUsage(f"{where}: {key} must be given (a file, URL or camera)")
    changes: dict[str, dict[str, Any]] = {"live": {}, "encode": {}}
    for key, value in item.items():
        if key in _STREAM_OPTIONS:
            group, field, kind = _STREAM_OPTIONS[key]
            changes[group][field] = _typed(value, kind, f"{where}: {key}")
    assert defaults.live is not None  # many streams are a `live` run
    job = dataclasses.replace(
        defaults,
        input=str(item["input"]),
        output=str(item["output"]),
        live=dataclasses.replace(defaults.live, **changes["live"]),
        encode=dataclasses.replace(defaults.encode, **changes["encode"]),
    )
    return StreamEntry(name, job, where)


def _typed(value: Any, kind: type, what: str) -> Any:
    """The YAML value as the option's type; YAML's own typing decides (no text to number)."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if kind is int and not float(value).is_integer():
            raise BadUsage(f"{what} must be a whole number, not {value!r}")
        return kind(value)
    if kind is str and isinstance(value, str):
        return value
    wanted = {bool: "true or false", int: "a whole number", float: "a number", str: "a text"}[kind]
    raise BadUsage(f"{what} must be {wanted}, not {value!r}")


def _identity(spec: str) -> str:
    """What makes two inputs or outputs the same: the resolved path of a file, a URL as written."""
    return spec if "://" in spec else str(Path(spec).resolve())
