"""Warping a window's neighbours onto the frame being restored, before the network sees them.

Three methods (a windowed model is trained with one, and its config names it):

- `none`: the neighbours as they are; the network must find the detail within its reach.
  With refusal, a fixed camera's (`--still-camera`, window/still_camera.py).
- `global`: one motion per neighbour, an affine map (rotation, zoom, shear, shift) found by
  OpenCV's ECC on small grey copies, started from phase correlation's shift. Exact for a
  camera that turns or shakes over a distant scene; not for parallax or moving objects.
  ECC always runs from the earlier frame of a pair to the later one, and a window whose
  neighbour came earlier uses that motion inverted: each pair's motion is found once in a
  stream (FrameMemo), not once in each of the two windows it serves.
- `flow`: dense optical flow (OpenCV's DIS, ultrafast preset) from the restored frame to each
  neighbour: every pixel its own motion, so also parallax and moving objects, at more cost
  and with the errors flow makes on blurred frames.

Where a warped neighbour has nothing (it looked elsewhere), the restored frame's own pixels
fill in, so the network sees agreement there rather than an invented border.
"""

from __future__ import annotations

import cv2
import numpy as np

from streamdeblur.models.config import ALIGNMENTS
from streamdeblur.window.memo import FrameMemo

# ECC works on a grey copy this wide at most (and at least a quarter of the frame): cost
# stays flat with frame size while the shift is found to a fraction of a full-size pixel.
ECC_WIDTH = 160
ECC_ITERATIONS = 40
ECC_EPS = 1e-4
# DIS works on a grey copy this wide at most; its flow is scaled back up.
FLOW_WIDTH = 640
# Mismatch is judged on grey copies this many times smaller, where blur (which changes fine
# detail) hardly shows and an object that moved on its own still does. A difference over the
# first number of 8-bit levels starts to refuse the neighbour there; over the second, wholly.
MISMATCH_SHRINK = 8
MISMATCH_LEVELS = (6.0, 16.0)
# Refusal is for a camera that held still against that neighbour (no corner of the frame moved
# this many pixels): there a mismatch is something moving on its own. Under a moving camera a
# mismatch is as often the shake's changing blur, which the neighbour is there to undo.
STILL_CAMERA_PX = 1.0


