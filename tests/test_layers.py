"""The core (I/O, pipeline, inference, window, engines, models, synthetic blur) imports nothing from
training, batch or the command line: those build on the core, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamdeblur"
CORE = ("io", "pipeline", "inference", "window", "engines", "models", "synthetic")
OUTER = ("streamdeblur.training", "streamdeblur.batch", "streamdeblur.cli")


def _imports(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


@pytest.mark.parametrize("package", CORE)
def test_the_core_does_not_import_training_batch_or_cli(package: str) -> None:
    files = sorted((PACKAGE / package).rglob("*.py"))
    assert files
    wrong = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(name == outer or name.startswith(outer + ".") for outer in OUTER)
    ]
    assert not wrong, wrong


def test_the_check_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from streamdeblur.training.loop import train\n")
    assert "streamdeblur.training.loop" in _imports(module)


def test_batch_workers_do_not_import_the_command_line() -> None:
    wrong = [
        f"{path.name} imports {name}"
        for path in sorted((PACKAGE / "batch").rglob("*.py"))
        for name in _imports(path)
        if name == "streamdeblur.cli" or name.startswith("streamdeblur.cli.")
    ]
    assert not wrong, wrong


def test_every_subpackage_is_in_the_wheel() -> None:
    """pyproject.toml lists the packages by hand (configs/ ships as streamdeblur.configs), so a
    new folder left off the list would be missing from an installed wheel."""
    import tomllib

    listed = set(tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"streamdeblur." + ".".join(p.parent.relative_to(PACKAGE).parts) for p in PACKAGE.rglob("__init__.py")}
    found = {name.rstrip(".") for name in found}
    assert found - listed == set(), f"not in pyproject.toml's packages: {sorted(found - listed)}"
