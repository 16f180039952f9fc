"""`adapt`'s defaults, apart so that the command line can show them without importing PyTorch."""

DEFAULT_FRAMES = 48
DEFAULT_STEPS = 1000
MIN_SHARPNESS = 0.45  # crisp frames score 0.5 to 0.8 (photos, text), one smeared by 16 px of 1280 about 0.45
