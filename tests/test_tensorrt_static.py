"""Static proof of the TensorRT code: mypy against tensorrt-stubs (TensorRT can't install here).

A control file with a misspelt method and a tuple where `trt.Dims` is wanted must fail, so a
pass means the stubs were really in use and not silently replaced by `Any`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.typecheck import trt_stubs

pytestmark = pytest.mark.slow  # mypy over the TensorRT modules and a control file: tens of seconds

ROOT = Path(__file__).resolve().parents[1]
TENSORRT_MODULES = ("streamdeblur/engines/tensorrt_build.py", "streamdeblur/inference/tensorrt_backend.py")

CONTROL = """\
import tensorrt as trt

builder = trt.Builder(trt.Logger(trt.Logger.WARNING))
network = builder.create_netwrk(0)
profile = builder.create_optimization_profile()
profile.set_shape("blurry", (1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 64, 64))
"""


@pytest.fixture(scope="module")
def stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if trt_stubs.installed_stub_root() is None:
        if os.environ.get("STREAMDEBLUR_REQUIRE_TRT_STUBS"):
            pytest.fail("tensorrt-stubs is required here (.ci/run installs it)")
        pytest.skip("tensorrt-stubs is not installed (pip install --no-deps 'tensorrt-stubs==10.13.*')")
    return trt_stubs.prepare(tmp_path_factory.mktemp("trt-stubs"))


def _mypy(stubs: Path, *files: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": str(stubs)}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(stubs / "mypy.ini"),
            "--cache-dir",
            str(stubs / ".cache"),
            *files,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )


def test_tensorrt_modules_type_check_against_the_stubs(stubs: Path) -> None:
    result = _mypy(stubs, *TENSORRT_MODULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_catches_api_mistakes(stubs: Path, tmp_path: Path) -> None:
    control = tmp_path / "control.py"
    control.write_text(CONTROL)
    result = _mypy(stubs, str(control))
    assert result.returncode == 1
    assert 'has no attribute "create_netwrk"' in result.stdout
    assert '"set_shape" of "IOptimizationProfile" has incompatible type' in result.stdout
