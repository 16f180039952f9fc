"""Packets copied from input to output (audio, subtitles), held until the video catches up."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any


def packet_time(packet: Any) -> float:
    """Seconds of a packet's presentation (decode time if it has no pts)."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    return float(stamp * packet.time_base) if stamp is not None else 0.0


class PacketBuffer:
    """Packets the reader demuxed and the writer has not muxed yet, in demux order.

    It holds only what the video pipeline is behind by (the video queues are bounded), so it
    does not grow with the length of the input.
    """

    def __init__(self) -> None:
        self._packets: deque[Any] = deque()
        self._lock = threading.Lock()

    def put(self, packet: Any) -> None:
        with self._lock:
            self._packets.append(packet)

    def take_until(self, seconds: float | None) -> list[Any]:
        """Packets due at or before `seconds` (all of them when None)."""
        taken = []
        with self._lock:
            while self._packets and (seconds is None or packet_time(self._packets[0]) <= seconds):
                taken.append(self._packets.popleft())
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._packets)
