"""The prepared run for a lent GPU machine (tests/device_check.py) works on a machine without
PyAV, as those machines are: here on the CPU in its quick mode, PyAV hidden."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a few processes, each importing torch


def test_the_device_check_runs_every_step_without_pyav(tmp_path: Path) -> None:
    hidden = tmp_path / "no-pyav" / "av"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text('raise ImportError("PyAV is not installed on this machine")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hidden.parent), str(ROOT)])}
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "tests.device_check", "--device", "cpu", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    report = json.loads((out / "device_check.json").read_text())
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert all("error" not in report[step] for step in ("gpu_tests", "network", "windowed", "streams"))
    assert report["gpu_tests"]["returncode"] == 0 and "8 skipped" in report["gpu_tests"]["tail"]  # no GPU here
    assert (
        len([key for key in report["network"] if "in_flight" in key]) == 4
        and min(v for k, v in report["network"].items() if "in_flight" in k) > 0
    )
    assert report["windowed"]["cost, ahead"] > 0
    assert (
        report["streams"]["separate processes, total"] > 0 and len(report["streams"]["separate processes, each"]) == 2
    )
    assert report["freed_memory_kept"] is (platform.libc_ver()[0] == "glibc")  # the allocator, as the CLI sets it
