"""The front door and the documentation site: the README stays short, the site builds with no
broken link, and the repository stays small enough to clone quickly."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_LINES = 400
TRACKED_MIB = 25


def test_the_readme_is_a_front_door() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_LINES
    # The two set-up commands, as the design card gives them.
    assert "pip install torch==2.13.0 && pip install -e . && streamdeblur demo demo_blurry.mp4" in readme
    assert "\n.ci/run\n" in readme
    for image in ("docs/images/window_default_video_before_after.png",):
        assert image in readme and (ROOT / image).is_file()


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="the [docs] extra is not installed")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """--strict: a broken link, or a page left out of the navigation, fails the build."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The home page is the README (docs/hooks/readme_home.py), its page mentions made links.
    home = (tmp_path / "site" / "index.html").read_text()
    assert "Set up and try it" in home and 'src="images/window_default_video_before_after.png"' in home
    assert 'href="real-footage/"' in home


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout")
def test_the_tracked_files_stay_small() -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    total = sum(
        (ROOT / name).stat().st_size for name in listed.decode().split("\0") if name and (ROOT / name).is_file()
    )
    assert total <= TRACKED_MIB * 2**20, f"{total / 2**20:.1f} MiB tracked"
