"""The PHATE diffusion potential of a point cloud, as Multiscale PHATE and "CUTS + k-means" compute it.

Same algorithm, constants and seeds as ``phate``/``graphtools``/``sklearn``. Everything up to the landmark
k-means is bit-identical to them, because that k-means turns any round-off into different landmarks.
After it, the arithmetic is rearranged where that is much faster, and agrees to round-off:

- the kNN kernel: an exact blocked search whose blocks run in parallel threads (bit-identical);
- the spectral embedding: sklearn's randomized SVD call for call, its sparse products in threads by rows
  (bit-identical); the landmark k-means: sklearn's own call;
- t: singular values as square roots of the eigenvalues of A A^T (t is unchanged);
- the final PCA: sklearn's randomized PCA on the potential in factored form (transitions @ landmark
  potential), so the (N, 2000) matrix is never formed.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
from scipy import linalg, sparse
from scipy.linalg import blas
from sklearn.cluster import MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize
from sklearn.utils.extmath import svd_flip
from threadpoolctl import threadpool_limits

KNN = 100  # PHATE neighbours (the CUTS setting)
DECAY = 40  # kernel exp(-(d / bandwidth)^DECAY)
THRESH = 1e-4  # kernel entries below this are zero
N_PCA = 100  # first PCA
N_LANDMARK = 2000
N_SVD = 100  # spectral dimensions for landmark clustering
T_MAX = 100  # t is searched in [0, T_MAX)
POTENTIAL_PCS = 25  # at most this many components of the potential ...
MIN_VARIANCE = 0.01  # ... each above this explained-variance ratio
BLOCK_ENTRIES = 2**24  # distances held at once by the kNN search (128 MB, over all threads)


def check_points(points, name="points", min_points=3) -> np.ndarray:
    """Return ``points`` as a float64 (N, D) array, or raise a ValueError naming the problem."""
    points = np.asarray(points)
    if points.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (N, D), got shape {points.shape}")
    if points.shape[0] < min_points:
        raise ValueError(f"{name} must have at least {min_points} rows, got {points.shape[0]}")
    if points.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column")
    if not np.issubdtype(points.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {points.dtype}")
    points = points.astype(np.float64, copy=False)
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(f"{name} has {len(rows)} rows with NaN or Inf (first: row {rows[0]})")
    return points


# ------------------------------------------------------------------------------------- entry points
def diffusion_potential(latents, knn: int = KNN, seed: int = 0) -> np.ndarray:
    """The (N, d) points that condensation runs on, as Multiscale PHATE computes them.

    PCA to min(N, D, 100) components; the PHATE potential (knn, decay 40, 2000 landmarks, gamma 1, t at
    the Von Neumann entropy knee); PCA to <= 25 components keeping those above 1% of explained variance.
    """
    x = check_points(latents, "latents")
    n, d = x.shape
    # the reference leaves this PCA unseeded; its solver is exact (seed unused) whenever N >= 10 D, as for
    # images, and seeding makes the randomized solver of smaller inputs reproducible
    pcs = PCA(n_components=min(n, d, N_PCA), random_state=seed).fit_transform(x)
    transitions, potential = landmark_potential(pcs, knn=knn, n_landmark=N_LANDMARK, seed=seed)
    return top_components(transitions, potential, seed=seed)


def phate_potential(data, knn=KNN, decay=DECAY, n_landmark=None, t="auto", seed=0) -> np.ndarray:
    """PHATE's (N, L) diffusion potential -log(P^t + 1e-7) (gamma 1), interpolated to every point."""
    transitions, potential = landmark_potential(data, knn, decay, n_landmark, t, seed)
    return potential if transitions is None else transitions @ potential


