"""The supervised upper bound: a small UNet trained on a seeded 7:1:2 split, scored on the test part only.

The paper scored its UNet on its own training images; here :func:`split` holds out 20% of the images, and
:func:`cutslib.evaluate.evaluate_dataset` scores the UNet on those alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from cutslib import cache
from cutslib.train import load_torch, save_torch, to_tensor


@dataclass(frozen=True)
class UNetConfig:
    """Training settings of the supervised UNet (binary masks; Dice + BCE loss; Adam)."""

    base_channels: int = 16
    depth: int = 3
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-3


PROFILES = {"paper": UNetConfig(), "quick": UNetConfig(epochs=30)}


def split(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded 7:1:2 split of ``n`` images into (train, validation, test) index arrays (disjoint, sorted).

    The test part gets round(0.2 n) images and validation round(0.1 n), each at least one when n >= 3.
    """
    if n < 3:
        raise ValueError(f"the 7:1:2 split needs at least 3 images, got {n}")
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = max(1, round(0.2 * n)), max(1, round(0.1 * n))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return np.sort(train), np.sort(val), np.sort(test)


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
    )


class UNet(nn.Module):
    """A plain UNet: ``depth`` down-sampling steps, channels doubling from ``base``; one output logit."""

    def __init__(self, in_channels: int, base: int = 16, depth: int = 3):
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([_block(in_channels, widths[0])] +
                                  [_block(widths[i], widths[i + 1]) for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(depth)])
        self.merge = nn.ModuleList([_block(2 * widths[i], widths[i]) for i in range(depth)])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for i in reversed(range(len(self.up))):
            x = self.merge[i](torch.cat([skips.pop(), self.up[i](x)], dim=1))
        return self.head(x)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    soft_dice = 1 - (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return nn.functional.binary_cross_entropy_with_logits(logits, target) + soft_dice


def unet_settings(dataset, cfg: UNetConfig) -> dict:
    """The settings that key a UNet run's cache folder."""
    return {"config": asdict(cfg), "data": cache.images_digest(dataset, masks=True)}


def train_unet(dataset, seed: int = 1, config: str | UNetConfig = "quick", progress: bool = True) -> Path:
    """Train the UNet on the train part of :func:`split` (keeping the best validation loss); cached.

    Returns the checkpoint path, ``results/<dataset>/seed<k>/unet-<hash>/best.pt``, written once training
    ends; ``running.pt`` holds the state after each epoch, so an interrupted run resumes. The folder's
    ``split.json`` names the train, validation and test ids. Needs binary (0/1) masks.
    """
    cfg = config if isinstance(config, UNetConfig) else PROFILES.get(str(config))
    if cfg is None:
        raise ValueError(f"unknown UNet profile {config!r}; choose one of {sorted(PROFILES)} or pass a UNetConfig")
    if dataset.masks is None:
        raise ValueError(f"{dataset.name}: the supervised UNet needs ground-truth masks")
    if dataset.masks.max() > 1:
        raise ValueError(f"{dataset.name}: the supervised UNet handles binary masks only")
    train, val, test = split(len(dataset), seed)
    folder = cache.run_dir("unet", dataset.name, seed, unet_settings(dataset, cfg))
    best_path, running_path = folder / "best.pt", folder / "running.pt"
    if best_path.exists():
        return best_path
    cache.write_text(folder / "split.json", json.dumps(
        {part: [dataset.ids[i] for i in idx] for part, idx in zip(("train", "val", "test"), (train, val, test))},
        indent=1))
    x, y = to_tensor(dataset.images), torch.from_numpy((dataset.masks > 0).astype(np.float32))[:, None]
    rng = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = UNet(dataset.channels, cfg.base_channels, cfg.depth)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    state = {"epoch": 0, "best": np.inf, "best_state": None}
    if running_path.exists():  # resume an interrupted run
        state = load_torch(running_path)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        rng.set_state(state["rng"])
    for epoch in tqdm(range(state["epoch"], cfg.epochs), desc=f"UNet {dataset.name} seed {seed}",
                      initial=state["epoch"], total=cfg.epochs, disable=not progress):
        net.train()
        order = torch.from_numpy(train)[torch.randperm(len(train), generator=rng)]
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            opt.zero_grad()
            _loss(net(x[batch]), y[batch]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val_loss = float(_loss(net(x[val]), y[val]))
        if val_loss < state["best"]:
            state["best"], state["best_state"] = val_loss, {k: v.clone() for k, v in net.state_dict().items()}
        state.update(epoch=epoch + 1, net=net.state_dict(), opt=opt.state_dict(), rng=rng.get_state())
        save_torch(state, running_path)
    save_torch(state["best_state"], best_path)
    running_path.unlink(missing_ok=True)
    return best_path


def test_ids(checkpoint: Path) -> list[str]:
    """The held-out test ids of the split a checkpoint was trained on (the only ids it may be scored on)."""
    return json.loads((Path(checkpoint).parent / "split.json").read_text())["test"]


def predict(checkpoint, images: np.ndarray) -> np.ndarray:
    """(N, H, W) int32 0/1 masks predicted by a trained UNet for (N, H, W, C) images in [-1, 1]."""
    settings = json.loads((Path(checkpoint).parent / "settings.json").read_text())["config"]
    cfg = UNetConfig(**settings)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or not np.isfinite(images).all():
        raise ValueError(f"UNet needs finite (N, H, W, C) images, got shape {images.shape}")
    net = UNet(images.shape[-1], cfg.base_channels, cfg.depth)
    net.load_state_dict(torch.load(checkpoint, weights_only=True))
    net.eval()
    with torch.no_grad():
        return (net(to_tensor(images))[:, 0] > 0).numpy().astype(np.int32)
