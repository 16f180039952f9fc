"""Quantization-aware fine-tuning: int8 everywhere in the network, taught to give fp32's output.

Post-training quantization (build.py) keeps the finest scale, the upsampling and the gate in
fp32 and returns the costliest layers to fp32 until parity holds, which costs speed. Here every
convolution runs in int8 (NNCF's quantizers in the PyTorch model), and the network is then
fine-tuned, weights and quantizer ranges together, to match the fp32 network's own output on
inputs rendered from the training data (distillation: no sharp target, so what it learns is
fp32's behaviour, not a new one). `never_softer` is off while it learns (its comparisons have
no useful gradient) and back on, in fp32, in the exported IR.

The result ships beside the weights (`NAME.int8-qat.safetensors`: the fine-tuned network and
its quantizers, NNCF's placement in the metadata); `streamdeblur quantize` turns it into the
IR in seconds (build.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save

from streamdeblur.engines.openvino_int8 import QAT_SUFFIX
from streamdeblur.files import file_sha256, replace_atomically
from streamdeblur.models import load_checkpoint
from streamdeblur.models.checkpoint import read_card
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.models.deepdeblur import DeepDeblur
from streamdeblur.quantize.calibration import CALIBRATION_ROOT, PARITY_ROOT, network_inputs, trained_blur
from streamdeblur.synthetic.sequences import SequenceRecipe

log = logging.getLogger(__name__)

QAT_ROOT = 4_483_000  # the seeds of the inputs it learns on (calibration.py has the others)
REAL_FOOTAGE = "~/.cache/streamdeblur/real-footage"


@dataclass(frozen=True)
class QatSettings:
    steps: int = 2400
    batch: int = 4
    patch: int = 128  # crops of the rendered inputs, flipped at random
    pool: int = 384  # inputs rendered once, before the first step
    pool_size: int = 192
    lr: float = 1e-5
    calibration: int = 32  # inputs NNCF fits the starting ranges on
    parity_count: int = 8
    log_every: int = 200  # steps between parity checks and saves
    compiled_quantizers: bool = True  # NNCF's C++ quantizers (faster; built on first use)
    activation_ranges: str = "minmax"  # the starting ranges (build.py's _advanced)
    # A share of the inputs from real videos (their training split; `streamdeblur footage`
    # writes them): nearly sharp real frames carry sensor noise and codec grain that synthetic
    # inputs lack, and int8 learned on synthetic ones alone lost 0.4 to 0.5 dB on real footage.
    real_share: float = 0.25
    seed: int = 0


def qat_path(weights: Path) -> Path:
    """Where the fine-tuned int8 network of `weights` lies: beside them."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + QAT_SUFFIX)


def finetuned_for(weights: Path) -> Path | None:
    """The fine-tuned int8 network beside `weights`, if there is one and it was made from these
    very weights (new weights need a new fine-tuning: until then, post-training quantization)."""
    path = qat_path(weights)
    if not path.is_file():
        return None
    with safe_open(str(path), "pt") as f:
        made_from = (f.metadata() or {}).get("weights_sha256")
    if made_from != file_sha256(weights):
        log.warning("%s was fine-tuned from other weights than %s: not used", path.name, weights.name)
        return None
    return path


def _without_never_softer(weights: Path) -> DeepDeblur:
    model = load_checkpoint(weights).eval()
    model.cfg = dataclasses.replace(model.cfg, never_softer=False)
    return model


def _training_recipe(weights: Path) -> SequenceRecipe:
    """The sequence settings the weights were trained with (still shots, sharp frames, lone
    windows), so the inputs look like what the network was taught on."""
    recipe = read_card(weights).get("training", {}).get("recipe") or {}
    sequence = (recipe.get("data") or {}).get("sequence") or {}
    known = {f.name for f in dataclasses.fields(SequenceRecipe)}
    return SequenceRecipe(**{k: v for k, v in sequence.items() if k in known})


def _inputs(weights: Path, model: DeepDeblur, count: int, size: int, root: int, seed: int) -> torch.Tensor:
    cfg = model.cfg
    recipe = _training_recipe(weights) if cfg.frames > 1 else SequenceRecipe()
    found = network_inputs(cfg, count, size, size, root, seed=seed, blur=trained_blur(weights), recipe=recipe)
    return torch.from_numpy(np.concatenate(found))


def plain_torch_quantizers() -> None:
    """NNCF's quantizers in plain PyTorch operations, not its C++ extension, which needs a
    compiler and up to a minute to build on first use: only a long fine-tuning gains from it.
    Not NNCF's own fallback either, which torch.compile's and recompiles per shape. (Set on
    NNCF's lazy loader before anything loads it; a loaded extension is kept.)"""
    from nncf.torch.quantization.extensions import QuantizedFunctionsCPU
    from nncf.torch.quantization.reference import torch_executor

    if QuantizedFunctionsCPU._loaded_namespace is None:
        QuantizedFunctionsCPU._loaded_namespace = SimpleNamespace(
            Quantize_forward=torch_executor.forward, Quantize_backward=torch_executor.backward
        )


