"""The blur-kind classifier: grey patches in, (sharp, motion, defocus) scores out.

Blur shows at fine scales, so the first convolutions keep full resolution; the pooled mean and
maximum of the last features feed one linear layer. About 0.1 M parameters: it looks at a few
dozen patches of a clip in well under a second on a CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch import nn

from streamdeblur.errors import BadInput
from streamdeblur.files import replace_atomically

CLASSES = ("sharp", "motion", "defocus")
PATCH = 128  # the patch side, in pixels of the (downscaled) frame
WEIGHTS = Path(__file__).resolve().parent / "blur-kind.safetensors"


class BlurKindNet(nn.Module):
    def __init__(self, width: int = 32) -> None:
        super().__init__()
        chans = [1, width // 2, width // 2, width, width, 2 * width, 2 * width]
        strides = [1, 1, 2, 1, 2, 2]
        layers: list[nn.Module] = []
        for c_in, c_out, stride in zip(chans, chans[1:], strides):
            layers += [nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * chans[-1], len(CLASSES))

    def forward(self, grey: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) grey in [0, 1] -> (N, 3) logits."""
        f = self.features(grey - 0.5)
        return self.head(torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1))


def save_classifier(model: BlurKindNet, path: Path, card: dict[str, object]) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    replace_atomically(path, save(state))
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


def load_classifier(path: Path = WEIGHTS) -> BlurKindNet:
    if not path.is_file():
        raise BadInput(f"no blur-kind classifier at {path}: train one with `python -m streamdeblur.blur_kind.train`")
    model = BlurKindNet()
    model.load_state_dict(load_file(str(path)))
    return model.eval()
