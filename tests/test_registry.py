"""The registry of shipped models: every default reads it, `streamdeblur models` prints it, and
building a backend reads the weights once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from streamdeblur import registry
from streamdeblur.inference import select
from streamdeblur.inference.spec import BackendSpec
from streamdeblur.models import DEFAULT_WEIGHTS, VIDEO_WEIGHTS, checkpoint, load_checkpoint, resolve_weights
from streamdeblur.registry import INPUTS, ROLES, ShippedModel, default_model, shipped_models
from tests.conftest import run_cli


def test_every_shipped_model_has_weights_a_card_and_a_role() -> None:
    names = [m.name for m in shipped_models()]
    assert len(names) == len(set(names))
    for model in shipped_models():
        assert model.role in ROLES and set(model.default_for) <= set(INPUTS)
        assert model.weights.is_file() and model.card_path.is_file()
        # The card's architecture is the one the weights carry.
        assert load_checkpoint(model.weights).cfg.to_dict() == model.card()["config"], model.name


def test_each_input_has_exactly_one_default() -> None:
    for kind in INPUTS:
        assert sum(kind in m.default_for for m in shipped_models()) == 1, kind
    assert DEFAULT_WEIGHTS == default_model("picture").weights == resolve_weights(None)
    assert VIDEO_WEIGHTS == default_model("clip").weights
    assert load_checkpoint(VIDEO_WEIGHTS).cfg.frames > 1
    with pytest.raises(ValueError, match="unknown input kind"):
        default_model("film")


def test_the_backend_spec_takes_its_default_from_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = BackendSpec()
    assert spec.for_input("clip").weights == default_model("clip").name
    motion = BackendSpec(blur="motion")  # no --blur resolves to motion where no input is judged
    assert spec.for_input("picture") == motion and spec.for_input("live") == motion
    assert motion.for_input("picture") is motion and motion.for_input("live") is motion  # the picture model
    given = BackendSpec(weights="mine.safetensors")
    assert all(given.for_input(kind) is given for kind in INPUTS)
    # A different registry, a different choice: the spec holds no model name of its own.
    swapped = tuple(
        ShippedModel(
            m.name, m.role, m.summary, ("clip",) if m.role == "live" else tuple(k for k in m.default_for if k != "clip")
        )
        for m in shipped_models()
    )
    monkeypatch.setattr(registry, "SHIPPED", swapped)
    assert spec.for_input("clip").weights == next(m.name for m in swapped if m.role == "live")


def test_the_models_command_lists_the_registry(tmp_path: Path) -> None:
    listed = run_cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["name"] for r in rows] == [m.name for m in shipped_models()]
    for row, model in zip(rows, shipped_models()):
        card = model.card()
        assert row["role"] == model.role and row["default_for"] == list(model.default_for)
        assert row["frames"] == card["config"].get("frames", 1)
        network = load_checkpoint(model.weights)
        assert row["parameters"] == sum(p.numel() for p in network.state_dict().values())
        assert row["precision"] == "fp32" and row["gmac_per_megapixel"] > 1
        assert row["quality"]["output_psnr"] == card["quality"]["held_out"]["output_psnr"]
        assert row["quality_command"] == card["quality"]["held_out"]["command"]
    table = run_cli("models")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:2] == ["role", "name"] and len(lines) == 1 + len(rows)
    for line, model in zip(lines[1:], shipped_models()):
        assert line.split()[:2] == [model.role, model.name]


def test_building_a_backend_reads_the_weights_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`auto` on the CPU times several candidates: they share one load of the weights."""
    monkeypatch.setenv("STREAMDEBLUR_CACHE_DIR", str(tmp_path))  # no remembered choice: every candidate is built
    reads: list[Path] = []
    real = checkpoint._read_safetensors

    def counted(path: Path) -> object:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(checkpoint, "_read_safetensors", counted)
    monkeypatch.setattr(select, "_onnxruntime_available", lambda: False)  # torch candidates only: no export
    backend = select.create_backend("auto", DEFAULT_WEIGHTS, "cpu", "auto", frame_size=(32, 24))
    assert len(select.cpu_candidates()) >= 1 and reads == [DEFAULT_WEIGHTS]
    out = backend.infer(torch.rand(1, 3, 24, 32))
    assert out.shape == (1, 3, 24, 32)


def test_only_the_registry_ships_and_each_model_has_one_recipe() -> None:
    from streamdeblur.training.recipe import load_recipe

    on_disk = sorted(p.stem for p in registry.WEIGHTS_DIR.glob("*.safetensors"))
    assert on_disk == sorted(m.name for m in shipped_models()) == checkpoint.shipped_weights()
    for model in shipped_models():
        reproduce = model.card()["reproduce"]
        recipe = load_recipe(Path(reproduce["recipe"]).stem)
        assert recipe.stage_recipes()[-1].model == model.name, model.name
