"""Metrics against hand-computed values on small arrays, edge cases, and bad input (runtime < 1 s)."""

import numpy as np
import pytest

from cutslib import metrics


def square(size=16, top=4, left=4, side=4):
    mask = np.zeros((size, size), int)
    mask[top:top + side, left:left + side] = 1
    return mask


def test_dice_by_hand():
    truth = square()                      # 16 pixels
    pred = square(left=6)                 # 16 pixels, 8 shared
    assert metrics.dice(pred, truth) == pytest.approx(2 * 8 / 32)
    assert metrics.dice(truth, truth) == pytest.approx(1.0)


def test_dice_empty_masks_follow_the_reference_eps_rule():
    # (2 |P & T| + eps) / (|P| + |T| + eps): both empty give 1, one empty gives eps / (16 + eps)
    empty = np.zeros((16, 16), int)
    eps = metrics.DICE_EPS
    assert metrics.dice(empty, empty) == 1.0
    assert metrics.dice(empty, square()) == pytest.approx(eps / (16 + eps), rel=1e-12)
    assert metrics.dice(square(), empty) == metrics.dice(empty, square()) < 1e-13
    assert metrics.dice(empty, empty, eps=0.5) == 1.0


def test_hausdorff_and_hd95_by_hand():
    truth = np.zeros((16, 16), int)
    truth[5, 5] = 1
    pred = np.zeros((16, 16), int)
    pred[5, 5] = pred[5, 8] = 1           # one extra pixel 3 px away
    assert metrics.hausdorff(pred, truth) == pytest.approx(3.0)
    # boundary distances pooled: pred -> truth {0, 3}, truth -> pred {0}; 95th percentile of [0, 3, 0]
    assert metrics.hd95(pred, truth) == pytest.approx(np.percentile([0, 3, 0], 95))
    assert metrics.hausdorff(truth, truth) == 0.0
    assert metrics.hd95(square(), square()) == 0.0


def test_hausdorff_empty_mask_is_image_diagonal():
    empty = np.zeros((128, 128), int)
    truth = square(128, 50, 50, 10)
    for fn in (metrics.hausdorff, metrics.hd95):
        assert fn(empty, truth) == pytest.approx(181.019, abs=1e-3)
        assert fn(truth, empty) == pytest.approx(np.hypot(128, 128))


def test_rmse_is_sqrt_of_disagreement():
    truth = square()
    pred = square(left=6)                 # 8 + 8 of 256 pixels differ
    assert metrics.rmse(pred, truth) == pytest.approx(np.sqrt(16 / 256))
    assert metrics.rmse(truth, truth) == 0.0
    assert metrics.rmse(np.ones_like(truth), truth) == pytest.approx(np.sqrt(240 / 256))


def test_ssim_identical_and_complementary():
    truth = square()
    assert metrics.ssim(truth, truth) == pytest.approx(1.0)
    assert metrics.ssim(1 - truth, truth) < 0


def test_ergas_matches_sewar_formula_by_hand():
    truth = np.zeros((16, 16), int)
    truth[4:12, 4:12] = 1
    pred = np.zeros_like(truth)
    pred[4:12, 4:8] = 1
    # Hand-computed: 8x8 box averages via cumulative sums with reflected edges (scipy's uniform_filter, size 8
    # covers offsets -4..+3), then the sewar formula 100 * 4 * sqrt(err) / (mean / 64) on the cropped interior.
    def box(a):
        padded = np.pad(a.astype(float), ((4, 3), (4, 3)), mode="symmetric")
        windows = np.lib.stride_tricks.sliding_window_view(padded, (8, 8))
        return windows.mean(axis=(-1, -2))
    err, mean = box((truth - pred) ** 2), box(truth) / 64
    local = np.where(mean == 0, 0, 400 * np.sqrt(err) / np.where(mean == 0, 1, mean))
    assert metrics.ergas(pred, truth) == pytest.approx(local[4:-4, 4:-4].mean())
    assert metrics.ergas(truth, truth) == 0.0
    assert metrics.ergas(truth, np.zeros_like(truth)) == 0.0     # empty ground truth: no window has a mean


def test_random_labels_reproduce_the_papers_magnitudes():
    rng = np.random.default_rng(0)
    truth = square(128, 40, 40, 35)       # 7.5% foreground, like retina
    pred = rng.integers(0, 2, truth.shape)
    assert metrics.rmse(pred, truth) == pytest.approx(np.sqrt(0.5), abs=0.01)
    assert abs(metrics.ssim(pred, truth)) < 0.02
    assert metrics.ergas(pred, truth) > 1000


def test_multiclass_metrics():
    truth = np.repeat([[0, 0, 1, 1, 2, 2]], 4, axis=0)
    relabelled = (truth + 1) % 3          # same partition, other ids
    assert metrics.adjusted_rand_index(relabelled, truth) == pytest.approx(1.0)
    assert metrics.variation_of_information(relabelled, truth) == pytest.approx(0.0, abs=1e-12)
    merged = np.minimum(truth, 1)         # merges parts 1 and 2: H(T|P) = 2/3 bit, H(P|T) = 0
    assert metrics.variation_of_information(merged, truth) == pytest.approx(2 / 3)
    assert metrics.adjusted_rand_index(merged, truth) < 1


@pytest.mark.parametrize("fn", [metrics.dice, metrics.hausdorff, metrics.rmse, metrics.ergas])
def test_bad_input_is_rejected(fn):
    truth = square()
    with pytest.raises(ValueError, match="does not match"):
        fn(square(20), truth)
    with pytest.raises(ValueError, match="NaN"):
        fn(np.where(truth > 0, np.nan, 0.0), truth)
    with pytest.raises(ValueError, match="integer"):
        fn(truth * 0.5, truth)
    with pytest.raises(ValueError, match="binary"):
        fn(truth * 2, truth)
    with pytest.raises(ValueError, match="2-D"):
        fn(truth[None], truth)


def test_binary_scores_names_every_metric():
    scores = metrics.binary_scores(square(), square())
    assert set(scores) == set(metrics.BINARY_METRICS) <= set(metrics.HIGHER_IS_BETTER)
