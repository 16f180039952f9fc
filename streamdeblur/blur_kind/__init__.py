"""Which blur is it? A small classifier (sharp, motion, defocus) that `--blur auto` asks."""

from streamdeblur.blur_kind.decide import BlurVerdict, decide_blur
from streamdeblur.blur_kind.net import CLASSES

__all__ = ["CLASSES", "BlurVerdict", "decide_blur"]
