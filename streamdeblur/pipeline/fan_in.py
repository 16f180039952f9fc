"""The processor of a run of many streams: one backend, each network call a batch of frames
from several streams.

A round takes from the streams in turn (the first one rotates from round to round) the oldest
frame each still worth processing under its latency bound, one a stream, then a second one a
stream while the batch has room; under load that is each stream's newest frame, as every older
one would be late. So every stream gets the same share of the network, and streams of the same
rate drop the same share of their frames.

A round waits for every stream that is delivering to have a frame (streams that have sent
nothing for a second are not waited for) or for the batch to be full, but at most `wait_s`
after its first frame arrived: batching never holds a frame longer than that.

Frames of different sizes are not padded to one: a round's frames are grouped by size and each
group is one call. Padding would make every call cost what the largest frame costs, and the
network would see borders the frame does not have, changing its output near the edges; streams
of a deployment come in few sizes, so the groups stay large.

A windowed model keeps one window per stream (window/assembly.py), so no stream's frames are
ever another's neighbours. Results come back in the order they were submitted (the CPU
processor at once, the CUDA stream scheduler a few batches later); the stream of every frame
in flight is remembered in that order, and each result goes to its stream's writer.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Executor

from streamdeblur.inference.processor import Processor
from streamdeblur.io import Frame
from streamdeblur.pipeline.lane import StreamLane

_POLL_S = 0.05


class BatchAcrossStreams:
    def __init__(
        self,
        lanes: list[StreamLane],
        processor: Processor,
        batch_size: int,
        wait_s: float,
        arrivals: threading.Condition,
        stop: threading.Event,
        assembly: Executor | None = None,
    ) -> None:
        self.lanes, self.processor = lanes, processor
        # With a windowed model, each stream's windows are assembled on `assembly`'s threads
        # beside the other streams' (a stream's own frames stay in order on one thread).
        self.assembly = assembly
        self.batch_size, self.wait_s = max(1, batch_size), wait_s
        self._arrivals, self._stop = arrivals, stop
        self._open = list(lanes)  # streams whose output is not closed yet
        self._in_flight: deque[StreamLane] = deque()  # the stream of each frame submitted, not yet back
        self._turn = 0

    def run(self) -> None:
        """Until every stream has ended and its frames are back with its writer."""
        while self._open:
            self._end_finished()
            ready = self._wait_for_frames()
            if self._stop.is_set():
                for lane in self._open:
                    lane.discard_waiting()
                ready = []
            if not ready:
                self._route(self.processor.flush())  # idle: what is in flight goes out now
                continue
            for group in _by_size(self._windows(self._pick(ready))):
                self._submit(group)

    def _wait_for_frames(self) -> list[StreamLane]:
        """Streams with a frame waiting, once the round is as full as it will get; [] when
        nothing came within a short poll (time to end finished streams and flush)."""
        deadline: float | None = None
        polled = False
        with self._arrivals:
            while True:
                now = time.monotonic()
                ready = [lane for lane in self._open if lane.waiting()]
                if not ready:
                    if polled:
                        return []
                    polled = True
                    self._arrivals.wait(_POLL_S)
                    continue
                deadline = deadline if deadline is not None else now + self.wait_s
                expected = min(self.batch_size, sum(1 for lane in self._open if lane.delivering(now)))
                if len(ready) >= expected or now >= deadline or self._stop.is_set():
                    return ready
                self._arrivals.wait(deadline - now)

    def _pick(self, ready: list[StreamLane]) -> list[tuple[StreamLane, Frame]]:
        count = len(self.lanes)
        order = sorted(ready, key=lambda lane: (self.lanes.index(lane) - self._turn) % count)
        self._turn = (self._turn + 1) % count
        picked: list[tuple[StreamLane, Frame]] = []
        while len(picked) < self.batch_size:
            before = len(picked)
            for lane in order:
                if len(picked) == self.batch_size:
                    break
                frame = lane.next_frame()
                if frame is not None:
                    picked.append((lane, frame))
            if len(picked) == before:
                break
        return picked

    def _windows(self, picked: list[tuple[StreamLane, Frame]]) -> list[tuple[StreamLane, Frame]]:
        """What the network takes: the frames, or with a windowed model the windows they
        complete, stream by stream."""
        if all(lane.window is None for lane, _ in picked):
            return picked
        by_stream: dict[int, tuple[StreamLane, list[Frame]]] = {}
        for lane, frame in picked:
            by_stream.setdefault(id(lane), (lane, []))[1].append(frame)
        streams = list(by_stream.values())

        def complete(stream: tuple[StreamLane, list[Frame]]) -> list[Frame]:
            lane, frames = stream
            return lane.window.push_all(frames) if lane.window is not None else frames

        if self.assembly is not None and len(streams) > 1:
            completed = list(self.assembly.map(complete, streams))
        else:
            completed = [complete(stream) for stream in streams]
        return [(lane, item) for (lane, _), items in zip(streams, completed) for item in items]

    def _submit(self, group: list[tuple[StreamLane, Frame]]) -> None:
        self._in_flight.extend(lane for lane, _ in group)
        self._route(self.processor.submit([frame for _, frame in group]))

    def _route(self, done: list[Frame]) -> None:
        for frame in done:
            lane = self._in_flight.popleft()
            lane.deliver(lane.window.hand_through([frame])[0] if lane.window is not None else frame)

    def _end_finished(self) -> None:
        """Close the outputs of streams whose input has ended, once their last frames are back."""
        for lane in [lane for lane in self._open if lane.input_done()]:
            if lane.window is not None and not lane.abort.is_set():
                for group in _by_size([(lane, window) for window in lane.window.flush()]):
                    self._submit(group)
            if lane in self._in_flight:
                self._route(self.processor.flush())
            lane.processed.close()
            self._open.remove(lane)


def _by_size(items: list[tuple[StreamLane, Frame]]) -> list[list[tuple[StreamLane, Frame]]]:
    """Items grouped by pixel shape and type, in the order each size first appears."""
    groups: dict[tuple[tuple[int, ...], str], list[tuple[StreamLane, Frame]]] = {}
    for lane, frame in items:
        groups.setdefault((frame.pixels.shape, str(frame.pixels.dtype)), []).append((lane, frame))
    return list(groups.values())
