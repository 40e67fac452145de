"""The CUTS network: a per-pixel patch encoder and a small patch decoder ("head").

The encoder is four ``Conv2d(5x5, stride 1, replicate 'same' padding) -> BatchNorm2d -> LeakyReLU(0.01)``
blocks, C -> 16 -> 32 -> 64 -> 128 channels, with no down-sampling: the 128-vector at (h, w) embeds the
17x17 neighbourhood centred on that pixel. The head maps one such vector to the C x 5 x 5 patch centred on
the pixel (``Linear(128, 25C) -> LeakyReLU -> Linear(25C, 25C)``).

``Encoder.windowed(images, coords)`` computes the latents of given pixels only, from their receptive fields: a
17x17 crop per pixel, shifted inside the image at the border, whose window shrinks by 2 on each side per layer
(17 -> 13 -> 9 -> 5 -> 1), except on a side where the crop touches the image border, where that layer pads
(replicate) exactly as the dense encoder does. In eval mode it equals the dense encoder at those pixels up to
round-off, about 100x cheaper for the 16 to 32 pixels per image that the losses read. In training mode it
differs in one named way: BatchNorm's batch statistics come from the computed windows (every pixel of every
crop at that layer, pooled over the batch) instead of from every pixel of every image.
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
        b, c, h, w = images.shape
        if h < RECEPTIVE_FIELD or w < RECEPTIVE_FIELD:
            raise ValueError(f"images are {h}x{w}, smaller than the {RECEPTIVE_FIELD}x{RECEPTIVE_FIELD} receptive field")
        coords = coords.to(images.device)
        k = coords.shape[1]
        half = RECEPTIVE_FIELD // 2
        rows, cols = coords[..., 0].reshape(-1), coords[..., 1].reshape(-1)
        if rows.min() < 0 or rows.max() >= h or cols.min() < 0 or cols.max() >= w:
            raise ValueError(f"pixel coordinates outside the {h}x{w} image")
        r0 = (rows - half).clamp(0, h - RECEPTIVE_FIELD)  # crop starts, shifted inside the image
        c0 = (cols - half).clamp(0, w - RECEPTIVE_FIELD)
        # which crop sides are image borders (padded like the dense encoder) rather than interior (shrinking)
        sides = torch.stack([r0 == 0, r0 + RECEPTIVE_FIELD == h, c0 == 0, c0 + RECEPTIVE_FIELD == w], 1)
        span = torch.arange(RECEPTIVE_FIELD, device=images.device)
        batch = torch.arange(b, device=images.device).repeat_interleave(k)
        crops = images[batch[:, None, None], :, (r0[:, None] + span)[:, :, None], (c0[:, None] + span)[:, None, :]]
        crops = crops.permute(0, 3, 1, 2)  # (B*K, C, 17, 17)
        keys, group = torch.unique(sides, dim=0, return_inverse=True)
        groups = [(key, torch.nonzero(group == g)[:, 0]) for g, key in enumerate(keys.tolist())]
        maps = [crops[index] for _, index in groups]
        pad = KERNEL_SIZE // 2
        for layer in range(0, len(self.blocks), 3):
            conv, norm, act = self.blocks[layer: layer + 3]
            # valid convolutions, with the dense encoder's replicate padding on the image-border sides only
            maps = [F.conv2d(F.pad(x, (pad * left, pad * right, pad * top, pad * bottom), mode="replicate"),
                             conv.weight, conv.bias) for x, ((top, bottom, left, right), _) in zip(maps, groups)]
            # BatchNorm over every computed pixel of every window at once, as one batch
            flat = torch.cat([x.transpose(0, 1).reshape(x.shape[1], -1) for x in maps], 1)  # (C, pixels)
            flat = act(norm(flat[None, :, :, None]))[0, :, :, 0]
            maps = [part.reshape(x.shape[1], x.shape[0], *x.shape[2:]).transpose(0, 1)
                    for part, x in zip(flat.split([x[:, 0].numel() for x in maps], 1), maps)]
        out = images.new_zeros(b * k, self.blocks[-3].out_channels)
        for x, ((top, _, left, _), index) in zip(maps, groups):
            # an interior side has shrunk by 8 pixels over the four layers; a border side has not
            i = rows[index] - r0[index] - (0 if top else half)
            j = cols[index] - c0[index] - (0 if left else half)
            out = out.index_put((index,), x[torch.arange(len(index), device=x.device), :, i, j])
        return out.reshape(b, k, -1)


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
