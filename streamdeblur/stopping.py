"""A stop asked for before a command has work in flight ends it at once, exit code 130.

Loading (Python's modules, PyTorch) and then a run's start (the weights, the ONNX export,
timing `auto`'s candidates, compiling) can take half a minute on a new machine, with no frame
in flight to finish. While the command line loads, SIGINT and SIGTERM raise StartStopped where
the program is (`stop_at_once`); while a run starts, its stop event raises it at the start's
stop points (`stoppable`, `stop_point`: between timed calls, between candidates), and
pipeline/signals.py raises it from the signals as well.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from importlib.abc import MetaPathFinder
from types import FrameType, ModuleType


class StartStopped(KeyboardInterrupt):
    """A stop asked for before the run's first frame: nothing was processed, nothing is kept.

    A subclass, not KeyboardInterrupt itself: CPython 3.11 marks a KeyboardInterrupt raised in
    code run from a string (the methods dataclasses and namedtuples make while modules import)
    as unhandled, and at exit kills the process with SIGINT even after the program has handled
    it and chosen its exit code; it marks the exact type only."""


# Set by stop_now: a stop asked for before a run set up its own handling is kept even where a
# library swallows the StartStopped it raised (an import that catches everything, say).
_asked = threading.Event()


def stop_now(signum: int, frame: FrameType | None) -> None:
    """A SIGINT and SIGTERM handler for a command that has not started its work: StartStopped
    where the program is, which the command line turns into exit code 130."""
    _asked.set()
    raise StartStopped


def stop_asked() -> bool:
    """Whether stop_now has been called in this process."""
    return _asked.is_set()


class _NoImportAfterStop(MetaPathFinder):
    """Once a stop is asked, every import of a module not yet loaded raises StartStopped: a
    stop that a library swallowed while loading (PyTorch's C start-up imports numpy and goes
    on without it) ends the loading at the next import, not seconds later after all of it."""

    def find_spec(self, name: str, path: Sequence[str] | None, target: ModuleType | None = None) -> None:
        if _asked.is_set():
            raise StartStopped


def stop_at_once() -> None:
    """From now on, in the main thread, SIGINT and SIGTERM stop the process where it is (a
    command that wants a graceful stop sets its own handlers, pipeline/signals.py)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_now)
    if not any(isinstance(finder, _NoImportAfterStop) for finder in sys.meta_path):
        sys.meta_path.insert(0, _NoImportAfterStop())


_stop: ContextVar[threading.Event | None] = ContextVar("streamdeblur_start_stop", default=None)


@contextmanager
def stoppable(stop: threading.Event) -> Iterator[None]:
    """Within the block, `stop_point()` raises StartStopped once `stop` is set (already set: at once)."""
    token = _stop.set(stop)
    try:
        stop_point()
        yield
    finally:
        _stop.reset(token)


def stop_point() -> None:
    """A place where a long start may end: raises StartStopped if its stop is set."""
    stop = _stop.get()
    if stop is not None and stop.is_set():
        raise StartStopped
