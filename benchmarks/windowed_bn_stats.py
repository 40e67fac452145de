"""How far the windowed encoder's BatchNorm batch statistics are from the dense encoder's, layer by layer.

On a trained encoder (a cached ``best.pt``), for the first 16 training images of retina:

* **bias**: windows at every other pixel (sampling noise nil): each layer's batch mean and variance (each window's
  receptive field of its own pixel, weighted: see ``cutslib.model``) against the dense encoder's (every pixel).
  Mean |difference| / dense std, and mean |log variance ratio|, over the channels. (The first windowed profiles'
  statistics, every pixel of shifted crops, were 0.017 / 0.030, 0.067 / 0.049, 0.134 / 0.088 and 0.365 / 0.404 on
  layers 1-4 of the ``arxiv2023`` seed-2021 encoder, measured with this script at commit f31cd21.)
* **noise**: the training step's own windows (the loss pixels plus ``bn_windows`` uniform extra ones) over
  ``--batches`` random batches: the std over batches of the same two differences, per variant.

    CUTS_DATA_MIRROR=../shared/data python benchmarks/windowed_bn_stats.py [--profile paper --seed 1] [--batches 8]
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from cutslib import cache, data
from cutslib.train import PROFILES, load_model, run_settings, split_indices, step_losses

VARIANTS = {"no extra windows": dataclasses.replace(PROFILES["fast"], bn_windows=0), "fast (16 extra)": PROFILES["fast"],
            "48 extra": dataclasses.replace(PROFILES["fast"], bn_windows=48)}


def batch_stats(model, run) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Each BatchNorm layer's (mean, variance) of one training-mode call ``run()`` (momentum 1: running = batch)."""
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = 1.0
    model.train()
    with torch.no_grad():
        run()
    return [(n.running_mean.clone(), n.running_var.clone()) for n in norms]


def differences(stats, dense) -> list[np.ndarray]:
    """Per layer, (2 * channels,): (mean - dense mean) / dense std, then log(var / dense var)."""
    return [torch.cat([(m - md) / vd.sqrt(), (v / vd).log()]).numpy() for (m, v), (md, vd) in zip(stats, dense)]


def line(name: str, values: list[np.ndarray]) -> str:
    """One printed row: per layer, the mean over channels of |values| for means and variances."""
    cells = [f"L{i + 1} {np.abs(v[:len(v) // 2]).mean():.3f} / {np.abs(v[len(v) // 2:]).mean():.3f}"
             for i, v in enumerate(values)]
    return f"{name:18s} " + "   ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="paper", help="the trained encoder's profile (default paper)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batches", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ds = data.load("retina", progress=False)
    checkpoint = cache.run_path("train", ds.name, args.seed, run_settings(ds, PROFILES[args.profile])) / "best.pt"
    if not checkpoint.exists():
        parser.exit(2, f"no trained encoder at {checkpoint}: run `cuts train --dataset retina --profile "
                       f"{args.profile} --seed {args.seed}` first\n")
    model = load_model(checkpoint)
    train_idx, _ = split_indices(len(ds), args.seed, PROFILES[args.profile].val_fraction)
    images = torch.from_numpy(ds.images[train_idx]).permute(0, 3, 1, 2).float()
    print(f"encoder {checkpoint}; per layer: mean |mean difference| / dense std  /  mean |log variance ratio|")

    grid = images[:16]
    h, w = grid.shape[2:]
    rows, cols = torch.meshgrid(torch.arange(0, h, 2), torch.arange(0, w, 2), indexing="ij")
    coords = torch.stack([rows.flatten(), cols.flatten()], -1)[None].repeat(len(grid), 1, 1)
    dense = batch_stats(model, lambda: model(grid))
    print("\nbias: windows at every other pixel of 16 images")
    stats = batch_stats(model, lambda: model.encoder.windowed(grid, coords))
    print(line("windowed", differences(stats, dense)))

    generator = torch.Generator().manual_seed(0)
    found = {name: [] for name in VARIANTS}
    for b in range(args.batches):
        batch = images[torch.randperm(len(images), generator=generator)[:16]]
        dense = batch_stats(model, lambda: model(batch))
        for name, cfg in VARIANTS.items():
            stats = batch_stats(model, lambda: step_losses(model, batch, torch.Generator().manual_seed(b), cfg))
            found[name].append(differences(stats, dense))
    print(f"\nnoise: std over {args.batches} training batches of 16 (the loss windows plus the extra ones)")
    for name, values in found.items():
        print(line(name, [np.std([batch[layer] for batch in values], axis=0) for layer in range(len(values[0]))]))


if __name__ == "__main__":
    main()
