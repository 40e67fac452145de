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


def dense_at(latents, coords):
    return latents[torch.arange(len(coords))[:, None], :, coords[..., 0], coords[..., 1]]


@pytest.mark.parametrize("channels", [1, 3])
def test_windowed_latents_equal_the_dense_encoder_in_eval_mode(channels):
    torch.manual_seed(channels)
    model = CUTSNet(channels).double()
    model.train()
    model(torch.rand(4, channels, 30, 30, dtype=torch.float64) * 2 - 1)  # non-trivial running statistics
    model.eval()
    images = torch.rand(2, channels, 40, 33, dtype=torch.float64) * 2 - 1
    # corners, edges, interior, and near-edge pixels whose blocks reach past the border at some layers only
    # (distance 2 to 8 from it: the input and the first three layers' blocks have radius 8, 6, 4, 2)
    points = [[0, 0], [0, 32], [39, 0], [39, 32], [0, 16], [20, 0], [39, 16], [20, 32], [3, 5], [8, 8],
              [31, 24], [7, 25], [20, 16], [9, 9], [6, 26], [33, 2], [2, 30]]
    coords = torch.tensor([points, points[::-1]])
    with torch.no_grad():
        expected = dense_at(model(images), coords)
        got = model.encoder.windowed(images, coords)
    assert got.shape == (2, len(points), 128)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_windowed_is_exact_at_every_pixel_of_images_at_the_minimum_size():
    torch.manual_seed(0)
    model = CUTSNet(3).double().eval()
    for h, w in ((17, 21), (26, 17)):
        images = torch.rand(1, 3, h, w, dtype=torch.float64)
        rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        coords = torch.stack([rows.flatten(), cols.flatten()], -1)[None]
        with torch.no_grad():
            torch.testing.assert_close(model.encoder.windowed(images, coords), dense_at(model(images), coords),
                                       rtol=0, atol=1e-12)


def test_windowed_training_mode_normalises_with_the_windows_statistics():
    """The one named difference: in training mode BatchNorm's batch statistics come from the windows."""
    torch.manual_seed(0)
    model = CUTSNet(3).train()
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    coords = torch.tensor([[[16, 16], [3, 30]], [[10, 12], [31, 0]]])
    windowed = model.encoder.windowed(images, coords)
    dense = dense_at(model(images), coords)
    assert (windowed - dense).abs().max() > 1e-3
    windowed.sum().backward()  # gradients reach every layer
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    with pytest.raises(ValueError, match="outside"):
        model.encoder.windowed(images, torch.tensor([[[32, 0]], [[0, 0]]]))


def test_training_statistics_with_a_window_at_every_pixel_are_the_dense_encoders():
    """BatchNorm's training statistics weigh each pixel of each window's receptive field by 1 / the number of fields
    that hold it: with a window at every pixel every image pixel then counts once, so training mode gives the dense
    encoder's latents, gradients and running statistics (to float32 round-off)."""
    h, w = 18, 17
    images = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], -1)[None].repeat(2, 1, 1)

    def run(windowed):
        torch.manual_seed(0)
        model = CUTSNet(3).train()
        latents = model.encoder.windowed(images, coords) if windowed else dense_at(model(images), coords)
        (latents * torch.linspace(-1, 1, latents.shape[-1])).sum().backward()
        norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        return [latents.detach(), *[p.grad for p in model.encoder.parameters()],
                *[torch.cat([n.running_mean, n.running_var]) for n in norms]]

    for got, want in zip(run(True), run(False)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-3)  # conv biases before BatchNorm: 0 up to round-off