def landmark_potential(data, knn=KNN, decay=DECAY, n_landmark=None, t="auto", seed=0):
    """The potential in factored form: (transitions (N, L) sparse, potential (L, L)), where the landmarks
    are the clusters of a spectral embedding; (None, (N, N) potential) when N <= n_landmark."""
    kernel = alpha_decay_kernel(data, knn=knn, decay=decay)
    diff_op = normalize(kernel, "l1", axis=1)
    transitions = None
    if n_landmark is not None and n_landmark < len(data):
        kmeans = MiniBatchKMeans(
            n_landmark, init_size=3 * n_landmark, n_init=1, batch_size=10000, random_state=seed
        )
        clusters = kmeans.fit_predict(RowBlocks(diff_op) @ spectral_embedding(kernel, seed).T)
        _, landmark = np.unique(clusters, return_inverse=True)
        member = sparse.csr_matrix((np.ones(len(data)), (landmark, np.arange(len(data)))))
        to_data = member @ kernel  # (L, N) kernel summed over each landmark's members
        transitions = normalize(to_data.T.tocsr(), "l1", axis=1)
        diff_op = (normalize(to_data, "l1", axis=1) @ transitions).toarray()
    else:
        diff_op = diff_op.toarray()
    if t == "auto":
        t = optimal_t(diff_op)
    return transitions, -np.log(np.linalg.matrix_power(diff_op, t) + 1e-7)


