"""DeepDeblur configurations as data (YAML under configs/models/)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from streamdeblur.errors import BadUsage


@dataclass(frozen=True)
class DeepDeblurConfig:
    """Architecture of a multi-scale DeepDeblur network (Nah et al., CVPR 2017).

    The defaults are the paper's: 3 scales, 64 features, 19 ResBlocks per scale, 5x5 kernels.
    """

    name: str = "deepdeblur"
    n_scales: int = 3
    n_feats: int = 64
    n_resblocks: int = 19
    kernel_size: int = 5

    def __post_init__(self) -> None:
        if self.n_scales < 1 or self.n_feats < 1 or self.n_resblocks < 0:
            raise BadUsage(f"model config {self.name!r}: scales, features and blocks must be positive")
        if self.kernel_size % 2 == 0:
            raise BadUsage(f"model config {self.name!r}: kernel_size must be odd")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeepDeblurConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise BadUsage(f"unknown model config keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def config_dir() -> Path:
    """configs/ of this checkout or installed package."""
    return Path(str(resources.files("streamdeblur.configs")))


def model_config_names() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "models").glob("*.yaml"))


def load_model_config(name_or_path: str) -> DeepDeblurConfig:
    """A config by name (configs/models/NAME.yaml) or by path to a YAML file."""
    path = Path(name_or_path)
    if not path.suffix:
        path = config_dir() / "models" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise BadUsage(
                f"unknown model config {name_or_path!r}; known: {', '.join(model_config_names())}"
            )
    if not path.is_file():
        raise BadUsage(f"model config not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise BadUsage(f"model config {path} is not a YAML mapping")
    return DeepDeblurConfig.from_dict(data)
