"""How a multi-cluster label map becomes the binary mask that is scored, and which level is scored.

The paper's protocol leans on the ground truth twice; we name both uses:

- ``label_hint``: the foreground is the predicted cluster that covers the most ground-truth foreground.
- ``oracle``: for a method that gives several levels (coarse-to-fine), the best level per image *and per
  metric*, judged against the ground truth (with label-hint binarisation).

Beside them, two protocols a user could run:

- ``one_click``: the foreground is the cluster under one click, placed at the ground-truth pixel farthest from
  the mask boundary (the prompt the paper gives SAM).
- ``label_free``: no input at all. The foreground is the cluster, among those covering 1% to 50% of the image,
  that touches the image edge least, ties broken by Otsu's between-class variance;
  see :func:`label_free`. For multi-level methods, the level is :func:`fixed_level` (no oracle).

For multi-class data, :func:`iou_relabel` maps each predicted id to the ground-truth id it overlaps best.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cutslib.metrics import HIGHER_IS_BETTER, _check_pair, check_label_map, check_mask

#: The binarisation protocols a single label map can be scored under.
BINARISATIONS = ("label_hint", "one_click", "label_free")


def _dense(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the sorted distinct ids, the map re-coded as 0..K-1)."""
    ids, dense = np.unique(labels, return_inverse=True)
    return ids, dense.reshape(labels.shape)


def label_hint(labels, truth) -> np.ndarray:
    """The paper's binarisation: the cluster covering the most ground-truth foreground pixels (bool mask).

    Uses the ground truth. Negative ids mean "unassigned" (e.g. -1 where a map labels nothing) and are
    never picked; a map with no other id gives an empty mask. Ties, and an empty ground truth, go to the
    lowest non-negative id.
    """
    labels, truth = _check_pair(labels, truth, check_label_map)
    truth = check_mask(truth, "ground truth")
    ids, dense = _dense(labels)
    real = np.flatnonzero(ids >= 0)
    if not len(real):
        return np.zeros(labels.shape, bool)
    covered = np.bincount(dense[truth], minlength=len(ids))
    return dense == real[np.argmax(covered[real])]


def click_point(truth) -> tuple[int, int]:
    """The ground-truth pixel farthest from the mask boundary (the image edge counts as boundary).

    Raises ValueError on an empty mask. Ties go to the first pixel in raster order.
    """
    truth = check_mask(truth, "ground truth")
    if not truth.any():
        raise ValueError("cannot place a click: the ground-truth mask is empty")
    dist = ndimage.distance_transform_edt(np.pad(truth, 1))[1:-1, 1:-1]
    row, col = np.unravel_index(np.argmax(dist), dist.shape)
    return int(row), int(col)


def one_click(labels, truth) -> np.ndarray:
    """The cluster containing :func:`click_point` of the ground truth (bool mask); all False if the ground
    truth is empty or the click falls on an unassigned (negative) pixel."""
    labels, truth = _check_pair(labels, truth, check_label_map)
    truth = check_mask(truth, "ground truth")
    if not truth.any() or labels[click_point(truth)] < 0:
        return np.zeros(labels.shape, bool)
    return labels == labels[click_point(truth)]


def _gray(image, shape) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        image = image.mean(axis=-1)
    if image.shape != tuple(shape):
        raise ValueError(f"image shape {image.shape} does not match label map shape {tuple(shape)}")
    if not np.isfinite(image).all():
        raise ValueError("image contains NaN or Inf")
    return image


