"""The training loop: multi-scale content loss (+ optional adversarial), Adam, MultiStepLR,
mixed precision (fp16 on CUDA, bf16 on CPUs that have it), DDP through torchrun, exact resume,
TensorBoard and JSON-lines logs."""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from streamdeblur.errors import BadUsage
from streamdeblur.inference.precision import DTYPES
from streamdeblur.models import DeepDeblur, load_checkpoint, load_model_config, read_card, save_weights
from streamdeblur.models.config import DeepDeblurConfig
from streamdeblur.models.deepdeblur import init_as_identity, transplant
from streamdeblur.synthetic.pairs import render_any_pair
from streamdeblur.synthetic.scenes import TRAIN_PHOTOS, sharp_images
from streamdeblur.training import distributed
from streamdeblur.training.augment import Augment
from streamdeblur.training.checkpointing import load_checkpoint_state, save_checkpoint
from streamdeblur.training.datasets import (
    MixedSamples,
    PairedImages,
    StepSampler,
    SyntheticPairs,
    SyntheticWindows,
    find_pairs,
    render_window,
)  # fmt: skip
from streamdeblur.training.losses import (
    Discriminator,
    content_loss,
    discriminator_loss,
    generator_adversarial_loss,
)
from streamdeblur.training.metrics import psnr
from streamdeblur.training.mixed_precision import mixed_precision_dtype
from streamdeblur.training.recipe import DataSpec, TrainRecipe

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.jsonl"
WEIGHTS = "model.safetensors"  # written whenever a run stops: finished, paused or interrupted
_PRECISION_NAMES = {dtype: name for name, dtype in DTYPES.items()}  # torch.bfloat16 -> "bf16"


class _Pyramid(nn.Module):
    """Makes forward() return every scale, so DDP's hooks see the multi-scale forward."""

    def __init__(self, model: DeepDeblur) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.model.forward_pyramid(x)


@dataclass
class TrainResult:
    out_dir: Path
    step: int
    finished: bool
    interrupted: bool


def _photos(spec: DataSpec) -> tuple[str, ...] | None:
    """Photos that synthetic scenes draw from besides procedural ones (None: procedural only)."""
    photos = (TRAIN_PHOTOS if spec.photos else ()) + (sharp_images(spec.sharp_dir) if spec.sharp_dir else ())
    return photos or None


def _train_dataset(recipe: TrainRecipe, cfg: DeepDeblurConfig, photos: tuple[str, ...] | None) -> Dataset:
    spec = recipe.data
    if spec.blur_type == "defocus" and cfg.frames > 1:
        raise BadUsage(
            f"recipe {recipe.name}: defocus pairs train single-frame models (a lens's blur is the same in every frame)"
        )
    if spec.kind == "synthetic":
        synthetic: Dataset = (
            SyntheticWindows(spec.patch_size, spec.synthetic_length, photos, cfg, spec.sequence_recipe(), Augment())
            if cfg.frames > 1
            else SyntheticPairs(spec.patch_size, spec.synthetic_length, photos, spec.pair_recipe(), Augment())
        )
        if spec.real_footage is None:
            return synthetic
        real = PairedImages(
            find_pairs(Path(spec.real_footage).expanduser(), "train"),
            spec.patch_size,
            Augment(),
            cfg,
            moving_crop_probability=spec.real_moving_probability,
        )
        return MixedSamples(synthetic, real, spec.real_probability)
    assert spec.root is not None
    return PairedImages(find_pairs(spec.root, spec.split, spec.blur_kind), spec.patch_size, Augment(), cfg)


