"""Windows of consecutive frames for a windowed network: gathering, padding, scene cuts.

A windowed model (cfg.frames > 1) restores one frame from it and its neighbours, stacked on
the channel axis in cfg.offsets order with the neighbours aligned onto it. At the start and
end of a clip a missing neighbour repeats the nearest frame there is; at a scene cut the
window resets the same way, so no neighbour from another shot is ever used. Training,
evaluation and the pipeline all assemble windows here, so the network sees the same thing
in all three. With cfg.still_pass the window also finds where nothing moved (window/still.py)
and hands the frame through there once the network's output is back (`hand_through`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np

from streamdeblur.inference.backend import Backend
from streamdeblur.inference.concurrent import ConcurrentCalls, assembly_pool, assembly_threads, ended_in_order
from streamdeblur.inference.processor import Processor
from streamdeblur.inference.select import make_processor
from streamdeblur.io.frame import Frame
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.window.alignment import align_window
from streamdeblur.window.fusion import fourier_burst_accumulation, frame_spectrum, smoothed_magnitude
from streamdeblur.window.memo import FrameMemo
from streamdeblur.window.still import StillPass, StillProcessor, refuse_unsharper, refuse_where_still
from streamdeblur.window.still_camera import assembly_config

# Scene cuts: the Bhattacharyya distance between hue-saturation-value histograms of small
# copies of consecutive frames. On 40 synthetic shots (sharp frames beside 36 px streaks),
# frames of one shot reached 0.36 at most and frames of different shots 0.57 at least.
CUT_DISTANCE = 0.47
_THUMB_WIDTH = 64


def window_indices(position: int, first: int, last: int, offsets: tuple[int, ...]) -> list[int]:
    """Indices of the window around `position` in network order, kept within the shot's
    frames [first, last] by repeating the nearest one (padding)."""
    return [min(max(position + o, first), last) for o in offsets]


def stack_window(frames: list[np.ndarray], cfg: DeepDeblurConfig, memo: FrameMemo | None = None) -> np.ndarray:
    """The network's input for a window (network order, restored frame first): the frames
    aligned as cfg says, in the channels cfg.input_slots lays out (H x W x 3 per slot).
    `memo`: a stream's, so what a frame shares with its next windows is computed once; the
    result is the same without it."""
    memo = memo if memo is not None else FrameMemo()
    if cfg.refuse_unsharper is not None:
        frames = refuse_unsharper(
            frames, cfg.refuse_unsharper, memo, cfg.refuse_unsharper_isotropy, cfg.refuse_unsharper_directional
        )
    aligned = align_window(frames, cfg.align, cfg.offsets, memo, refuse=cfg.refuse_mismatch)
    if cfg.refuse_still:
        aligned = refuse_where_still(frames, aligned, memo)
    if cfg.fuse == "none":
        return _channels(aligned)

    # Weighed by the frames' magnitudes before alignment: the same up to the borders a warp
    # brings in, and computed once per frame, from the spectrum that the frame's own window
    # fuses as well (alignment leaves the restored frame as it is).
    def spectrum(frame: np.ndarray) -> np.ndarray:
        return memo.get("spectrum", (frame,), lambda: frame_spectrum(frame))

    magnitudes = [memo.get("magnitude", (f,), lambda f=f: smoothed_magnitude(f, spectrum(f))) for f in frames]  # type: ignore[misc]
    known = [spectrum(frames[0]) if f is frames[0] else None for f in aligned]
    fused = fourier_burst_accumulation(aligned, magnitudes=magnitudes, spectra=known)
    # The frame's own window is the last to need its spectrum (its later windows warp it,
    # and take its magnitude): dropped now, so a stream holds a spectrum for a few frames only.
    memo.forget("spectrum", (frames[0],))
    if cfg.fuse == "fba":
        return fused
    return _channels([fused, *aligned])


def _channels(images: list[np.ndarray]) -> np.ndarray:
    """The images' channels side by side (H x W x sum of C): OpenCV's merge interleaves them
    5x faster than np.concatenate on the last axis."""
    return cv2.merge(images)  # type: ignore[no-any-return]


def colour_histogram(pixels: np.ndarray) -> np.ndarray:
    """A small normalised HSV histogram of an RGB frame (uint8 or uint16), for cut detection."""
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    height, width = pixels.shape[:2]
    small = cv2.resize(
        pixels, (_THUMB_WIDTH, max(1, round(height * _THUMB_WIDTH / width))), interpolation=cv2.INTER_AREA
    )
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, [12, 3, 3], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(hist, hist).flatten()


def is_cut(previous: np.ndarray, current: np.ndarray) -> bool:
    """Whether two frames' histograms (colour_histogram) belong to different shots."""
    return float(cv2.compareHist(previous, current, cv2.HISTCMP_BHATTACHARYYA)) > CUT_DISTANCE


