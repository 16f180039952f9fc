"""Which blur does a clip hold (sharp, motion, defocus)? A small classifier over the spectra of
a clip's most textured patches: its features (spectrum.py), its network (net.py), how it judges
a clip (decide.py), its training and its evaluation. `run --blur auto` uses it; its weights and
card ship beside this file (blur-kind.safetensors, blur-kind.json).
"""

from streamdeblur.blur_kind.decide import BlurVerdict, decide_blur
from streamdeblur.blur_kind.net import CLASSES

__all__ = ["CLASSES", "BlurVerdict", "decide_blur"]