def grey_bytes(image: np.ndarray) -> np.ndarray:
    """8-bit grey, whatever the input's depth (uint8, uint16 or float in [0, 1])."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _shrink(grey: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """A copy at most `width` wide and the factor back to full size."""
    scale = min(1.0, width / grey.shape[1])
    if scale == 1.0:
        return grey, 1.0
    size = (max(8, round(grey.shape[1] * scale)), max(8, round(grey.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA), grey.shape[1] / size[0]


EccCopy = tuple[np.ndarray, float]  # a small grey float32 copy, and the factor back to full size


def _ecc_copy(image: np.ndarray) -> EccCopy:
    small, factor = _shrink(grey_bytes(image), ECC_WIDTH)
    return small.astype(np.float32), factor


def global_motion(target: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    """2x3 affine taking target coordinates to the neighbour's (for warpAffine's inverse map)."""
    return _global_motion(_ecc_copy(target), _ecc_copy(neighbour)[0])


def _global_motion(target_copy: EccCopy, neighbour_small: np.ndarray) -> np.ndarray:
    small, factor = target_copy
    (dx, dy), _ = cv2.phaseCorrelate(small, neighbour_small)
    warp = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_ITERATIONS, ECC_EPS)
    try:
        _, warp = cv2.findTransformECC(small, neighbour_small, warp, cv2.MOTION_AFFINE, criteria, None, 5)  # type: ignore[call-overload]  # no mask
    except cv2.error:  # no convergence (a flat or changed scene): the shift alone
        pass
    warp = warp.astype(np.float64)
    warp[:, 2] *= factor  # the linear part is scale-free; the shift is in small pixels
    return warp


def _fill_outside(warped: np.ndarray, inside: np.ndarray, target: np.ndarray) -> np.ndarray:
    if inside.all():
        return warped
    return np.where(inside[..., None], warped, target)


def _motion_to(target: np.ndarray, neighbour: np.ndarray, neighbour_is_later: bool, memo: FrameMemo) -> np.ndarray:
    """2x3 affine taking target coordinates to the neighbour's, from the pair's one ECC run
    (earlier frame to later)."""
    earlier, later = (target, neighbour) if neighbour_is_later else (neighbour, target)

    def motion() -> np.ndarray:
        earlier_copy = memo.get("ecc copy", (earlier,), lambda: _ecc_copy(earlier))
        later_copy = memo.get("ecc copy", (later,), lambda: _ecc_copy(later))
        return _global_motion(earlier_copy, later_copy[0])

    forward = memo.get("motion", (earlier, later), motion)
    return forward if neighbour_is_later else cv2.invertAffineTransform(forward).astype(np.float64)


def _warp_global(target: np.ndarray, neighbour: np.ndarray, warp: np.ndarray) -> np.ndarray:
    """The neighbour warped onto the target; where the map lands outside the neighbour, the
    target's own pixels stay (a transparent border)."""
    height, width = target.shape[:2]
    # OpenCV's transparent border takes a slow per-pixel path: here only on the rim, while the
    # box inside, where every pixel samples the neighbour, takes the fast one (about twice as
    # fast as the transparent warp over the whole frame). A map so wild
    # that no pixel is surely inside has an empty box: all of it is rim.
    box = _inside_box(warp, width, height) or (0, 0, 0, 0)
    warped = np.empty_like(target)
    _warp_part(neighbour, warp, warped, box, cv2.BORDER_REPLICATE)
    for x0, y0, x1, y1 in _rim(box, width, height):
        warped[y0:y1, x0:x1] = target[y0:y1, x0:x1]
        _warp_part(neighbour, warp, warped, (x0, y0, x1, y1), cv2.BORDER_TRANSPARENT)
    return warped


Box = tuple[int, int, int, int]  # x0, y0, x1, y1: columns x0..x1-1 of rows y0..y1-1


def _warp_part(neighbour: np.ndarray, warp: np.ndarray, out: np.ndarray, box: Box, border: int) -> None:
    """warpAffine (inverse map) into `box` of `out` only, in place."""
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    shifted = warp.copy()
    shifted[:, 2] += warp[:, 0] * x0 + warp[:, 1] * y0  # the box's own origin
    cv2.warpAffine(
        neighbour,
        shifted,
        (x1 - x0, y1 - y0),
        dst=out[y0:y1, x0:x1],
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )


def _inside_box(warp: np.ndarray, width: int, height: int) -> Box | None:
    """A box of target pixels whose bilinear samples all fall inside the neighbour (a pixel
    short of its edges, for OpenCV's fixed-point rounding), or None."""
    low_x, low_y, high_x, high_y = 1.0, 1.0, width - 2.0, height - 2.0
    back = cv2.invertAffineTransform(warp)  # neighbour coordinates to the target's
    corners = [
        back @ np.array([x, y, 1.0]) for x, y in ((low_x, low_y), (high_x, low_y), (high_x, high_y), (low_x, high_y))
    ]
    (tlx, tly), (trx, try_), (brx, bry), (blx, bly) = corners
    x0, x1 = int(np.ceil(max(tlx, blx))), int(np.floor(min(trx, brx))) + 1
    y0, y1 = int(np.ceil(max(tly, try_))), int(np.floor(min(bly, bry))) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    # An affine map takes the box to a parallelogram: inside if its corners are.
    for x, y in ((x0, y0), (x1 - 1, y0), (x1 - 1, y1 - 1), (x0, y1 - 1)):
        sx, sy = warp @ np.array([x, y, 1.0])
        if not (low_x <= sx <= high_x and low_y <= sy <= high_y):
            return None
    return x0, y0, x1, y1