def label_free(labels, image, min_fraction: float = 0.01, max_fraction: float = 0.5) -> np.ndarray:
    """No-input binarisation: the enclosed cluster that stands out most from the rest (bool mask).

    The rule, in order:

    1. Candidates are the clusters covering between ``min_fraction`` and ``max_fraction`` of the image (the
       foreground is a minority, and not a speck). Negative ids mean "unassigned" (e.g. -1 where a map
       labels nothing) and are never candidates.
    2. Keep those with the smallest share of their pixels on the image's outermost rows and columns: a lesion,
       a ventricle or a tumour lies inside the field of view, while background runs off its edge.
    3. Among them, take the largest between-class variance of the grey levels (channel mean) for the split
       "cluster vs rest", ``f (1 - f) (mu_in - mu_out)^2`` -- Otsu's criterion. Remaining ties: the smaller
       cluster.

    If no cluster qualifies in step 1, the smallest cluster is returned. (Chosen among a handful of rules --
    Otsu alone, smallest cluster, border-then-size, border-then-contrast -- by looking at retina; see the
    evaluation report. It uses no ground truth.)
    """
    labels = check_label_map(labels)
    gray = _gray(image, labels.shape)
    ids, dense = _dense(labels)
    n = labels.size
    size = np.bincount(dense.ravel(), minlength=len(ids)).astype(np.float64)
    total = np.bincount(dense.ravel(), weights=gray.ravel(), minlength=len(ids))
    frac = size / n
    mu_out = (total.sum() - total) / np.maximum(n - size, 1)
    between = frac * (1 - frac) * (total / size - mu_out) ** 2
    edge = np.zeros(labels.shape, bool)
    edge[[0, -1], :] = edge[:, [0, -1]] = True
    on_edge = np.bincount(dense[edge], minlength=len(ids)) / size
    ok = np.flatnonzero((frac >= min_fraction) & (frac <= max_fraction) & (ids >= 0))
    if not len(ok):  # the smallest real cluster (-1 marks unassigned pixels, never the foreground)
        real = np.flatnonzero(ids >= 0)
        return dense == real[np.argmin(size[real])] if len(real) else np.zeros(labels.shape, bool)
    best = ok[np.lexsort((size[ok], -between[ok], on_edge[ok]))[0]]
    return dense == best


def binarise(labels, protocol: str, truth=None, image=None) -> np.ndarray:
    """Binarise one label map under ``protocol`` (one of ``BINARISATIONS``)."""
    if protocol == "label_hint":
        return label_hint(labels, truth)
    if protocol == "one_click":
        return one_click(labels, truth)
    if protocol == "label_free":
        return label_free(labels, image)
    raise ValueError(f"unknown binarisation protocol {protocol!r}; choose one of {BINARISATIONS}")


def fixed_level(levels, min_clusters: int = 3) -> int:
    """The label-free level choice: the index of the coarsest level with at least ``min_clusters`` clusters.

    ``levels`` is a (L, H, W) stack ordered fine to coarse. Falls back to the finest level (0) if none has
    that many clusters.
    """
    levels = np.asarray(levels)
    if levels.ndim != 3 or len(levels) == 0:
        raise ValueError(f"levels must be a non-empty (L, H, W) stack, got shape {levels.shape}")
    counts = np.array([len(np.unique(level)) for level in levels])
    ok = np.flatnonzero(counts >= min_clusters)
    return int(ok[-1]) if len(ok) else 0


def oracle(level_scores: list[dict[str, float]]) -> dict[str, float]:
    """The paper's "best one": for each metric, the best value over the levels (higher or lower is better).

    ``level_scores`` holds one ``{metric: value}`` dict per level. Uses the ground truth: it is an oracle.
    """
    if not level_scores:
        raise ValueError("oracle needs the scores of at least one level")
    best = {}
    for metric in level_scores[0]:
        values = [scores[metric] for scores in level_scores]
        best[metric] = max(values) if HIGHER_IS_BETTER[metric] else min(values)
    return best


def iou_relabel(labels, truth) -> np.ndarray:
    """Map each predicted id to the ground-truth id it overlaps best by IoU (ties: the lowest truth id)."""
    labels, truth = _check_pair(labels, truth, check_label_map)
    pred_ids, p = _dense(labels)
    truth_ids, t = _dense(truth)
    inter = np.bincount((p * len(truth_ids) + t).ravel(), minlength=len(pred_ids) * len(truth_ids))
    inter = inter.reshape(len(pred_ids), len(truth_ids)).astype(np.float64)
    union = inter.sum(1, keepdims=True) + inter.sum(0, keepdims=True) - inter
    return truth_ids[np.argmax(inter / union, axis=1)][p]
