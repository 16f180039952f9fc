"""Which frames to learn from: the sharpest, spread over shots and time, no two alike."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from streamdeblur.adapt.scan import ScoredFrame

# A frame must score this much of the best frame of its own shot: sharpness is compared
# within a shot, where scene, light and noise are the same, not across shots.
SHOT_RELATIVE = 0.85
# Two frames show the same view (a parked camera, the frames of one burst) when their
# signatures differ by less than this share of the signatures' own contrast (mean absolute
# deviation). Unrelated views differ by about 1.4 of it; the same view shifted by a thirtieth
# of the frame's width, by about a half.
DUPLICATE_SHARE = 0.5


def near_duplicate(a: ScoredFrame, b: ScoredFrame) -> bool:
    first, second = a.signature.astype(np.float32), b.signature.astype(np.float32)
    contrast = 0.5 * (np.mean(np.abs(first - first.mean())) + np.mean(np.abs(second - second.mean())))
    return float(np.mean(np.abs(first - second))) < DUPLICATE_SHARE * max(float(contrast), 1.0)


def _shot_candidates(frames: list[ScoredFrame], min_score: float) -> list[list[ScoredFrame]]:
    """Per shot, its frames sharp enough (absolutely and within the shot), sharpest first;
    the shots with the sharpest frames first."""
    by_shot: dict[int, list[ScoredFrame]] = defaultdict(list)
    for frame in frames:
        by_shot[frame.shot].append(frame)
    shots = []
    for members in by_shot.values():
        best = max(f.score for f in members)
        keep = [f for f in members if f.score >= min_score and f.score >= SHOT_RELATIVE * best]
        if keep:
            shots.append(sorted(keep, key=lambda f: (-f.score, f.index)))
    return sorted(shots, key=lambda members: -members[0].score)


def pick_frames(frames: list[ScoredFrame], count: int, min_score: float) -> list[ScoredFrame]:
    """Up to `count` frames, in footage and time order.

    Shots take turns (each gives its sharpest remaining frame per round), so every shot with
    a sharp frame contributes before any gives a second. Within a piece of footage picks keep
    a gap of 1/(2 count) of its length, so one burst of sharp frames cannot fill the set; a
    frame that looks like one already picked is skipped.
    """
    shots = _shot_candidates(frames, min_score)
    length: dict[int, int] = defaultdict(int)
    for frame in frames:
        length[frame.footage] = max(length[frame.footage], frame.index + 1)
    gap = {footage: max(1, n // (2 * count)) for footage, n in length.items()}
    picked: list[ScoredFrame] = []

    def fits(frame: ScoredFrame) -> bool:
        return all(
            not (other.footage == frame.footage and abs(other.index - frame.index) < gap[frame.footage])
            and not near_duplicate(other, frame)
            for other in picked
        )

    while len(picked) < count and any(shots):
        for members in shots:
            while members and len(picked) < count:
                frame = members.pop(0)
                if fits(frame):  # one that does not fit now never will: picks only grow
                    picked.append(frame)
                    break
    return sorted(picked, key=lambda f: (f.footage, f.index))
