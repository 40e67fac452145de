"""cutslib.colors: one colour per stable cluster id, on a real condensation of a retina crop.

Runtime: about 20 s on the shared 2-core machine (one condensation of 48x48 pixels).
"""

import numpy as np
import pytest

from cutslib import colors as C
from cutslib.condensation import condense
from cutslib.data import load


@pytest.fixture(scope="module")
def crop_levels(retina_embeddings):
    """(levels (L, 48, 48) fine to coarse, the 48x48 retina crop they come from)."""
    cond = condense(retina_embeddings[48], seed=0)
    levels = np.stack([cond.labels(step).reshape(48, 48) for step in cond.levels])
    image = load("retina", progress=False).images[0, 40:88, 40:88]
    assert len(levels) >= 2
    return levels, image


def test_one_colour_per_id_the_same_at_every_level(crop_levels):
    levels, _ = crop_levels
    colors = C.label_colors(levels)
    assert set(colors) == set(np.unique(levels).tolist())
    coarse = np.unique(levels[-1])
    first = [colors[int(i)] for i in coarse]
    assert len(set(first)) == len(first), "the coarsest clusters must get distinct colours"
    assert set(first) <= set(C.PALETTE)
    for level in levels:  # a pixel whose id is the same at two levels is drawn the same at both
        pic, top = C.colorize(level, colors), C.colorize(levels[-1], colors)
        same = level == levels[-1]
        assert same.any() and (pic[same] == top[same]).all()
    assert C.label_colors(levels) == colors, "colours must be deterministic"


def test_mean_image_colour_at_the_coarsest_level(crop_levels):
    levels, image = crop_levels
    colors = C.label_colors(levels, image)
    lo, hi = image.min(), image.max()
    for cluster in np.unique(levels[-1])[:5]:
        mean = (image[levels[-1] == cluster] - lo) / (hi - lo)
        assert colors[int(cluster)] == tuple(int(v) for v in np.rint(255 * mean.mean(axis=0)))
    grey = C.label_colors(levels[-1], image.mean(axis=2))
    assert all(r == g == b for r, g, b in grey.values())


def test_colorize_draws_missing_ids_black_and_hashes_ids_beyond_the_palette():
    labels = np.array([[-1, 0, 5], [5, 7, 7]])
    pic = C.colorize(labels, C.label_colors(labels))
    assert pic.dtype == np.uint8 and pic.shape == (2, 3, 3)
    assert (pic[0, 0] == 0).all() and (pic[0, 2] == pic[1, 0]).all()
    fine = np.arange(400).reshape(20, 20)
    colors = C.label_colors(fine)
    assert len(colors) == 400 and colors[399] == C.id_color(399)
    assert len(set(colors.values())) > 300


@pytest.mark.parametrize("call, message", [
    (lambda: C.label_colors(np.zeros(5, int)), "levels must be"),
    (lambda: C.label_colors(np.zeros((4, 4))), "integer ids"),
    (lambda: C.label_colors(np.zeros((4, 4), int), np.zeros((5, 4, 3))), "matching the label maps"),
    (lambda: C.label_colors(np.zeros((4, 4), int), np.full((4, 4), np.nan)), "NaN"),
    (lambda: C.colorize(np.zeros((2, 2), int), {0: (300, 0, 0)}), "0-255"),
    (lambda: C.colorize(np.zeros((2, 2)), {}), "integer label map"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
