"""Pictures of one image's segmentation, at the image's original size: what a user opens.

For an image ``<id>`` in an output folder, :func:`write_outputs` writes

- ``<id>_sheet.png``: a contact sheet (the image, its reconstruction, the persistent map, the label-free
  foreground and up to three salient levels as contour overlays);
- ``<id>/level_<k>_<n>clusters.png``: each salient level, fine (k = 01) to coarse, in stable-id colours (a
  cluster keeps its colour at every level it survives to);
- ``<id>/persistent.png`` (same colours; black where no persistent structure), ``<id>/kmeans.png``;
- ``<id>/foreground.png``: the label-free foreground (:func:`cutslib.protocol.label_free` at the level
  :func:`cutslib.protocol.fixed_level` picks), 255 inside and 0 outside.

Maps are computed at the model's resolution and written back at the original size by nearest neighbour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cutslib import cache
from cutslib.colors import colorize, id_color, label_colors
from cutslib.protocol import fixed_level, label_free

SHEET_LEVELS = 3  # salient levels drawn on the contact sheet...
SHEET_MAX_CLUSTERS = 30  # ...chosen among those with at most this many clusters (finer ones are a blur of contours)
MIN_PANEL = 160  # contact-sheet panels narrower than this (pixels) are enlarged


def sheet_name(stem: str) -> str:
    return f"{stem}_sheet.png"


def output_names(stem: str, levels: np.ndarray) -> list[str]:
    """The files :func:`write_outputs` writes for an image (paths relative to the output folder)."""
    names = [f"{stem}/level_{k + 1:02d}_{len(np.unique(level))}clusters.png" for k, level in enumerate(levels)]
    return [sheet_name(stem), *names, f"{stem}/persistent.png", f"{stem}/kmeans.png", f"{stem}/foreground.png"]


def foreground(levels: np.ndarray, persistent: np.ndarray, image: np.ndarray) -> np.ndarray:
    """The label-free foreground (bool) of the fixed level (of the persistent map if there is no level)."""
    labels = levels[fixed_level(levels)] if len(levels) else persistent
    return label_free(labels, image)


def write_png(path: Path, array: np.ndarray) -> None:
    """Atomically write a uint8 (H, W) or (H, W, 3) array as a PNG."""
    from PIL import Image

    with cache.atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(array)).save(tmp, format="PNG")


def _display(image: np.ndarray) -> np.ndarray:
    """An image in [-1, 1] (H, W, C) as RGB uint8."""
    rgb = np.clip((np.asarray(image, np.float64) + 1) / 2, 0, 1)
    rgb = np.repeat(rgb, 3, axis=-1) if rgb.shape[-1] == 1 else rgb
    return np.rint(255 * rgb).astype(np.uint8)


def write_outputs(folder, stem: str, seg: dict, image: np.ndarray, recon: np.ndarray, frame) -> list[Path]:
    """Write every picture of one image (see the module doc) and return their paths.

    ``seg``: the Stage-2 arrays of the image's box (:func:`cutslib.segment.segment_image`); ``image`` and
    ``recon``: the image and its reconstruction in [-1, 1], same box; ``frame``: its :class:`cutslib.data.Frame`.
    """
    from cutslib import datasets

    folder = Path(folder)
    levels, persistent, kmeans = (np.asarray(seg[k]) for k in ("levels", "persistent", "kmeans"))
    colors = label_colors(levels) if len(levels) else {}
    colors.update({int(i): id_color(i) for i in np.unique(persistent) if i >= 0 and int(i) not in colors})
    size = (frame.height, frame.width)
    full = {"image": _display(datasets.resize(image, size)), "recon": _display(datasets.resize(recon, size))}
    names = output_names(stem, levels)
    paths = [folder / n for n in names]
    maps = [colorize(frame.restore(level), colors) for level in levels]
    maps += [colorize(frame.restore(persistent), colors), colorize(frame.restore(kmeans), label_colors(kmeans))]
    fg = frame.restore(foreground(levels, persistent, image).astype(np.uint8))
    for path, picture in zip(paths[1:], [*maps, 255 * fg]):
        write_png(path, picture)
    shown = sheet_levels(levels)
    panels = [("image", full["image"]), ("reconstruction", full["recon"]), ("persistent", maps[len(levels)]),
              ("label-free foreground", _outline(full["image"], fg))]
    panels += [(f"level {k + 1}: {len(np.unique(levels[k]))} clusters", _outline(full["image"],
                                                                                   frame.restore(levels[k])))
               for k in shown]
    write_sheet(paths[0], panels, title=stem)
    return paths


def sheet_levels(levels: np.ndarray) -> list[int]:
    """Up to :data:`SHEET_LEVELS` indices, evenly spread over the levels with at most
    :data:`SHEET_MAX_CLUSTERS` clusters (the coarsest level alone if none is that coarse)."""
    counts = [len(np.unique(level)) for level in levels]
    coarse = [k for k, c in enumerate(counts) if c <= SHEET_MAX_CLUSTERS] or [len(levels) - 1] * bool(len(levels))
    picks = np.linspace(0, len(coarse) - 1, min(SHEET_LEVELS, len(coarse))).round().astype(int)
    return sorted({coarse[p] for p in picks})


def _outline(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Cluster boundaries drawn in yellow on an RGB uint8 image."""
    from skimage.segmentation import mark_boundaries

    return np.rint(255 * mark_boundaries(rgb, labels, color=(1, 1, 0), mode="inner")).astype(np.uint8)


def write_sheet(path: Path, panels: list[tuple[str, np.ndarray]], title: str) -> None:
    """One row of titled panels, each at least its image's size in pixels; written atomically."""
    from matplotlib.figure import Figure

    h, w = panels[0][1].shape[:2]
    scale = max(1.0, MIN_PANEL / w)
    dpi = 100
    fig = Figure(figsize=(len(panels) * w * scale / dpi, h * scale / dpi + 0.45), dpi=dpi)
    top = h * scale / (h * scale + 45)
    for k, (name, picture) in enumerate(panels):
        ax = fig.add_axes((k / len(panels), 0, 1 / len(panels), top))
        ax.imshow(picture, interpolation="nearest")
        ax.set_title(name, fontsize=8, pad=2)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9, y=0.995)
    with cache.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
