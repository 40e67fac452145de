"""The 2023 Stage 2 (CATCH-style): each piece against a direct formula on tiny inputs, and a whole image."""

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from cutslib import catch, segment
from cutslib import condensation as C
from cutslib.condensation import persistent_map_2023


def test_plateau_levels_are_the_first_step_of_each_plateau():
    assert catch.plateau_levels([10, 8, 8, 8, 5, 5, 3, 2, 2, 1]) == [1, 4, 7]
    assert catch.plateau_levels([10, 10, 7, 6, 1]) == []  # step 0 never counts; no other plateau
    assert catch.plateau_levels([5]) == []


def _direct_operator(x, knn):
    """graphtools' alpha-decay kNN operator, densely: bandwidth the distance to the knn-th neighbour (self is 0th)."""
    d = cdist(x, x)
    bandwidth = np.sort(d, axis=1)[:, knn]
    k = np.exp(-((d / bandwidth[:, None]) ** 40))
    k[k < 1e-4] = 0
    k = (k + k.T) / 2
    return k


def test_first_diffusion_is_p_to_the_t_on_small_inputs():
    x = np.random.default_rng(0).normal(size=(300, 4))
    k = _direct_operator(x, catch.KNN)
    p = k / k.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(catch.first_diffusion(x, t=3), np.linalg.matrix_power(p, 3) @ x, atol=1e-9)
    assert np.array_equal(catch.first_diffusion(x, t=0), x)


def test_first_diffusion_through_landmarks(monkeypatch):
    """Above LANDMARK_ABOVE points: P_nm P_mm^(t-1) P_mn x, with P_mn / P_nm the kernel summed over each
    landmark's members and normalised by rows / by columns."""
    x = np.random.default_rng(1).normal(size=(240, 3))
    assignment = np.arange(240) % 12
    monkeypatch.setattr(catch, "LANDMARK_ABOVE", 100)
    monkeypatch.setattr(catch, "spectral_landmarks", lambda kernel, n, seed=0: assignment)
    k = _direct_operator(x, catch.KNN)
    member = np.eye(12)[assignment].T  # (L, N)
    to_data = member @ k
    p_mn = to_data / to_data.sum(axis=1, keepdims=True)
    p_nm = to_data.T / to_data.T.sum(axis=1, keepdims=True)
    expected = p_nm @ np.linalg.matrix_power(p_mn @ p_nm, 2) @ p_mn @ x
    np.testing.assert_allclose(catch.first_diffusion(x, n_landmark=12, t=3), expected, atol=1e-9)


def test_sized_diffusion_weighs_each_point_by_its_cluster_size():
    x = np.random.default_rng(2).normal(size=(50, 2))
    sizes = np.random.default_rng(3).integers(1, 20, size=50).astype(float)
    eps = 0.8
    d = cdist(x, x)
    k = np.exp(-((d / eps) ** 40))
    k[k < 1e-4] = 0
    expected = (k * sizes) @ x / (k @ sizes)[:, None]
    np.testing.assert_allclose(C._diffuse(x, eps, sizes), expected, atol=1e-12)
    assert not np.allclose(C._diffuse(x, eps), expected)  # the sizes change the step


