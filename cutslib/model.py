"""The CUTS network: a per-pixel patch encoder and a small patch decoder ("head").

The encoder is four ``Conv2d(5x5, stride 1, replicate 'same' padding) -> BatchNorm2d -> LeakyReLU(0.01)``
blocks, C -> 16 -> 32 -> 64 -> 128 channels, with no down-sampling: the 128-vector at (h, w) embeds the
17x17 neighbourhood centred on that pixel. The head maps one such vector to the C x 5 x 5 patch centred on
the pixel (``Linear(128, 25C) -> LeakyReLU -> Linear(25C, 25C)``).

``Encoder.windowed(images, coords)`` computes the latents of given pixels only, from their receptive fields. Each
pixel's block starts as the 17x17 square centred on it and shrinks by 2 on each side per layer (17 -> 13 -> 9 -> 5
-> 1), every window in one batched convolution. Where the square reaches past the image border its positions are
virtual: they take the value of the nearest image pixel, at the input and again after every layer, which is exactly
what the dense encoder's replicate padding feeds each layer. In eval mode the latents equal the dense encoder's at
those pixels up to round-off, about 100x cheaper for the 16 to 32 pixels per image that the losses read.

In training mode it differs in one named way: BatchNorm's batch statistics come from the windows instead of from
every pixel of every image. At each layer a window's block is the receptive field of its own pixel; its image pixels
count, each weighted by 1 / the number of image pixels whose field holds it (fewer near a border), so that windows at
uniformly drawn pixels weigh every image pixel alike, as the dense encoder's statistics do. With a window at every
pixel the training step is the dense one exactly (tested). (Until 2026-12-05 the windows were crops shifted inside
the image, and the first windowed profiles, ``fast-window`` and ``fast-bn``, pooled every pixel the crops computed:
that over-weighs the border band, by about 0.4 of a channel's standard deviation at the fourth layer of a trained
retina encoder. Their records name the commits whose code made them.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT_DIM = 128
ENCODER_CHANNELS = (16, 32, 64, 128)
KERNEL_SIZE = 5
PATCH_SIZE = 5
RECEPTIVE_FIELD = 1 + len(ENCODER_CHANNELS) * (KERNEL_SIZE - 1)  # 17
MIN_IMAGE_SIZE = RECEPTIVE_FIELD


class Encoder(nn.Module):
    """Four conv blocks; maps (B, C, H, W) images to (B, 128, H, W) per-pixel embeddings."""

    def __init__(self, in_channels: int):
        super().__init__()
        layers = []
        for c_in, c_out in zip((in_channels, *ENCODER_CHANNELS[:-1]), ENCODER_CHANNELS):
            layers += [
                nn.Conv2d(c_in, c_out, KERNEL_SIZE, stride=1, padding=KERNEL_SIZE // 2, padding_mode="replicate"),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.01),
            ]
        self.blocks = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(images)

    def windowed(self, images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """The latents (B, K, 128) at pixels ``coords`` (B, K, 2) (row, col) of ``images`` (B, C, H, W).

        See the module docstring: exact in eval mode; in training mode BatchNorm uses the windows' statistics.
        """
        b, _, h, w = images.shape
        if h < RECEPTIVE_FIELD or w < RECEPTIVE_FIELD:
            raise ValueError(f"images are {h}x{w}, smaller than the {RECEPTIVE_FIELD}x{RECEPTIVE_FIELD} receptive field")
        coords = coords.to(images.device)
        rows, cols = coords[..., 0].reshape(-1), coords[..., 1].reshape(-1)
        if rows.min() < 0 or rows.max() >= h or cols.min() < 0 or cols.max() >= w:
            raise ValueError(f"pixel coordinates outside the {h}x{w} image")
        radius = RECEPTIVE_FIELD // 2
        span = torch.arange(-radius, radius + 1, device=images.device)
        v_rows, v_cols = rows[:, None] + span, cols[:, None] + span
        batch = torch.arange(b, device=images.device).repeat_interleave(coords.shape[1])
        x = images[batch[:, None, None], :, v_rows.clamp(0, h - 1)[:, :, None], v_cols.clamp(0, w - 1)[:, None, :]]
        x = x.permute(0, 3, 1, 2)  # (B*K, C, 17, 17): each window's block, past the border the nearest image pixel
        for layer in range(len(ENCODER_CHANNELS)):
            conv, norm, act = self.blocks[3 * layer: 3 * layer + 3]
            if x.shape[-1] == KERNEL_SIZE:  # the last layer, one output pixel: the convolution is a matrix product
                x = F.linear(x.flatten(1), conv.weight.flatten(1), conv.bias)[:, :, None, None]
            else:
                x = F.conv2d(x, conv.weight, conv.bias)
            shrink = KERNEL_SIZE // 2  # the block loses 2 positions on each side
            radius, v_rows, v_cols = radius - shrink, v_rows[:, shrink:-shrink], v_cols[:, shrink:-shrink]
            if self.training:
                weights = field_weights(v_rows, h, radius)[:, :, None] * field_weights(v_cols, w, radius)[:, None]
                x = act(weighted_batch_norm(norm, x, weights[:, None]))
            else:
                x = act(norm(x))
            # positions past the border take the nearest image pixel's value: the next layer's replicate padding
            past = (v_rows[:, 0] < 0) | (v_rows[:, -1] >= h) | (v_cols[:, 0] < 0) | (v_cols[:, -1] >= w)
            out = past.nonzero()[:, 0]
            if radius and len(out):
                local_r = v_rows[out].clamp(0, h - 1) - v_rows[out, :1]
                local_c = v_cols[out].clamp(0, w - 1) - v_cols[out, :1]
                nearest = x[out[:, None, None], :, local_r[:, :, None], local_c[:, None, :]].permute(0, 3, 1, 2)
                x = x.index_put((out,), nearest)
        return x[:, :, 0, 0].reshape(b, coords.shape[1], -1)


def field_weights(positions: torch.Tensor, size: int, radius: int) -> torch.Tensor:
    """BatchNorm weights along one axis of each window's block: 0 past the image border, else 1 / the number of
    image positions within ``radius`` of the position (the fields of that layer that hold it)."""
    inside = (positions >= 0) & (positions < size)
    p = positions.clamp(0, size - 1)
    return inside.float() / (p.clamp(max=radius) + (size - 1 - p).clamp(max=radius) + 1)


def weighted_batch_norm(norm: nn.BatchNorm2d, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``norm`` in training mode on ``x`` (N, C, h, w), with its batch statistics (mean, biased variance per
    channel) weighted by ``weights`` (N, 1, h, w); updates ``norm``'s running statistics as ``norm`` itself would
    from them (with its unbiased variance, counting the pixels as the total weight: the image pixels they stand for)."""
    total = weights.sum()
    mean = (x * weights).sum((0, 2, 3)) / total
    centred = x - mean[:, None, None]
    var = (centred * centred * weights).sum((0, 2, 3)) / total
    with torch.no_grad():
        norm.num_batches_tracked += 1
        momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
        norm.running_mean.lerp_(mean, momentum)
        norm.running_var.lerp_(var * total / (total - 1), momentum)
    scale = norm.weight * torch.rsqrt(var + norm.eps)
    return torch.addcmul(norm.bias[:, None, None], centred, scale[:, None, None])


