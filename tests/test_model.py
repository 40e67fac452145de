"""The CUTS network: shapes, size, receptive field (runtime ~1 s)."""

import pytest
import torch

from cutslib.model import RECEPTIVE_FIELD, CUTSNet, count_parameters


@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(channels):
    model = CUTSNet(channels)
    images = torch.rand(2, channels, 24, 30) * 2 - 1
    latents = model(images)
    assert latents.shape == (2, 128, 24, 30)
    assert model.head(latents[:, :, :4, 0].transpose(1, 2)).shape == (2, 4, channels, 5, 5)
    assert model.reconstruct(latents).shape == (2, channels, 24, 30)


def test_parameter_count_is_about_027_million():
    assert 0.26e6 < count_parameters(CUTSNet(3).encoder) < 0.28e6


def test_reconstruction_is_the_centre_of_each_decoded_patch():
    torch.manual_seed(0)
    model = CUTSNet(3).eval()
    latents = model(torch.rand(1, 3, 20, 20) * 2 - 1)
    recon = model.reconstruct(latents, chunk=7)  # chunking must not change anything
    patch = model.head(latents[0, :, 11, 4])
    torch.testing.assert_close(recon[0, :, 11, 4], patch[:, 2, 2])


def test_receptive_field_is_17x17():
    torch.manual_seed(0)
    model = CUTSNet(1).double().eval()
    size, centre = 41, 20
    blank = torch.zeros(1, 1, size, size, dtype=torch.float64)
    impulse = blank.clone()
    impulse[0, 0, centre, centre] = 1.0
    with torch.no_grad():
        changed = (model(impulse) - model(blank)).abs().sum(1)[0] > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    half = RECEPTIVE_FIELD // 2
    assert RECEPTIVE_FIELD == 17
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (centre - half, centre + half, centre - half,
                                                                centre + half)
    assert changed[centre - half: centre + half + 1, centre - half: centre + half + 1].all()


def test_zero_channels_rejected():
    with pytest.raises(ValueError, match="in_channels"):
        CUTSNet(0)
