"""What window assembly computes from one frame, or from a pair of frames, kept while those
frames are still in the window.

A frame belongs to up to K windows (its own and its neighbours'): its grey copy for ECC, its
motion to each neighbour and its Fourier magnitude are the same in all of them, so a stream
computes them once. Entries are keyed by the frames' identity and hold the frames themselves,
so an id cannot be reused while its entry lives; `keep_only` drops what no window can need.
A fresh memo for one window (training, evaluation) computes exactly the same values.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


class FrameMemo:
    """Safe to share between the threads that assemble a stream's windows side by side: a
    value another thread is computing is waited for, not computed twice."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], tuple[tuple[np.ndarray, ...], Future[Any]]] = {}
        self._lock = threading.Lock()

    def get(self, what: str, frames: tuple[np.ndarray, ...], compute: Callable[[], T]) -> T:
        """`compute()`'s value for `what` of these frames, computed on the first call only."""
        key = (what, *map(id, frames))
        with self._lock:
            held = self._values.get(key)
            mine = held is None
            if held is None:
                held = self._values[key] = (frames, Future())
        if mine:
            try:
                held[1].set_result(compute())
            except BaseException as error:
                held[1].set_exception(error)
                raise
        return held[1].result()  # type: ignore[no-any-return]

    def forget(self, what: str, frames: tuple[np.ndarray, ...]) -> None:
        """Drop one entry that no later window needs (computed again if asked for)."""
        with self._lock:
            self._values.pop((what, *map(id, frames)), None)

    def keep_only(self, frames: Iterable[np.ndarray]) -> None:
        """Forget every entry that involves a frame not among `frames` (the frames of any
        window being assembled meanwhile must be among them)."""
        live = {id(f) for f in frames}
        with self._lock:
            self._values = {k: v for k, v in self._values.items() if all(i in live for i in k[1:])}

    def __len__(self) -> int:
        return len(self._values)
