"""Diffusion condensation against its oracle, the reference ``multiscale_phate`` (test-only dependency).

The embeddings are real: crops of retina images through the real ``cutslib.model`` encoder, with fixed
seeded random weights (training Stage 1 takes far too long for a unit test). Runtime: about 1 minute on the
2-core machine, most of it in the reference's dense condensation.
"""

import numpy as np
import pytest
from multiscale_phate import condense as ref_condense
from multiscale_phate import diffuse as ref_diffuse
from multiscale_phate import embed as ref_embed
from sklearn.decomposition import PCA

from cutslib import condensation as C


@pytest.fixture(scope="module")
def potentials(retina_embeddings):
    """Our exact diffusion potential (seed 0) of each crop: the points both condensations run on."""
    return {size: C.diffusion_potential(lat, seed=0, exact=True) for size, lat in retina_embeddings.items()}


def reference_condensation(points):
    """The reference's condensation on given points: its labels per step, gradient and levels."""
    eps, threshold = ref_condense.compute_condensation_param(points, granularity=0.1)
    nxts, xs, _, merges, _ = ref_condense.condense(points, np.arange(len(points)), 1.025, eps, threshold, 1,
                                                   random_state=0)
    gradient = ref_embed.compute_gradient(xs, merges)
    return nxts, gradient, ref_embed.get_levels(gradient), (eps, threshold)


@pytest.mark.parametrize("size", [48, 64])
def test_condense_points_matches_reference_at_every_step(potentials, size):
    points = potentials[size]
    ours = C.condense_points(points)
    nxts, gradient, levels, params = reference_condensation(points)
    assert (ours.epsilon, ours.merge_threshold) == pytest.approx(params, rel=1e-12)
    assert ours.n_steps == len(nxts)
    for step, ref_labels in enumerate(nxts):
        assert np.array_equal(ours.labels(step), ref_labels), f"step {step} differs"
        assert ours.n_clusters[step] == len(np.unique(ref_labels))
    # gradient[0]: the reference aliases its first two point sets and measures merged-twice means; from
    # step 1 on the gradients agree to round-off
    np.testing.assert_allclose(ours.gradient[1:], gradient[1:], rtol=1e-9, atol=1e-9 * gradient.max())
    # salient levels with gradients < 1e-12 * max as zero: the reference's own rule would sometimes see its
    # round-off (e.g. 7e-15 where we have an exact 0) as a real, rising gradient
    assert ours.levels == C.salient_levels(gradient)
    assert len(ours.levels) >= 2


def test_diffusion_potential_matches_reference(retina_embeddings, potentials):
    x = retina_embeddings[48]  # 2304 points: the landmark (spectral clustering) path
    ours = potentials[48]
    data_pca = PCA(n_components=100).fit_transform(x)
    ref, _, _ = ref_diffuse.compute_diffusion_potential(data_pca, len(x), 40, 1, 100, 2000, 1, random_state=0)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-6 * np.abs(ref).max())


def test_labels_are_smallest_member_index_and_nested(potentials):
    cond = C.condense_points(potentials[48])
    previous = cond.labels(0)
    assert np.array_equal(previous, np.arange(len(previous)))
    for step in range(1, cond.n_steps):
        labels = cond.labels(step)
        ids, first = np.unique(labels, return_index=True)
        assert np.array_equal(ids, first)  # the id is the smallest index among the members
        assert len(ids) == cond.n_clusters[step]
        # nested: points together at one step stay together
        assert np.all(labels[previous] == labels)
        previous = labels
    assert cond.n_clusters[-1] == 1
    assert cond.levels == sorted(cond.levels) and 0 not in cond.levels


