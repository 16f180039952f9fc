"""Loading and saving DeepDeblur weights.

Our format is safetensors whose metadata holds the architecture config, with a JSON model card
beside it (`NAME.safetensors` + `NAME.json`). We also read official DeepDeblur-PyTorch
checkpoints (`model-*.pt`: {'G': state_dict, ...}) and our training checkpoints, always with
`weights_only=True`, so no pickled code is ever run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from streamdeblur.errors import BadInput
from streamdeblur.files import replace_atomically
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.models.deepdeblur import DeepDeblur
from streamdeblur.registry import WEIGHTS_DIR, default_model, shipped_models

# The defaults, as the registry names them: for a picture (and what no --weights resolves to),
# and for a clip read whole, where a windowed model takes the detail a frame lost from its
# neighbours.
DEFAULT_WEIGHTS = default_model("picture").weights
VIDEO_WEIGHTS = default_model("clip").weights

# The official code trains on RGB in [0, 255]; see _from_official.
OFFICIAL_RGB_RANGE = 255.0


def shipped_weights() -> list[str]:
    """Names of the weights that ship with the package (usable as `--weights NAME`)."""
    return sorted(m.name for m in shipped_models())


def resolve_weights(weights: str | Path | None) -> Path:
    """The file `weights` names: None is the default; an existing file is itself; otherwise a
    bare name such as `deepdeblur-4scale` is one of the shipped weights."""
    if weights is None or str(weights) == "":
        return DEFAULT_WEIGHTS
    path = Path(weights).expanduser()
    if path.is_file() or path.parent != Path("."):
        return path
    shipped = WEIGHTS_DIR / f"{path.name.removesuffix('.safetensors')}.safetensors"
    return shipped if shipped.is_file() else path


def missing_weights(path: Path) -> BadInput:
    """The one-line error for weights that are not there, naming the ones that ship."""
    return BadInput(f"weights file not found: {path} (shipped weights: {', '.join(shipped_weights())})")


def existing_weights(path: str | Path | None) -> Path:
    """The weights file `path` names (a file, a shipped name, or None: the default), which
    must be there (missing_weights otherwise)."""
    resolved = resolve_weights(path)
    if not resolved.is_file():
        raise missing_weights(resolved)
    return resolved


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> DeepDeblur:
    """A DeepDeblur module (eval mode) from any weights file streamdeblur understands, or the
    shipped weights of that name."""
    path = existing_weights(path)
    if path.suffix == ".safetensors":
        cfg, state = _read_safetensors(path)
    else:
        cfg, state = _read_torch_file(path)
    model = DeepDeblur(cfg)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "shape mismatch"
        raise BadInput(f"weights {path} do not fit the {cfg.name} network: {first}") from None
    return model.to(map_location).eval()


def save_weights(model: DeepDeblur, path: str | Path, card: dict[str, Any]) -> Path:
    """Write NAME.safetensors (config in its metadata) and the model card NAME.json."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # Bytes written by Python, not save_file(): that makes files readable by their owner only.
    # Written aside and renamed, so a run stopped mid-write never leaves half a weights file.
    replace_atomically(path, save(state, metadata={"config": json.dumps(model.cfg.to_dict())}))
    write_card(path, {"config": model.cfg.to_dict(), **card})
    return path


def write_card(weights: str | Path, card: dict[str, Any]) -> None:
    replace_atomically(card_path(weights), (json.dumps(card, indent=2) + "\n").encode())


def card_path(weights: str | Path) -> Path:
    return Path(weights).with_suffix(".json")


def read_card(weights: str | Path) -> dict[str, Any]:
    path = card_path(weights)
    return json.loads(path.read_text()) if path.is_file() else {}


def never_softer_margin(weights: str | Path, precision: str) -> float:
    """The never_softer margin (DeepDeblurConfig) the weights' card names for running them in
    `precision` (its `int8` or `bf16` section), 0 where it names none: a reduced precision's
    rounding adds detail of its own, which never_softer would otherwise trust on sharp frames.
    Chosen per model and precision on real footage, by rules written before they were measured."""
    return float((read_card(weights).get(precision) or {}).get("never_softer_margin", 0.0))


def _read_safetensors(path: Path) -> tuple[DeepDeblurConfig, dict[str, torch.Tensor]]:
    try:
        state = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise BadInput(f"cannot read weights {path}: {exc}") from None
    if "config" in metadata:
        cfg = DeepDeblurConfig.from_dict(json.loads(metadata["config"]))
    else:
        cfg = _infer_config(state, name=path.stem)
    return cfg, state


def _read_torch_file(path: Path) -> tuple[DeepDeblurConfig, dict[str, torch.Tensor]]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for a bad or an unsafe file
        raise BadInput(
            f"cannot read weights {path}: not a safetensors file or a PyTorch checkpoint of tensors "
            "(pickled code is never loaded)"
        ) from None
    if not isinstance(data, dict):
        raise BadInput(f"weights {path} hold no state dict")
    if "G" in data:  # official DeepDeblur-PyTorch: {'G': generator, 'D': discriminator}
        return _from_official(data["G"], name=path.stem)
    if "model" in data and "model_config" in data:  # a streamdeblur training checkpoint
        return DeepDeblurConfig.from_dict(data["model_config"]), data["model"]
    if any(k.startswith(("body_models.", "module.body_models.")) for k in data):
        return _from_official(data, name=path.stem)
    raise BadInput(f"weights {path}: not a DeepDeblur state dict")


def _from_official(state: dict[str, torch.Tensor], name: str) -> tuple[DeepDeblurConfig, dict[str, torch.Tensor]]:
    """Map an official state dict to our [0, 1] convention.

    The official network computes y = f(255 x - 127.5) + 127.5. Convolutions, ReLU,
    PixelShuffle and the residual sums are positively homogeneous once every bias is scaled
    with the input, so dividing all biases by 255 gives f'(x - 0.5) = f(255 x - 127.5) / 255:
    the same network on RGB in [0, 1]. Weights are unchanged.
    """
    state = {k.removeprefix("module."): v for k, v in state.items()}
    converted = {k: (v / OFFICIAL_RGB_RANGE if k.endswith(".bias") else v) for k, v in state.items()}
    return _infer_config(converted, name=name), converted


def _infer_config(state: dict[str, torch.Tensor], name: str) -> DeepDeblurConfig:
    """Read the architecture off the tensor shapes of a state dict."""
    try:
        head = state["body_models.0.body.0.weight"]
    except KeyError:
        raise BadInput(f"weights {name}: missing body_models.0.body.0.weight") from None
    n_scales = len({int(m.group(1)) for k in state if (m := re.match(r"body_models\.(\d+)\.", k))})
    feats = tuple(int(state[f"body_models.{s}.body.0.weight"].shape[0]) for s in range(n_scales))
    blocks = tuple(
        len({int(m.group(1)) for k in state if (m := re.match(rf"body_models\.{s}\.body\.(\d+)\.body\.", k))})
        for s in range(n_scales)
    )
    coarsest_in = int(state[f"body_models.{n_scales - 1}.body.0.weight"].shape[1])
    return DeepDeblurConfig(
        name=name,
        frames=max(1, coarsest_in // 3),  # a window without its config: centred, unaligned
        n_scales=n_scales,
        n_feats=feats[0] if len(set(feats)) == 1 else feats,
        n_resblocks=blocks[0] if len(set(blocks)) == 1 else blocks,
        kernel_size=int(head.shape[-1]),
    )
