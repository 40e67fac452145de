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
differs in one named way: BatchNorm's batch statistics come from the computed windows instead of from every pixel
of every image. Which of their pixels count is ``bn_pixels``:

- ``"window"``: every pixel of every crop at that layer, pooled over the batch. A crop at an image border keeps its
  border side at every layer, so its block grows towards the border and, at the last layer, holds up to 81 pixels
  where an interior crop holds 1: the border band weighs several times its share, and the deeper statistics are
  biased (by about 0.4 of a channel's standard deviation at the fourth layer of a trained retina encoder).
- ``"field"``: only each crop's receptive field of its own pixel at that layer (the pixels within 2 * (4 - layer)
  of it), each weighted by 1 / the number of image pixels whose field holds it. With windows at uniformly drawn
  pixels every image pixel then counts alike, as in the dense encoder; with a window at every pixel the training
  step is the dense one exactly (tested).
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

    def windowed(self, images: torch.Tensor, coords: torch.Tensor, bn_pixels: str = "window") -> torch.Tensor:
        """The latents (B, K, 128) at pixels ``coords`` (B, K, 2) (row, col) of ``images`` (B, C, H, W).

        See the module docstring: exact in eval mode; in training mode BatchNorm uses the windows' statistics,
        over every pixel each window computes (``bn_pixels="window"``) or over each window's receptive field of
        its own pixel only (``"field"``).
        """
        if bn_pixels not in ("window", "field"):
            raise ValueError(f"bn_pixels must be 'window' or 'field', got {bn_pixels!r}")
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
            if self.training and bn_pixels == "field":  # weighted statistics over each window's own field
                weights = [field_weights(rows[index], cols[index], r0[index], c0[index], key, layer // 3 + 1,
                                         x.shape[2:], (h, w), x.dtype) for x, (key, index) in zip(maps, groups)]
                mean, var = weighted_batch_stats(norm, maps, weights)
                scale = (norm.weight * torch.rsqrt(var + norm.eps))[:, None, None]
                maps = [act((x - mean[:, None, None]) * scale + norm.bias[:, None, None]) for x in maps]
            else:  # BatchNorm over every computed pixel of every window at once, as one batch
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


def field_weights(rows, cols, r0, c0, sides, depth: int, shape, image_shape, dtype) -> torch.Tensor:
    """(n, 1, h, w) BatchNorm weights of the pixels of each window's block after conv layer ``depth`` (1-based).

    A pixel counts if it lies in the receptive field of the window's own pixel (rows, cols) at that layer, within
    ``radius = 2 * (4 - depth)`` of it (a side that is an image border keeps its pixels up to the border, so its
    block reaches further than that). Its weight is 1 / the number of image pixels whose field holds it, so that
    windows at uniformly drawn pixels weigh every pixel of the image alike, as the dense encoder's statistics do
    (pixels near a border lie in fewer fields)."""
    top, _, left, _ = sides
    radius = (KERNEL_SIZE // 2) * (len(ENCODER_CHANNELS) - depth)
    shrink = (KERNEL_SIZE // 2) * depth

    def axis(start, centre, n, size):
        pos = start[:, None] + torch.arange(n, device=start.device)
        cover = pos.clamp(max=radius) + (size - 1 - pos).clamp(max=radius) + 1
        return ((pos - centre[:, None]).abs() <= radius).to(dtype) / cover

    w_r = axis(r0 + (0 if top else shrink), rows, shape[0], image_shape[0])
    w_c = axis(c0 + (0 if left else shrink), cols, shape[1], image_shape[1])
    return (w_r[:, :, None] * w_c[:, None, :])[:, None]


def weighted_batch_stats(norm: nn.BatchNorm2d, maps, weights) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm's training statistics (mean, biased variance per channel) of ``maps`` with pixel ``weights``,
    and the update of ``norm``'s running statistics that ``norm`` itself would make from them (its unbiased
    variance, counting the pixels as the total weight: the number of image pixels they stand for)."""
    total = sum(wt.sum() for wt in weights)
    mean = sum((x * wt).sum((0, 2, 3)) for x, wt in zip(maps, weights)) / total
    var = sum(((x - mean[:, None, None]) ** 2 * wt).sum((0, 2, 3)) for x, wt in zip(maps, weights)) / total
    with torch.no_grad():
        norm.num_batches_tracked += 1
        momentum = norm.momentum if norm.momentum is not None else 1.0 / float(norm.num_batches_tracked)
        norm.running_mean.lerp_(mean, momentum)
        norm.running_var.lerp_(var * total / (total - 1), momentum)
    return mean, var


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
