"""Training recipes as data (YAML under configs/train/)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from streamdeblur.errors import BadUsage
from streamdeblur.models.config import config_dir
from streamdeblur.registry import BLURS

if TYPE_CHECKING:
    from streamdeblur.synthetic.blur import BlurRecipe
    from streamdeblur.synthetic.defocus import DefocusRecipe
    from streamdeblur.synthetic.sequences import SequenceRecipe


@dataclass
class DataSpec:
    kind: str = "synthetic"  # synthetic (rendered on the fly) or paired (files on disk)
    root: str | None = None  # paired: a GoPro, REDS or blur/+sharp/ folder
    split: str = "train"
    blur_kind: str = "blur"  # GoPro: blur or blur_gamma
    val_split: str | None = "test"  # paired: validation pairs (None: no validation)
    patch_size: int = 128
    synthetic_length: int = 1_000_000  # synthetic: samples per "epoch"
    photos: bool = True  # synthetic: also use scikit-image's training photos
    sharp_dir: str | None = None  # synthetic: also use the sharp images under this folder
    # synthetic: the generator's ranges that differ from synthetic.blur.BlurRecipe's defaults,
    # for example {clean_probability: 0.25}
    blur: dict[str, Any] = field(default_factory=dict)
    # synthetic, windowed models: the video generator's ranges that differ from
    # synthetic.sequences.SequenceRecipe's (its noise and JPEG are `blur`'s), e.g. {max_shake_px: 24}
    sequence: dict[str, Any] = field(default_factory=dict)
    # synthetic: a real-footage set (`streamdeblur footage OUT --split train`) whose pairs (or
    # windows, for windowed models) make up `real_probability` of the samples
    real_footage: str | None = None
    real_probability: float = 0.0
    # of those real patches, the share centred on a region that moves on its own (the set's
    # `moving` masks): a ball or a hand covers 1 % of a still camera's frame, so a random crop
    # rarely holds what the network gets wrong there
    real_moving_probability: float = 0.0
    # synthetic, single-frame models: the blur to render, motion (synthetic.blur) or defocus
    # (synthetic.defocus, its ranges that differ from DefocusRecipe's in `defocus`)
    blur_type: str = "motion"
    defocus: dict[str, Any] = field(default_factory=dict)

    def sequence_recipe(self) -> SequenceRecipe:
        from streamdeblur.synthetic.sequences import SequenceRecipe

        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.sequence.items()}
        built: SequenceRecipe = _build(SequenceRecipe, {**values, "degrade": self.blur_recipe()}, "data.sequence")
        return built

    def pair_recipe(self) -> BlurRecipe | DefocusRecipe:
        """The single-pair generator's recipe for `blur_type`."""
        if self.blur_type == "motion":
            return self.blur_recipe()
        from streamdeblur.synthetic.defocus import DefocusRecipe

        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.defocus.items()}
        built: DefocusRecipe = _build(DefocusRecipe, {**values, "degrade": self.blur_recipe()}, "data.defocus")
        if built.sharp_target not in ("clean", "input"):
            raise BadUsage(f"data.defocus.sharp_target must be clean or input, not {built.sharp_target!r}")
        return built

    def blur_recipe(self) -> BlurRecipe:
        from streamdeblur.synthetic.blur import BlurRecipe

        # YAML and JSON give lists where the recipe holds (low, high) tuples
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in self.blur.items()}
        built: BlurRecipe = _build(BlurRecipe, values, "data.blur")
        return built