def fp32_names(cfg: DeepDeblurConfig) -> list[str]:
    """NNCF's names of what stays in fp32: the network's input and its output image (a frame
    the gate or never_softer hands through must come out as it went in, not rounded to int8's
    steps), and the finest scale's first and last convolutions (int8 there leaves a level's
    noise over still pictures, which never_softer takes for detail: on a still camera's
    background the fully int8 video model lost 4 to 5 dB). The pass-through gate and the
    upsampling convolutions are kept too (they cost nothing measurable). NNCF names an
    operation by its module path inside a scale and how often that path was called before, and
    the scales run coarsest first."""
    finest_last = len(cfg.resblocks) and cfg.resblocks[0] + 1
    same_length = sum(1 for r in cfg.resblocks[1:] if r == cfg.resblocks[0])
    return [
        "x",
        "/add/0",  # the finest scale's output plus the mean: the restored frame
        f"body/0/conv2d/{cfg.n_scales - 1}",
        f"body/{finest_last}/conv2d/{same_length}",
    ]


FP32_PATTERNS = ["gate/.*", "uppath/.*"]


def real_footage_folder(weights: Path) -> Path:
    """The real videos the weights trained on (their card's recipe), else where `streamdeblur
    footage` puts them."""
    recipe = read_card(weights).get("training", {}).get("recipe") or {}
    return Path((recipe.get("data") or {}).get("real_footage") or REAL_FOOTAGE).expanduser()


def _real_inputs(weights: Path, cfg: DeepDeblurConfig, count: int, settings: QatSettings) -> torch.Tensor:
    """`count` blurred frames (windows, for a windowed model) cut from the real videos' training
    split; none where there are none, which the log says."""
    from streamdeblur.training.datasets import PairedImages, find_pairs

    empty = torch.zeros((0, cfg.in_channels, settings.pool_size, settings.pool_size))
    folder = real_footage_folder(weights)
    pairs = find_pairs(folder, "train") if count and folder.is_dir() else []
    if not pairs:
        if count:
            log.info("no real footage under %s (`streamdeblur footage`): synthetic inputs only", folder)
        return empty
    data = PairedImages(pairs, settings.pool_size, None, cfg)
    rng = np.random.default_rng([QAT_ROOT, settings.seed, 2])
    picks = [(int(rng.integers(len(pairs))), int(rng.integers(2**31))) for _ in range(count)]
    return torch.stack([data[pick]["blur"] for pick in picks])


def _insert_quantizers(model: DeepDeblur, calibration: torch.Tensor, ranges: str) -> Any:
    from streamdeblur.quantize.build import _advanced, import_nncf

    nncf = import_nncf()
    return nncf.quantize(
        model,
        nncf.Dataset(list(calibration.split(1))),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=len(calibration),
        advanced_parameters=_advanced(nncf, ranges),
        # validate=False: a model without a gate has nothing the gate's pattern names
        ignored_scope=nncf.IgnoredScope(names=fp32_names(model.cfg), patterns=FP32_PATTERNS, validate=False),
    )


def _parity_db(student: torch.nn.Module, teacher: torch.nn.Module, inputs: torch.Tensor) -> float:
    with torch.no_grad():
        mse = sum(float(F.mse_loss(student(x).clamp(0, 1), teacher(x).clamp(0, 1))) for x in inputs.split(1))
    return float(10 * np.log10(len(inputs) / max(mse, 1e-12)))


def _save(path: Path, student: torch.nn.Module, weights: Path, facts: dict[str, Any]) -> None:
    import nncf.torch

    # Quantizers NNCF unifies (one range for both inputs of an add) share their tensors, which
    # safetensors stores once: the others are named as aliases and restored on loading.
    state: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    first_of: dict[tuple[int, tuple[int, ...]], str] = {}
    for name, tensor in student.state_dict().items():
        key = (tensor.data_ptr(), tuple(tensor.shape))
        if key in first_of:
            aliases[name] = first_of[key]
        else:
            first_of[key] = name
            state[name] = tensor.detach().contiguous()
    metadata = {
        "nncf_config": json.dumps(nncf.torch.get_config(student)),
        "aliases": json.dumps(aliases, sort_keys=True),
        "weights": weights.name,
        "weights_sha256": file_sha256(weights),
        "facts": json.dumps(facts, sort_keys=True),
    }
    replace_atomically(path, save(state, metadata=metadata))


