"""DeepDeblur configurations as data (YAML under configs/models/)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from streamdeblur.errors import BadUsage

# How a window's neighbours are aligned onto the restored frame (window/alignment.py).
ALIGNMENTS = ("none", "global", "flow")
# What the network sees of an aligned window: every frame stacked ("none"); the frames fused
# into one by Fourier burst accumulation ("fba", window/fusion.py); or the fused frame
# followed by the stacked window ("fba+window"), so the network can tell where the fusion
# misleads (objects that move on their own, a misaligned neighbour) and when nothing moves.
FUSIONS = ("none", "fba", "fba+window")
# The input slot that holds the fused frame (DeepDeblurConfig.input_slots).
FUSED = "fused"
# The pass-through gate's shape (models.deepdeblur.PassThroughGate): three small convs whose
# dilations widen its view to 15x15 pixels of a 4x smaller copy (60x60 of the frame).
GATE_FEATS = 8
GATE_KERNEL = 3
GATE_DILATIONS = (1, 2, 4)
# The gate works on a copy this many times smaller than the frame (where the pyramid allows).
GATE_SHRINK = 4


@dataclass(frozen=True)
class DeepDeblurConfig:
    """Architecture of a multi-scale DeepDeblur network (Nah et al., CVPR 2017).

    The defaults are the paper's: 3 scales, 64 features, 19 ResBlocks per scale, 5x5 kernels.
    `n_feats` and `n_resblocks` are one number for every scale, or one per scale, finest
    first: a conv at scale s costs 4**-s of one at full resolution while its receptive field
    grows 2**s times, so capacity at the coarse scales resolves long blur cheaply.
    """

    name: str = "deepdeblur"
    n_scales: int = 3
    n_feats: int | tuple[int, ...] = 64
    n_resblocks: int | tuple[int, ...] = 19
    kernel_size: int = 5
    # Video: the network sees a window of `frames` consecutive frames (3 * frames input
    # channels, the frame it restores first) and restores one of them: the centre one, or
    # with `causal` the newest (live: no waiting for future frames). `align` is how the
    # neighbours are warped onto that frame before the network (window/alignment.py); the
    # weights learnt with one, so it travels with them. `fuse` (FUSIONS) puts the window's
    # fused frame first, alone or before the stacked window (input_slots).
    frames: int = 1
    causal: bool = False
    align: str = "none"
    fuse: str = "none"
    # A learned gate after the finest scale (models.deepdeblur.PassThroughGate) that hands the
    # frame being restored (the fused one, with fusion) through where the network would only
    # spoil it: a sharp, still frame is hard for a network without a global skip to reproduce
    # exactly, and easy to recognise.
    gate: bool = False
    # After alignment, where the camera held still against a neighbour, the neighbour's regions
    # that still differ from the frame in the coarse picture (an object that moves on its own)
    # are refused: the frame's own pixels take their place (window/alignment.py).
    refuse_mismatch: bool = False
    # The same refusal where a neighbour, as the camera gave it, matches the frame on nearly all
    # of its textured blocks (window/still.camera_still): a still camera, whatever alignment
    # made of an object moving in front of it.
    refuse_still: bool = False
    # Where given: if no real neighbour is sharper than the frame by this share in any direction
    # (window/still.py's sharpness, on the frames as the camera gave them), the window is the
    # frame alone, as padding makes it: fusion earns its gain from sharper neighbours (a shaking
    # camera's lucky frames), and ones no sharper only bring a chance to soften what moves on
    # its own. The network input only; still_pass and refuse_still still judge the real
    # neighbours.
    refuse_unsharper: float | None = None
    # ... and only where the frame's detail is about equal in every direction (min/max of its
    # directional sharpness at least this): a frame blurred along one direction keeps its window.
    refuse_unsharper_isotropy: float = 0.0
    # ... unless given here: a frame blurred along a direction is restored alone too where no
    # real neighbour is sharper than it by this (smaller) share in any direction. A still
    # camera's frames are often unequal across directions by their content, not by blur, and a
    # window of neighbours no sharper only softens what moves in front of it.
    refuse_unsharper_directional: float | None = None
    # Never softer than the input: where the network's output holds less fine detail than the
    # frame it restores and barely moved the picture itself (it smoothed noise, texture or a
    # sharp frame instead of undoing blur), the frame passes through
    # (models.deepdeblur.never_softer). No weights; in the graph.
    never_softer: bool = False
    # Detail of the output that never_softer does not count (mean |Laplacian| on its smaller
    # copy; 0: all of it). An int8 or bf16 run sets it where the card says so: their rounding
    # adds about that much to any picture, which would otherwise be trusted on sharp frames.
    never_softer_margin: float = 0.0
    # Motion blur needs motion: where the frame and its window's real neighbours (for a single
    # frame model in a stream, the frames before it), as the camera gave them, agree on a coarse
    # copy, nothing moved during the exposure and the frame passes through after the network
    # (window/still.py). No weights.
    still_pass: bool = False
    # How little the frame and its neighbours may differ there, in 8-bit levels (a block is
    # handed through wholly under it, not at all from twice it): chosen per model on real footage.
    still_pass_levels: float = 3.0

    def __post_init__(self) -> None:
        for key in ("n_feats", "n_resblocks"):
            value = getattr(self, key)
            if isinstance(value, list):  # from YAML or JSON; tuples keep the config hashable
                object.__setattr__(self, key, tuple(value))
            if isinstance(value, (list, tuple)) and len(value) != self.n_scales:
                raise BadUsage(f"model config {self.name!r}: {key} needs one value per scale ({self.n_scales})")
        if self.n_scales < 1 or min(self.feats) < 1 or min(self.resblocks) < 0:
            raise BadUsage(f"model config {self.name!r}: scales, features and blocks must be positive")
        if self.kernel_size % 2 == 0:
            raise BadUsage(f"model config {self.name!r}: kernel_size must be odd")
        if self.frames < 1 or (not self.causal and self.frames % 2 == 0):
            raise BadUsage(f"model config {self.name!r}: frames must be positive, and odd unless causal")
        if self.align not in ALIGNMENTS:
            raise BadUsage(f"model config {self.name!r}: align must be one of {', '.join(ALIGNMENTS)}")
        if self.fuse not in FUSIONS:
            raise BadUsage(f"model config {self.name!r}: fuse must be one of {', '.join(FUSIONS)}")
        if self.never_softer_margin < 0:
            raise BadUsage(f"model config {self.name!r}: never_softer_margin must not be negative")
        if self.still_pass_levels <= 0:
            raise BadUsage(f"model config {self.name!r}: still_pass_levels must be positive")

    @property
    def offsets(self) -> tuple[int, ...]:
        """The window's frames relative to the restored one, in input-channel order: the
        restored frame first, then its neighbours oldest first (centred 5: 0, -2, -1, 1, 2)."""
        if self.causal:
            return (0, *range(1 - self.frames, 0))
        half = self.frames // 2
        return (0, *range(-half, 0), *range(1, half + 1))

    @property
    def lookahead(self) -> int:
        """Frames after the restored one that the window needs: what it adds to latency."""
        return max(self.offsets)

    @property
    def input_slots(self) -> tuple[int | str, ...]:
        """What the network's input channels hold, 3 each, in order: the window's frames by
        offset from the restored one, and with fusion FUSED, the window fused into one frame."""
        if self.fuse == "fba":
            return (FUSED,)
        if self.fuse == "fba+window":
            return (FUSED, *self.offsets)
        return self.offsets

    @property
    def in_channels(self) -> int:
        return 3 * len(self.input_slots)

    @property
    def neighbour_slots(self) -> tuple[int, ...]:
        """Input slots holding the restored frame's aligned neighbours (none for one frame or fba alone)."""
        return tuple(slot for slot in self.input_slots if isinstance(slot, int) and slot != 0)

    @property
    def gate_in_channels(self) -> int:
        """What the pass-through gate sees: the input, the output and, with neighbours, stillness."""
        return self.in_channels + 3 + (1 if self.neighbour_slots else 0)

    @property
    def feats(self) -> tuple[int, ...]:
        """Features of each scale, finest first."""
        return _per_scale(self.n_feats, self.n_scales)

    @property
    def resblocks(self) -> tuple[int, ...]:
        """ResBlocks of each scale, finest first."""
        return _per_scale(self.n_resblocks, self.n_scales)

    def macs_per_pixel(self) -> float:
        """Multiply-adds per full-resolution input pixel: a hardware-free measure of cost."""
        k2, total = self.kernel_size**2, 0.0
        for s, (feats, blocks) in enumerate(zip(self.feats, self.resblocks)):
            in_channels = self.in_channels + (0 if s == self.n_scales - 1 else 3)
            scale = in_channels * feats + 2 * blocks * feats * feats + feats * 3 + (3 * 12 if s > 0 else 0)
            total += scale * k2 / 4**s
        if self.gate:
            total += (
                GATE_KERNEL**2
                * (self.gate_in_channels * GATE_FEATS + GATE_FEATS**2 + GATE_FEATS)
                / gate_shrink(self) ** 2
            )
        return total

    def receptive_radius(self) -> int:
        """Pixels of the input, at full resolution, that can reach an output pixel on each side.

        The path runs through every scale, coarsest first; each conv at scale s reaches (k-1)/2
        pixels of its grid, 2**s pixels apart (the upsampling conv counts at its scale, and
        pooling adds 2**s - 1). Tiles overlapping by less see less context than the frame.
        """
        half = self.kernel_size // 2
        network = sum(
            (2 * blocks + 2 + (1 if s > 0 else 0)) * half * 2**s + 2**s - 1 for s, blocks in enumerate(self.resblocks)
        )
        # The gate reads the finest output and the input around each pixel on its smaller copy
        # (pooling and the bilinear way back add a cell each side): its reach adds.
        shrink = gate_shrink(self)
        return network + ((sum(GATE_DILATIONS) * (GATE_KERNEL // 2) + 2) * shrink if self.gate else 0)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if not self.gate:  # records of networks without a gate stay as they were before it
            data.pop("gate")
        # and those without these guards too
        if self.refuse_unsharper is None:
            data.pop("refuse_unsharper")
        if not self.refuse_unsharper_isotropy:
            data.pop("refuse_unsharper_isotropy")
        if self.refuse_unsharper_directional is None:
            data.pop("refuse_unsharper_directional")
        for key in ("refuse_mismatch", "refuse_still", "never_softer", "never_softer_margin", "still_pass"):
            if not data[key]:
                data.pop(key)
        if not self.still_pass or self.still_pass_levels == DeepDeblurConfig.still_pass_levels:
            data.pop("still_pass_levels")
        if self.frames == 1:  # a single-frame network's record stays as it was before windows
            for key in ("frames", "causal", "align", "fuse"):
                data.pop(key)
        elif self.fuse == "none":  # and a stacked window's as it was before fusion
            data.pop("fuse")
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepDeblurConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadUsage(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def gate_shrink(cfg: DeepDeblurConfig) -> int:
    """How many times smaller the gate's copy is: GATE_SHRINK, or less where the pyramid's
    padding multiple (2 ** (n_scales - 1)) would not divide by it."""
    return min(GATE_SHRINK, 2 ** (cfg.n_scales - 1))


def _per_scale(value: int | tuple[int, ...], n_scales: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, tuple) else (value,) * n_scales


_CHECKOUT_CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def config_dir() -> Path:
    """configs/: inside the installed package (streamdeblur.configs), or of this checkout when
    it runs uninstalled (PYTHONPATH), where that package name does not exist."""
    try:
        return Path(str(resources.files("streamdeblur.configs")))
    except ModuleNotFoundError:
        return _CHECKOUT_CONFIGS


def model_config_names() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "models").glob("*.yaml"))


def load_model_config(name_or_path: str) -> DeepDeblurConfig:
    """A config by name (configs/models/NAME.yaml) or by path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = config_dir() / "models" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise BadUsage(f"unknown model config {name_or_path!r}; known: {', '.join(model_config_names())}")
    if not path.is_file():
        raise BadUsage(f"model config not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise BadUsage(f"model config {path} is not a YAML mapping")
    return DeepDeblurConfig.from_dict(data)
