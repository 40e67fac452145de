"""The PHATE potential's pieces against the libraries they reproduce (graphtools, phate, sklearn).

Up to the landmark k-means the results must be bit-identical (that k-means turns round-off into different
landmarks); after it, equal to round-off. The whole potential against Multiscale PHATE's is in
test_condensation.py.
"""

import graphtools
import numpy as np
import pytest
from phate.vne import compute_von_neumann_entropy, find_knee_point
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize
from sklearn.utils.extmath import randomized_svd

from cutslib import potential as P


@pytest.fixture(scope="module")
def pcs(retina_embeddings):
    """The 64x64 crop's embeddings after the first PCA (4096 x 100), as Multiscale PHATE feeds PHATE."""
    return PCA(n_components=100, random_state=0).fit_transform(retina_embeddings[64])


def test_kernel_is_bit_identical_to_graphtools(pcs):
    ours = P.alpha_decay_kernel(pcs)
    ref = graphtools.Graph(pcs, n_pca=None, knn=100, decay=40, thresh=1e-4, random_state=0, verbose=0).kernel
    assert ours.shape == ref.shape and ours.nnz == ref.nnz
    assert (ours != ref).nnz == 0


def test_spectral_embedding_is_bit_identical_to_sklearn(pcs):
    """graphtools' landmark embedding: sklearn's randomized SVD of D^-1/2 K D^-1/2 (threaded products here)."""
    kernel = P.alpha_decay_kernel(pcs)
    scale = sparse.diags(1 / np.sqrt(np.asarray(kernel.sum(axis=1)).ravel()))
    _, _, ref = randomized_svd(scale @ kernel @ scale, n_components=100, random_state=4)
    ours = P.spectral_embedding(kernel, seed=4)
    assert ours.shape == ref.shape == (100, len(pcs))
    assert np.array_equal(ours, ref)


def test_optimal_t_is_phates_knee(pcs):
    for knn in (100, 15):  # two diffusion operators with different spectra
        diff_op = normalize(P.alpha_decay_kernel(pcs[:2000], knn=knn), "l1", axis=1).toarray()
        entropy = compute_von_neumann_entropy(diff_op, t_max=100)
        assert P.optimal_t(diff_op) == find_knee_point(entropy, np.arange(100))


@pytest.mark.parametrize("n, n_landmarks", [(3000, 400), (300, 300)])
def test_top_components_is_sklearns_pca_of_the_product(n, n_landmarks):
    """The factored PCA (randomized for N > 500, exact below, as sklearn chooses) equals the PCA of the
    (N, L) product it never forms."""
    rng = np.random.default_rng(0)
    transitions = normalize(sparse.random(n, n_landmarks, density=0.05, random_state=0, format="csr"), "l1")
    basis = rng.normal(size=(n_landmarks, 4)) * [20, 10, 5, 1]
    potential = basis @ rng.normal(size=(4, n_landmarks)) + 0.01 * rng.normal(size=(n_landmarks, n_landmarks))
    ours = P.top_components(transitions, potential, seed=3)
    pca = PCA(n_components=25, random_state=3)
    ref = pca.fit_transform(transitions @ potential)
    ratio = pca.explained_variance_ / pca.explained_variance_.sum()
    ref = ref[:, ratio > 0.01]
    assert 2 <= ours.shape[1] < 25
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9 * np.abs(ref).max())


def test_randomized_svd_refuses_a_wide_matrix():
    with pytest.raises(ValueError, match="tall or square"):
        P.randomized_svd(None, None, (10, 20), 2)


# ------------------------------------------------------------------------------------------ fast path
def test_fast_kernel_agrees_with_graphtools_kernel(pcs):
    """The kd-tree search gives the same kernel to round-off (float64 distances without cancellation)."""
    ref = P.alpha_decay_kernel(pcs)
    ours = P.weighted_kernel(pcs, np.ones(len(pcs)))
    assert ours.nnz == ref.nnz and abs(ours - ref).max() < 1e-8


def test_fast_kernel_queries_balls_past_the_margin(pcs, monkeypatch):
    """Rows whose kernel ball holds more distinct rows than the first query returned get a ball query."""
    ref = P.alpha_decay_kernel(pcs)
    monkeypatch.setattr(P, "SEARCH_MARGIN", 1.0)  # every ball reaches past the knn + 1 nearest
    ours = P.weighted_kernel(pcs, np.ones(len(pcs)))
    assert ours.nnz == ref.nnz and abs(ours - ref).max() < 1e-8


def test_fast_kernel_counts_every_copy(pcs):
    """Rows with multiplicities: the kernel of all the copies, restricted to one copy of each row."""
    copies = np.random.default_rng(0).integers(1, 4, size=500)
    copies[0] = 150  # more copies than knn: that row's bandwidth is 0
    rows = pcs[:500]
    full = P.alpha_decay_kernel(np.repeat(rows, copies, axis=0))
    first = np.r_[0, np.cumsum(copies)[:-1]]
    ours = P.weighted_kernel(rows, copies.astype(float))
    restricted = full[first][:, first]
    assert ours.nnz == restricted.nnz and abs(ours - restricted)[1:, 1:].max() < 1e-8
    # between the copies of row 0 the reference's distance and bandwidth are both the round-off of
    # |x|^2 - 2 x.x + |x|^2, one value for every pair: exp(-1) if it is positive, else 1; ours is 1
    block = full[:150, :150].toarray()
    assert np.unique(block).size == 1 and (np.isclose(block[0, 0], np.exp(-1)) or block[0, 0] == 1)
    assert ours[0, 0] == 1 and abs(ours - restricted)[0, 1:].max() < 1e-8


