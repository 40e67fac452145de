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
