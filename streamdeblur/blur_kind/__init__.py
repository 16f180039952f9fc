"""Which blur does a clip hold (sharp, motion, defocus)? A small classifier: its network, how it
judges a clip, its training and its evaluation. No weights ship: on held-out clips it does not
yet pick the right model often enough to choose one (`python -m streamdeblur.blur_kind.evaluate`).
"""

from streamdeblur.blur_kind.decide import BlurVerdict, decide_blur
from streamdeblur.blur_kind.net import CLASSES

__all__ = ["CLASSES", "BlurVerdict", "decide_blur"]
