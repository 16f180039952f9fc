"""How every command ends: errors become one line on stderr and the documented exit code.

Its own module so that cli.py and the commands defined beside it (adapt/command.py) share it
without importing each other.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from streamdeblur.errors import EXIT_INTERRUPTED, StreamdeblurError

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
    except StreamdeblurError as exc:
        typer.echo(f"streamdeblur: error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # the CLI's last line of defence
        missing = (exc.name or "") if isinstance(exc, ModuleNotFoundError) else ""
        extra = _EXTRAS.get(missing.split(".")[0])
        if extra is not None:  # an optional package the command needs is not installed
            typer.echo(f"streamdeblur: error: this needs {missing}: pip install 'streamdeblur[{extra}]'", err=True)
            raise typer.Exit(2) from None
        log.debug("unexpected failure", exc_info=True)
        reason = str(exc).splitlines()[0] if str(exc) else ""
        typer.echo(
            f"streamdeblur: error: {type(exc).__name__}: {reason} (run with --verbose for the traceback)",
            err=True,
        )
        raise typer.Exit(1) from None