@dataclass
class _Held:
    frame: Frame
    shot: int
    histogram: np.ndarray


class FrameWindow:
    """Turns a stream of frames (in order) into the windows a windowed model takes.

    `push` returns the windows that became complete, as Frames whose pixels are the network's
    input (stack_window) and whose pts, time base and index are the restored frame's; `flush` (at the end)
    returns the rest, padded. A causal model's windows are complete at once; a centred one's
    when its last neighbour arrives, when its shot ends (a cut), or at the end. `start_all`
    and `start_flush` return them as futures instead, assembling on the pool meanwhile.
    """

    def __init__(
        self, cfg: DeepDeblurConfig, pool: Executor | None = None, then: Callable[[Frame], Frame] | None = None
    ) -> None:
        self.cfg = cfg
        # Windows that become complete together are assembled (aligned, fused, stacked) on
        # `pool`'s threads at once, where given: the processor running frames side by side.
        self._pool = pool
        # `start_all`'s windows go on, on the thread that assembled them, through `then`
        # (a network call on the CPU, WindowedProcessor.end_to_end), where given.
        self.then = then
        self.history, self.lookahead = -min(cfg.offsets), cfg.lookahead
        self._held: deque[_Held] = deque()  # frames a pending or future window may still need
        self._pending: deque[int] = deque()  # positions (in the stream) of frames not yet restored
        self._first_position = 0  # stream position of _held[0]
        self._memo = FrameMemo()  # what the held frames share between their windows
        self._shot = 0
        self.cuts = 0
        # Windows handed to the pool by `start_all` and not assembled yet, with their frames:
        # what they may still ask the memo for stays in it.
        self._in_flight: dict[int, list[np.ndarray]] = {}
        self._in_flight_lock = threading.Lock()
        # With cfg.still_pass: the blocks where nothing moved around each frame assembled
        # (window/still.py), until `hand_through` meets the network's output for it.
        self.still = StillPass(cfg.still_pass_levels) if cfg.still_pass else None

    def push(self, frame: Frame) -> list[Frame]:
        return self.push_all([frame])

    def push_all(self, frames: list[Frame]) -> list[Frame]:
        """`push` for several frames in order: the windows they complete are assembled
        together, on the pool's threads where there is one."""
        return self._assemble_all([m for frame in frames for m in self._gather(frame)])

    def flush(self) -> list[Frame]:
        return self._assemble_all(self._take(len(self._pending)))

    def start_all(self, frames: list[Frame]) -> list[Future[Frame]]:
        """`push_all` without waiting: each window these frames complete starts assembling on
        the pool at once (it must have been given one), and its future is returned in order."""
        return self._start([m for frame in frames for m in self._gather(frame)])

    def start_flush(self) -> list[Future[Frame]]:
        """`flush` without waiting, as `start_all`."""
        return self._start(self._take(len(self._pending)))

    def _start(self, members: list[tuple[list[np.ndarray], Frame]]) -> list[Future[Frame]]:
        if self._pool is None:
            raise RuntimeError("FrameWindow.start_all needs a pool to assemble on")
        futures = []
        for member in members:
            future = self._pool.submit(self._assemble_then, member)
            with self._in_flight_lock:
                self._in_flight[id(future)] = member[0]
            future.add_done_callback(self._assembled)
            futures.append(future)
        with self._in_flight_lock:
            in_flight = [f for frames in self._in_flight.values() for f in frames]
        self._memo.keep_only([*(h.frame.pixels for h in self._held), *in_flight])
        return futures

    def _assembled(self, future: Future[Frame]) -> None:
        with self._in_flight_lock:
            self._in_flight.pop(id(future), None)

    def _gather(self, frame: Frame) -> list[tuple[list[np.ndarray], Frame]]:
        """Hold `frame`; the members of the windows that became complete."""
        histogram = colour_histogram(frame.pixels)
        complete: list[tuple[list[np.ndarray], Frame]] = []
        if self._held and is_cut(self._held[-1].histogram, histogram):
            self._shot += 1
            self.cuts += 1
            complete += self._take(len(self._pending))  # the old shot has ended: its windows are complete
        self._held.append(_Held(frame, self._shot, histogram))
        self._pending.append(self._first_position + len(self._held) - 1)
        newest = self._first_position + len(self._held) - 1
        complete += self._take(sum(1 for p in self._pending if newest - p >= self.lookahead))
        return complete

    def _take(self, count: int) -> list[tuple[list[np.ndarray], Frame]]:
        members = [self._members(self._pending.popleft()) for _ in range(count)]
        self._trim()
        return members

    def _assemble_all(self, members: list[tuple[list[np.ndarray], Frame]]) -> list[Frame]:
        if self._pool is not None and len(members) > 1:
            ready = list(self._pool.map(self._assemble, members))
        else:
            ready = [self._assemble(m) for m in members]
        self._memo.keep_only(h.frame.pixels for h in self._held)
        return ready

    def _assemble(self, members: tuple[list[np.ndarray], Frame]) -> Frame:
        frames, target = members
        if self.still is not None:
            self.still.note(target.index, frames, self._memo)
        return Frame(stack_window(frames, self.cfg, self._memo), target.pts, target.time_base, target.index)

    def take_still(self, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The blocks where nothing moved around frame `index` and that frame (once), or None."""
        return self.still.take(index) if self.still is not None else None

    def hand_through(self, restored: list[Frame]) -> list[Frame]:
        """The network's `restored` frames with their frame handed through where nothing in
        their window moved (cfg.still_pass; the others as they are)."""
        return self.still.hand_through(restored) if self.still is not None else restored

    def _assemble_then(self, members: tuple[list[np.ndarray], Frame]) -> Frame:
        window = self._assemble(members)
        return window if self.then is None else self.then(window)

    def _members(self, position: int) -> tuple[list[np.ndarray], Frame]:
        """The window's frames (network order) for the frame at `position`, and that frame."""
        held = list(self._held)
        here = position - self._first_position
        shot = held[here].shot
        first, last = here, here
        while first > 0 and held[first - 1].shot == shot:
            first -= 1
        while last + 1 < len(held) and held[last + 1].shot == shot:
            last += 1
        indices = window_indices(here, first, last, self.cfg.offsets)
        target = held[here].frame
        # The same array object for a repeated frame, so alignment passes padding through.
        return [held[i].frame.pixels for i in indices], target

    def _trim(self) -> None:
        """Forget frames no pending or future window can reach."""
        oldest_needed = (self._pending[0] if self._pending else self._first_position + len(self._held)) - self.history
        while self._held and self._first_position < oldest_needed and len(self._held) > 1:
            self._held.popleft()
            self._first_position += 1


# Windows in flight per assembly thread beside a GPU, assembling or assembled: enough that a
# thread never waits for the one before it to be handed on, few enough to bound the frames held.
AHEAD_PER_THREAD = 2


class WindowedProcessor:
    """A processor for a windowed model: assembles each frame's window, then hands the
    stacks to the processor that runs the backend (the CPU one or the CUDA stream scheduler),
    in batches of its size.

    Without `ahead`, the windows a batch of frames completes are assembled (side by side on
    `pool`, where given) before the network runs them. With `ahead` (and a pool), windows are
    assembled on the pool's threads while earlier ones are on the device, each handed on, in
    order, as soon as it and those before it are ready; up to `ahead` are in flight, and more
    wait for the oldest. `take`: frames taken at once (default the inner processor's batch).
    `then`: what the pool's thread does with a window it assembled, instead of handing it to
    `inner`: on the CPU, offline, its network call (end_to_end; extra threads assembling ahead
    of calls on the same cores gain nothing)."""

    def __init__(
        self,
        inner: Processor,
        cfg: DeepDeblurConfig,
        pool: Executor | None = None,
        ahead: int = 0,
        take: int = 0,
        then: Callable[[Frame], Frame] | None = None,
    ) -> None:
        if ahead and pool is None:
            raise ValueError("assembling ahead needs a pool")
        self.inner = inner
        self.window = FrameWindow(cfg, pool, then)
        self.still = self.window.still  # for the run report
        self.batch_size = take or self.inner.batch_size
        self.ahead = ahead
        self._assembling: deque[Future[Frame]] = deque()
        self.own_pool: ThreadPoolExecutor | None = None

    @classmethod
    def beside_gpu(cls, inner: Processor, cfg: DeepDeblurConfig, threads: int, offline: bool) -> WindowedProcessor:
        """For a network on a GPU: windows assembled on `threads` of the CPU's own. Offline
        (frames wait in the queue) they are assembled ahead; live, the frames waiting when
        the processor is free are taken together and their windows assembled side by side, so
        a frame that finds the processor free goes on as soon as its window is ready."""
        pool = assembly_pool(threads)
        if offline:
            processor = cls(inner, cfg, pool, ahead=AHEAD_PER_THREAD * threads)
        else:
            processor = cls(inner, cfg, pool, take=max(threads, inner.batch_size))
        processor.own_pool = pool
        return processor

    @classmethod
    def end_to_end(cls, calls: ConcurrentCalls, cfg: DeepDeblurConfig) -> WindowedProcessor:
        """For a network on the CPU, its calls side by side (an offline run): each frame's
        window is assembled and run through the network on one of the calls' threads, end to
        end, while the other threads do the same for the next frames. No thread waits for
        another between assembling and the call, or for the slower call of a pair (up to one
        frame more than the threads is in flight, handed on in order)."""
        return cls(
            calls,
            cfg,
            calls.pool,
            ahead=calls.workers + 1,
            take=1,
            then=lambda window: calls.inner.process([window])[0],
        )

    def submit(self, frames: list[Frame]) -> list[Frame]:
        if not self.ahead:
            return self._run(self.window.push_all(frames))  # on the pool's threads, where there is one
        self._assembling.extend(self.window.start_all(frames))
        return self._onwards(ended_in_order(self._assembling, self.ahead))

    def flush(self) -> list[Frame]:
        if not self.ahead:
            return self._run(self.window.flush()) + self._inner_flush()
        self._assembling.extend(self.window.start_flush())
        return self._onwards(ended_in_order(self._assembling)) + self._inner_flush()

    def _inner_flush(self) -> list[Frame]:
        return self.window.hand_through(self.inner.flush())

    def abandon(self) -> list[Frame]:
        """A stop: the frames whose windows are running finished, in order, and nothing else.
        The frames the window still holds back for their later neighbours, and windows not yet
        started, are dropped, so a stop waits for one network call, not for the window's
        lookahead and every call queued behind it; what comes out is a prefix of the input."""
        ready: list[Frame] = []
        while self._assembling:
            future = self._assembling.popleft()
            if future.cancel():  # not started: neither it nor any later one is kept
                for later in self._assembling:
                    later.cancel()
                self._assembling.clear()
                break
            ready.append(future.result())
        return self._onwards(ready) + self._inner_flush()

    def _onwards(self, ready: list[Frame]) -> list[Frame]:
        """Windows assembled ahead, through the network unless their threads ran it already."""
        return self.window.hand_through(ready) if self.window.then is not None else self._run(ready)

    def close(self) -> None:
        """End the threads this processor owns: its assembly pool beside a GPU, and the inner
        processor's (the calls' side by side)."""
        if self.own_pool is not None:
            self.own_pool.shutdown()
        close_inner = getattr(self.inner, "close", None)
        if close_inner is not None:
            close_inner()

    def _run(self, windows: list[Frame]) -> list[Frame]:
        """The windows through the network, a batch of the inner processor's size at a time."""
        size = max(1, self.inner.batch_size)
        restored = [done for i in range(0, len(windows), size) for done in self.inner.submit(windows[i : i + size])]
        return self.window.hand_through(restored)


def windowed_processor(
    backend: Backend,
    tile: int = 0,
    tile_overlap: int = 32,
    batch: int = 1,
    streams: int = 3,
    side_by_side: bool = False,
    pictures: bool = False,
    still_camera: bool = False,
) -> Processor:
    """select.make_processor's processor for `backend`, behind the window that assembles each
    frame's neighbours where the model is windowed (a caller feeding many streams keeps one
    window per stream in front of make_processor's instead: pipeline/fan_in.py).
    `side_by_side` (an offline run): see make_processor; windows are assembled on the calls'
    threads, with one frame a call end to end: each thread takes its next frame, window and
    call, as soon as it is done with one (WindowedProcessor.end_to_end). On CUDA windows are
    assembled on the CPU's cores (WindowedProcessor.beside_gpu; ahead of the GPU when
    offline), which need one thread each as well (concurrent.assembles_beside_gpu).
    `pictures`: unrelated pictures, so no frame tells where another did not move (still_pass).
    `still_camera`: the user says the camera is fixed (window/still_camera.py)."""
    cfg = assembly_config(backend.model_config, still_camera)
    if cfg is None or cfg.frames <= 1:
        processor = make_processor(backend, tile, tile_overlap, batch, streams, side_by_side)
        return StillProcessor(processor, cfg) if cfg is not None and cfg.still_pass and not pictures else processor
    inner = make_processor(backend, tile, tile_overlap, batch, streams, side_by_side, overlapped=False)
    if backend.device.type == "cuda":
        return WindowedProcessor.beside_gpu(inner, cfg, assembly_threads(), offline=side_by_side)
    if isinstance(inner, ConcurrentCalls):
        if inner.call_batch == 1:
            return WindowedProcessor.end_to_end(inner, cfg)
        return WindowedProcessor(inner, cfg, inner.pool)
    return WindowedProcessor(inner, cfg)
