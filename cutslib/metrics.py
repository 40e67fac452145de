"""Segmentation metrics, computed as the CUTS paper computes them.

Binary metrics take a predicted mask and a ground-truth mask: 2-D arrays of the same shape holding 0/1 (or
bool). Following the paper, SSIM, ERGAS and RMSE are computed on those label maps as if they were images.
Multi-class metrics (natural images) take two integer label maps.

Edge cases, per function:

===============  =========================  =========================  ======================================
metric           empty prediction           empty ground truth         both empty
===============  =========================  =========================  ======================================
dice             eps / (|T| + eps) < 1e-12   eps / (|P| + eps) < 1e-12   1.0 (eps in numerator and denominator)
hausdorff, hd95  image diagonal (181 px)    image diagonal (181 px)    image diagonal (the paper's rule)
ssim, rmse       computed as usual          computed as usual          1.0 and 0.0
ergas            computed as usual          0.0 (no window has a       0.0
                                            non-zero mean)
===============  =========================  =========================  ======================================

The paper uses the image diagonal, sqrt(H^2 + W^2) = 181.02 px at 128x128, as the Hausdorff distance when a
mask is empty; we do the same (scikit-image would return infinity).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import metrics as skm
from sklearn.metrics import adjusted_rand_score

DICE_EPS = 1e-12

#: For each metric, whether a higher value is better (used by the oracle protocol and the summaries).
HIGHER_IS_BETTER = {
    "dice": True,
    "hausdorff": False,
    "hd95": False,
    "ssim": True,
    "ergas": False,
    "rmse": False,
    "ari": True,
    "vi": False,
}
BINARY_METRICS = ("dice", "hausdorff", "hd95", "ssim", "ergas", "rmse")


def check_label_map(labels, name: str = "label map") -> np.ndarray:
    """Return ``labels`` as a 2-D int64 array; raise ValueError if it is not a finite integer-valued 2-D map."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {labels.shape}")
    if labels.size == 0:
        raise ValueError(f"{name} is empty (shape {labels.shape})")
    if labels.dtype.kind == "f":
        if not np.isfinite(labels).all():
            raise ValueError(f"{name} contains NaN or Inf")
        if not np.array_equal(labels, np.round(labels)):
            raise ValueError(f"{name} must hold integer labels, got non-integer values (dtype {labels.dtype})")
    elif labels.dtype.kind not in "biu":
        raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}")
    return labels.astype(np.int64)


def check_mask(mask, name: str = "mask") -> np.ndarray:
    """Return ``mask`` as a 2-D bool array; raise ValueError unless it holds only 0 and 1."""
    mask = check_label_map(mask, name)
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{name} must be binary (0/1), got values {np.unique(mask)[:10].tolist()}")
    return mask.astype(bool)


def _check_pair(pred, truth, check=check_mask):
    pred, truth = check(pred, "prediction"), check(truth, "ground truth")
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match ground truth shape {truth.shape}")
    return pred, truth


def image_diagonal(shape) -> float:
    """The diagonal of an image of this shape, in pixels (181.02 at 128x128)."""
    return float(np.hypot(*shape[:2]))


def dice(pred, truth, eps: float = DICE_EPS) -> float:
    """Dice coefficient ``(2 |P & T| + eps) / (|P| + |T| + eps)``, as the reference computes it.

    Two empty masks give 1.0; one empty mask gives ``eps / (size of the other + eps)``, below 1e-12.
    """
    pred, truth = _check_pair(pred, truth)
    return float((2.0 * np.logical_and(pred, truth).sum() + eps) / (pred.sum() + truth.sum() + eps))


def hausdorff(pred, truth) -> float:
    """Hausdorff distance in pixels between the two foreground pixel sets (scikit-image).

    Returns the image diagonal (181 px at 128x128) if either mask is empty, as the paper does.
    """
    pred, truth = _check_pair(pred, truth)
    if not pred.any() or not truth.any():
        return image_diagonal(pred.shape)
    return float(skm.hausdorff_distance(pred, truth))


def _boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def hd95(pred, truth) -> float:
    """95th percentile Hausdorff distance in pixels (medpy's definition).

    The distances from every boundary pixel of each mask to the nearest boundary pixel of the other are
    pooled, and their 95th percentile is returned. Returns the image diagonal if either mask is empty.
    """
    pred, truth = _check_pair(pred, truth)
    if not pred.any() or not truth.any():
        return image_diagonal(pred.shape)
    bp, bt = _boundary(pred), _boundary(truth)
    to_truth = ndimage.distance_transform_edt(~bt)[bp]
    to_pred = ndimage.distance_transform_edt(~bp)[bt]
    return float(np.percentile(np.concatenate([to_truth, to_pred]), 95))


