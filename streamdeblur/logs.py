"""Logging for the command line and for batch workers alike: one line per message on stderr."""

from __future__ import annotations

import logging
import sys


class _LogFormat(logging.Formatter):
    """`streamdeblur: message` for information, `streamdeblur: warning: message` otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno == logging.INFO:
            return f"streamdeblur: {message}"
        return f"streamdeblur: {record.levelname.lower()}: {message}"


def setup_logging(quiet: bool, verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormat())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("streamdeblur").setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.INFO)
    # FFmpeg's own log stays quiet unless asked; its errors reach us as exceptions. PyAV's
    # Python log callback is never installed: called from decoder threads it needs the GIL
    # and can deadlock against a main thread freeing a codec context.
    import av.logging

    av.logging.set_libav_level(av.logging.VERBOSE if verbose else av.logging.PANIC)