def _from_labels(steps, gradient):
    """A Condensation built from a hand-made list of nested label vectors."""
    merges = [(np.empty(0, np.int64),) * 2]
    for prev, nxt in zip(steps, steps[1:]):
        absorbed = np.setdiff1d(np.unique(prev), np.unique(nxt))
        merges.append((absorbed, nxt[absorbed]))
    return C.Condensation(merges=merges, n_clusters=np.array([len(np.unique(s)) for s in steps]),
                          gradient=np.asarray(gradient, float), epsilon=1.0, merge_threshold=0.1)


def test_persistent_structures_on_a_hand_made_hierarchy():
    h = w = 20
    rows, cols = np.indices((h, w))
    block = (rows >= 15) & (cols < 5)  # 25 px, id 300
    left = cols < 10
    fine = np.where(left, 0, 10)
    fine[block] = 300
    fine[19, 19] = 399  # a lone pixel (1 px < 1% of 400)
    middle = fine.copy()
    middle[19, 19] = 10  # the pixel joins the right half
    coarse = np.zeros((h, w), int)
    identity = np.arange(h * w)
    steps = [identity, fine.ravel(), fine.ravel(), middle.ravel(), middle.ravel()] + [coarse.ravel()] * 4
    gradient = [0, 5, 6, 4, 7, 3, 8, 0]  # salient levels 1, 3, 5
    cond = _from_labels(steps, gradient)
    assert cond.levels == [1, 3, 5]
    assert np.array_equal(cond.labels(3), middle.ravel())

    # the coarsest level (5) is left out: ids 0, 10 and the block appear in levels 1 and 3 (persistence 2)
    # and are painted largest first (id 10 at level 3, where it has 200 px), the block last; the lone pixel
    # (persistence 1, 1 px) is dropped and covered by id 10
    expected = np.where(left, 0, 10)
    expected[block] = 300
    assert np.array_equal(C.persistent_structures(cond, (h, w)), expected)
    assert np.array_equal(C.persistent_structures(cond, (h, w), rule="2024"), expected)

    # a larger minimum area drops the block (25 px < 40 px): its pixels keep id 0, painted underneath
    assert np.array_equal(C.persistent_structures(cond, (h, w), min_area=0.1), np.where(left, 0, 10))
    # nothing persists over 3 of the 2 counted levels: the canvas of zeros is all that is left
    assert np.array_equal(C.persistent_structures(cond, (h, w), min_persistence=3), np.zeros((h, w)))
    with pytest.raises(ValueError, match="does not match"):
        C.persistent_structures(cond, (10, 10))
    with pytest.raises(ValueError, match="unknown persistent rule"):
        C.persistent_structures(cond, (h, w), rule="1999")


def _stack(*rows, shape=None):
    """An (L, H, W) stack of label maps from one flat list of ids per level."""
    levels = np.array(rows)
    return levels.reshape(len(rows), *(shape or (1, levels.shape[1])))


def test_2024_rule_leaves_out_the_coarsest_level():
    # two levels: only the finer one is counted, so no id reaches persistence 2 (counting the coarsest
    # level would keep ids 1 and 3); nothing is painted and the canvas is zeros, not -1
    levels = _stack([1, 1, 2, 3, 4], [1, 1, 1, 3, 3])
    assert np.array_equal(C.persistent_map(levels), np.zeros((1, 5)))
    assert np.array_equal(C.persistent_map(levels, min_persistence=1), [[1, 1, 2, 3, 4]])
    assert np.array_equal(C.persistent_map(levels[:1], min_persistence=1), np.zeros((1, 5)))
    assert C.persistent_map(np.zeros((0, 2, 3), int)).shape == (2, 3)


def test_2024_rule_breaks_area_ties_by_persistence():
    # ids 5, 9 (persistence 3) and 6 (persistence 2) all have 8 px at their best level; 5 and 9 are painted
    # first, then 6 on top: [5, 6, 6, 9] (lowest persistence first would give [5, 5, 9, 9])
    levels = _stack([5, 5, 9, 9], [5, 6, 6, 9], [5, 6, 6, 9], [5, 5, 5, 5])
    levels = np.repeat(levels, 2, axis=1)  # 2 x 4 maps: 8 px in two columns
    assert np.array_equal(C.persistent_map(levels), np.repeat([[5, 6, 6, 9]], 2, axis=0))
    with pytest.raises(ValueError, match="non-negative"):
        C.persistent_map(levels - 6)
    with pytest.raises(ValueError, match=r"\(L, H, W\)"):
        C.persistent_map(levels[0])