def finetune_int8(
    weights: Path, out: Path | None = None, settings: QatSettings = QatSettings(), start: Path | None = None
) -> Path:
    """Fine-tune the int8 network of `weights` toward fp32's output, from scratch or on from an
    earlier fine-tuning (`start`); returns where it was saved (saved again at every parity
    check, so a stopped run keeps its last check)."""
    out = out or qat_path(weights)
    if settings.compiled_quantizers:
        from nncf.torch.quantization.extensions import QuantizedFunctionsCPU

        QuantizedFunctionsCPU.get("Quantize_forward")  # built (or NNCF's fallback) now, before loading sets plain ones
    else:
        plain_torch_quantizers()
    teacher = _without_never_softer(weights)
    for p in teacher.parameters():
        p.requires_grad_(False)
    started = time.perf_counter()
    calibration = _inputs(weights, teacher, settings.calibration, settings.pool_size, CALIBRATION_ROOT, settings.seed)
    parity_inputs = _inputs(weights, teacher, settings.parity_count, settings.pool_size, PARITY_ROOT, settings.seed)
    real = _real_inputs(weights, teacher.cfg, round(settings.pool * settings.real_share), settings)
    synthetic = _inputs(weights, teacher, settings.pool - len(real), settings.pool_size, QAT_ROOT, settings.seed)
    pool = torch.cat([synthetic, real])
    log.info("%d inputs (%d real) in %.0f s", len(pool), len(real), time.perf_counter() - started)
    if start is None:
        student = _insert_quantizers(_without_never_softer(weights), calibration, settings.activation_ranges)
        earlier: list[dict[str, Any]] = []
    else:
        student = load_finetuned(weights, start)
        student.cfg = teacher.cfg  # never_softer off while it learns
        earlier = read_facts(start).get("runs", []) + [
            {k: v for k, v in read_facts(start).items() if k in ("settings", "history", "minutes")}
        ]
    history = [{"step": 0, "parity_db": round(_parity_db(student, teacher, parity_inputs), 2)}]
    log.info("step 0: parity to fp32 %.2f dB", history[-1]["parity_db"])
    optimizer = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps)
    rng = np.random.default_rng([QAT_ROOT, settings.seed, 1])
    student.train()
    for step in range(1, settings.steps + 1):
        batch = _crops(pool, rng, settings.batch, settings.patch)
        with torch.no_grad():
            target = teacher(batch)
        loss = F.mse_loss(student(batch), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % settings.log_every == 0 or step == settings.steps:
            student.eval()
            history.append({"step": step, "parity_db": round(_parity_db(student, teacher, parity_inputs), 2)})
            student.train()
            log.info("step %d: parity to fp32 %.2f dB", step, history[-1]["parity_db"])
            facts: dict[str, Any] = {"settings": dataclasses.asdict(settings), "history": history}
            if earlier:
                facts["runs"] = earlier  # the fine-tunings this one went on from, in order
            facts["minutes"] = round((time.perf_counter() - started) / 60, 1)
            _save(out, student, weights, facts)
    return out


def _crops(pool: torch.Tensor, rng: np.random.Generator, count: int, patch: int) -> torch.Tensor:
    size = pool.shape[-1]
    crops = []
    for _ in range(count):
        i = int(rng.integers(len(pool)))
        y, x = (int(v) for v in rng.integers(0, size - patch + 1, 2))
        crop = pool[i, :, y : y + patch, x : x + patch]
        if rng.uniform() < 0.5:
            crop = crop.flip(-1)
        if rng.uniform() < 0.5:
            crop = crop.flip(-2)
        crops.append(crop)
    return torch.stack(crops).contiguous()


def load_finetuned(weights: Path, path: Path | None = None) -> torch.nn.Module:
    """The fine-tuned int8 network of `weights` as a PyTorch model, `never_softer` back on as
    the weights' config has it (outside the quantized part: it gets no quantizer)."""
    import nncf.torch

    from streamdeblur.quantize.build import import_nncf

    import_nncf()
    plain_torch_quantizers()  # exporting runs the network once or twice: not worth a build
    path = path or qat_path(weights)
    with safe_open(str(path), "pt") as f:
        config = json.loads(f.metadata()["nncf_config"])
        state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
        aliases: dict[str, str] = json.loads(f.metadata().get("aliases", "{}"))
    state.update({alias: state[kept] for alias, kept in aliases.items()})
    model = nncf.torch.load_from_config(_without_never_softer(weights), config)
    model.load_state_dict(state)
    model.cfg = load_checkpoint(weights).cfg
    return model.eval()


def read_facts(path: Path) -> dict[str, Any]:
    """What the fine-tuning recorded (settings, parity by step, minutes)."""
    with safe_open(str(path), "pt") as f:
        found: dict[str, Any] = json.loads(f.metadata().get("facts", "{}"))
    return found
