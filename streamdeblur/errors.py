"""Errors that end a run with a one-line message and a documented exit code.

Exit codes (DESIGN.md): 0 done, 1 failure while processing, 2 bad usage or bad input,
130 interrupted.
"""

from __future__ import annotations


class StreamdeblurError(Exception):
    """An error the user can act on; the CLI prints its message and exits with `exit_code`."""

    exit_code = 1


class BadInput(StreamdeblurError):
    """The input cannot be read as video, or an option is unusable with it."""

    exit_code = 2


class BadUsage(StreamdeblurError):
    """Options that contradict each other or name something that does not exist."""

    exit_code = 2


class ProcessingError(StreamdeblurError):
    """Something failed while frames were flowing."""

    exit_code = 1


EXIT_INTERRUPTED = 130