@dataclass
class TrainRecipe:
    name: str
    model: str = "deepdeblur-light"  # a configs/models name or a YAML path
    data: DataSpec = field(default_factory=DataSpec)
    batch_size: int = 8
    steps: int = 20_000
    lr: float = 1e-4
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])  # of steps
    gamma: float = 0.5
    loss: str = "l1"  # l1 or mse
    adversarial_weight: float = 0.0  # the paper's 1e-4 turns on the GAN term
    # identity (see models.deepdeblur.init_as_identity), default (PyTorch's), or weights to
    # fine-tune from: `shipped` (the package's default weights) or a weights file's path.
    init: str = "identity"
    amp: bool = True  # mixed precision: fp16 on CUDA, bf16 on CPUs with native bf16 (loop.mixed_precision_dtype)
    seed: int = 0
    workers: int = 1
    log_every: int = 20
    eval_every: int = 500
    checkpoint_every: int = 500
    val_count: int = 16
    val_size: int = 128
    threads: int | None = None  # CPU intra-op threads; None keeps PyTorch's default
    # End the run after this step, the schedule still spanning `steps`: a stretch that was
    # stopped early, written as it ran.
    stop_at: int | None = None
    # A run of several stretches: each entry overrides this recipe's keys (`data` key by key)
    # and starts from the previous stage's weights (the first from `init`). See stage_recipes.
    stages: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.loss not in ("l1", "mse"):
            raise BadUsage(f"recipe {self.name}: loss must be l1 or mse, not {self.loss!r}")
        if self.data.kind not in ("synthetic", "paired"):
            raise BadUsage(f"recipe {self.name}: data.kind must be synthetic or paired")
        if self.data.kind == "paired" and not self.data.root:
            raise BadUsage(f"recipe {self.name}: paired data needs data.root")
        if self.steps < 1 or self.batch_size < 1:
            raise BadUsage(f"recipe {self.name}: steps and batch_size must be positive")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise BadUsage(f"recipe {self.name}: stop_at must be between 1 and steps ({self.steps})")
        if not 0.0 <= self.data.real_moving_probability <= 1.0:
            raise BadUsage(f"recipe {self.name}: data.real_moving_probability must be between 0 and 1")
        if self.data.blur_type not in BLURS:
            raise BadUsage(f"recipe {self.name}: data.blur_type must be {' or '.join(BLURS)}")
        self.data.pair_recipe()  # unknown defocus keys: an error now too
        self.data.sequence_recipe()  # unknown generator keys: an error now, not in a DataLoader worker
        self.stage_recipes()  # a stage's unknown keys or bad values: an error at load time too

    def init_weights(self) -> Path | None:
        """The weights file a fine-tuning run starts from; None for identity or default init."""
        if self.init in ("identity", "default"):
            return None
        from streamdeblur.models import resolve_weights

        return resolve_weights(None if self.init == "shipped" else self.init)

    @property
    def last_step(self) -> int:
        return self.stop_at if self.stop_at is not None else self.steps

    def stage_recipes(self) -> list[TrainRecipe]:
        """The stretches this recipe runs, in order: itself alone, or one recipe per stage, named
        NAME-stage-N, without stages of its own. A later stage's `init` is filled in by the
        training loop with the weights the stage before it wrote."""
        if not self.stages:
            return [self]
        base = {k: v for k, v in self.to_dict().items() if k != "stages"}
        built = []
        for number, overrides in enumerate(self.stages, 1):
            if not isinstance(overrides, dict):
                raise BadUsage(f"recipe {self.name}: stage {number} is not a mapping of overrides")
            if "stages" in overrides or "name" in overrides:
                raise BadUsage(f"recipe {self.name}: stage {number} may not set name or stages")
            merged = {**base, **overrides, "name": f"{self.name}-stage-{number}"}
            merged["data"] = {**base["data"], **(overrides.get("data") or {})}
            built.append(recipe_from_dict(merged, where=f"recipe {self.name} stage {number}"))
        return built

    def milestone_steps(self) -> list[int]:
        return [max(1, int(f * self.steps)) for f in self.milestones]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise BadUsage(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    return cls(**data)


def recipe_from_dict(data: dict[str, Any], where: str = "recipe") -> TrainRecipe:
    data = dict(data)
    data["data"] = _build(DataSpec, dict(data.get("data") or {}), f"{where} data")
    return _build(TrainRecipe, data, where)


def recipe_names() -> list[str]:
    return sorted(p.stem for p in (config_dir() / "train").glob("*.yaml"))


def load_recipe(name_or_path: str | Path) -> TrainRecipe:
    """A recipe by name (configs/train/NAME.yaml, from a checkout or an installed wheel) or by path."""
    path = Path(name_or_path)
    if not path.suffix and not path.is_file():
        path = config_dir() / "train" / f"{name_or_path}.yaml"
        if not path.is_file():
            raise BadUsage(f"unknown training recipe {name_or_path!r}; known: {', '.join(recipe_names())}")
    if not path.is_file():
        raise BadUsage(f"training recipe not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise BadUsage(f"training recipe {path} is not a YAML mapping")
    data.setdefault("name", path.stem)
    return recipe_from_dict(data, where=str(path))
