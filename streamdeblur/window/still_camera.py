"""`--still-camera`: the user says the camera is fixed (a surveillance camera, a tripod).

Told nothing, a windowed model aligns every neighbour by one affine motion (window/alignment.py),
and over a plain scene that motion can follow what moves instead of the camera: the window
then lays a pen or a car where a neighbour had it (docs/real-footage.md, the coin's ghost).
Footage alone did not tell a fixed camera from a moving one well enough to skip alignment on
its own (docs/real-footage-rules.md), but the user knows. Told, the window is assembled with
no alignment, and each neighbour is refused where it still differs from the frame in the
coarse picture: under a fixed camera that is something that moved on its own, which the
frame's own pixels then replace. The network's weights are unchanged.

Chosen by a rule written before measuring (rule CS in docs/real-footage-rules.md); it holds for
the video default, and the live window model is left as it ships (registry.ShippedModel.still_camera).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.registry import shipped_model

log = logging.getLogger(__name__)


def still_camera_applies(cfg: DeepDeblurConfig | None) -> bool:
    """Whether `--still-camera` changes how this model's windows are assembled: a windowed model
    whose architecture is not one it was measured to harm (weights fine-tuned from a shipped
    model share its config name, and so its verdict)."""
    if cfg is None or cfg.frames <= 1:
        return False
    shipped = shipped_model(cfg.name)
    return shipped is None or shipped.still_camera


def assembly_config(cfg: DeepDeblurConfig | None, still_camera: bool) -> DeepDeblurConfig | None:
    """The config a window is assembled by: `cfg`, or with `still_camera` (and where it applies)
    no alignment and every neighbour refused where it differs from the frame (refuse_still,
    which would refuse the same neighbours again, off: the same output to 0.0002 dB)."""
    if not (still_camera and still_camera_applies(cfg)):
        return cfg
    assert cfg is not None
    return replace(cfg, align="none", refuse_mismatch=True, refuse_still=False)


def announce_still_camera(cfg: DeepDeblurConfig | None) -> bool:
    """One line in the log on what `--still-camera` does to this model; whether it applies (the
    run report's `still_camera`)."""
    applies = still_camera_applies(cfg)
    if applies:
        log.info("--still-camera: neighbours are not aligned, and refused where they differ from the frame")
    elif cfg is not None and cfg.frames > 1:
        log.info(
            "--still-camera: not used with %s, which it measured worse on a still camera (docs/real-footage.md)",
            cfg.name,
        )
    else:
        log.info("--still-camera: nothing to change for a single-frame model, which has no neighbours")
    return applies
