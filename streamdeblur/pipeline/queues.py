"""Bounded queues between pipeline stages.

`put` blocks while the queue is full (backpressure: memory does not grow with video length),
or, with `drop_oldest` (live sources), evicts the oldest item and counts it. Every wait
wakes up regularly to notice the shared abort event, so a failed stage never leaves another
one hanging. Queues may share one condition, so that a stage fed by several of them (the
processor of many streams) can wait for an item in any.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_POLL_S = 0.05


class Aborted(Exception):
    """Another stage failed; this one should stop."""


class StageQueue:
    def __init__(
        self,
        capacity: int,
        abort: threading.Event,
        drop_oldest: bool = False,
        on_drop: Callable[[Any], None] | None = None,
        condition: threading.Condition | None = None,
    ) -> None:
        self.capacity = max(1, capacity)
        self.drop_oldest = drop_oldest
        self._abort = abort
        self._on_drop = on_drop
        self._items: deque[Any] = deque()
        self._cond = condition or threading.Condition()
        self._closed = False

    def put(self, item: Any) -> None:
        with self._cond:
            while len(self._items) >= self.capacity:
                if self._abort.is_set():
                    raise Aborted
                if self.drop_oldest:
                    evicted = self._items.popleft()
                    if self._on_drop is not None:
                        self._on_drop(evicted)
                    break
                self._cond.wait(_POLL_S)
            if self._abort.is_set():
                raise Aborted
            self._items.append(item)
            self._cond.notify_all()

    def get_batch(self, max_items: int) -> list[Any] | None:
        """Wait for one item, then take up to `max_items` that are ready; None once closed and empty."""
        with self._cond:
            while not self._items:
                if self._abort.is_set():
                    raise Aborted
                if self._closed:
                    return None
                self._cond.wait(_POLL_S)
            batch = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._cond.notify_all()
            return batch

    def take(self, max_items: int) -> list[Any]:
        """Up to `max_items` items that are ready, oldest first, without waiting."""
        with self._cond:
            taken = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            if taken:
                self._cond.notify_all()
            return taken

    @property
    def exhausted(self) -> bool:
        """Closed, and everything put has been taken."""
        with self._cond:
            return self._closed and not self._items

    def get(self) -> Any | None:
        batch = self.get_batch(1)
        return batch[0] if batch else None

    def clear(self) -> int:
        """Forget everything queued (a graceful stop drops work not yet started)."""
        with self._cond:
            count = len(self._items)
            self._items.clear()
            self._cond.notify_all()
            return count

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