# ----------------------------------------------------------------------------------------- pieces
def alpha_decay_kernel(data, knn=KNN, decay=DECAY, thresh=THRESH) -> sparse.csr_matrix:
    """graphtools' kNN kernel: exp(-(d_ij / bw_i)^decay) with bw_i the distance to the knn-th neighbour,
    entries < thresh zero, symmetrised as (K + K^T) / 2. Exact blocked search, never N x N at once:
    blocks of rows run in parallel threads, each with single-threaded numpy (bit-identical results)."""
    data = np.asarray(data, dtype=np.float64)
    n = len(data)
    knn = min(knn, n - 2)
    sq = np.array([blas.ddot(row, row) for row in data])  # as sklearn computes norms (BLAS dot)
    factor = (-math.log(thresh)) ** (1 / decay)
    n_threads = cpu_threads()
    block = max(1, BLOCK_ENTRIES // (n * n_threads))

    def rows_from(start):
        stop = min(start + block, n)
        # squared distances in sklearn's order of operations (|x|^2 + (-2 x.y)) + |y|^2, self included,
        # so that the kernel is bit-identical to graphtools' (landmark k-means amplifies any round-off)
        d2 = data[start:stop] @ data.T
        d2 *= -2  # in place: no new 128 MB arrays
        d2 += sq[start:stop, None]
        d2 += sq[None, :]
        np.maximum(d2, 0, out=d2)
        bandwidth = np.sqrt(np.partition(d2, knn, axis=1)[:, knn])
        bandwidth = np.maximum(bandwidth, np.finfo(float).eps)
        r, c = np.nonzero(d2 <= ((bandwidth * factor) ** 2 * (1 + 1e-9))[:, None])
        w = np.exp(-np.power(np.sqrt(d2[r, c]) / bandwidth[r], decay))
        kept = w >= thresh
        return r[kept] + start, c[kept], w[kept]

    # one BLAS thread per block: OpenBLAS's own workers would fight these threads for the cores
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(n_threads) as pool:
        rows, cols, vals = (np.concatenate(p) for p in zip(*pool.map(rows_from, range(0, n, block))))
    kernel = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return ((kernel + kernel.T) / 2).tocsr()


def spectral_embedding(kernel, seed=0, n_components=N_SVD) -> np.ndarray:
    """graphtools' landmark embedding: the top right singular vectors (n_components, N) of the symmetric
    normalised kernel D^-1/2 K D^-1/2, by sklearn's seeded randomized SVD with its sign convention.
    Bit-identical to sklearn's (the landmark k-means that follows turns round-off into other landmarks);
    only the sparse products are spread over threads, by rows."""
    degree = np.asarray(kernel.sum(axis=1)).ravel()
    scale = sparse.diags(1 / np.sqrt(degree))
    affinity = (scale @ kernel @ scale).tocsr()
    transpose = affinity.T.tocsr()  # its rows sum in the order scipy uses for affinity.T @ Q
    transpose.sort_indices()
    a, a_t = RowBlocks(affinity), RowBlocks(transpose)
    u, _, vt = randomized_svd(lambda q: a @ q, lambda q: a_t @ q, affinity.shape, n_components, seed)
    return svd_flip(u, vt)[1][:n_components]


def top_components(transitions, potential, seed=0) -> np.ndarray:
    """sklearn's ``PCA(min(25, N, L), random_state=seed).fit_transform(transitions @ potential)``, keeping
    the components above 1% of explained variance (among those 25), without forming the product."""
    n = potential.shape[0] if transitions is None else transitions.shape[0]
    n_components = min(POTENTIAL_PCS, n, potential.shape[1])
    if max(n, potential.shape[1]) <= 500:  # sklearn's exact solver for small inputs
        dense = potential if transitions is None else transitions @ potential
        pca = PCA(n_components=n_components, random_state=seed)
        reduced, variance = pca.fit_transform(dense), pca.explained_variance_
    else:
        left = sparse.identity(n, format="csr") if transitions is None else transitions
        left_t = left.T.tocsr()
        mean = np.asarray(left.sum(axis=0)).ravel() @ potential / n  # column means of the product

        def matmat(q):  # (X - mean) @ q
            return left @ (potential @ q) - mean @ q

        def rmatmat(q):  # (X - mean).T @ q
            return potential.T @ (left_t @ q) - np.outer(mean, q.sum(axis=0))

        u, s, vt = randomized_svd(matmat, rmatmat, (n, potential.shape[1]), n_components, seed)
        u, _ = svd_flip(u, vt, u_based_decision=False)
        reduced, variance = u[:, :n_components] * s[:n_components], s[:n_components] ** 2
    ratio = variance / np.sum(variance)
    return reduced[:, ratio > MIN_VARIANCE]


def randomized_svd(matmat, rmatmat, shape, n_components, seed=0, n_oversamples=10):
    """sklearn's ``randomized_svd`` with its defaults (LU-normalised power iterations, 7 of them or 4 when
    n_components >= 10% of the smaller side; gesdd), for a matrix A given by ``A @ Q`` and ``A.T @ Q``.
    Returns U, s, Vt with n_components + n_oversamples columns and unflipped signs."""
    n, m = shape
    if n < m:
        raise ValueError(f"randomized_svd expects a tall or square matrix, got shape {shape}")
    n_iter = 7 if n_components < 0.1 * min(shape) else 4
    q = np.random.RandomState(seed).normal(size=(m, n_components + n_oversamples))
    lu = partial(linalg.lu, permute_l=True, check_finite=False)
    for _ in range(n_iter):
        q = lu(matmat(q))[0]
        q = lu(rmatmat(q))[0]
    q = linalg.qr(matmat(q), mode="economic", check_finite=False)[0]
    uhat, s, vt = linalg.svd(rmatmat(q).T, full_matrices=False, lapack_driver="gesdd")
    return q @ uhat, s, vt


def optimal_t(diff_op, t_max=T_MAX) -> int:
    """PHATE's t: the knee of the Von Neumann entropy of diff_op^t for t in [0, t_max)."""
    from phate.vne import find_knee_point

    # singular values as the square roots of the eigenvalues of A A^T: 2.5x faster than an SVD, the same
    # to ~1e-12 (the tests check that t is unchanged)
    eigenvalues = np.sqrt(np.clip(linalg.eigvalsh(diff_op @ diff_op.T), 0, None))[::-1]
    entropy, power = [], eigenvalues.copy()
    for _ in range(t_max):
        prob = power / np.sum(power) + np.finfo(float).eps
        entropy.append(-np.sum(prob * np.log(prob)))
        power = power * eigenvalues
    return int(find_knee_point(np.array(entropy), np.arange(t_max)))


def cpu_threads() -> int:
    """Threads for the parallel parts: the cores this process may use (all cores where the OS cannot
    say, as on macOS), at most 8."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1))


class RowBlocks:
    """A CSR matrix whose products with dense arrays run in parallel threads, one block of rows each (scipy
    releases the GIL). Each row is summed exactly as scipy sums it: ``RowBlocks(A) @ Q`` equals ``A @ Q``
    bit for bit."""

    def __init__(self, matrix):
        matrix = sparse.csr_matrix(matrix)
        cuts = np.searchsorted(matrix.indptr, np.linspace(0, matrix.nnz, cpu_threads() + 1)[1:-1])
        edges = np.unique(np.concatenate([[0], cuts, [matrix.shape[0]]]))
        self.blocks = [matrix[a:b] for a, b in zip(edges[:-1], edges[1:])]

    def __matmul__(self, dense):
        if len(self.blocks) == 1:
            return self.blocks[0] @ dense
        with ThreadPoolExecutor(len(self.blocks)) as pool:
            return np.vstack(list(pool.map(lambda block: block @ dense, self.blocks)))
