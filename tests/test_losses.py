"""NT-Xent, patch MSE and their combination against direct formulas (runtime < 1 s)."""

import math

import pytest
import torch

from cutslib.losses import nt_xent, patch_mse, ratio_contrastive_2023, total_loss


def direct_nt_xent(anchors, positives, tau):
    """The textbook formula, one row at a time."""
    per_image = []
    for a, p in zip(anchors, positives):
        z = torch.cat([a, p])
        z = z / z.norm(dim=1, keepdim=True)
        n = len(z)
        rows = []
        for i in range(n):
            partner = (i + n // 2) % n
            denominator = sum(math.exp(float(z[i] @ z[j]) / tau) for j in range(n) if j != i)
            rows.append(-math.log(math.exp(float(z[i] @ z[partner]) / tau) / denominator))
        per_image.append(sum(rows) / n)
    return sum(per_image) / len(per_image)


def test_nt_xent_on_hand_made_orthogonal_pairs():
    # Two anchors, each identical to its positive and orthogonal to the other pair: every row has
    # similarity 1 to its positive and 0 to the two negatives.
    a = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    p = torch.tensor([[[3.0, 0.0], [0.0, 0.5]]])
    expected = -math.log(math.e / (math.e + 2))
    assert nt_xent(a, p, temperature=1.0).item() == pytest.approx(expected, rel=1e-6)


def test_nt_xent_matches_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    p = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    for tau in (0.1, 0.5):
        assert nt_xent(a, p, tau).item() == pytest.approx(direct_nt_xent(a, p, tau), rel=1e-10)


def test_nt_xent_is_lower_for_matching_pairs():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 8, 16, generator=g)
    assert nt_xent(a, a + 0.01 * torch.randn(2, 8, 16, generator=g)) < nt_xent(a, torch.randn(2, 8, 16, generator=g))


def test_patch_mse_and_total():
    x, y = torch.zeros(2, 8, 3, 5, 5), torch.full((2, 8, 3, 5, 5), 0.5)
    assert patch_mse(x, y).item() == pytest.approx(0.25)
    assert total_loss(torch.tensor(2.0), torch.tensor(4.0), lam=0.25).item() == pytest.approx(0.25 * 2 + 0.75 * 4)
    assert total_loss(torch.tensor(2.0), torch.tensor(4.0), lam=0.0).item() == 4.0


def test_bad_loss_inputs():
    with pytest.raises(ValueError, match="lambda"):
        total_loss(torch.tensor(1.0), torch.tensor(1.0), lam=1.5)
    with pytest.raises(ValueError, match="shape"):
        patch_mse(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match=r"\(B, S, D\)"):
        nt_xent(torch.zeros(2, 3, 4), torch.zeros(2, 2, 4))


def test_ratio_contrastive_2023_matches_the_direct_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    p = torch.randn(3, 4, 5, generator=g, dtype=torch.float64)
    for tau in (0.5, 0.1):
        per_image = []
        for ai, pi in zip(a, p):
            ai, pi = ai / ai.norm(dim=1, keepdim=True), pi / pi.norm(dim=1, keepdim=True)
            s = [[math.exp(float(ai[i] @ pi[j]) / tau) for j in range(4)] for i in range(4)]
            matched = sum(s[i][i] for i in range(4))
            others = sum(s[i][j] for i in range(4) for j in range(4) if i != j)
            per_image.append(-math.log(matched / (others + 1e-7) + 1e-7))
        assert ratio_contrastive_2023(a, p, tau).item() == pytest.approx(sum(per_image) / 3, rel=1e-10)
    # anchors against positives only: the anchors' similarities among themselves do not enter
    same = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]], dtype=torch.float64)
    ortho = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    expected = -math.log((math.e ** 2 + 1) / (math.e ** 2 + 1 + 1e-7) + 1e-7)  # s = [[1, 0], [1, 0]] / 0.5
    assert ratio_contrastive_2023(same, ortho, 0.5).item() == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="B, S, D"):
        ratio_contrastive_2023(a, p[:, :3])
