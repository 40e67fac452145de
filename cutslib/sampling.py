"""Anchor / positive sampling for the contrastive loss, in batched tensor ops.

Per image and per step (METHOD.md, "Sampling"):

* ``S`` anchors are drawn uniformly, without replacement, among the *admissible* pixels: those whose 5x5
  patch lies inside the image (rows and columns 2 .. size-3).
* For each anchor, up to 20 distinct candidates are drawn uniformly from the window
  ``[h-5, h+5) x [w-5, w+5)``, restricted to admissible pixels (so every candidate has a full 5x5 patch) and
  never the anchor itself. The first candidate whose patch has SSIM > 0.5 with the anchor's patch is the
  positive. All candidates' SSIMs are computed at once; "first" is the first passing one in draw order, which
  is what a sequential search would return. (The 2023 training, ``choose="best"``: among up to 10 candidates,
  the passing one with the highest SSIM.)
* If none passes, the positive is the diagonal neighbour one step toward the image centre,
  ``(h + dh, w + dw)`` with ``dh = +1`` if ``h < (H-1)/2`` else ``-1`` (same for w). The step is never zero,
  so the fallback is never the anchor, and the anchor itself is left untouched.

SSIM is one value over the two 5x5 patches (a single uniform 5x5 window), computed per channel with the
sample (N-1) covariance, K1 = 0.01, K2 = 0.03, and averaged over channels. This equals
``skimage.metrics.structural_similarity(a, b, win_size=5, data_range=R, channel_axis=0)`` on the two patches.
The data range R is max - min over the anchor's patch (all channels); a flat anchor patch (R = 0) would give
0/0, so R is floored at ``MIN_DATA_RANGE`` (identical flat patches then score 1).

All randomness comes from the ``torch.Generator`` passed in, which the caller seeds once per run: unlike the
authors' sampler, it is not re-seeded per call (which left ~75% of pixels never used as anchors).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PATCH_SIZE = 5
HALF = PATCH_SIZE // 2
WINDOW = 5  # candidates lie in [h - WINDOW, h + WINDOW) x [w - WINDOW, w + WINDOW)
K1, K2 = 0.01, 0.03
MIN_DATA_RANGE = 1e-3


@dataclass
class Pairs:
    """Sampled pairs for a batch of B images with S anchors each; coordinates are (row, col)."""

    anchors: torch.Tensor  # (B, S, 2) long
    positives: torch.Tensor  # (B, S, 2) long
    fallback: torch.Tensor  # (B, S) bool: no candidate passed, the positive is the diagonal neighbour
    ssim: torch.Tensor  # (B, S) SSIM between the anchor's and the positive's patches


def admissible_range(size: int) -> tuple[int, int]:
    """First and last row (or column) whose 5x5 patch lies inside an image of this size."""
    if size < PATCH_SIZE:
        raise ValueError(f"image side {size} is smaller than the {PATCH_SIZE}x{PATCH_SIZE} patch")
    return HALF, size - 1 - HALF


def extract_patches(images: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The 5x5 patches of ``images`` (B, C, H, W) centred at ``coords`` (B, K, 2): (B, K, C, 5, 5)."""
    b, c, h, w = images.shape
    k = coords.shape[1]
    offsets = torch.arange(-HALF, HALF + 1, device=images.device)
    coords = coords.to(images.device)
    rows = coords[..., 0, None, None] + offsets[:, None]  # (B, K, 5, 1)
    cols = coords[..., 1, None, None] + offsets[None, :]  # (B, K, 1, 5)
    index = (rows * w + cols).reshape(b, 1, k * PATCH_SIZE**2).expand(b, c, -1)
    patches = images.reshape(b, c, h * w).gather(2, index)
    return patches.reshape(b, c, k, PATCH_SIZE, PATCH_SIZE).transpose(1, 2)