def _val_pairs(
    recipe: TrainRecipe,
    cfg: DeepDeblurConfig,
    photos: tuple[str, ...] | None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """A small fixed validation set: synthetic from its own seed, or the data's val split.
    For a windowed model the blurry side is the window (H x W x 3K)."""
    spec = recipe.data
    size = recipe.val_size
    if spec.kind == "synthetic":
        rng = np.random.default_rng([recipe.seed, 7_000_001])
        if cfg.frames > 1:
            sequences = spec.sequence_recipe()
            return [render_window(rng, size, size, cfg, sequences, photos) for _ in range(recipe.val_count)]
        blur = spec.pair_recipe()
        pairs = [render_any_pair(rng, size, size, blur, photos) for _ in range(recipe.val_count)]
        return [(p.blurry, p.sharp) for p in pairs]
    if spec.val_split is None:
        return []
    assert spec.root is not None
    # Every pair of the split, so a window finds its neighbours; the first val_count are scored.
    dataset = PairedImages(find_pairs(spec.root, spec.val_split, spec.blur_kind), recipe.val_size, None, cfg)
    items = [dataset[(i, i)] for i in range(min(recipe.val_count, len(dataset)))]
    return [(it["blur"].permute(1, 2, 0).numpy(), it["sharp"].permute(1, 2, 0).numpy()) for it in items]


@torch.no_grad()
def _validate(model: DeepDeblur, pairs: list[tuple[np.ndarray, np.ndarray]], device: torch.device) -> dict[str, float]:
    model.eval()
    before, after = [], []
    for blur, sharp in pairs:
        x = torch.from_numpy(blur).permute(2, 0, 1)[None].to(device)
        y = model(x).clamp(0, 1)[0].permute(1, 2, 0).float().cpu().numpy()
        before.append(psnr(blur[..., :3], sharp))  # a window's restored frame comes first
        after.append(psnr(y, sharp))
    model.train()
    return {"val_psnr_input": float(np.mean(before)), "val_psnr": float(np.mean(after))}


def _leave_stopping_to_the_trainer(worker_id: int) -> None:
    """In a data loader worker: Ctrl-C (SIGINT to the whole process group) or a SIGTERM to it
    must not kill the worker mid-run, or the trainer fails on the next batch instead of
    stopping after its step with a checkpoint and the weights. The workers end with the loader."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)


class _StopFlag:
    """SIGINT/SIGTERM end training after the current step, with a checkpoint."""

    def __init__(self) -> None:
        self.set = False

    def __call__(self, signum: int, frame: Any) -> None:
        self.set = True


def train(
    recipe: TrainRecipe,
    out_dir: Path,
    resume: bool = False,
    until_step: int | None = None,
    device: str | None = None,
    minutes: float | None = None,
    progress_bar: bool = True,
) -> TrainResult:
    """Train (or resume) a run; stop early, with a checkpoint, at `until_step` or after `minutes`
    of this call's wall time (equal-time comparisons, and runs fitted into a session). A recipe
    with stages runs them in turn (`_train_stages`)."""
    ctx = distributed.setup(device)
    try:
        if recipe.stages:
            return _train_stages(recipe, out_dir, resume, until_step, minutes, ctx, progress_bar)
        return _train(recipe, out_dir, resume, until_step, minutes, ctx, progress_bar)
    finally:
        ctx.close()


def _train_stages(
    recipe: TrainRecipe,
    out_dir: Path,
    resume: bool,
    until_step: int | None,
    minutes: float | None,
    ctx: distributed.DistContext,
    progress_bar: bool,
) -> TrainResult:
    """Each stage in its own folder (OUT/stage-N), started from the weights of the stage before;
    the last stage's weights and card are copied to OUT. With `resume`, stages whose weights
    are there and finished are skipped and the first unfinished one continues."""
    if until_step is not None:
        raise BadUsage(f"recipe {recipe.name} has stages: stop it with --minutes, not --until-step")
    deadline = None if minutes is None else time.monotonic() + minutes * 60
    previous: Path | None = None
    result = TrainResult(out_dir, 0, False, False)
    for number, stage in enumerate(recipe.stage_recipes(), 1):
        folder = out_dir / f"stage-{number}"
        if previous is not None:
            stage = dataclasses.replace(stage, init=str(previous))
        done = read_card(folder / WEIGHTS).get("training", {})
        if resume and done.get("steps", 0) >= stage.last_step:
            log.info("stage %d of %d: done already (%s)", number, len(recipe.stages), folder)
        else:
            started = (folder / "checkpoints").is_dir()
            left = None if deadline is None else max(0.01, (deadline - time.monotonic()) / 60)
            log.info("stage %d of %d: %s", number, len(recipe.stages), folder)
            result = _train(stage, folder, resume and started, None, left, ctx, progress_bar)
            if result.interrupted or result.step < stage.last_step:
                return TrainResult(out_dir, result.step, False, result.interrupted)
        previous = folder / WEIGHTS
    if ctx.is_main and previous is not None:
        for suffix in (".safetensors", ".json"):
            shutil.copyfile(previous.with_suffix(suffix), (out_dir / WEIGHTS).with_suffix(suffix))
    ctx.barrier()
    return TrainResult(out_dir, result.step, True, False)


def _train(
    recipe: TrainRecipe,
    out_dir: Path,
    resume: bool,
    until_step: int | None,
    minutes: float | None,
    ctx: distributed.DistContext,
    progress_bar: bool = True,
) -> TrainResult:
    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    torch.manual_seed(recipe.seed)
    cfg = load_model_config(recipe.model)
    model = DeepDeblur(cfg)
    if recipe.init == "identity":
        init_as_identity(model)
    elif (start := recipe.init_weights()) is not None and not resume:  # a resumed run has its own
        _start_from(model, start)
    # channels_last: oneDNN (CPU) and cuDNN (tensor cores) both run these convs faster in NHWC.
    model = model.to(ctx.device).to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # stubs omit it
    # bf16 or fp32 on the CPU is timed on this model and batch; not under DDP, where every rank
    # must agree (native bf16 is taken there), nor for whole images of varying size.
    patch = recipe.data.patch_size
    timed = not ctx.enabled and patch is not None
    amp_dtype = mixed_precision_dtype(
        recipe.amp, ctx.device, model if timed else None, (recipe.batch_size, patch, patch) if timed else None
    )
    use_amp = amp_dtype is not None
    optimizer = torch.optim.Adam(_parameter_groups(model, recipe.lr), betas=(0.9, 0.999), eps=1e-8)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, recipe.milestone_steps(), recipe.gamma)
    # bf16 keeps fp32's exponent range, so only fp16 needs loss scaling.
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    disc: nn.Module | None = None
    disc_optimizer = None
    if recipe.adversarial_weight > 0:
        disc = Discriminator().to(ctx.device)
        disc_optimizer = torch.optim.Adam(disc.parameters(), lr=recipe.lr, betas=(0.9, 0.999))

    ckpt_dir = out_dir / "checkpoints"
    step, seconds_before = 0, 0.0
    if resume:
        state = load_checkpoint_state(ckpt_dir)
        if state is None:
            raise BadUsage(f"--resume: no checkpoint in {ckpt_dir}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        if disc is not None and disc_optimizer is not None and "discriminator" in state:
            disc.load_state_dict(state["discriminator"])
            disc_optimizer.load_state_dict(state["disc_optimizer"])
        step = int(state["step"])
        seconds_before = float(state.get("train_seconds", 0.0))
    elif ctx.is_main and (ckpt_dir / "last.pt").exists():
        raise BadUsage(f"{out_dir} already holds a run; pass --resume to continue it")

    net: nn.Module = _Pyramid(model)
    if ctx.enabled:
        net = DistributedDataParallel(net, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)
        if disc is not None:
            disc = DistributedDataParallel(disc, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    photos = _photos(recipe.data)  # scans a user's sharp_dir once
    dataset = _train_dataset(recipe, cfg, photos)
    sampler = StepSampler(len(dataset), recipe.batch_size, recipe.seed, step, ctx.rank, ctx.world_size)  # type: ignore[arg-type]
    loader = DataLoader(
        dataset,
        batch_size=recipe.batch_size,
        sampler=sampler,
        num_workers=recipe.workers,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=recipe.workers > 0,
        worker_init_fn=_leave_stopping_to_the_trainer,
    )
    val_pairs = _val_pairs(recipe, cfg, photos) if ctx.is_main else []

    tb = None
    if ctx.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2) + "\n")
        try:
            from torch.utils.tensorboard import SummaryWriter

            tb = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:
            log.warning("tensorboard is not installed: logging to %s only", METRICS_FILE)

    last_step = min(recipe.last_step, until_step) if until_step is not None else recipe.last_step
    progress = None
    if ctx.is_main and progress_bar:
        from tqdm import tqdm

        progress = tqdm(total=recipe.steps, initial=step, unit="step", dynamic_ncols=True, disable=None)

    def write_checkpoint() -> None:
        if not ctx.is_main:
            return
        state = {
            "model": model.state_dict(),
            "model_config": cfg.to_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "recipe": recipe.to_dict(),
            "train_seconds": train_seconds(),
        }
        if disc is not None and disc_optimizer is not None:
            state["discriminator"] = (disc.module if isinstance(disc, DistributedDataParallel) else disc).state_dict()
            state["disc_optimizer"] = disc_optimizer.state_dict()
        save_checkpoint(ckpt_dir, state)

    metrics_file = (out_dir / METRICS_FILE).open("a") if ctx.is_main else None
    started, window_start = time.perf_counter(), step

    def train_seconds() -> float:
        """Training time over every session of this run."""
        return seconds_before + time.perf_counter() - started

    deadline = None if minutes is None else started + 60 * minutes
    batches = iter(loader)
    model.train()
    stop = _StopFlag()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}  # restored in `finally`
    try:
        while step < last_step and not stop.set and not _past(deadline, ctx):
            batch = next(batches)
            blur = batch["blur"].to(ctx.device, non_blocking=True, memory_format=torch.channels_last)
            sharp = batch["sharp"].to(ctx.device, non_blocking=True)
            with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=use_amp):
                outputs = net(blur)
                loss_content = content_loss(outputs, sharp, recipe.loss)
                loss = loss_content
                loss_adv = torch.zeros(())
                if disc is not None:
                    loss_adv = generator_adversarial_loss(disc(outputs[0]))
                    loss = loss + recipe.adversarial_weight * loss_adv
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            if disc is not None and disc_optimizer is not None:
                with torch.autocast(ctx.device.type, dtype=amp_dtype, enabled=use_amp):
                    loss_d = discriminator_loss(disc(sharp), disc(outputs[0].detach()))
                disc_optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss_d).backward()
                scaler.step(disc_optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            if progress is not None:
                progress.update(1)
                progress.set_postfix(loss=f"{loss.item():.4f}")
            if metrics_file is not None and (step % recipe.log_every == 0 or step == last_step):
                elapsed = time.perf_counter() - started
                record = {
                    "step": step,
                    "loss": float(loss.item()),
                    "content": float(loss_content.item()),
                    "adversarial": float(loss_adv.item()),
                    "lr": scheduler.get_last_lr()[0],
                    "steps_per_s": (step - window_start) / max(elapsed, 1e-9),
                }
                metrics_file.write(json.dumps(record) + "\n")
                metrics_file.flush()
                if tb is not None:
                    for key in ("loss", "content", "adversarial", "lr"):
                        tb.add_scalar(f"train/{key}", record[key], step)
            if ctx.is_main and val_pairs and (step % recipe.eval_every == 0 or step == recipe.steps):
                scores = _validate(model, val_pairs, ctx.device)
                assert metrics_file is not None
                metrics_file.write(json.dumps({"step": step, **scores}) + "\n")
                metrics_file.flush()
                if tb is not None:
                    tb.add_scalar("val/psnr", scores["val_psnr"], step)
                    tb.add_scalar("val/psnr_input", scores["val_psnr_input"], step)
                    _log_images(tb, model, val_pairs[:4], ctx.device, step)
            if step % recipe.checkpoint_every == 0:
                write_checkpoint()
        write_checkpoint()
        finished = step >= recipe.steps
        if ctx.is_main:
            save_weights(model, out_dir / WEIGHTS, _card(recipe, step, finished, train_seconds(), amp_dtype))
        ctx.barrier()
        return TrainResult(out_dir, step, finished, stop.set)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if progress is not None:
            progress.close()
        if metrics_file is not None:
            metrics_file.close()
        if tb is not None:
            tb.close()


def _past(deadline: float | None, ctx: distributed.DistContext) -> bool:
    """Whether the time limit is reached; under DDP rank 0 decides, so every rank stops at one step."""
    if deadline is None:
        return False
    return ctx.agree(time.perf_counter() >= deadline)


@torch.no_grad()
def _log_images(
    tb: Any, model: DeepDeblur, pairs: list[tuple[np.ndarray, np.ndarray]], device: torch.device, step: int
) -> None:
    model.eval()
    rows = []
    for blur, sharp in pairs:
        x = torch.from_numpy(blur).permute(2, 0, 1)[None].to(device)
        y = model(x).clamp(0, 1)[0].cpu()
        rows.append(torch.cat([x[0, :3].cpu(), y, torch.from_numpy(sharp).permute(2, 0, 1)], dim=2))
    tb.add_image("val/blurry|deblurred|sharp", torch.cat(rows, dim=1), step)
    model.train()


# The pass-through gate is new and small where the network it guards is trained: at the
# network's fine-tuning rate its logits would need tens of thousands of steps to move.
GATE_LR_FACTOR = 50.0


def _parameter_groups(model: DeepDeblur, lr: float) -> list[dict[str, Any]]:
    named = list(model.named_parameters())
    gate = [p for name, p in named if name.startswith("gate.")]
    network = [p for name, p in named if not name.startswith("gate.")]
    groups: list[dict[str, Any]] = [{"params": network, "lr": lr}]
    if gate:
        groups.append({"params": gate, "lr": lr * GATE_LR_FACTOR})
    return groups


def _start_from(model: DeepDeblur, weights: Path) -> None:
    """Fine-tuning: the recipe's network takes the weights of one of the same architecture,
    or of the same one with another window or gate (a windowed model from single-frame
    weights, a gate added to trained weights: models.deepdeblur.transplant)."""
    start = load_checkpoint(weights)  # a missing or unreadable file is a one-line error
    try:
        transplant(model, start)  # the same network's weights copy across unchanged
    except (RuntimeError, ValueError):
        raise BadUsage(
            f"init weights {weights} are a {start.cfg.name} network; the recipe trains {model.cfg.name}"
        ) from None


def _card(
    recipe: TrainRecipe, step: int, finished: bool, seconds: float, amp_dtype: torch.dtype | None
) -> dict[str, Any]:
    if torch.cuda.is_available():
        hardware = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    else:
        hardware = f"CPU ({platform.machine()}, {torch.get_num_threads()} threads)"
    data = recipe.data
    windowed = load_model_config(recipe.model).frames > 1
    if windowed:
        rendered = "synthetic video (streamdeblur.synthetic.sequences)"
    elif data.blur_type == "defocus":
        rendered = "synthetic defocus (streamdeblur.synthetic.defocus)"
    else:
        rendered = "synthetic blur (streamdeblur.synthetic.blur)"
    source = (
        f"{rendered} rendered on the fly from procedural scenes"
        + (" and scikit-image's training photos" if data.photos else "")
        + (f" and the sharp images under {data.sharp_dir}" if data.sharp_dir else "")
        if data.kind == "synthetic"
        else f"pairs under {data.root} ({data.split})"
    )
    return {
        "training": {
            "data": source,
            "recipe": recipe.to_dict(),
            "steps": step,
            "finished": finished,
            "hardware": hardware,
            "train_hours": round(seconds / 3600, 2),
            "precision": "fp32" if amp_dtype is None else f"{_PRECISION_NAMES[amp_dtype]} mixed",
        },
    }
