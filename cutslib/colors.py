"""Colours for label maps: one colour per stable cluster id, the same at every level.

Stage 2 names each cluster by the smallest pixel index it holds, so an id keeps its name from the finest level
to the coarsest one it survives to (``cutslib.segment``). :func:`label_colors` gives each id one colour for all
levels; :func:`colorize` paints a label map with it.

>>> colors = label_colors(seg["levels"])               # distinct palette colours, most persistent ids first
>>> colors = label_colors(seg["levels"], image)        # or: each cluster's mean image colour
>>> rgb = colorize(seg["levels"][3], colors)           # (H, W, 3) uint8; ids without a colour (-1) are black
"""

from __future__ import annotations

import numpy as np

__all__ = ["PALETTE", "MISSING", "label_colors", "colorize", "id_color"]

#: Kelly's colours of maximum contrast (white and black left out): the ids that persist longest get these.
PALETTE = tuple(tuple(int(h[i:i + 2], 16) for i in (0, 2, 4)) for h in (
    "F3C300", "875692", "F38400", "A1CAF1", "BE0032", "C2B280", "008856", "E68FAC", "0067A5", "F99379",
    "604E97", "F6A600", "B3446C", "DCD300", "882D17", "8DB600", "654522", "E25822", "2B3D26", "848482"))
#: The colour of pixels whose id has no colour (e.g. -1, "no persistent structure").
MISSING = (0, 0, 0)
_GOLDEN = 0.6180339887498949


def _as_levels(levels) -> np.ndarray:
    stack = np.asarray(levels)
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3 or stack.size == 0:
        raise ValueError(f"levels must be one label map (H, W) or a stack (L, H, W), got shape {stack.shape}")
    if not np.issubdtype(stack.dtype, np.integer):
        raise ValueError(f"label maps must hold integer ids, got dtype {stack.dtype}")
    return stack


def id_color(cluster_id: int) -> tuple[int, int, int]:
    """A colour from the id alone (a golden-ratio walk round the hue circle, three brightness bands)."""
    import colorsys

    i = int(cluster_id)
    h = (i * _GOLDEN) % 1.0
    v = (0.95, 0.75, 0.55)[(i * 2654435761 >> 8) % 3]  # Knuth's multiplicative hash picks the band
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h, 0.75, v))


def label_colors(levels, image=None) -> dict[int, tuple[int, int, int]]:
    """One RGB colour (0-255 ints) per cluster id found in ``levels``, the same at every level.

    ``levels``: one label map (H, W) or a stack (L, H, W) ordered fine to coarse, as Stage 2 stores them; negative
    ids (unassigned) get no colour. Without ``image``, the ids that persist to the coarsest levels (ties: the
    larger first) take the distinct colours of :data:`PALETTE` in turn and the rest a colour hashed from the id.
    With ``image`` (H, W) or (H, W, C) (C = 1 or 3, any range), each id gets the mean image colour of its cluster at
    the coarsest level it appears in, rescaled to 0-255 over the image's range (grey images give grey shades).
    """
    stack = _as_levels(levels)
    ids_per_level = [np.unique(level[level >= 0]) for level in stack]
    ids = np.unique(np.concatenate(ids_per_level)) if ids_per_level else np.zeros(0, np.int64)
    if ids.size == 0:
        return {}
    coarsest = np.full(ids.size, -1)
    for li, present in enumerate(ids_per_level):
        coarsest[np.searchsorted(ids, present)] = li
    if image is None:
        area = np.zeros(ids.size)  # each id's area at its coarsest level
        for li in np.unique(coarsest):
            flat = stack[li].ravel()
            counts = np.bincount(np.searchsorted(ids, flat[flat >= 0]), minlength=ids.size)
            area[coarsest == li] = counts[coarsest == li]
        order = np.lexsort((ids, -area, -coarsest))
        colors = {int(ids[j]): id_color(ids[j]) for j in order[len(PALETTE):]}
        colors.update({int(ids[j]): PALETTE[k] for k, j in enumerate(order[:len(PALETTE)])})
        return colors
    return _mean_colors(stack, ids, coarsest, image)


def _mean_colors(stack, ids, coarsest, image) -> dict[int, tuple[int, int, int]]:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[:2] != stack.shape[1:] or img.shape[2] not in (1, 3):
        raise ValueError(f"image must be (H, W), (H, W, 1) or (H, W, 3) matching the label maps "
                         f"{stack.shape[1:]}, got shape {np.shape(image)}")
    if not np.isfinite(img).all():
        raise ValueError("image contains NaN or Inf values")
    lo, hi = img.min(), img.max()
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
    sums, counts = np.zeros((ids.size, 3)), np.zeros(ids.size)
    for li in np.unique(coarsest):
        flat, pixels = stack[li].ravel(), img.reshape(-1, 3)
        valid = flat >= 0
        index = np.searchsorted(ids, flat[valid])
        wanted = coarsest[index] == li
        np.add.at(sums, index[wanted], pixels[valid][wanted])
        counts += np.bincount(index[wanted], minlength=ids.size)
    means = np.rint(255 * sums / counts[:, None]).astype(int)
    return {int(i): tuple(int(c) for c in m) for i, m in zip(ids, means)}


def colorize(labels, colors: dict) -> np.ndarray:
    """The (H, W, 3) uint8 picture of label map ``labels`` with ``colors`` (id -> RGB 0-255); ids missing from
    ``colors`` (e.g. -1) are drawn black."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be an integer label map (H, W), got shape {labels.shape}, dtype {labels.dtype}")
    ids, inverse = np.unique(labels, return_inverse=True)
    table = np.array([colors.get(int(i), MISSING) for i in ids], dtype=np.int64).reshape(-1, 3)
    if table.size and (table.min() < 0 or table.max() > 255):
        raise ValueError("colours must be RGB triples of integers in 0-255")
    return table.astype(np.uint8)[inverse.reshape(labels.shape)]