def test_kernel_rows_are_the_kernels_rows(pcs):
    """kernel_rows gives alpha_decay_kernel's rows before symmetrising, bit for bit."""
    sq = P.squared_norms(pcs)
    rows, cols, values = (np.concatenate(p) for p in zip(*(P.kernel_rows(pcs, sq, s, block=1000)
                                                           for s in range(0, len(pcs), 1000))))
    half = sparse.csr_matrix((values, (rows, cols)), shape=(len(pcs),) * 2)
    assert ((half + half.T) / 2 != P.alpha_decay_kernel(pcs)).nnz == 0


def test_weighted_spectral_embedding_is_that_of_the_copies(pcs):
    """Rows with multiplicities: the singular vectors of all the copies, each copy's entry its row's divided
    by sqrt(multiplicity) (top components, up to sign: the two randomized SVDs start from other draws)."""
    copies = np.random.default_rng(2).integers(1, 4, size=400)
    rows = pcs[:400]
    full = P.spectral_embedding(P.alpha_decay_kernel(np.repeat(rows, copies, axis=0)), seed=0, n_components=4)
    ours = P.spectral_embedding(P.weighted_kernel(rows, copies.astype(float)), seed=0, n_components=4,
                                weights=copies.astype(float))
    first = np.r_[0, np.cumsum(copies)[:-1]]
    np.testing.assert_allclose(np.abs(ours / np.sqrt(copies)), np.abs(full[:, first]), atol=1e-4)


def test_fast_landmarks_are_the_exact_paths(pcs):
    """Unit weights: the fast path's landmarks are the reference's clusters (its kernel differs by ~1e-11)."""
    from sklearn.metrics import adjusted_rand_score

    exact = P.spectral_landmarks(P.alpha_decay_kernel(pcs), 300, seed=5)
    fast = P.spectral_landmarks(P.weighted_kernel(pcs, np.ones(len(pcs))), 300, seed=5, weights=np.ones(len(pcs)))
    assert exact.max() >= 250 and adjusted_rand_score(exact, fast) > 0.99


def test_weighted_pca_is_the_pca_of_the_copies(pcs):
    copies = np.random.default_rng(1).integers(1, 5, size=300)
    rows = pcs[:300, :20]
    ours = P.weighted_pca(rows, 5, copies.astype(float))
    ref = PCA(5).fit_transform(np.repeat(rows, copies, axis=0))
    first = np.r_[0, np.cumsum(copies)[:-1]]
    np.testing.assert_allclose(np.abs(ours), np.abs(ref[first]), atol=1e-9)  # signs are arbitrary
    assert P.weighted_pca(rows, 20, copies.astype(float), variance=0.5).shape[1] < 20


def test_fast_top_components_match_the_exact_pca():
    """Weighted rows and 2 power iterations: the kept components of the product, up to sign."""
    rng = np.random.default_rng(0)
    transitions = normalize(sparse.random(3000, 400, density=0.05, random_state=0, format="csr"), "l1")
    basis = rng.normal(size=(400, 4)) * [20, 10, 5, 1]
    potential = basis @ rng.normal(size=(4, 400)) + 0.01 * rng.normal(size=(400, 400))
    copies = rng.integers(1, 3, size=3000)
    ours = P.fast_top_components(transitions, potential, copies.astype(float), seed=3)
    product = (transitions @ potential)
    ref = PCA(25, svd_solver="full").fit(np.repeat(product, copies, axis=0))
    ratio = ref.explained_variance_ / ref.explained_variance_.sum()
    expected = ref.transform(product)[:, ratio > 0.01]
    assert ours.shape == expected.shape and 2 <= ours.shape[1] < 25
    np.testing.assert_allclose(np.abs(ours), np.abs(expected), atol=1e-6 * np.abs(expected).max())


def test_fast_potential_is_seeded_and_rejects_weights_on_the_exact_path(pcs):
    a = P.diffusion_potential(pcs[:2500], seed=4)
    assert np.array_equal(a, P.diffusion_potential(pcs[:2500], seed=4))
    assert a.shape[0] == 2500 and 1 <= a.shape[1] <= 25
    with pytest.raises(ValueError, match="weights are for the fast path"):
        P.diffusion_potential(pcs[:50], exact=True, weights=np.ones(50))
    with pytest.raises(ValueError, match="multiplicities"):
        P.diffusion_potential(pcs[:50], weights=np.full(50, 0.5))
    with pytest.raises(ValueError, match="one entry per row"):
        P.diffusion_potential(pcs[:50], weights=np.ones(49))
