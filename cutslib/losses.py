"""The two CUTS losses: NT-Xent between anchors and positives, and the patch reconstruction MSE."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent per image over the 2S L2-normalised vectors [anchors; positives], averaged over rows then images.

    ``anchors`` and ``positives`` are (B, S, D). Row i's positive is its counterpart (i + S mod 2S); its
    denominator is that positive plus the 2S - 2 negatives (the other anchors and positives of the image);
    the row itself is excluded.
    """
    check_pairs(anchors, positives)
    b, s, _ = anchors.shape
    z = F.normalize(torch.cat([anchors, positives], dim=1), dim=-1)  # (B, 2S, D)
    logits = z @ z.transpose(1, 2) / temperature  # (B, 2S, 2S)
    self_mask = torch.eye(2 * s, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    target = (torch.arange(2 * s, device=z.device) + s) % (2 * s)
    per_row = F.cross_entropy(logits.reshape(b * 2 * s, 2 * s), target.repeat(b), reduction="none")
    return per_row.reshape(b, 2 * s).mean(dim=1).mean()


def ratio_contrastive_2023(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """The 2023 contrastive loss: one ratio per image over the S x S anchor-positive similarities, averaged.

    With a_i, p_j the L2-normalised anchors and positives of an image and s_ij = a_i . p_j, the image's loss is
    ``-log(sum_i exp(s_ii / tau) / (sum_{i != j} exp(s_ij / tau) + 1e-7) + 1e-7)`` (METHOD.md, "The 2023
    training"): anchors against positives only, not the 2S x 2S matrix of :func:`nt_xent`.
    """
    check_pairs(anchors, positives)
    a, p = F.normalize(anchors, dim=-1), F.normalize(positives, dim=-1)
    similarity = torch.exp(a @ p.transpose(1, 2) / temperature)  # (B, S, S)
    matched = similarity.diagonal(dim1=1, dim2=2).sum(-1)
    others = similarity.sum(dim=(1, 2)) - matched
    return (-torch.log(matched / (others + 1e-7) + 1e-7)).mean()


def check_pairs(anchors: torch.Tensor, positives: torch.Tensor) -> None:
    """Both must be (B, S, D) of the same shape."""
    if anchors.shape != positives.shape or anchors.ndim != 3:
        raise ValueError(f"anchors and positives must both be (B, S, D), got {tuple(anchors.shape)} "
                         f"and {tuple(positives.shape)}")


CONTRASTIVE = {"ntxent": nt_xent, "ratio2023": ratio_contrastive_2023}


def patch_mse(reconstructed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between reconstructed and real patches (any matching shapes)."""
    if reconstructed.shape != target.shape:
        raise ValueError(f"shape mismatch: {tuple(reconstructed.shape)} vs {tuple(target.shape)}")
    return F.mse_loss(reconstructed, target)


def total_loss(contrastive: torch.Tensor, reconstruction: torch.Tensor, lam: float = 0.001) -> torch.Tensor:
    """``lam * contrastive + (1 - lam) * reconstruction``."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda must be in [0, 1], got {lam}")
    return lam * contrastive + (1.0 - lam) * reconstruction
