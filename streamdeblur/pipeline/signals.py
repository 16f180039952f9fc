"""SIGINT/SIGTERM become a graceful stop: finish what is in flight, finalize the output; while
the run is still starting, with nothing in flight, they end it at once."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from streamdeblur.stopping import StartStopped, stop_asked, stoppable

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[threading.Event]:
    """Within the block, SIGINT and SIGTERM set `stop` instead of killing the process.

    Only the main thread may install handlers; elsewhere (a worker thread) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("already stopping: finishing the frames in flight and the output file")
        else:
            log.warning("%s: stopping, finishing the frames in flight", signal.Signals(signum).name)
        stop.set()

    if stop_asked():  # asked for while the command was loading
        stop.set()
    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def starting(stop: threading.Event) -> Iterator[None]:
    """Within the block (a run's start), SIGINT and SIGTERM set `stop` and raise StartStopped
    at once, as does a `stop` set otherwise at the start's stop points (stopping.py). A signal
    ignored (a batch worker's, whose parent stops it) stays ignored; in a thread other than the
    main one only the stop points apply."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.warning("%s: stopping while starting; no output is written", signal.Signals(signum).name)
        stop.set()
        raise StartStopped

    previous: dict[int, Any] = {}  # the handlers replaced, put back at the end
    if threading.current_thread() is threading.main_thread():
        # None: a handler set outside Python, which cannot be put back; left alone.
        kept = {sig: signal.getsignal(sig) for sig in _SIGNALS}
        previous = {sig: handler for sig, handler in kept.items() if handler not in (signal.SIG_IGN, None)}
    with stoppable(stop):
        for sig in previous:
            signal.signal(sig, handle)
        try:
            yield
        except Exception as exc:
            if stop.is_set():  # the stop, turned by a library into an error of its own (an import cut short)
                raise StartStopped from exc
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
