"""The core (I/O, pipeline, inference, window, engines, models, synthetic blur) imports nothing from
training, batch or the command line: those build on the core, never the other way round. And
the package's parts (its folders and top-level modules) depend on each other one way only:
no part imports one that imports it back, directly or through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "streamdeblur"
CORE = ("io", "pipeline", "inference", "window", "engines", "models", "synthetic")
OUTER = ("streamdeblur.training", "streamdeblur.batch", "streamdeblur.cli")
# The package's parts: its folders and the modules at its top.
PARTS = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()} | {
    p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"
}


def _imports(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside a function; a relative import as its
    absolute name (for a file inside the package)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(path, node.level, node.module)
            if module:
                names += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return names


def _absolute(path: Path, level: int, module: str | None) -> str | None:
    """The module a `from` import names, with its dots (`level`) resolved against `path`."""
    if not level:
        return module
    if not path.is_relative_to(PACKAGE.parent):
        return None
    package = list(path.relative_to(PACKAGE.parent).parent.parts)
    base = package[: len(package) - (level - 1)]
    return ".".join(base + ([module] if module else [])) or None


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


def _part(name: str) -> str | None:
    """The part of the package a module name lies in; None: outside the package, or the
    package's own __init__."""
    parts = name.split(".")
    if parts[0] != "streamdeblur" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in PARTS else None


def _part_graph() -> dict[str, dict[str, str]]:
    """For each part, the parts it imports, each with one file and import that shows it."""
    graph: dict[str, dict[str, str]] = {part: {} for part in PARTS}
    for path in sorted(PACKAGE.rglob("*.py")):
        importer = _part("streamdeblur." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        for name in _imports(path):
            imported = _part(name)
            if importer and imported and imported != importer:
                graph[importer].setdefault(imported, f"{path.relative_to(PACKAGE)} imports {name}")
    return graph


def _cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """The cycles a depth-first walk of the imports meets (one at least wherever there is
    any), each as its parts in import order, the first repeated at the end."""
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(part: str, path: list[str]) -> None:
        for imported in sorted(graph[part]):
            if imported in path:
                found.append(path[path.index(imported) :] + [imported])
            elif imported not in done:
                visit(imported, [*path, imported])
        done.add(part)

    for part in sorted(graph):
        if part not in done:
            visit(part, [part])
    return found


def test_no_part_of_the_package_imports_one_that_imports_it_back() -> None:
    """Each folder (and top-level module) of the package depends on the others one way only,
    so each can be read, tested and changed knowing only those below it."""
    graph = _part_graph()
    assert {"inference", "window", "pipeline", "cli"} <= set(graph)
    assert "inference" in graph["window"] and "window" in graph["pipeline"]  # the scan sees imports
    wrong = [
        " -> ".join(cycle) + ": " + "; ".join(graph[a][b] for a, b in zip(cycle, cycle[1:])) for cycle in _cycles(graph)
    ]
    assert not wrong, wrong


def test_the_cycle_check_finds_a_cycle_through_several_parts() -> None:
    graph = {"a": {"b": "a imports b"}, "b": {"c": "b imports c"}, "c": {"a": "c imports a"}, "d": {}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b": ""}, "b": {}, "c": {"a": ""}}) == []


def test_the_check_resolves_a_relative_import() -> None:
    module = PACKAGE / "window" / "assembly.py"
    assert _absolute(module, 2, "inference.select") == "streamdeblur.inference.select"
    assert _absolute(module, 1, None) == "streamdeblur.window"


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
