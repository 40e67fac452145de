"""Protocols on hand-made label maps (runtime < 1 s)."""

import numpy as np
import pytest

from cutslib import metrics, protocol

#     cluster ids                 ground truth (the 2x2 centre)
LABELS = np.array([[0, 0, 1, 1, 1, 1],
                   [0, 2, 2, 2, 1, 1],
                   [0, 2, 2, 2, 1, 1],
                   [3, 3, 2, 3, 3, 1],
                   [3, 3, 3, 3, 3, 1],
                   [3, 3, 3, 3, 3, 3]])
TRUTH = np.zeros((6, 6), int)
TRUTH[1:3, 2:4] = 1


def test_label_hint_picks_the_cluster_covering_most_foreground():
    np.testing.assert_array_equal(protocol.label_hint(LABELS, TRUTH), LABELS == 2)
    # ids need not be 0..K-1
    np.testing.assert_array_equal(protocol.label_hint(LABELS * 10 + 7, TRUTH), LABELS == 2)


def test_label_hint_ties_and_empty_truth_go_to_the_lowest_id():
    np.testing.assert_array_equal(protocol.label_hint(LABELS, np.zeros_like(TRUTH)), LABELS == 0)


def test_unassigned_pixels_are_never_the_foreground():
    # -1 (unpainted by the persistent map) covers 3 of the 4 foreground pixels, cluster 2 only 1
    labels = LABELS.copy()
    labels[1:3, 2:4] = -1
    labels[1, 3] = 2
    np.testing.assert_array_equal(protocol.label_hint(labels, TRUTH), labels == 2)
    # ties and an empty truth go to the lowest non-negative id, not to -1
    np.testing.assert_array_equal(protocol.label_hint(labels, np.zeros_like(TRUTH)), labels == 0)
    # a map with nothing assigned gives an empty mask under every protocol
    for name in protocol.BINARISATIONS:
        mask = protocol.binarise(np.full((6, 6), -1), name, truth=TRUTH, image=np.zeros((6, 6)))
        assert mask.dtype == bool and not mask.any(), name
    # a click on an unassigned pixel selects nothing
    assert protocol.click_point(TRUTH) == (1, 2) and not protocol.one_click(labels, TRUTH).any()


def test_click_point_is_farthest_from_the_boundary():
    truth = np.zeros((9, 9), int)
    truth[1:8, 2:9] = 1                   # 7 x 7 box on the right edge (the image edge counts as boundary)
    assert protocol.click_point(truth) == (4, 5)
    labels = np.zeros((9, 9), int)
    labels[4, 5] = 5
    np.testing.assert_array_equal(protocol.one_click(labels, truth), labels == 5)
    with pytest.raises(ValueError, match="empty"):
        protocol.click_point(np.zeros((9, 9), int))
    assert not protocol.one_click(labels, np.zeros((9, 9), int)).any()


def test_label_free_prefers_the_enclosed_contrasting_cluster():
    labels = np.zeros((10, 10), int)
    labels[2:5, 2:5] = 1                  # enclosed, dim
    labels[6:9, 6:9] = 2                  # enclosed, bright: the foreground
    labels[:, 0] = 3                      # touches the edge
    image = np.zeros((10, 10))
    image[2:5, 2:5], image[6:9, 6:9], image[:, 0] = 0.3, 1.0, 1.0
    np.testing.assert_array_equal(protocol.label_free(labels, image), labels == 2)
    # it never looks at a ground truth: an RGB image gives the same answer
    np.testing.assert_array_equal(protocol.label_free(labels, np.repeat(image[..., None], 3, -1)), labels == 2)
    with pytest.raises(ValueError, match="does not match"):
        protocol.label_free(labels, image[:5])
    # negative ids ("unassigned") are never the foreground
    np.testing.assert_array_equal(protocol.label_free(np.where(labels == 2, -1, labels), image), labels == 1)
    # ... not even when no cluster qualifies (one cluster covers most of the image): the smallest real one
    big = np.zeros((10, 10), int)
    big[0, 0] = -1
    np.testing.assert_array_equal(protocol.label_free(big, image), big == 0)
    assert not protocol.label_free(np.full((10, 10), -1), image).any()


def test_binarise_dispatches_and_rejects_unknown_protocols():
    image = np.zeros((6, 6))
    for name in protocol.BINARISATIONS:
        mask = protocol.binarise(LABELS, name, truth=TRUTH, image=image)
        assert mask.shape == LABELS.shape and mask.dtype == bool and mask.any()
    with pytest.raises(ValueError, match="unknown"):
        protocol.binarise(LABELS, "telepathy", truth=TRUTH)


def test_oracle_is_never_worse_than_any_level():
    rng = np.random.default_rng(0)
    truth = np.zeros((32, 32), int)
    truth[8:20, 10:24] = 1
    levels = [rng.integers(0, k, truth.shape) for k in (2, 4, 8)] + [truth * 3 + 1]
    per_level = [metrics.binary_scores(protocol.label_hint(level, truth), truth) for level in levels]
    best = protocol.oracle(per_level)
    for scores in per_level:
        for name, value in scores.items():
            if metrics.HIGHER_IS_BETTER[name]:
                assert best[name] >= value
            else:
                assert best[name] <= value
    assert best["dice"] == pytest.approx(1.0) and best["hausdorff"] == 0.0


def test_fixed_level_is_the_coarsest_with_enough_clusters():
    levels = np.stack([np.arange(16).reshape(4, 4), np.arange(16).reshape(4, 4) // 4,
                       np.arange(16).reshape(4, 4) // 8, np.zeros((4, 4), int)])   # 16, 4, 2, 1 clusters
    assert protocol.fixed_level(levels, min_clusters=3) == 1
    assert protocol.fixed_level(levels, min_clusters=100) == 0


def test_iou_relabel_maps_each_id_to_its_best_truth_id():
    truth = np.array([[0, 0, 1, 1],
                      [0, 0, 1, 1],
                      [2, 2, 2, 2]])
    pred = np.array([[7, 7, 8, 8],
                     [7, 9, 8, 8],
                     [9, 9, 9, 9]])
    expected = np.array([[0, 0, 1, 1],
                         [0, 2, 1, 1],
                         [2, 2, 2, 2]])
    np.testing.assert_array_equal(protocol.iou_relabel(pred, truth), expected)


def test_protocols_reject_bad_input():
    with pytest.raises(ValueError, match="does not match"):
        protocol.label_hint(LABELS, TRUTH[:5])
    with pytest.raises(ValueError, match="integer"):
        protocol.label_hint(LABELS + 0.5, TRUTH)
    with pytest.raises(ValueError, match="NaN"):
        protocol.iou_relabel(np.where(LABELS == 1, np.nan, LABELS), TRUTH)
