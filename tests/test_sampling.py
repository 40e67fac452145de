"""The anchor / positive sampler on real retina images (runtime ~3 s)."""

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from cutslib import data
from cutslib.sampling import (
    admissible_range,
    extract_patches,
    fallback_positives,
    patch_ssim,
    sample_pairs,
)


@pytest.fixture(scope="module")
def retina_batch():
    """Four 40x40 crops of retina images, (B, C, H, W)."""
    images = data.load("retina", progress=False).images[:4, 44:84, 44:84]
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()


def test_pairs_lie_in_the_window_and_are_never_the_anchor(retina_batch):
    g = torch.Generator().manual_seed(0)
    b, _, h, w = retina_batch.shape
    lo, hi = admissible_range(h)
    for _ in range(20):
        pairs = sample_pairs(retina_batch, g, n_anchors=8)
        assert pairs.anchors.shape == pairs.positives.shape == (b, 8, 2)
        offset = pairs.positives - pairs.anchors
        assert ((offset >= -5) & (offset < 5)).all()
        assert (offset != 0).any(-1).all(), "a positive equals its anchor"
        for coords in (pairs.anchors, pairs.positives):
            assert ((coords >= lo) & (coords <= hi)).all(), "a patch leaves the image"
        flat = pairs.anchors[..., 0] * w + pairs.anchors[..., 1]
        assert all(len(set(row.tolist())) == 8 for row in flat), "anchors repeat within an image"


def test_positives_pass_the_ssim_threshold_or_are_the_fallback(retina_batch):
    g = torch.Generator().manual_seed(1)
    _, _, h, w = retina_batch.shape
    n_passed = n_fallback = 0
    for _ in range(10):
        pairs = sample_pairs(retina_batch, g)
        anchor_patches = extract_patches(retina_batch, pairs.anchors)
        positive_patches = extract_patches(retina_batch, pairs.positives)
        ssim = patch_ssim(anchor_patches, positive_patches)
        torch.testing.assert_close(ssim, pairs.ssim)
        assert (ssim[~pairs.fallback] > 0.5).all()
        expected_fallback = fallback_positives(pairs.anchors, h, w)
        assert torch.equal(pairs.positives[pairs.fallback], expected_fallback[pairs.fallback])
        n_passed += int((~pairs.fallback).sum())
        n_fallback += int(pairs.fallback.sum())
    assert n_passed > 0  # real images give both kinds
    noise = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pairs = sample_pairs(noise, g)
    assert pairs.fallback.float().mean() > 0.9  # pure noise almost never passes


def test_ssim_matches_scikit_image():
    g = torch.Generator().manual_seed(2)
    smooth = torch.linspace(-1, 1, 25).reshape(5, 5)
    for _ in range(5):
        a = (smooth + 0.3 * torch.rand(3, 5, 5, generator=g, dtype=torch.float64)).clamp(-1, 1)
        b = (smooth.T + 0.3 * torch.rand(3, 5, 5, generator=g, dtype=torch.float64)).clamp(-1, 1)
        data_range = float(a.max() - a.min())
        expected = structural_similarity(a.numpy(), b.numpy(), win_size=5, data_range=data_range, channel_axis=0)
        assert patch_ssim(a, b).item() == pytest.approx(expected, rel=1e-9)


def test_flat_patches_are_similar_not_nan():
    flat = torch.full((1, 5, 5), -1.0)
    assert patch_ssim(flat, flat).item() == pytest.approx(1.0)
    assert patch_ssim(flat, torch.rand(1, 5, 5)).item() < 0.5


def test_fallback_is_a_diagonal_step_toward_the_centre_even_at_the_centre():
    for size in (17, 18):
        lo, hi = admissible_range(size)
        grid = torch.stack(torch.meshgrid(torch.arange(lo, hi + 1), torch.arange(lo, hi + 1), indexing="ij"), -1)
        anchors = grid.reshape(1, -1, 2)
        step = fallback_positives(anchors, size, size) - anchors
        assert (step.abs() == 1).all()
        centre = (size - 1) / 2
        distance_before = (anchors - centre).abs()
        distance_after = (anchors + step - centre).abs()
        assert ((distance_after <= distance_before) | (distance_before == 0)).all()
        assert ((anchors + step >= lo) & (anchors + step <= hi)).all()


def test_most_admissible_pixels_become_anchors():
    # The authors' sampler re-seeded on every call and reached ~25% of pixels; one generator per run
    # must reach nearly all of them.
    image = data.load("retina", progress=False).images[:1, 48:80, 48:80]
    image = torch.from_numpy(np.ascontiguousarray(image)).permute(0, 3, 1, 2).contiguous()
    g = torch.Generator().manual_seed(3)
    lo, hi = admissible_range(32)
    seen = torch.zeros(32, 32, dtype=torch.bool)
    for _ in range(400):
        anchors = sample_pairs(image, g).anchors[0]
        seen[anchors[:, 0], anchors[:, 1]] = True
    coverage = seen[lo:hi + 1, lo:hi + 1].float().mean().item()
    assert coverage >= 0.9
    assert not seen[:lo].any() and not seen[hi + 1:].any()


def test_same_generator_seed_gives_same_pairs(retina_batch):
    first = sample_pairs(retina_batch, torch.Generator().manual_seed(5))
    second = sample_pairs(retina_batch, torch.Generator().manual_seed(5))
    assert torch.equal(first.anchors, second.anchors) and torch.equal(first.positives, second.positives)


def test_best_choice_takes_the_highest_passing_ssim_among_the_same_candidates(retina_batch):
    """The 2023 rule, against a direct search over the very candidates the sampler drew."""
    from cutslib.sampling import candidate_offsets, sample_anchors

    b, c, h, w = retina_batch.shape
    pairs = sample_pairs(retina_batch, torch.Generator().manual_seed(3), 16, 10, choose="best")
    first = sample_pairs(retina_batch, torch.Generator().manual_seed(3), 16, 10, choose="first")
    g = torch.Generator().manual_seed(3)
    anchors = sample_anchors(b, h, w, 16, g)
    candidates = candidate_offsets(anchors, h, w, 10, g)
    assert torch.equal(pairs.anchors, anchors) and torch.equal(first.anchors, anchors)
    n_differ = 0
    for i in range(b):
        for s in range(16):
            ref = extract_patches(retina_batch[i:i + 1], anchors[i:i + 1, s:s + 1])
            scores = [float(patch_ssim(ref, extract_patches(retina_batch[i:i + 1], candidates[i:i + 1, s, k:k + 1])))
                      for k in range(candidates.shape[2])]
            passing = [k for k, v in enumerate(scores) if v > 0.5]
            if not passing:
                assert pairs.fallback[i, s] and first.fallback[i, s]
                continue
            best = max(passing, key=lambda k: scores[k])
            assert pairs.positives[i, s].tolist() == candidates[i, s, best].tolist()
            assert first.positives[i, s].tolist() == candidates[i, s, passing[0]].tolist()
            assert pairs.ssim[i, s] == pytest.approx(scores[best], abs=1e-6)
            n_differ += best != passing[0]
    assert n_differ > 0  # the two rules really differ on real images
    with pytest.raises(ValueError, match="choose"):
        sample_pairs(retina_batch, torch.Generator(), choose="random")
