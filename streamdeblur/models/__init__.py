"""DeepDeblur networks: configurations, the module, and checkpoint I/O."""

from streamdeblur.models.checkpoint import (
    DEFAULT_WEIGHTS,
    VIDEO_WEIGHTS,
    load_checkpoint,
    read_card,
    resolve_weights,
    save_weights,
    shipped_weights,
)
from streamdeblur.models.config import DeepDeblurConfig, load_model_config
from streamdeblur.models.deepdeblur import DeepDeblur, with_config

__all__ = [
    "DEFAULT_WEIGHTS",
    "VIDEO_WEIGHTS",
    "DeepDeblur",
    "DeepDeblurConfig",
    "load_checkpoint",
    "load_model_config",
    "read_card",
    "resolve_weights",
    "save_weights",
    "shipped_weights",
    "with_config",
]