def test_2023_rule_puts_the_most_persistent_on_top():
    levels = _stack([0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9],
                    [0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9],
                    [0, 0, 0, 3, 3, 3, 6, 6, 6, 6, 6, 6],  # 9 joins 6
                    [0, 0, 0, 3, 3, 3, 6, 6, 6, 6, 6, 6],
                    [0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6],  # 3 joins 0
                    [0] * 12)                               # the coarsest level, not walked
    # stable levels (same pixels at the next level): id 0 at 0-2 and id 3 at 0-2 (persistence 3, best level 2),
    # id 6 at 0 and 2-3 (longest run 2, reached at level 3), id 9 at 0 (persistence 1, best level 0).
    # Painted by persistence, lowest first: 9, then 6 over it, then 0 and 3
    assert np.array_equal(C.persistent_map_2023(levels), [[0, 0, 0, 3, 3, 3, 6, 6, 6, 6, 6, 6]])
    # the 2024 rule paints the smaller id 9 on top of id 6 instead
    assert np.array_equal(C.persistent_map(levels), [[0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9, 9]])
    assert np.array_equal(C.persistent_map_2023(levels[:1]), np.zeros((1, 12)))


def test_2023_rule_tolerance_and_never_stable_ids():
    # 200 px: id 1 has 150 px, then gains 1 px (within 1% of 150), then 2 more (above 1% of 151); id 150 the rest
    levels = _stack([1] * 150 + [150] * 50, [1] * 151 + [150] * 49, [1] * 153 + [150] * 47, [1] * 200,
                    shape=(10, 20))
    # id 1 is stable at level 0 only (best level 0); id 150 never (it would take the coarsest level, where it is
    # absent, and paints nothing): id 1's 150 px over the canvas of zeros
    expected = np.array([1] * 150 + [0] * 50).reshape(10, 20)
    assert np.array_equal(C.persistent_map_2023(levels), expected)
    # 2%: id 1 is stable at levels 0-1 (best level 1, 151 px), id 150 at level 0 (1 px <= 1 px): 150 under 1
    expected = np.array([1] * 151 + [150] * 49).reshape(10, 20)
    assert np.array_equal(C.persistent_map_2023(levels, tolerance=0.02), expected)
    # 0: nothing is ever stable; both ids take the coarsest level, where id 1 covers everything
    assert np.array_equal(C.persistent_map_2023(levels, tolerance=0), np.ones((10, 20)))


def test_partitioned_path_on_duplicated_rows(retina_embeddings):
    unique = retina_embeddings[48][:600]
    n = 100_500  # above the 1e5 limit of the exact path: duplicates are dropped before anything else
    order = np.random.default_rng(0).permutation(n)
    latents = np.tile(unique, (n // len(unique) + 1, 1))[:n][order]
    cond = C.condense(latents, seed=0, exact=True)
    direct = C.condense(unique, seed=0, exact=True)
    assert cond.n_steps == direct.n_steps and cond.levels == direct.levels
    row_of = np.arange(n)[order] % len(unique)  # which unique row each point copies
    for level in cond.levels:
        labels = cond.labels(level)
        assert labels.shape == (n,)
        ids, first = np.unique(labels, return_index=True)
        assert np.array_equal(ids, first)  # stable ids: smallest original index of the members
        # same partition as condensing the distinct rows directly
        expected = direct.labels(level)[row_of]
        _, a = np.unique(labels, return_inverse=True)
        _, b = np.unique(expected, return_inverse=True)
        assert len(np.unique(a * (b.max() + 1) + b)) == a.max() + 1 == b.max() + 1


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([[0.0, 1.0], [np.nan, 1.0], [2.0, 3.0], [1.0, 1.0]]), "NaN"),
        (np.array([[0.0, 1.0], [np.inf, 1.0], [2.0, 3.0], [1.0, 1.0]]), "NaN or Inf"),
        (np.zeros((2, 4)), "at least 3 rows"),
        (np.zeros(10), "2-D"),
        (np.zeros((4, 4, 4)), "2-D"),
    ],
)
def test_bad_input_is_named(bad, message):
    with pytest.raises(ValueError, match=message):
        C.condense_points(bad)
    with pytest.raises(ValueError, match=message):
        C.condense(bad)


