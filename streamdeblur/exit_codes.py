"""How every command ends: errors become one line on stderr and the documented exit code.

Its own module so that cli.py and the commands defined beside it (adapt/command.py) share it
without importing each other.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from streamdeblur.errors import EXIT_INTERRUPTED, StreamdeblurError
from streamdeblur.stopping import stop_asked

log = logging.getLogger("streamdeblur")

# The optional packages, by the extra that installs them (pyproject.toml).
_EXTRAS = {
    "skimage": "train", "tensorboard": "train", "matplotlib": "train",
    "onnx": "onnx", "onnxruntime": "onnx", "onnxscript": "onnx", "tensorrt": "trt", "ray": "ray",
    "openvino": "openvino",
}  # fmt: skip


@contextmanager
def exit_codes() -> Iterator[None]:
    """Errors become one line on stderr and the documented exit code, never a traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort) as exc:
        if getattr(exc, "exit_code", None) == EXIT_INTERRUPTED:
            _exit_promptly()
        raise
    except KeyboardInterrupt:
        _exit_promptly()
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:
        if stop_asked():  # stopped while loading: what failed after, failed of it (a module half imported)
            log.debug("failure after a stop", exc_info=True)
            _exit_promptly()
            raise typer.Exit(EXIT_INTERRUPTED) from None
        _exit_with_error(exc)


def _exit_with_error(exc: Exception) -> NoReturn:
    if isinstance(exc, StreamdeblurError):
        typer.echo(f"streamdeblur: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    # The CLI's last line of defence.
    missing = (exc.name or "") if isinstance(exc, ModuleNotFoundError) else ""
    extra = _EXTRAS.get(missing.split(".")[0])
    if extra is not None:  # an optional package the command needs is not installed
        typer.echo(f"streamdeblur: error: this needs {missing}: pip install 'streamdeblur[{extra}]'", err=True)
        raise typer.Exit(2) from None
    log.debug("unexpected failure", exc_info=(type(exc), exc, exc.__traceback__))
    reason = str(exc).splitlines()[0] if str(exc) else ""
    typer.echo(
        f"streamdeblur: error: {type(exc).__name__}: {reason} (run with --verbose for the traceback)",
        err=True,
    )
    raise typer.Exit(1) from None


def _exit_promptly() -> None:
    """An interrupted command has done what it must (its output finalized or removed); Python's
    last garbage collection at exit, over everything the run built (seconds, after an ONNX
    export), would only hold up the exit the user asked for. Frozen, it is left to the OS."""
    gc.freeze()