def gather_pixels(features: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """The feature vectors of ``features`` (B, D, H, W) at ``coords`` (B, K, 2): (B, K, D).

    Indexes without copying the feature map. For channels_last features it indexes the (B, H, W, D) view,
    so that the gradient flowing back is channels_last too (a mixed layout makes the backward pass slower).
    """
    coords = coords.to(features.device)
    batch = torch.arange(features.shape[0], device=features.device)[:, None]
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        return features.permute(0, 2, 3, 1)[batch, coords[..., 0], coords[..., 1]]
    return features[batch, :, coords[..., 0], coords[..., 1]]


def patch_ssim(reference: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """SSIM of patches (..., C, 5, 5) against reference patches of the same shape, one value per patch pair.

    Data range: max - min of each reference patch (floored at ``MIN_DATA_RANGE``). Channels are averaged.
    """
    x, y = reference.flatten(-2), other.flatten(-2)
    data_range = (x.amax(dim=(-2, -1)) - x.amin(dim=(-2, -1))).clamp_min(MIN_DATA_RANGE)[..., None]
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    n = x.shape[-1]
    mx, my = x.mean(-1), y.mean(-1)
    dx, dy = x - mx[..., None], y - my[..., None]
    vx, vy = (dx * dx).sum(-1) / (n - 1), (dy * dy).sum(-1) / (n - 1)
    cov = (dx * dy).sum(-1) / (n - 1)
    ssim = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return ssim.mean(-1)


def sample_anchors(batch: int, height: int, width: int, n_anchors: int, generator: torch.Generator) -> torch.Tensor:
    """``n_anchors`` distinct admissible pixels per image, uniformly: (B, S, 2) long (on the CPU)."""
    r0, r1 = admissible_range(height)
    c0, c1 = admissible_range(width)
    n_rows, n_cols = r1 - r0 + 1, c1 - c0 + 1
    if n_anchors > n_rows * n_cols:
        raise ValueError(f"cannot draw {n_anchors} distinct anchors from {n_rows * n_cols} admissible pixels")
    # The S largest of uniform random keys: a uniform draw without replacement (much faster than multinomial).
    flat = torch.rand(batch, n_rows * n_cols, generator=generator).topk(n_anchors, dim=1).indices
    return torch.stack([flat // n_cols + r0, flat % n_cols + c0], dim=-1)


def candidate_offsets(anchors: torch.Tensor, height: int, width: int, n_candidates: int,
                      generator: torch.Generator) -> torch.Tensor:
    """Up to ``n_candidates`` distinct candidate positions per anchor, in draw order: (B, S, K, 2).

    Candidates are uniform over the admissible, non-anchor pixels of the window around each anchor.
    """
    steps = torch.arange(-WINDOW, WINDOW)
    dr, dc = torch.meshgrid(steps, steps, indexing="ij")
    offsets = torch.stack([dr.flatten(), dc.flatten()], dim=-1)  # (100, 2)
    positions = anchors[..., None, :] + offsets  # (B, S, 100, 2)
    r0, r1 = admissible_range(height)
    c0, c1 = admissible_range(width)
    valid = ((positions[..., 0] >= r0) & (positions[..., 0] <= r1) & (positions[..., 1] >= c0)
             & (positions[..., 1] <= c1) & (offsets != 0).any(-1))
    n_valid = int(valid.sum(-1).min())
    k = min(n_candidates, n_valid)
    b, s = anchors.shape[:2]
    keys = torch.rand(valid.shape, generator=generator).masked_fill(~valid, -1.0)  # invalid ones sort last
    choice = keys.reshape(b * s, -1).topk(k, dim=1).indices  # a uniform random order of valid candidates
    return positions.reshape(b * s, -1, 2).gather(1, choice[..., None].expand(-1, -1, 2)).reshape(b, s, k, 2)


def fallback_positives(anchors: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The diagonal neighbour one step toward the image centre (never the anchor itself)."""
    centre = torch.tensor([(height - 1) / 2, (width - 1) / 2])
    step = torch.where(anchors < centre, 1, -1)
    return anchors + step


def sample_pairs(images: torch.Tensor, generator: torch.Generator, n_anchors: int = 8, n_candidates: int = 20,
                 threshold: float = 0.5, choose: str = "first") -> Pairs:
    """Anchors and their positives for a batch of images (B, C, H, W); see the module docstring.

    ``choose``: "first" passing candidate in draw order (2024) or the passing one with the "best" SSIM (2023).
    """
    if choose not in ("first", "best"):
        raise ValueError(f"choose must be 'first' or 'best', got {choose!r}")
    b, c, h, w = images.shape
    anchors = sample_anchors(b, h, w, n_anchors, generator)
    candidates = candidate_offsets(anchors, h, w, n_candidates, generator)  # (B, S, K, 2)
    k = candidates.shape[2]
    with torch.no_grad():
        anchor_patches = extract_patches(images, anchors)  # (B, S, C, 5, 5)
        candidate_patches = extract_patches(images, candidates.reshape(b, -1, 2)).reshape(b, n_anchors, k, c, 5, 5)
        scores = patch_ssim(anchor_patches[:, :, None], candidate_patches).cpu()  # (B, S, K)
    passed = scores > threshold
    if choose == "first":
        first = passed.to(torch.uint8).argmax(-1)  # index of the first passing candidate (0 if none passes)
    else:
        first = scores.masked_fill(~passed, float("-inf")).argmax(-1)  # the passing one with the highest SSIM
    found = passed.any(-1)
    chosen = candidates.gather(2, first[..., None, None].expand(-1, -1, 1, 2)).squeeze(2)
    positives = torch.where(found[..., None], chosen, fallback_positives(anchors, h, w))
    ssim = torch.where(found, scores.gather(2, first[..., None]).squeeze(2),
                       patch_ssim(anchor_patches, extract_patches(images, positives)).cpu())
    return Pairs(anchors=anchors, positives=positives, fallback=~found, ssim=ssim)
