from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from streamdeblur.models import DeepDeblur, load_model_config, save_weights

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONNX exports go to a session folder, not the checkout's engines/."""
    folder = tmp_path_factory.mktemp("engines")
    os.environ["STREAMDEBLUR_ENGINE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session", autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CPU backend choices go to a session folder, not the user's cache."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["STREAMDEBLUR_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random weights of the tiny configuration: fast, and a real network."""
    torch.manual_seed(0)
    model = DeepDeblur(load_model_config("tiny"))
    return save_weights(model, tmp_path_factory.mktemp("weights") / "tiny.safetensors", {"note": "random, for tests"})


def run_cli(
    *args: str, timeout: float = 240, check: bool = False, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`streamdeblur ARGS` in a real process, as a user runs it."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "streamdeblur", *args], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stderr}")
    return result


def run_cli_here(*args: str) -> subprocess.CompletedProcess[str]:
    """`streamdeblur ARGS` in this process, for commands that fail before doing any work: the
    same app and error handling as `run_cli`, without an interpreter and torch to start."""
    import traceback

    from typer.testing import CliRunner

    from streamdeblur.cli import app

    result = CliRunner().invoke(app, list(args))
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # What a real process would print: an exception the app let through.
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, stderr)