def test_sized_condensation_of_weighted_rows_equals_all_the_copies():
    """With sizes, a row standing for n copies moves as its n copies would: the partitions of all points."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(200, 3))
    copies = rng.integers(1, 5, size=200)
    points = np.repeat(rows, copies, axis=0)
    first = np.r_[0, np.cumsum(copies)[:-1]]
    options = dict(granularity=catch.GRANULARITY, merge_percentile=catch.MERGE_PERCENTILE,
                   merge_offset=catch.MERGE_OFFSET, sized=True)
    full = C.condense_points(points, **options)
    weighted = C.condense_points(rows, weights=copies, **options)
    assert weighted.n_steps == full.n_steps
    copy_of = np.repeat(np.arange(len(rows)), copies)
    for step in range(1, full.n_steps):
        assert np.array_equal(first[weighted.labels(step)][copy_of], full.labels(step)), f"step {step}"
    plain = C.condense_points(rows, weights=copies, **{**options, "sized": False})
    assert not np.array_equal(plain.n_clusters, weighted.n_clusters) or any(
        not np.array_equal(plain.labels(s), weighted.labels(s)) for s in range(plain.n_steps))


def test_condensation_parameters_of_the_2023_stage2():
    points = np.random.default_rng(4).normal(size=(500, 3))
    eps, threshold = C.condensation_parameters(points, granularity=1.0, merge_percentile=0.0001, merge_offset=1e-7)
    from scipy.spatial.distance import pdist

    assert eps == pytest.approx(0.1 * np.std(points) * 500 ** 0.2, rel=1e-12)
    assert threshold == pytest.approx(np.percentile(pdist(points), 0.0001) + 1e-7, rel=1e-12)


@pytest.fixture(scope="module")
def blobs():
    """A 24x24 'image' of three regions with noisy 8-dimensional embeddings."""
    rng = np.random.default_rng(0)
    labels = np.zeros((24, 24), int)
    labels[:, 12:] = 1
    labels[8:16, 4:10] = 2
    centres = rng.normal(size=(3, 8)) * 3
    return centres[labels] + rng.normal(scale=0.3, size=(24, 24, 8)), labels


def test_segment_image_2023_finds_the_regions(blobs):
    latents, truth = blobs
    out = segment.segment_image_2023(latents, seed=0)
    assert set(out) == set(segment.CATCH_KEYS)
    levels, steps = out["levels"], out["level_steps"]
    assert len(steps) >= 2 and list(steps) == catch.plateau_levels(out["n_clusters"])
    assert np.array_equal(out["persistent2023"], persistent_map_2023(levels))
    from sklearn.metrics import adjusted_rand_score

    best = max(adjusted_rand_score(truth.ravel(), level.ravel()) for level in levels)
    assert best > 0.95  # three well-separated regions are one of the levels
    with pytest.raises(ValueError, match="all-zero rows"):
        segment.segment_image_2023(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=r"\(H, W, D\)"):
        segment.segment_image_2023(latents[0])


def test_segment_latents_2023_has_its_own_keys_and_settings(blobs, tmp_path):
    latents = blobs[0][None]
    folder = segment.segment_latents(latents, ["a"], tmp_path / "seg", progress=False, stage2="catch2023")
    assert set(segment.load_segmentation(folder, "a", segment.CATCH_KEYS)) == set(segment.CATCH_KEYS)
    with pytest.raises(OSError, match="kmeans"):  # a 2023 file is not a Multiscale PHATE one
        segment.load_segmentation(folder, "a")
    with pytest.raises(ValueError, match="stage2 must be one of"):
        segment.segment_latents(latents, ["a"], tmp_path / "x", progress=False, stage2="catch")
    settings = segment.segment_settings("embed-x", 1, True, "catch2023")
    assert settings != segment.segment_settings("embed-x", 1, True)
    assert segment.segment_settings("embed-x", 1, True, "catch2023") == segment.segment_settings("embed-x", 1, False,
                                                                                                 "catch2023")


@pytest.mark.parametrize("sized", [False, True])
def test_dense_diffusion_step_equals_the_sparse_one(sized):
    """The blocked dense kernel is the kd-tree kernel to round-off, blocks and self loops included."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(700, 4))
    sizes = rng.integers(1, 9, size=700).astype(float) if sized else None
    for eps in (0.3, 1.0, 5.0):  # sparse, mixed, every pair inside the ball
        np.testing.assert_allclose(C._diffuse_dense(x, eps, sizes, block=128), C._diffuse(x, eps, sizes),
                                   rtol=0, atol=1e-9)


def test_mostly_dense_tells_a_wide_ball_from_a_narrow_one():
    x = np.random.default_rng(6).normal(size=(4000, 3))
    assert C._mostly_dense(x, 10.0) and not C._mostly_dense(x, 0.05)
    assert not C._mostly_dense(x[:100], 10.0)  # small inputs stay sparse
