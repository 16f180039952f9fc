"""Make the tensorrt-stubs package usable by mypy (TensorRT itself cannot be installed here).

The package installs `tensorrt/` and `tensorrt_bindings/` stub folders without a py.typed
marker, so mypy ignores them unless a copy sits on MYPYPATH; and the copy needs a few mends
before mypy can parse it: parameters named `in` (a keyword), one parameter without a default
after defaulted ones (`add_scale_nd`), and an `import tensorrt_libs` of a module that has no
stubs.
"""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")

MYPY_CONFIG = """\
[mypy]
python_version = 3.11
follow_imports = silent
ignore_missing_imports = True
warn_unused_ignores = False

[mypy-tensorrt.*]
ignore_errors = True

[mypy-tensorrt_bindings.*]
ignore_errors = True

# The check is of the TensorRT calls; reading torch's own sources for their types is most of
# mypy's time (54 s with, 10 s without, on a busy 2-core CPU), so torch counts as untyped here.
[mypy-torch.*]
follow_imports = skip
"""


def installed_stub_root() -> Path | None:
    try:
        dist = metadata.distribution("tensorrt-stubs")
    except metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.parts[0] == "tensorrt" and file.name == "__init__.pyi":
            return Path(str(dist.locate_file(file))).parents[1]
    return None


def _mend(text: str) -> str:
    text = re.sub(r"\bin: ", "in_: ", text)  # `in` is a Python keyword
    text = re.sub(r"^import tensorrt_libs as tensorrt_libs\n", "", text, flags=re.MULTILINE)
    # add_scale_nd(..., shift=None, scale=None, power=None, channel_axis): move the required one first
    return re.sub(
        r"def add_scale_nd\(self, input: ITensor, mode: ScaleMode, "
        r"(shift: Weights = None, scale: Weights = None, power: Weights = None), channel_axis: int\)",
        r"def add_scale_nd(self, input: ITensor, mode: ScaleMode, channel_axis: int, \1)",
        text,
    )


def prepare(dest: Path) -> Path:
    """Copy and mend the stubs into dest; returns the folder to put on MYPYPATH."""
    root = installed_stub_root()
    if root is None:
        raise FileNotFoundError("tensorrt-stubs is not installed: pip install --no-deps 'tensorrt-stubs==10.13.*'")
    for package in STUB_PACKAGES:
        target = dest / package
        shutil.copytree(root / package, target, dirs_exist_ok=True)
        for stub in target.rglob("*.pyi"):
            stub.write_text(_mend(stub.read_text()))
    (dest / "mypy.ini").write_text(MYPY_CONFIG)
    return dest