class PatchHead(nn.Module):
    """Decodes latent vectors (..., 128) into patches (..., C, 5, 5)."""

    def __init__(self, out_channels: int):
        super().__init__()
        self.out_channels = out_channels
        n = out_channels * PATCH_SIZE**2
        self.layers = nn.Sequential(nn.Linear(LATENT_DIM, n), nn.LeakyReLU(0.01), nn.Linear(n, n))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.layers(latents).unflatten(-1, (self.out_channels, PATCH_SIZE, PATCH_SIZE))


class CUTSNet(nn.Module):
    """Encoder plus patch head for images with ``in_channels`` channels."""

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.encoder = Encoder(in_channels)
        self.head = PatchHead(in_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Per-pixel latents (B, 128, H, W) of images (B, C, H, W)."""
        return self.encoder(images)

    def reconstruct(self, latents: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """The reconstructed image (B, C, H, W): for every pixel, the centre of its decoded 5x5 patch.

        The head runs on ``chunk`` pixels at a time to bound memory.
        """
        b, _, h, w = latents.shape
        flat = latents.permute(0, 2, 3, 1).reshape(-1, LATENT_DIM)
        centre = PATCH_SIZE // 2
        pixels = torch.cat([self.head(part)[:, :, centre, centre] for part in flat.split(chunk)])
        return pixels.reshape(b, h, w, self.in_channels).permute(0, 3, 1, 2)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
