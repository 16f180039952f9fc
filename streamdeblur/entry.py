"""The command's front door (`streamdeblur` and `python -m streamdeblur`): Ctrl-C answered from
the first moment, before the command line and PyTorch are imported.

Kept free of imports beyond the standard library: whatever it imports loads before the handler.
"""

from __future__ import annotations

import os
import signal


def _exit_while_loading(signum: int, frame: object) -> None:
    # Nothing is open while the command line imports, so there is nothing to finish: exit at
    # once. Raising from here instead (stopping.stop_now) can land inside a native module's
    # import (PyTorch's pybind11 code), which cannot take an exception and aborts the process.
    os._exit(130)


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _exit_while_loading)
    from streamdeblur.cli import main as command_line  # after the handlers, so they cover its imports

    command_line()  # installs stopping.stop_at_once first: from here a stop raises where it is
