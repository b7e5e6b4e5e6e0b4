"""The networks named after published ones match them: the reference UDVD (Sheth et al. 2021,
sreyas-mohan/udvd ``blind-video-net-4``) and the simulation-trained paper's U-Net (Mohan et al.,
sreyas-mohan/electron-microscopy-denoising), in parameter count and receptive field (within 5 %,
the field measured by autograd), and their small CPU variants are named as such."""
from __future__ import annotations

import pytest
import torch

from conftest import linearised
from temnb.core.errors import ParameterError
from temnb.nets import registry
from temnb.nets.config import UDVDConfig

# Counted from the reference code's layer list (bias-free, one channel in and out).
REFERENCE_UDVD_PARAMETERS = 2_123_664
REFERENCE_UDVD_RECEPTIVE_FIELD = 291  # px, the union of the four rotated branches (about +-145 px)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _measured_span(model, size, positions):
    """Widest span (rows, cols) of input pixels, over all frames, that output pixels read (autograd)."""
    x = torch.rand(1, model.temporal_window, size, size, requires_grad=True)
    y = model(x)
    spans = []
    for r, c in positions:
        grad, = torch.autograd.grad(y[0, 0, r, c], x, retain_graph=True)
        hit = (grad[0].abs().sum(0) > 0).nonzero()
        spans.append((int(hit[:, 0].max() - hit[:, 0].min() + 1), int(hit[:, 1].max() - hit[:, 1].min() + 1)))
        assert float(grad[0, :, r, c].abs().sum()) == 0.0  # blind at the pixel, in every frame
    return max(max(s) for s in spans)


def test_reference_udvd_has_the_reference_parameter_count_and_receptive_field():
    config = UDVDConfig.reference()
    model = registry.build_model(config)
    assert registry.count_parameters(model) == REFERENCE_UDVD_PARAMETERS
    assert abs(config.receptive_field() - REFERENCE_UDVD_RECEPTIVE_FIELD) <= 0.05 * REFERENCE_UDVD_RECEPTIVE_FIELD
    assert config.label == "UDVD (reference)" and config.two_stage and config.channels == 48


def test_reference_udvd_receptive_field_measured_by_autograd():
    # The field does not depend on the width, so a 4-channel reference measures it quickly.
    model = registry.build_model(UDVDConfig.reference(channels=4)).eval()
    size = 320
    measured = _measured_span(model, size, [(160, 160), (161, 161), (162, 163), (163, 162)])
    assert abs(measured - REFERENCE_UDVD_RECEPTIVE_FIELD) <= 0.05 * REFERENCE_UDVD_RECEPTIVE_FIELD
    assert measured <= model.receptive_field  # the arithmetic is an upper bound


def test_compact_udvd_is_named_a_cpu_variant_and_is_much_smaller():
    compact = UDVDConfig()
    assert compact.variant == "compact" and compact.label == "UDVD-compact (CPU variant)"
    assert registry.count_parameters(registry.build_model(compact)) < REFERENCE_UDVD_PARAMETERS / 10
    assert compact.receptive_field() < REFERENCE_UDVD_RECEPTIVE_FIELD / 2


def test_full_reference_udvd_trains_a_capped_step_on_the_cpu():
    """The full preset runs on a CPU with its steps capped: one Adam step of the whole network."""
    from temnb.nets.self_supervised import fit_self_supervised

    model = registry.build_model(UDVDConfig.reference())
    movie = torch.poisson(torch.full((6, 32, 32), 7.0)).numpy()
    losses = fit_self_supervised(model, movie, steps=1, batch_size=1, patch_size=32, device="cpu", progress=False)
    assert len(losses) == 1 and losses[0] > 0


@pytest.mark.parametrize("settings", [dict(n_scales=2), dict(blocks_per_scale=3), dict(two_stage=False),
                                      dict(variant="big"), dict(frames=3)])
def test_reference_udvd_refuses_settings_it_fixes(settings):
    with pytest.raises(ParameterError):
        UDVDConfig(variant=settings.pop("variant", "reference"), **settings)


