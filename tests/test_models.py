"""temnb.nets.config, supervised_models, registry and checkpoint: configs, bias-free homogeneity,
receptive field, model folders."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import linearised
from temnb.core.errors import CorruptFileError, DataFileError, MissingFileError, ParameterError
from temnb.nets.checkpoint import load_model, read_model_card, save_model
from temnb.nets.config import DnCNNConfig, UNetConfig, receptive_field, receptive_field_bounds
from temnb.nets.registry import ARCHITECTURES, build_model, config_from_dict, count_parameters
from temnb.nets.supervised_models import BiasFreeBatchNorm2d, DnCNN, UNet

TINY_UNET = UNetConfig(n_scales=3, base_channels=4)
TINY_DNCNN = DnCNNConfig(depth=5, channels=8)


def _trained(config, seed=0, steps=4):
    """A tiny net after a few Adam steps (so BN running statistics and biases are non-trivial), in eval mode."""
    torch.manual_seed(seed)
    model = build_model(config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        x = torch.rand(4, 1, 16, 16) * 3 + 0.5
        loss = ((model(x) - x.mean()) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


_CACHE: dict = {}


def _model(config):
    if config not in _CACHE:
        _CACHE[config] = _trained(config)
    return _CACHE[config]


# ------------------------------------------------------------------ configs
@pytest.mark.parametrize("kwargs", [
    {"n_scales": 1}, {"n_scales": 8}, {"base_channels": 0}, {"base_channels": 129},
    {"n_scales": 3.0}, {"n_scales": "4"}, {"n_scales": True}, {"bias_free": "yes"}, {"blocks_per_scale": 0},
])
def test_unet_config_validation(kwargs):
    with pytest.raises(ParameterError):
        UNetConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"depth": 2}, {"channels": 0}, {"depth": 5.5}, {"bias_free": 1}])
def test_dncnn_config_validation(kwargs):
    with pytest.raises(ParameterError):
        DnCNNConfig(**kwargs)


@pytest.mark.parametrize("config", [UNetConfig(), TINY_UNET, DnCNNConfig(), DnCNNConfig(depth=9, bias_free=False)])
def test_config_round_trip(config):
    d = json.loads(json.dumps(config.to_dict()))
    assert d["architecture"] == config.architecture
    assert type(config).from_dict(d) == config
    assert config_from_dict(d) == config


def test_config_from_numpy_values_as_read_back_from_hspy():
    d = {k: (np.int64(v) if type(v) is int else v) for k, v in TINY_UNET.to_dict().items()}
    config = config_from_dict(d)
    assert config == TINY_UNET and type(config.n_scales) is int
    assert json.dumps(config.to_dict())


def test_unknown_architecture_names_known_ones():
    with pytest.raises(ParameterError, match="UNet") as info:
        config_from_dict({"architecture": "ResNet-9000"})
    assert "DnCNN" in str(info.value)
    with pytest.raises(ParameterError):
        config_from_dict({"n_scales": 3})
    with pytest.raises(ParameterError, match="colour"):
        UNetConfig.from_dict({"architecture": "UNet", "colour": "red"})
    assert set(ARCHITECTURES) >= {"UNet", "DnCNN"}


def test_build_model_and_attributes():
    unet = build_model(TINY_UNET.to_dict())
    assert isinstance(unet, UNet) and unet.config == TINY_UNET
    assert unet.temporal_window == 1 and unet.size_multiple == 4
    assert unet.receptive_field == receptive_field(TINY_UNET)
    dn = build_model(TINY_DNCNN)
    assert isinstance(dn, DnCNN) and dn.size_multiple == 1 and dn.receptive_field == 11
    assert count_parameters(dn) == sum(p.numel() for p in dn.parameters())
    # bias-free: no conv biases, no BN shifts anywhere
    assert not any(name.endswith("bias") for name, _ in unet.named_parameters())
    assert any(name.endswith("bias") for name, _ in UNet(UNetConfig(n_scales=2, bias_free=False)).named_parameters())
    with pytest.raises(ParameterError):
        build_model("UNet")


@pytest.mark.parametrize("config,shapes", [
    (TINY_UNET, [(16, 16), (32, 48), (8, 24)]),
    (UNetConfig(n_scales=2, base_channels=8, blocks_per_scale=1), [(10, 6), (32, 32)]),
    (TINY_DNCNN, [(13, 17), (32, 32)]),
])
def test_output_shape_equals_input_shape(config, shapes):
    model = build_model(config).eval()
    for h, w in shapes:
        assert h % model.size_multiple == 0 and w % model.size_multiple == 0
        with torch.no_grad():
            assert model(torch.rand(2, 1, h, w)).shape == (2, 1, h, w)


def test_bias_free_batchnorm_has_no_shift():
    bn = BiasFreeBatchNorm2d(3)
    x = torch.randn(8, 3, 5, 5) * 4 + 10
    bn.train()
    y = bn(x)
    sd = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True).add(bn.eps).sqrt()
    torch.testing.assert_close(y, x / sd)  # mean NOT subtracted
    assert torch.all(bn.running_sd != 1)
    bn.eval()
    torch.testing.assert_close(bn(2.5 * x), 2.5 * bn(x))
    assert [n for n, _ in bn.named_parameters()] == ["weight"]


# ------------------------------------------------------------------ bias-free properties
def _jacobian_residual(model, seed=1):
    torch.manual_seed(seed)
    x = torch.rand(1, 1, 16, 16) * 2 + 0.2
    with torch.no_grad():
        fx = model(x)
    jac = torch.autograd.functional.jacobian(model, x, vectorize=True).reshape(256, 256)
    jx = (jac @ x.reshape(256)).reshape(fx.shape)
    return float((jx - fx).abs().max()), float(fx.abs().max())


@pytest.mark.parametrize("config", [TINY_UNET, TINY_DNCNN])
def test_bias_free_net_is_locally_linear(config):
    resid, scale = _jacobian_residual(_model(config))
    assert resid < 1e-4 * max(1.0, scale)


@pytest.mark.parametrize("config", [
    UNetConfig(n_scales=3, base_channels=4, bias_free=False), DnCNNConfig(depth=5, channels=8, bias_free=False),
])
def test_biased_net_fails_the_linearity_check(config):
    # The same check must catch a net that has biases, else it proves nothing.
    resid, scale = _jacobian_residual(_model(config))
    assert resid > 1e-2 * scale


@settings(max_examples=15, deadline=None)
@given(a=st.floats(0.01, 100.0))
def test_bias_free_net_is_homogeneous(a):
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(3)) + 0.1
    for config in (TINY_UNET, TINY_DNCNN):
        model = _model(config)
        with torch.no_grad():
            fx, fax = model(x), model(a * x)
        torch.testing.assert_close(fax, a * fx, rtol=1e-4, atol=1e-5 * max(1.0, a))


def test_biased_net_is_not_homogeneous():
    model = _model(DnCNNConfig(depth=5, channels=8, bias_free=False))
    x = torch.rand(1, 1, 16, 16) + 0.1
    with torch.no_grad():
        assert not torch.allclose(model(3 * x), 3 * model(x), rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------------ receptive field
def _support(model, size, pos):
    """Row and column index ranges where d out[pos, pos] / d input is non-zero, and the gradient."""
    x = (torch.rand(1, 1, size, size) + 0.1).requires_grad_(True)
    model(x)[0, 0, pos, pos].backward()
    g = x.grad[0, 0].abs()
    rows = torch.nonzero(g.sum(1)).flatten()
    cols = torch.nonzero(g.sum(0)).flatten()
    return (int(rows.min()), int(rows.max())), (int(cols.min()), int(cols.max())), g


@pytest.mark.parametrize("config,size", [(TINY_UNET, 64), (UNetConfig(n_scales=2, base_channels=4), 40),
                                         (TINY_DNCNN, 32)])
def test_receptive_field_matches_gradient_support(config, size):
    torch.manual_seed(0)
    period = 2 ** (config.n_scales - 1) if isinstance(config, UNetConfig) else 1
    centre = size // 2
    widths = []
    for pos in range(centre, centre + max(period, 2)):
        lo, hi = receptive_field_bounds(config, pos)
        rows, cols, _ = _support(linearised(build_model(config)).eval(), size, pos)
        assert rows == (pos + lo, pos + hi) and cols == (pos + lo, pos + hi), (pos, rows, (lo, hi))
        widths.append(hi - lo + 1)
    assert max(widths) == receptive_field(config)
    # The real (ReLU, max-pool) net never reaches outside the computed field.
    lo, hi = receptive_field_bounds(config, centre)
    _, _, g = _support(build_model(config).eval(), size, centre)
    inside = torch.zeros_like(g, dtype=torch.bool)
    inside[centre + lo:centre + hi + 1, centre + lo:centre + hi + 1] = True
    assert g[~inside].max() == 0 and g[centre, centre] > 0


def test_receptive_field_of_big_unet_is_hundreds_of_pixels():
    rf = receptive_field(UNetConfig(n_scales=6, blocks_per_scale=2))
    print("6-scale, 2-block UNet receptive field:", rf, "px")
    assert 300 <= rf < 1000
    assert receptive_field(UNetConfig(n_scales=4)) < rf
    assert receptive_field(DnCNNConfig()) == 35


# ------------------------------------------------------------------ model folders
def test_save_load_round_trip(tmp_path):
    model = _model(TINY_UNET)
    folder = save_model(model, tmp_path / "m", card={"training_data": "200 simulated Pt frames", "val_psnr": 31.5})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model_card.json", "weights.pt"]
    loaded = load_model(folder, expected="UNet")
    assert not loaded.training and loaded.config == TINY_UNET
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    card = read_model_card(folder)
    assert card["training_data"] == "200 simulated Pt frames" and card["val_psnr"] == 31.5
    assert card["architecture"] == "UNet"
    assert card["n_parameters"] == count_parameters(model)
    assert card["receptive_field"] == receptive_field(TINY_UNET)
    assert card["torch_version"] == torch.__version__ and "temnb_version" in card and "saved" in card
    assert loaded.model_card == card and loaded.model_folder == str(folder)
    assert json.loads((folder / "config.json").read_text()) == TINY_UNET.to_dict()


def test_weights_that_do_not_fit_the_config(tmp_path):
    unet_dir = save_model(build_model(TINY_UNET), tmp_path / "unet")
    dn_dir = save_model(build_model(TINY_DNCNN), tmp_path / "dn")
    (unet_dir / "weights.pt").write_bytes((dn_dir / "weights.pt").read_bytes())
    with pytest.raises(DataFileError, match="weights.pt") as info:
        load_model(unet_dir)
    assert "body.0.weight" in str(info.value) or "encoders" in str(info.value)


def test_expected_architecture_and_bad_folders(tmp_path):
    folder = save_model(build_model(TINY_UNET), tmp_path / "unet")
    with pytest.raises(DataFileError, match="DnCNN"):
        load_model(folder, expected="DnCNN")
    with pytest.raises(MissingFileError):
        load_model(tmp_path / "nowhere")
    (folder / "weights.pt").write_bytes(b"this is not a torch file" * 10)
    with pytest.raises(CorruptFileError, match="weights.pt"):
        load_model(folder)
    (folder / "weights.pt").unlink()
    with pytest.raises(MissingFileError, match="weights.pt"):
        load_model(folder)
    (folder / "config.json").write_text('{"architecture": "Nope"}')
    with pytest.raises(DataFileError, match="config.json"):
        load_model(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(CorruptFileError, match="config.json"):
        load_model(folder)


def test_save_model_refuses_foreign_networks(tmp_path):
    with pytest.raises(ParameterError):
        save_model(nn.Conv2d(1, 1, 3), tmp_path / "x")
    assert not np.any([p.exists() for p in [tmp_path / "x" / "weights.pt"]])


def test_every_config_knows_its_receptive_field():
    from temnb.nets.config import N2VConfig, UDVDConfig, WCIDConfig, WCVDConfig

    for config in (UNetConfig(n_scales=3), DnCNNConfig(depth=5), UDVDConfig(), UDVDConfig(two_stage=True),
                   WCVDConfig(), WCIDConfig(kernel_sizes=(5, 9)), N2VConfig()):
        assert config.receptive_field() == receptive_field(config) == build_model(config).receptive_field
        lo, hi = receptive_field_bounds(config)
        assert hi - lo + 1 <= config.receptive_field()


def test_build_model_with_a_seed_gives_the_same_network_and_leaves_the_global_state_alone():
    from temnb.nets.config import WCVDConfig

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(UNetConfig(n_scales=2, base_channels=4), seed=7)
    b = build_model(UNetConfig(n_scales=2, base_channels=4), seed=7)
    assert torch.equal(torch.rand(1), before)                     # the global random state was not used
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    c = build_model(WCVDConfig(), seed=8)
    d = build_model(WCVDConfig(), seed=9)
    assert not all(torch.equal(p, q) for p, q in zip(c.state_dict().values(), d.state_dict().values()))
    with pytest.raises(ParameterError):
        build_model(UNetConfig(), seed=-1)


def test_the_readme_path_for_a_movie_gives_the_same_numbers_twice():
    from temnb.nets.config import WCVDConfig
    from temnb.nets.inference import denoise
    from temnb.nets.self_supervised import fit_self_supervised
    from temnb.simulation.synthetic import counted_movie

    noisy, _ = counted_movie(8, (32, 32), 2.0, seed=1, as_signal=False)
    outs = []
    for _ in range(2):
        model = build_model(WCVDConfig(features=4), seed=0)
        fit_self_supervised(model, noisy, steps=5, batch_size=2, patch_size=16, seed=0, device="cpu", progress=False)
        outs.append(denoise(noisy, model, device="cpu", progress=False))
    assert np.array_equal(outs[0], outs[1])


@pytest.mark.parametrize("make", ["udvd", "n2v", "unet"])
def test_every_recipe_gives_the_same_psnr_twice_with_default_seeds(make, tmp_path):
    """build_model seeds the weights by default and the loops seed their batches: no seed argument
    anywhere, and two runs still agree to the last bit."""
    from temnb.judge.metrics import psnr
    from temnb.nets.config import N2VConfig, TrainConfig, UDVDConfig
    from temnb.nets.inference import denoise
    from temnb.nets.self_supervised import fit_self_supervised
    from temnb.nets.train import train
    from temnb.simulation.synthetic import counted_movie

    noisy, clean = counted_movie(8, (32, 32), 2.0, seed=1, as_signal=False)
    scores = []
    for run in range(2):
        if make == "unet":
            model = build_model(UNetConfig(n_scales=2, base_channels=4))
            fit = train(model, clean, config=TrainConfig(patch_size=16, batch_size=2, epochs=1, steps_per_epoch=3,
                                                          n_val_patches=2, dose=2.0),
                        out_dir=tmp_path / f"run{run}", device="cpu", progress=False)
            model = fit.model
        else:
            config = UDVDConfig(channels=4, n_scales=2) if make == "udvd" else N2VConfig(n_scales=2, base_channels=4)
            model = build_model(config)
            fit_self_supervised(model, noisy, steps=3, batch_size=2, patch_size=16, device="cpu", progress=False)
        scores.append(psnr(denoise(noisy, model, dose=2.0, device="cpu", progress=False), clean))
    assert scores[0] == scores[1]
