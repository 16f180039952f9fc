"""DeepDeblur: multi-scale convolutional deblurring (Nah, Kim and Lee, CVPR 2017).

Module and parameter names follow the official DeepDeblur-PyTorch code (`body_models.S.body.I`,
`conv_end_models.S.uppath.0`), so its checkpoints map onto this module key for key. Scale 0 is
the finest. Unlike the official code, the input pyramid is built inside the network and the
model works on RGB in [0, 1], so it takes one image tensor and exports as one graph.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.models.config import FUSED, GATE_DILATIONS, GATE_FEATS, GATE_KERNEL, DeepDeblurConfig, gate_shrink

# The official code shifts inputs by half the RGB range before each scale and back after.
MEAN_SHIFT = 0.5
# A new gate's logit bias: sigmoid(-4) = 0.018, so it starts all but shut (it moves the
# output 1.8 % of the way to the input) yet far enough from saturation to learn, as one
# closer to saturation is not.
GATE_CLOSED_LOGIT = -4.0
# The neighbours' mean difference from the frame, in 8-bit levels on the gate's smaller copy
# (where averaging has already quartered sensor noise), at which its stillness cue falls to
# 1/e: identical frames read 1, noisy still ones 0.3 or less.
STILLNESS_LEVELS = 0.5


def _conv(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class ResBlock(nn.Module):
    """conv-ReLU-conv plus identity, no normalisation."""

    def __init__(self, n_feats: int, kernel_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            _conv(n_feats, n_feats, kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ScaleNet(nn.Module):
    """One scale: a conv to n_feats, the ResBlocks, a conv back to 3 channels."""

    def __init__(self, in_channels: int, n_feats: int, n_resblocks: int, kernel_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(in_channels, n_feats, kernel_size),
            *(ResBlock(n_feats, kernel_size) for _ in range(n_resblocks)),
            _conv(n_feats, 3, kernel_size),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpConv(nn.Module):
    """Upsamples a coarse output by 2: a conv to 12 channels, then PixelShuffle(2)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.uppath = nn.Sequential(_conv(3, 12, kernel_size), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.uppath(x)


class PassThroughGate(nn.Module):
    """Blends the finest output back towards the frame being restored, region by region.

    It returns output + g * (frame - output), with g in (0, 1). Where the input was sharp
    already (a still camera, a steady moment), passing it through beats any re-rendering; where
    it was blurred, the gate learns to stay shut.

    The gate sees the network's input (the window), its output and how still the window is. It
    looks at a copy `gate_shrink` times smaller and brings g back to full size: whether a region
    was sharp and still is a property of the region, and at full size these thin convolutions
    would cost as much as half the network.
    """

    def __init__(self, cfg: DeepDeblurConfig) -> None:
        super().__init__()
        slots = cfg.input_slots
        self.shrink = gate_shrink(cfg)
        # Channel offsets of the restored frame and of its aligned neighbours, where the input has them.
        self.restored = 3 * slots.index(0) if 0 in slots else None
        self.neighbours = [3 * slots.index(slot) for slot in cfg.neighbour_slots]
        layers: list[nn.Module] = []
        channels = cfg.gate_in_channels
        for i, dilation in enumerate(GATE_DILATIONS):
            out = 1 if i == len(GATE_DILATIONS) - 1 else GATE_FEATS
            pad = dilation * (GATE_KERNEL // 2)
            layers.append(nn.Conv2d(channels, out, GATE_KERNEL, padding=pad, dilation=dilation))
            if out > 1:
                layers.append(nn.ReLU(inplace=True))
            channels = out
        self.body = nn.Sequential(*layers)
        self.reset()

    @torch.no_grad()
    def reset(self) -> None:
        """All but shut: the output is the network's until training opens it."""
        last = self.body[-1]
        assert isinstance(last, nn.Conv2d) and last.bias is not None
        last.weight.zero_()
        last.bias.fill_(GATE_CLOSED_LOGIT)

    def stillness(self, x: torch.Tensor) -> torch.Tensor:
        """1 where the aligned neighbours equal the frame, falling towards 0 as they differ: a
        cue the gate would learn slowly from the frames themselves, since still, clean footage
        is a small share of what it trains on."""
        assert self.restored is not None
        frame = x[:, self.restored : self.restored + 3]
        spread = torch.stack([(x[:, n : n + 3] - frame).abs() for n in self.neighbours]).mean(dim=(0, 2))
        return torch.exp(-spread.unsqueeze(1) * (255 / STILLNESS_LEVELS))

    def forward(self, x: torch.Tensor, small_x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        """x and output at full size; small_x the input already pooled `shrink` times smaller
        (the network's own pyramid holds it)."""
        small_out = F.avg_pool2d(output, self.shrink)
        cues = [small_x, small_out, self.stillness(small_x)] if self.neighbours else [small_x, small_out]
        g = torch.sigmoid(self.body(torch.cat(cues, dim=1)))
        if self.shrink > 1:
            g = F.interpolate(g, size=output.shape[-2:], mode="bilinear", align_corners=False)
        frame = x[:, :3]  # the input's first slot: the frame restored, or the window fused
        return output + g * (frame - output)


# never_softer: detail is the mean |Laplacian| of grey on a copy DETAIL_SCALE times smaller
# (sensor noise and codec grain average out there, blur does not), over blocks DETAIL_BLOCK
# pixels of the frame wide; the output is trusted wholly where it holds DETAIL_GAIN more of it
# than the input (a ramp from as much as the input; with a `margin`, the output's detail less
# that): deblurring adds detail, smoothing does not.
# Heavy blur's streaks and echoes also count as detail: for a windowed model, whose neighbours
# undo heavy blur, the output is trusted too where it moved the picture itself (the block's mean
# change on the smaller copy above CHANGE_LOW, a ramp as wide): smoothing noise or texture barely
# changes that copy, a correction does. A single frame's corrections are small, and there the
# change would mostly let smoothing through.
DETAIL_SCALE = 4
DETAIL_BLOCK = 8
DETAIL_GAIN = 0.15
CHANGE_LOW = 1.0 / 255
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)


def _small(image: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(image.float(), DETAIL_SCALE, ceil_mode=True) if DETAIL_SCALE > 1 else image.float()


def _per_block(values: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) on the smaller copy, averaged over blocks DETAIL_BLOCK pixels of the frame wide."""
    return F.avg_pool2d(values, max(1, DETAIL_BLOCK // DETAIL_SCALE), ceil_mode=True)


def _detail(small: torch.Tensor) -> torch.Tensor:
    """Detail per block of a smaller copy: (N, 1, H / DETAIL_BLOCK, W / DETAIL_BLOCK), rounded up."""
    grey = small.mean(dim=1, keepdim=True)
    edges = F.conv2d(F.pad(grey, (1, 1, 1, 1), mode="replicate"), _LAPLACIAN.to(grey.device)).abs()
    return _per_block(edges)


def never_softer(
    frame: torch.Tensor, output: torch.Tensor, trust_change: bool = False, margin: float = 0.0
) -> torch.Tensor:
    """The output where it adds fine detail to the frame (or, with `trust_change`, corrects the
    picture itself), the frame where it only smooths; with a `margin`, that much of the output's
    detail does not count (int8's or bf16's rounding adds about as much to any picture)."""
    small_frame, small_output = _small(frame), _small(output)
    ratio = (_detail(small_output) - margin) / (_detail(small_frame) + 1e-4)
    trust = ((ratio - 1.0) / DETAIL_GAIN).clamp(0.0, 1.0)
    if trust_change:
        change = _per_block((small_output - small_frame).abs().mean(dim=1, keepdim=True))
        trust = torch.maximum(trust, ((change - CHANGE_LOW) / CHANGE_LOW).clamp(0.0, 1.0))
    trust = F.interpolate(trust, size=output.shape[-2:], mode="bilinear", align_corners=False).to(output.dtype)
    return frame + trust * (output - frame)


def never_softer_after(
    cfg: DeepDeblurConfig, x: torch.Tensor, output: torch.Tensor, margin: float = 0.0
) -> torch.Tensor:
    """never_softer applied in fp32 to `output`, what a network of `cfg` made of the input `x`
    without it (a backend whose graph cannot keep it in fp32: OpenVINO in bf16 rounds the frame
    it hands through): on copies padded as the network pads, so it decides as it would in the graph."""
    height, width = x.shape[-2:]
    multiple, frame = 2 ** (cfg.n_scales - 1), _frame_channel(cfg)
    padded = _pad_to_multiple(x[:, frame : frame + 3].float(), multiple)
    guarded = never_softer(padded, _pad_to_multiple(output.float(), multiple), cfg.frames > 1, margin)
    return guarded[..., :height, :width]


def _frame_channel(cfg: DeepDeblurConfig) -> int:
    """The first input channel of the frame restored itself (not the window fused)."""
    return 3 * cfg.input_slots.index(0) if 0 in cfg.input_slots else 0


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """`x` edge-padded at its bottom and right to multiples of `multiple` (a no-op pad when aligned)."""
    height, width = x.shape[-2], x.shape[-1]
    return F.pad(x, (0, -width % multiple, 0, -height % multiple), mode="replicate")


def _convolution_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a convolution casts `x` to: autocast's where it is on, else x's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


class DeepDeblur(nn.Module):
    """Coarse-to-fine deblurring network taking (N, 3 * frames, H, W) RGB in [0, 1], any H and
    W, and returning the restored frame, (N, 3, H, W).

    A windowed configuration (cfg.frames > 1) takes its frames stacked on the channel axis,
    the restored frame first (cfg.offsets): one input tensor, so tiling, batching, ONNX and
    TensorRT treat it as they treat a single frame, with wider first convolutions.
    """

    def __init__(self, cfg: DeepDeblurConfig) -> None:
        super().__init__()
        self.cfg = cfg
        # The coarsest scale sees the blurry window alone; finer ones also see the upsampled
        # coarser result (3 more channels, last).
        self.body_models = nn.ModuleList(
            ScaleNet(
                cfg.in_channels + (0 if s == cfg.n_scales - 1 else 3), cfg.feats[s], cfg.resblocks[s], cfg.kernel_size
            )
            for s in range(cfg.n_scales)
        )
        # Index 0 is a parameterless placeholder, as the official code's `None`.
        self.conv_end_models = nn.ModuleList(
            [nn.Identity()] + [UpConv(cfg.kernel_size) for _ in range(1, cfg.n_scales)]
        )
        self.gate = PassThroughGate(cfg) if cfg.gate else None

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this for the pyramid; forward pads to it."""
        return 2 ** (self.cfg.n_scales - 1)

    def forward_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Outputs at every scale, finest first; H and W must be multiples of size_multiple."""
        pyramid = [x - MEAN_SHIFT]
        for _ in range(1, self.cfg.n_scales):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        outputs: list[torch.Tensor] = [x] * self.cfg.n_scales
        scale_input = pyramid[-1]
        dtype = _convolution_dtype(x)
        for s in reversed(range(self.cfg.n_scales)):
            outputs[s] = self.body_models[s](scale_input)
            if s > 0:
                upsampled = self.conv_end_models[s](outputs[s])
                # Joined in the dtype the convolution takes (bf16 under autocast): the same
                # values, but a compiled graph then writes the wide window's input once, in
                # half the bytes, rather than in float32 and then cast.
                scale_input = torch.cat((pyramid[s - 1].to(dtype), upsampled.to(dtype)), dim=1)
        # In fp32 under autocast, which leaves the outputs in bf16: summed in bf16, every pixel of
        # the frame would be rounded by up to a level, which never_softer would read as detail. (A
        # network converted to fp16 as a whole keeps its dtype: its gate's weights expect it.)
        widen = torch.is_autocast_enabled(x.device.type)
        restored = [(out.float() if widen else out) + MEAN_SHIFT for out in outputs]
        if self.gate is not None:
            small_x = (
                pyramid[self.gate.shrink.bit_length() - 1] + MEAN_SHIFT
            )  # pooled once, for the network and the gate
            restored[0] = self.gate(x, small_x, restored[0])
        if self.cfg.never_softer:
            frame = _frame_channel(self.cfg)
            restored[0] = never_softer(
                x[:, frame : frame + 3], restored[0], self.cfg.frames > 1, self.cfg.never_softer_margin
            )
        return restored

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2], x.shape[-1]
        # Edge padding up to the pyramid's multiple, cropped back after; always applied (a
        # no-op pad when aligned) so the exported graph has no shape-dependent branch.
        return self.forward_pyramid(_pad_to_multiple(x, self.size_multiple))[0][..., :height, :width]


@torch.no_grad()
def init_as_identity(model: DeepDeblur) -> None:
    """Start training from the identity map instead of from noise.

    Each scale's first conv copies the blurry input into channels 0-2, every ResBlock's
    second conv starts at zero (so the block starts as the identity), and the last conv
    reads channels 0-2 back out. The network's first output is its input, and training
    learns the correction: with no global skip in DeepDeblur, random initialisation spends
    thousands of steps just learning to reproduce the image. The architecture (and so the
    official checkpoints) is unchanged.
    """
    centre = model.cfg.kernel_size // 2
    for scale in model.body_models:
        head, *blocks, tail = scale.body
        for c in range(3):
            head.weight[c].zero_()
            head.weight[c, c, centre, centre] = 1.0
            head.bias[c] = 0.0
        for block in blocks:
            block.body[2].weight.zero_()
            block.body[2].bias.zero_()
        tail.weight.zero_()
        tail.bias.zero_()
        for c in range(3):
            tail.weight[c, c, centre, centre] = 1.0


@torch.no_grad()
def transplant(model: DeepDeblur, source: DeepDeblur) -> None:
    """Start `model` from `source`, a network of the same architecture but another window.

    Every weight is copied; each first convolution takes the filters of the input slots both
    hold (frames by offset from the restored one, the fused frame) and zero for the others,
    plus those of the upsampled coarser result. Single-frame filters go to the fused frame
    where the window has one, else to the restored frame. A window started from single-frame
    weights therefore computes exactly what they compute on that frame, and training can
    only learn up from there. A pass-through gate only one of them has is left new (all but
    shut) or dropped.

    A scale may also have fewer ResBlocks than the source's: it keeps the first ones and the
    scale's last convolution (a leaner network that fine-tuning then repairs; `_pruned`).
    """
    if _architecture(model.cfg) != _architecture(source.cfg) or any(
        mine > theirs for mine, theirs in zip(model.cfg.resblocks, source.cfg.resblocks)
    ):
        raise ValueError(f"{source.cfg.name} and {model.cfg.name} differ in more than their window and blocks")
    state = _pruned(source.state_dict(), model.cfg.resblocks, source.cfg.resblocks)
    source_slots = list(source.cfg.input_slots)
    if source.cfg.frames == 1 and FUSED in model.cfg.input_slots:
        source_slots = [FUSED]  # a single-frame network restores the frame it is given: here, the fused one
    shared = [(i, source_slots.index(slot)) for i, slot in enumerate(model.cfg.input_slots) if slot in source_slots]
    for s in range(model.cfg.n_scales):
        old = state[f"body_models.{s}.body.0.weight"]
        new = torch.zeros_like(model.state_dict()[f"body_models.{s}.body.0.weight"])
        for mine, theirs in shared:
            new[:, 3 * mine : 3 * mine + 3] = old[:, 3 * theirs : 3 * theirs + 3]
        if s < model.cfg.n_scales - 1:  # the upsampled coarser result: the last 3 channels
            new[:, -3:] = old[:, -3:]
        state[f"body_models.{s}.body.0.weight"] = new
    if source.gate is None or model.gate is None:
        state = {k: v for k, v in state.items() if not k.startswith("gate.")}
    if model.gate is not None and source.gate is None:
        state.update({f"gate.{k}": v for k, v in model.gate.state_dict().items()})
    model.load_state_dict(state)


def _architecture(cfg: DeepDeblurConfig) -> tuple[object, ...]:
    """What transplant needs two networks to share (their ResBlocks may differ: `_pruned`)."""
    return (cfg.n_scales, cfg.feats, cfg.kernel_size)


def _pruned(
    state: dict[str, torch.Tensor], blocks: tuple[int, ...], source_blocks: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """A state dict with each scale's ResBlocks cut to `blocks`: the first ones kept, the
    scale's last convolution renumbered to follow them (ScaleNet.body: head, blocks, tail)."""
    if blocks == source_blocks:
        return state
    kept: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "body_models" and parts[2] == "body":
            scale, index = int(parts[1]), int(parts[3])
            if index == source_blocks[scale] + 1:  # the tail
                parts[3] = str(blocks[scale] + 1)
            elif index > blocks[scale]:  # a block beyond the ones kept
                continue
        kept[".".join(parts)] = value
    return kept


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def with_config(model: DeepDeblur, **changes: Any) -> DeepDeblur:
    """The same weights under their config with `changes`: settings that hold no weights, such
    as never_softer and its margin (models.checkpoint.never_softer_margin)."""
    changed = DeepDeblur(dataclasses.replace(model.cfg, **changes))
    changed.load_state_dict(model.state_dict())
    return changed.to(next(model.parameters()).device).train(model.training)
