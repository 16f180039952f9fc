"""The models that ship with the package: what each is for, and which one every default is.

One table (SHIPPED) names each shipped model's role; its weights and card lie side by side in
streamdeblur/weights/ (NAME.safetensors, NAME.json, the card holding the architecture config,
the training and the measured quality). Everything that picks a model without being told reads
`default_model`; `streamdeblur models` prints the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

# What a model is for. `picture`: single frames; `video`: clips read whole (a file, a folder of
# frames), where a window of neighbours is there to use; `live`: feeds, where waiting for a
# later frame adds latency; `light`: a small single-frame network for slow machines and tests.
# `defocus`: out-of-focus and Gaussian blur, for every input (`--blur defocus`).
ROLES = ("picture", "video", "live", "light", "defocus")
# The inputs a command can be given, each with its default model's name below.
INPUTS = ("picture", "clip", "live")
# The kinds of blur a shipped model removes: motion (camera shake, things moving), and defocus
# (out of focus, a hazy cover, Gaussian softness). `--blur` picks among them.
BLURS = ("motion", "defocus")
# `--blur auto`: judged on the input's first frames (pipeline/blur_auto.py), then one of BLURS.
AUTO_BLUR = "auto"


@dataclass(frozen=True)
class ShippedModel:
    name: str  # the weights' stem: `--weights NAME`
    role: str  # ROLES
    summary: str  # one line for `streamdeblur models`
    default_for: tuple[str, ...] = ()  # INPUTS it is chosen for when no --weights is given
    blur: str = "motion"  # the blur it was trained to remove (camera shake and motion)
    # Windowed models: whether `--still-camera`'s assembly (window/still_camera.py) held for it
    # when measured on still cameras (docs/real-footage.md); where not, the option leaves it be.
    still_camera: bool = True

    @property
    def weights(self) -> Path:
        return WEIGHTS_DIR / f"{self.name}.safetensors"

    @property
    def card_path(self) -> Path:
        return self.weights.with_suffix(".json")

    def card(self) -> dict[str, Any]:
        card: dict[str, Any] = json.loads(self.card_path.read_text())
        return card


SHIPPED: tuple[ShippedModel, ...] = (
    ShippedModel(
        "deepdeblur-4scale",
        "picture",
        "single-frame, 4 scales: pictures, and live feeds without --weights",
        default_for=("picture", "live"),
    ),
    ShippedModel(
        "deepdeblur-4scale-k5-fba-window-gate-lean",
        "video",
        "a window of 5 frames, aligned and fused, with a pass-through gate: clips and frame folders",
        default_for=("clip",),
    ),
    ShippedModel(
        "deepdeblur-4scale-k3-causal-fba-window",
        "live",
        "a causal window of 3 frames (no later frame awaited): live feeds, by name",
        still_camera=False,  # rule CS-L: a still camera of the validation lost 0.37 dB with it
    ),
    ShippedModel(
        "deepdeblur-light",
        "light",
        "single-frame, 3 light scales: a quarter of a million parameters, for slow machines",
    ),
    ShippedModel(
        "deepdeblur-defocus",
        "defocus",
        "single-frame, 3 light scales: out-of-focus and Gaussian blur (--blur defocus), every input",
        blur="defocus",
    ),
)


def shipped_models() -> tuple[ShippedModel, ...]:
    return SHIPPED


def shipped_model(name: str) -> ShippedModel | None:
    """The shipped model of that name, or None."""
    return next((m for m in SHIPPED if m.name == name), None)


def default_model(input_kind: str, blur: str = "motion") -> ShippedModel:
    """The model a command uses for this kind of input (INPUTS) and blur (BLURS) when no
    --weights is given. A lens's blur is the same in every frame, so one single-frame model
    serves every input for defocus."""
    if input_kind not in INPUTS:
        raise ValueError(f"unknown input kind {input_kind!r}; one of {', '.join(INPUTS)}")
    if blur not in BLURS:
        raise ValueError(f"unknown blur {blur!r}; one of {', '.join(BLURS)}")
    if blur != "motion":
        return next(m for m in SHIPPED if m.blur == blur)
    return next(m for m in SHIPPED if input_kind in m.default_for)
