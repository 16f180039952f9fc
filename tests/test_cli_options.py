"""The shared command-line options (defined once, the same defaults as the values they build),
and what the command line says when an optional package is missing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from streamdeblur.cli import app
from streamdeblur.cli_options import BACKEND_OPTIONS, ENCODE_OPTIONS
from streamdeblur.inference import BackendSpec
from streamdeblur.io import EncodeOptions


@pytest.mark.parametrize("options, cls", [(BACKEND_OPTIONS, BackendSpec), (ENCODE_OPTIONS, EncodeOptions)])
def test_each_flag_is_a_field_with_the_fields_default(options: dict, cls: type) -> None:
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    for name, (_, default) in options.items():
        assert name in fields, f"--{name} names no field of {cls.__name__}"
        assert default == fields[name], f"--{name} defaults to {default!r}, {cls.__name__}.{name} to {fields[name]!r}"
    if cls is BackendSpec:
        assert set(options) == set(fields), "every backend field is a flag"


def _params(command: str) -> dict[str, Any]:
    group: Any = typer.main.get_command(app)
    return {p.name: p for p in group.commands[command].params if p.name}


@pytest.mark.parametrize("command, groups", [
    ("run", (BACKEND_OPTIONS, ENCODE_OPTIONS)), ("live", (BACKEND_OPTIONS, ENCODE_OPTIONS)),
    ("batch", (BACKEND_OPTIONS, ENCODE_OPTIONS)), ("bench", (BACKEND_OPTIONS,)),
])  # fmt: skip
def test_commands_take_the_shared_groups_with_the_same_flags(command: str, groups: tuple[dict, ...]) -> None:
    params = _params(command)
    for group in groups:
        for name in group:
            assert name in params, f"{command} lacks --{name.replace('_', '-')}"
            assert params[name].opts == _params("run")[name].opts
    assert "spec" not in params and "encode" not in params


def test_the_flags_reach_the_built_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    seen = {}
    monkeypatch.setattr("streamdeblur.cli._execute", lambda opts, quiet: seen.update(opts=opts))
    result = CliRunner().invoke(app, [
        "run", "in.mp4", "out.mp4", "--backend", "torch", "--batch", "3", "--tile", "128", "--no-channels-last",
        "--weights", "w.safetensors", "--crf", "23", "--preset", "veryfast",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    opts = seen["opts"]
    assert opts.spec == BackendSpec(backend="torch", batch=3, tile=128, channels_last=False, weights="w.safetensors")
    assert opts.encode == EncodeOptions(crf=23, preset="veryfast")


def test_a_missing_extra_names_the_extra_to_install(tmp_path: Path) -> None:
    """Python treats a None entry in sys.modules as not installed: ImportError on import."""
    code = (
        "import sys; sys.modules['skimage'] = None; sys.modules['skimage.metrics'] = None; "
        "from streamdeblur.cli import main; main()"
    )
    (tmp_path / "blur").mkdir()
    result = subprocess.run(
        [sys.executable, "-c", code, "eval", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("pip install 'streamdeblur[train]'"), result.stderr
