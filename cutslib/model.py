"""The CUTS network: a per-pixel patch encoder and a small patch decoder ("head").

The encoder is four ``Conv2d(5x5, stride 1, replicate 'same' padding) -> BatchNorm2d -> LeakyReLU(0.01)``
blocks, C -> 16 -> 32 -> 64 -> 128 channels, with no down-sampling: the 128-vector at (h, w) embeds the
17x17 neighbourhood centred on that pixel. The head maps one such vector to the C x 5 x 5 patch centred on
the pixel (``Linear(128, 25C) -> LeakyReLU -> Linear(25C, 25C)``).
"""

from __future__ import annotations

import torch
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
