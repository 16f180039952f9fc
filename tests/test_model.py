"""The DeepDeblur module, its configurations and checkpoint loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from streamdeblur.errors import BadInput
from streamdeblur.models import DeepDeblur, DeepDeblurConfig, load_checkpoint, load_model_config, save_weights
from streamdeblur.models.deepdeblur import count_parameters


def test_paper_configuration_has_about_11_7m_parameters() -> None:
    cfg = load_model_config("deepdeblur")
    assert (cfg.n_scales, cfg.n_feats, cfg.n_resblocks, cfg.kernel_size) == (3, 64, 19, 5)
    assert count_parameters(DeepDeblur(cfg)) == pytest.approx(11.7e6, rel=0.01)


def test_light_configuration_is_much_smaller() -> None:
    light = DeepDeblur(load_model_config("deepdeblur-light"))
    assert count_parameters(light) < count_parameters(DeepDeblur(load_model_config("deepdeblur"))) / 20


@pytest.mark.parametrize("size", [(1, 1), (7, 13), (64, 64), (359, 641)])
def test_any_frame_size_comes_back_the_same_size(size: tuple[int, int]) -> None:
    model = DeepDeblur(load_model_config("tiny")).eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        assert model(x).shape == x.shape


def test_pyramid_outputs_are_coarse_to_fine() -> None:
    model = DeepDeblur(load_model_config("tiny"))
    outputs = model.forward_pyramid(torch.rand(1, 3, 32, 48))
    assert [o.shape[-2:] for o in outputs] == [(32, 48), (16, 24), (8, 12)]


def test_safetensors_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = DeepDeblur(load_model_config("tiny")).eval()
    path = save_weights(model, tmp_path / "w.safetensors", {"data": "none"})
    loaded = load_checkpoint(path)
    assert loaded.cfg == model.cfg
    x = torch.rand(1, 3, 20, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


# --- The official DeepDeblur-PyTorch structure, written out to compare against -------------
# (src/model/MSResNet.py, ResNet.py, common.py of SeungjunNah/DeepDeblur-PyTorch: RGB in
# [0, 255], a mean shift of 127.5, and an input pyramid given as a list, coarsest last.)


class _OfficialResBlock(nn.Module):
    def __init__(self, feats: int, k: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(feats, feats, k, padding=k // 2), nn.ReLU(True), nn.Conv2d(feats, feats, k, padding=k // 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class _OfficialResNet(nn.Module):
    def __init__(self, in_ch: int, feats: int, k: int, blocks: int) -> None:
        super().__init__()
        layers = [nn.Conv2d(in_ch, feats, k, padding=k // 2)]
        layers += [_OfficialResBlock(feats, k) for _ in range(blocks)]
        layers += [nn.Conv2d(feats, 3, k, padding=k // 2)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _OfficialConvEnd(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.uppath = nn.Sequential(nn.Conv2d(3, 12, 5, padding=2), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.uppath(x)


class _OfficialMSResNet(nn.Module):
    def __init__(self, feats: int, k: int, blocks: int, scales: int = 3) -> None:
        super().__init__()
        self.scales = scales
        self.body_models = nn.ModuleList([_OfficialResNet(3, feats, k, blocks)])
        for _ in range(1, scales):
            self.body_models.insert(0, _OfficialResNet(6, feats, k, blocks))
        self.conv_end_models = nn.ModuleList([None])  # type: ignore[list-item]
        for _ in range(1, scales):
            self.conv_end_models += [_OfficialConvEnd()]

    def forward(self, pyramid: list[torch.Tensor]) -> list[torch.Tensor]:
        pyramid = [p - 127.5 for p in pyramid]
        outputs: list[torch.Tensor] = [pyramid[0]] * self.scales
        x = pyramid[-1]
        for s in range(self.scales - 1, -1, -1):
            outputs[s] = self.body_models[s](x)
            if s > 0:
                x = torch.cat((pyramid[s - 1], self.conv_end_models[s](outputs[s])), 1)
        return [o + 127.5 for o in outputs]


def test_official_checkpoint_gives_the_official_output(tmp_path: Path) -> None:
    torch.manual_seed(3)
    official = _OfficialMSResNet(feats=16, k=5, blocks=2).eval()
    for p in official.parameters():  # larger biases make a wrong bias scaling obvious
        nn.init.normal_(p, std=0.05)
    path = tmp_path / "model-042.pt"
    torch.save({"G": {f"module.{k}": v for k, v in official.state_dict().items()}}, path)

    ours = load_checkpoint(path)
    assert (ours.cfg.n_scales, ours.cfg.n_feats, ours.cfg.n_resblocks, ours.cfg.kernel_size) == (3, 16, 2, 5)

    x = torch.rand(2, 3, 48, 64)
    rgb255 = x * 255
    pyramid = [rgb255, F.avg_pool2d(rgb255, 2), F.avg_pool2d(rgb255, 4)]
    with torch.no_grad():
        expected = official(pyramid)[0] / 255
        got = ours(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_official_checkpoint_of_the_wrong_shape_is_a_clear_error(tmp_path: Path) -> None:
    state = _OfficialMSResNet(feats=8, k=3, blocks=1).state_dict()
    state["body_models.0.body.1.body.0.weight"] = torch.zeros(8, 8, 5, 5)
    path = tmp_path / "model-1.pt"
    torch.save({"G": state}, path)
    with pytest.raises(BadInput, match="do not fit"):
        load_checkpoint(path)


def test_configs_reject_unknown_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nn_feats: 8\nwidth: 3\n")
    from streamdeblur.errors import BadUsage

    with pytest.raises(BadUsage, match="width"):
        load_model_config(str(bad))
    assert DeepDeblurConfig().n_resblocks == 19


def test_shipped_weights_are_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamdeblur.models import DEFAULT_WEIGHTS, resolve_weights, shipped_weights

    assert DEFAULT_WEIGHTS.stem in shipped_weights()
    assert resolve_weights(None) == DEFAULT_WEIGHTS
    monkeypatch.chdir(tmp_path)
    assert resolve_weights(DEFAULT_WEIGHTS.stem) == resolve_weights(DEFAULT_WEIGHTS.name) == DEFAULT_WEIGHTS
    assert load_checkpoint(DEFAULT_WEIGHTS.stem).cfg.name == load_checkpoint(DEFAULT_WEIGHTS).cfg.name
    (tmp_path / DEFAULT_WEIGHTS.name).write_bytes(b"")  # a file of the user's own comes first
    assert resolve_weights(DEFAULT_WEIGHTS.name) == Path(DEFAULT_WEIGHTS.name)
    with pytest.raises(BadInput, match=f"not found: nope .shipped weights: .*{DEFAULT_WEIGHTS.stem}"):
        load_checkpoint("nope")
    with pytest.raises(BadInput, match="not found"):
        load_checkpoint(tmp_path / "sub" / DEFAULT_WEIGHTS.name)  # a path is never a shipped name