def test_zero_latent_rows_are_rejected():
    latents = np.random.default_rng(0).normal(size=(50, 8))
    latents[7] = 0
    with pytest.raises(ValueError, match="all-zero rows"):
        C.condense(latents)


def test_smallest_pair_distances_is_exact_with_ties():
    rng = np.random.default_rng(0)
    points = np.round(rng.normal(size=(400, 3)), 1)  # many ties and duplicates
    from scipy.spatial.distance import pdist

    d = np.sort(pdist(points))
    for k in (1, 5, 200, 3000):
        np.testing.assert_array_equal(C.smallest_pair_distances(points, k), d[:k])
    eps, threshold = C.condensation_parameters(points)
    assert threshold == pytest.approx(np.percentile(d, 0.001) + 0.001, rel=1e-15)


def test_weighted_rows_condense_as_their_copies():
    """Rows with multiplicities (the fast path's distinct rows) give the partitions of all the copies."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(300, 3))
    copies = rng.integers(1, 4, size=300)
    copies[5] = 400  # one large constant region: its copies make the merge threshold 0 + 0.001
    points = np.repeat(rows, copies, axis=0)
    first = np.r_[0, np.cumsum(copies)[:-1]]
    for subset in (slice(None), slice(0, 5)):  # also few repeats: the percentile then needs real pairs
        assert C.condensation_parameters(rows[subset], copies[subset].astype(float)) == pytest.approx(
            C.condensation_parameters(np.repeat(rows[subset], copies[subset], axis=0)), rel=1e-12)
    full = C.condense_points(points)
    weighted = C.condense_points(rows, weights=copies)
    assert weighted.n_steps == full.n_steps and weighted.levels == full.levels
    copy_of = np.repeat(np.arange(len(rows)), copies)
    for step in range(1, full.n_steps):  # ids: the first copy's index, as on every point
        assert np.array_equal(first[weighted.labels(step)][copy_of], full.labels(step)), f"step {step}"
    np.testing.assert_allclose(weighted.gradient, full.gradient, rtol=1e-9, atol=1e-12)


def test_smallest_pair_distances_with_weights():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(2000, 3))
    copies = np.ones(2000, int)
    copies[:3] = [2, 3, 1]
    from scipy.spatial.distance import pdist

    expected = np.sort(pdist(np.repeat(rows, copies, axis=0)))[:300]
    np.testing.assert_array_equal(C.smallest_pair_distances(rows, 300, weights=copies.astype(float)), expected)


def test_condense_with_repeated_rows_labels_every_point(retina_embeddings):
    """The fast path condenses each distinct row once: copies share a label at every level, ids are the
    smallest index of each cluster."""
    latents = retina_embeddings[48].copy()
    latents[:1500] = latents[700]  # a constant region, as an MRI slice's black background
    cond = C.condense(latents, seed=0, exact=False)
    assert cond.n_points == len(latents) and len(cond.levels) >= 2
    for level in cond.levels:
        labels = cond.labels(level)
        assert len(np.unique(labels[:1500])) == 1
        ids, first = np.unique(labels, return_index=True)
        assert np.array_equal(ids, first)
