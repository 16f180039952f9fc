"""`python -m streamdeblur`: the command line, with Ctrl-C answered from the first moment."""

import os
import signal


def _exit_while_loading(signum: int, frame: object) -> None:
    # Nothing is open while the command line imports, so there is nothing to finish: exit at
    # once. Raising from here instead (stopping.stop_now) can land inside a native module's
    # import (PyTorch's pybind11 code), which cannot take an exception and aborts the process.
    os._exit(130)


for _sig in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_sig, _exit_while_loading)

from streamdeblur.cli import main  # noqa: E402  # after the handlers, so they cover its imports

main()  # installs stopping.stop_at_once first: from here a stop raises StartStopped where it is