def ssim(pred, truth) -> float:
    """Structural similarity of the two 0/1 maps as images (scikit-image, 7x7 window, data range 1).

    Maps smaller than 7 pixels on a side use the largest odd window that fits (at least 3x3). An empty map is
    scored like any other (about 0 against a non-empty one; 1.0 when both are empty).
    """
    pred, truth = _check_pair(pred, truth)
    win = min(7, min(pred.shape) - (1 - min(pred.shape) % 2))
    if win < 3:
        raise ValueError(f"SSIM needs maps of at least 3x3 pixels, got {pred.shape}")
    return float(skm.structural_similarity(truth.astype(np.float64), pred.astype(np.float64), data_range=1.0,
                                           win_size=win))


def rmse(pred, truth) -> float:
    """Root mean squared error between the two 0/1 maps: sqrt(fraction of disagreeing pixels).

    An empty map gives sqrt(foreground fraction of the other); both empty give 0.0.
    """
    pred, truth = _check_pair(pred, truth)
    return float(np.sqrt(skm.mean_squared_error(truth.astype(np.float64), pred.astype(np.float64))))


def ergas(pred, truth, ratio: float = 4, window: int = 8) -> float:
    """ERGAS of the two 0/1 maps, exactly as ``sewar.full_ref.ergas(truth, pred, r=4, ws=8)`` (sewar <= 0.4.5).

    With ``U`` the ``window`` x ``window`` moving average (``scipy.ndimage.uniform_filter``, reflecting edges),
    ``e = U[(truth - pred)^2]`` and ``m = U[truth] / window^2``::

        ERGAS = mean over the interior (a window/2 border cropped) of 100 * ratio * sqrt(e) / m,

    where pixels with ``m == 0`` count as 0. The division by ``window^2`` on top of the moving average is
    sewar's (it scales the values by 64); we keep it because the paper's values (thousands; 11694 for random
    labels on retina) are on that scale. Returns 0.0 when the ground truth is empty.
    """
    pred, truth = _check_pair(pred, truth)
    s = int(np.round(window / 2))
    if min(pred.shape) <= 2 * s:
        raise ValueError(f"ERGAS with a {window}-pixel window needs maps larger than {2 * s} pixels a side, "
                         f"got {pred.shape}")
    truth = truth.astype(np.float64)
    err = np.sqrt(ndimage.uniform_filter((truth - pred) ** 2, window))
    mean = ndimage.uniform_filter(truth, window) / window**2
    zero = mean == 0
    local = np.where(zero, 0.0, 100.0 * ratio * err / np.where(zero, 1.0, mean))
    return float(local[s:-s, s:-s].mean())


def adjusted_rand_index(pred, truth) -> float:
    """Adjusted Rand index of two label maps (scikit-learn); 1.0 for identical partitions, ~0 for random.

    A single-label ("empty") map against a single-label map gives 1.0, against a richer map 0.0.
    """
    pred, truth = _check_pair(pred, truth, check_label_map)
    return float(adjusted_rand_score(truth.ravel(), pred.ravel()))


def variation_of_information(pred, truth) -> float:
    """Variation of information H(T|P) + H(P|T) in bits (scikit-image); 0 if identical.

    A single-label map against a truth with entropy H(T) gives H(T).
    """
    pred, truth = _check_pair(pred, truth, check_label_map)
    return float(sum(skm.variation_of_information(truth, pred)))


_BINARY = {"dice": dice, "hausdorff": hausdorff, "hd95": hd95, "ssim": ssim, "ergas": ergas, "rmse": rmse}
_MULTICLASS = {"ari": adjusted_rand_index, "vi": variation_of_information}


def binary_scores(pred, truth) -> dict[str, float]:
    """Every binary metric of one prediction, as ``{name: value}`` (names in ``BINARY_METRICS``)."""
    pred, truth = _check_pair(pred, truth)
    return {name: fn(pred, truth) for name, fn in _BINARY.items()}


def multiclass_scores(pred, truth) -> dict[str, float]:
    """ARI and variation of information of one label map, as ``{"ari": ..., "vi": ...}``."""
    return {name: fn(pred, truth) for name, fn in _MULTICLASS.items()}