def _rim(box: Box, width: int, height: int) -> list[Box]:
    """The frame outside `box`, as the rows above and below it and the columns beside it."""
    x0, y0, x1, y1 = box
    return [(0, 0, width, y0), (0, y1, width, height), (0, y0, x0, y1), (x1, y0, width, y1)]


_DIS: dict[int, cv2.DISOpticalFlow] = {}


def _dis() -> cv2.DISOpticalFlow:
    import threading

    key = threading.get_ident()  # one per thread: a DIS object keeps state between calls
    if key not in _DIS:
        _DIS[key] = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_ULTRAFAST)
    return _DIS[key]


def warp_flow(target: np.ndarray, neighbour: np.ndarray) -> np.ndarray:
    height, width = target.shape[:2]
    small_t, factor = _shrink(grey_bytes(target), FLOW_WIDTH)
    small_n, _ = _shrink(grey_bytes(neighbour), FLOW_WIDTH)
    flow = np.asarray(_dis().calc(small_t, small_n, None))  # type: ignore[call-overload]  # stubs omit None
    if factor != 1.0:
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * factor
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(neighbour, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return _fill_outside(warped, inside, target)


def corner_shift(warp: np.ndarray, width: int, height: int) -> float:
    """How far the 2x3 affine `warp` moves the frame's farthest-moved corner, in pixels."""
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    return float(np.max(np.hypot(*(corners @ warp.T - corners[:, :2]).T)))


def refuse_mismatch(target: np.ndarray, warped: np.ndarray) -> np.ndarray:
    """The aligned neighbour, with the target's own pixels where the two still differ in the
    coarse picture (MISMATCH_LEVELS), blended smoothly in between."""
    height, width = target.shape[:2]
    size = (max(1, width // MISMATCH_SHRINK), max(1, height // MISMATCH_SHRINK))
    small = [
        cv2.resize(grey_bytes(image), size, interpolation=cv2.INTER_AREA).astype(np.float32)
        for image in (target, warped)
    ]
    difference = cv2.dilate(np.abs(small[0] - small[1]), np.ones((3, 3), np.uint8))  # the object's rim too
    low, high = MISMATCH_LEVELS
    keep = np.clip((high - difference) / (high - low), 0.0, 1.0)
    if keep.min() == 1.0:
        return warped
    keep = cv2.resize(keep, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    blended = warped.astype(np.float32) * keep + target.astype(np.float32) * (1.0 - keep)
    return np.round(blended).astype(target.dtype)


def align_window(
    frames: list[np.ndarray],
    method: str,
    offsets: tuple[int, ...],
    memo: FrameMemo | None = None,
    refuse: bool = False,
) -> list[np.ndarray]:
    """`frames` in the network's order (the restored frame first, then its neighbours at
    `offsets`, in frames from it) with every neighbour warped onto it by `method`. A
    neighbour that is the restored frame itself (padding) is passed through, and one that
    appears twice (padding) is warped once. `memo` keeps what a stream's next windows reuse.
    `refuse`: where a warped neighbour still does not match and the camera held still against
    it (STILL_CAMERA_PX; with `none`, always), the frame's own pixels instead."""
    if method not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {method!r}")
    if len(offsets) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(offsets)} offsets")
    target = frames[0]
    if method == "none" and not refuse:
        return list(frames)
    memo = memo if memo is not None else FrameMemo()
    warped: dict[int, np.ndarray] = {id(target): target}
    for neighbour, offset in zip(frames[1:], offsets[1:]):
        if id(neighbour) in warped:
            continue
        still = True
        if method == "none":  # the camera did not move (a fixed camera, --still-camera)
            aligned = neighbour
        elif method == "global":
            motion = _motion_to(target, neighbour, offset > 0, memo)
            aligned = _warp_global(target, neighbour, motion)
            still = corner_shift(motion, target.shape[1], target.shape[0]) < STILL_CAMERA_PX
        else:
            aligned = warp_flow(target, neighbour)
        warped[id(neighbour)] = refuse_mismatch(target, aligned) if refuse and still else aligned
    return [warped[id(f)] for f in frames]
