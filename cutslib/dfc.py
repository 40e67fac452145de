"""DFC: unsupervised segmentation by differentiable feature clustering (Kim, Kanezaki & Tanaka, 2020).

Written from the paper's description. A small CNN is trained on one image alone. Its response map r (one
``n_channels`` vector per pixel, batch-normalised) is pushed to agree with its own argmax labels
(cross-entropy, "feature similarity") and to be smooth (L1 norm of the horizontal and vertical differences
of r, "spatial continuity", weight ``continuity``). SGD, lr 0.1, momentum 0.9; training stops after
``max_iter`` iterations or once the argmax uses at most ``min_labels`` labels. The argmax is the segmentation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class DFCConfig:
    """The settings of the CUTS paper's DFC baseline."""

    n_channels: int = 10
    n_conv: int = 2
    lr: float = 0.1
    momentum: float = 0.9
    max_iter: int = 1000
    min_labels: int = 3
    continuity: float = 1.0


class DFCNet(nn.Module):
    """``n_conv`` blocks of 3x3 conv + ReLU + BN, then a 1x1 conv + BN giving the response map."""

    def __init__(self, in_channels: int, n_channels: int = 10, n_conv: int = 2):
        super().__init__()
        blocks = []
        for i in range(n_conv):
            blocks += [
                nn.Conv2d(in_channels if i == 0 else n_channels, n_channels, 3, padding=1),
                nn.ReLU(),
                nn.BatchNorm2d(n_channels),
            ]
        self.features = nn.Sequential(*blocks)
        self.response = nn.Sequential(nn.Conv2d(n_channels, n_channels, 1), nn.BatchNorm2d(n_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.response(self.features(x))


def dfc_segment(image, seed: int = 0, config: DFCConfig = DFCConfig()) -> np.ndarray:
    """Segment one (H, W, C) image in [-1, 1] with DFC; returns an (H, W) int32 label map (ids 0..n_channels-1).

    Deterministic for a fixed seed on CPU. Runs torch on one thread: the layers are too small to gain from
    more, and on a busy machine extra threads make it many times slower.
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or not np.isfinite(image).all():
        raise ValueError(f"DFC needs a finite (H, W, C) image, got shape {image.shape}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_and_label(image, seed, config)
    finally:
        torch.set_num_threads(threads)


def _train_and_label(image: np.ndarray, seed: int, config: DFCConfig) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DFCNet(image.shape[-1], config.n_channels, config.n_conv)
    optimizer = torch.optim.SGD(net.parameters(), lr=config.lr, momentum=config.momentum)
    similarity = nn.CrossEntropyLoss()
    net.train()
    for _ in range(config.max_iter):
        optimizer.zero_grad()
        response = net(x)
        target = response.argmax(dim=1)
        continuity = (response[:, :, 1:, :] - response[:, :, :-1, :]).abs().mean() + (
            response[:, :, :, 1:] - response[:, :, :, :-1]
        ).abs().mean()
        loss = similarity(response, target) + config.continuity * continuity
        loss.backward()
        optimizer.step()
        if len(torch.unique(target)) <= config.min_labels:
            break
    with torch.no_grad():
        labels = net(x).argmax(dim=1)[0]
    return labels.numpy().astype(np.int32)