def test_old_compact_udvd_configs_still_load():
    old = {"architecture": "UDVD", "frames": 5, "channels": 8, "n_scales": 2, "blocks_per_scale": 2,
           "blind_region": 1, "bias": False, "two_stage": False}
    config = registry.config_from_dict(old)
    assert config.variant == "compact" and config.channels == 8
    assert registry.config_from_dict(config.to_dict()) == config


# --------------------------------------------------------------------------- the paper's U-Net
# sreyas-mohan/electron-microscopy-denoising, models/unet.py ("unet2"), scales=6, base 128: the
# count its notebook prints for the bias-free "White-6-128" (which includes the unused biases of
# its bias-free batch norms) and the count of the same network with biases.
PAPER_UNET_PARAMETERS = 70_504_960
PAPER_UNET_PARAMETERS_WITH_BIAS = 70_514_817
PAPER_UNET_SMALL_WITH_BIAS = 5_613_441  # "White-4-128": 4 down-samplings, with biases
PAPER_UNET_RECEPTIVE_FIELD = 950  # px, layer arithmetic of the reference ("about 900")


def test_the_papers_unet_matches_the_reference_code():
    from temnb.nets.config import UNetConfig

    config = UNetConfig.paper()
    assert config.downsamplings == 6 and config.base_channels == 128 and config.n_scales == 7
    assert config.widths() == (128, 128, 128, 256, 512, 1024, 1024)
    assert config.label == "the paper's U-Net (6 down-samplings, 128 channels)"
    assert abs(registry.count_parameters(registry.build_model(config)) - PAPER_UNET_PARAMETERS) \
        <= 0.05 * PAPER_UNET_PARAMETERS
    assert registry.count_parameters(registry.build_model(UNetConfig.paper(bias_free=False))) \
        == PAPER_UNET_PARAMETERS_WITH_BIAS
    assert registry.count_parameters(registry.build_model(UNetConfig.paper(4, bias_free=False))) \
        == PAPER_UNET_SMALL_WITH_BIAS
    assert abs(config.receptive_field() - PAPER_UNET_RECEPTIVE_FIELD) <= 0.05 * PAPER_UNET_RECEPTIVE_FIELD
    assert "CPU variant" in UNetConfig.paper(4, 16).label and "CPU variant" in UNetConfig().label


def test_the_papers_unet_receptive_field_measured_by_autograd():
    """The field does not depend on the widths: the paper's plan at 2 channels, on 1024^2."""
    from temnb.nets.config import UNetConfig, receptive_field_bounds

    config = UNetConfig.paper(6, 2)
    model = linearised(registry.build_model(config)).eval()
    size, spans = 1024, []
    x = (torch.rand(1, 1, size, size) + 0.1).requires_grad_(True)
    y = model(x)
    for pos in (512, 513, 531, 543):
        grad, = torch.autograd.grad(y[0, 0, pos, pos], x, retain_graph=True)
        rows = torch.nonzero(grad[0, 0].abs().sum(1)).flatten()
        lo, hi = receptive_field_bounds(config, pos)
        assert (int(rows.min()), int(rows.max())) == (pos + lo, pos + hi)
        spans.append(int(rows.max() - rows.min() + 1))
    assert abs(max(spans) - PAPER_UNET_RECEPTIVE_FIELD) <= 0.05 * PAPER_UNET_RECEPTIVE_FIELD


def test_the_full_papers_unet_trains_a_capped_step_on_the_cpu():
    from temnb.nets.config import UNetConfig

    model = registry.build_model(UNetConfig.paper()).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    x = torch.poisson(torch.full((2, 1, 64, 64), 0.45)) / 0.45
    loss = torch.nn.functional.mse_loss(model(x), torch.ones_like(x))
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("make", [lambda c: c.paper(blocks_per_scale=3), lambda c: c(channel_plan="triple"),
                                  lambda c: c.paper(7), lambda c: c.paper(2.5), lambda c: c(n_scales=7, base_channels=64)])
def test_bad_unet_plans_are_refused(make):
    from temnb.nets.config import UNetConfig

    with pytest.raises(ParameterError):
        make(UNetConfig)
