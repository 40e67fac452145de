"""The salient levels of Stage 2 as the figure notebooks use them: load, count, pick, and the oracle's level.

>>> runs = stage2_results(["retina"], seed=1, config="smoke", n_images=1)   # {name: (subset, folder)}, cached
>>> seg = segment.load_segmentation(runs["retina"][1], runs["retina"][0].ids[0])
>>> counts = cluster_counts(seg["levels"])        # clusters per level; checks fine -> coarse
>>> shown = pick_levels(seg["levels"], 6)         # about 6 indices spread from the finest to the coarsest
"""

from __future__ import annotations

import numpy as np

__all__ = ["stage2_results", "cluster_counts", "pick_levels", "oracle_level"]


def stage2_results(datasets, seed: int, config, n_images: int | None) -> dict:
    """``{name: (subset, folder)}``: for each data set, its first ``n_images`` images (the Stage-2 subset) and
    the folder of their segmentations. Stage 1 trains on every image of the set (the method is transductive);
    everything is computed on first use and cached."""
    from cutslib import data, report, segment

    out = {}
    for name in datasets:
        dataset = data.load(name)
        out[name] = (report.first_images(dataset, n_images),
                     segment.segment_dataset(dataset, seed, config, progress=False, limit=n_images))
    return out


def cluster_counts(levels) -> np.ndarray:
    """The number of clusters (non-negative ids) of each level of an (L, H, W) stack; raises ValueError unless the
    stack goes from fine to coarse (counts never increase)."""
    levels = np.asarray(levels)
    if levels.ndim != 3:
        raise ValueError(f"levels must be an (L, H, W) stack, got shape {levels.shape}")
    counts = np.array([len(np.unique(level[level >= 0])) for level in levels], dtype=np.int64)
    if (np.diff(counts) > 0).any():
        raise ValueError(f"levels must go from fine to coarse, got cluster counts {counts.tolist()}")
    return counts


def pick_levels(levels, n: int) -> np.ndarray:
    """Indices of at most ``n`` levels evenly spread from the finest (0) to the coarsest (L - 1), distinct."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    count = len(levels)
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(np.int64))


def oracle_level(levels, truth, metric: str = "dice") -> int:
    """The level the paper's "best one" oracle takes for ``metric`` (ties: the finest); uses the ground truth.

    Binary metrics score the label-hint mask of each level against ``truth``; ``ari`` and ``vi`` score each level's
    label map as it is against a multi-class ``truth``."""
    from cutslib import metrics, protocol

    levels = np.asarray(levels)
    if levels.ndim != 3 or len(levels) == 0:
        raise ValueError(f"levels must be a non-empty (L, H, W) stack, got shape {levels.shape}")
    if metric in metrics.BINARY_METRICS:
        values = [metrics.binary_scores(protocol.label_hint(level, truth), truth)[metric] for level in levels]
    elif metric in ("ari", "vi"):
        values = [metrics.multiclass_scores(level, truth)[metric] for level in levels]
    else:
        raise ValueError(f"unknown metric {metric!r}; choose one of {(*metrics.BINARY_METRICS, 'ari', 'vi')}")
    return int(np.argmax(values) if metrics.HIGHER_IS_BETTER[metric] else np.argmin(values))
