"""Losses: multi-scale content loss and the paper's optional adversarial term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sharp_pyramid(sharp: torch.Tensor, n_scales: int) -> list[torch.Tensor]:
    """Targets at every scale, built as the network builds its input pyramid."""
    pyramid = [sharp]
    for _ in range(1, n_scales):
        pyramid.append(F.avg_pool2d(pyramid[-1], 2))
    return pyramid


def content_loss(outputs: list[torch.Tensor], sharp: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """L1 (default) or MSE summed over the scales, finest first."""
    criterion = F.l1_loss if kind == "l1" else F.mse_loss
    targets = sharp_pyramid(sharp, len(outputs))
    return sum((criterion(out.float(), tgt.float()) for out, tgt in zip(outputs, targets)), torch.zeros(()))


class Discriminator(nn.Module):
    """The paper's discriminator shape: strided 5x5 convs with LeakyReLU, then one logit."""

    def __init__(self, n_feats: int = 32, depth: int = 6) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for i in range(depth):
            out = n_feats * 2 ** (i // 2)
            layers += [nn.Conv2d(channels, out, 5, stride=1 + i % 2, padding=2), nn.LeakyReLU(0.2, True)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 5, padding=2))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).mean(dim=(1, 2, 3))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
