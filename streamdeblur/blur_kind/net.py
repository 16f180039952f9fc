"""The blur-kind classifier: a patch's spectral features in (spectrum.py), (sharp, motion,
defocus) scores out.

A small perceptron over the features, which carries their standardisation (mean and spread
over the training patches) as buffers, so its one weights file is all it needs. A few thousand
parameters: it judges a clip's few dozen patches in milliseconds on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from streamdeblur.blur_kind.spectrum import FEATURES
from streamdeblur.errors import BadInput
from streamdeblur.files import replace_atomically

CLASSES = ("sharp", "motion", "defocus")
PATCH = 128  # the patch side, in pixels of the (downscaled) frame
WEIGHTS = Path(__file__).resolve().parent / "blur-kind.safetensors"


class BlurKindNet(nn.Module):
    mean: torch.Tensor  # buffers: the features' standardisation
    spread: torch.Tensor

    def __init__(self, hidden: int = 128) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(FEATURES))
        self.register_buffer("spread", torch.ones(FEATURES))
        self.body = nn.Sequential(
            nn.Linear(FEATURES, hidden),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(),
            nn.Linear(hidden // 2, len(CLASSES)),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, FEATURES) spectral features -> (N, 3) logits."""
        logits: torch.Tensor = self.body((features - self.mean) / self.spread)
        return logits


def save_classifier(model: BlurKindNet, path: Path, card: dict[str, object]) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    replace_atomically(path, save(state))
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


def load_classifier(path: Path = WEIGHTS) -> BlurKindNet:
    if not path.is_file():
        raise BadInput(f"no blur-kind classifier at {path}: train one with `python -m streamdeblur.blur_kind.train`")
    model = BlurKindNet()
    try:
        model.load_state_dict(load_file(str(path)))
    except RuntimeError as exc:  # an older classifier's layout
        raise BadInput(f"{path} is not a blur-kind classifier of this version: {str(exc).splitlines()[0]}") from None
    return model.eval()
