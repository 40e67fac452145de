"""The PHATE diffusion potential of a point cloud, as Multiscale PHATE and "CUTS + k-means" compute it.

Two paths, the same algorithm and constants (knn 100, decay 40, landmarks, gamma 1, t at the Von Neumann
entropy knee, the PCA rules):

**exact=True**: bit-identical to ``phate``/``graphtools``/``sklearn`` up to the landmark k-means (that
k-means turns any round-off into different landmarks); after it, the arithmetic is rearranged where that is
much faster, and agrees to round-off:

- the kNN kernel: an exact blocked search whose blocks run in parallel threads (bit-identical);
- the spectral embedding: sklearn's randomized SVD call for call, its sparse products in threads by rows
  (bit-identical); the landmark k-means: sklearn's own call;
- t: singular values as square roots of the eigenvalues of A A^T (t is unchanged);
- the final PCA: sklearn's randomized PCA on the potential in factored form (transitions @ landmark
  potential), so the (N, 2000) matrix is never formed.

**The fast path** (``exact=False``; ``segment.DEFAULT_PATH`` says which path is the default). Bit-identity
with the reference's random landmark choice is not what faithfulness means: the reference moves with its seed.
The fast path differs in these steps, each validated against the exact path's own seed-to-seed spread (README, "Speed"):

- identical rows are computed once, with their multiplicity as a weight, in the geometry of all N points
  (the kNN counts every copy, the kernel's degrees, the landmark operator and both PCAs are weighted, and
  potential columns of repeated points are scaled by sqrt(multiplicity)). An MRI slice's black background
  (thousands of identical rows) otherwise makes the kernel dense: minutes and ~10 GB per slice;
- the landmarks are the reference's (sklearn's seeded randomized SVD of the normalised kernel and its
  2000-cluster MiniBatchKMeans, call for call), on the distinct rows with their multiplicities as weights.
  Cheaper landmarks were tried and measured against the exact path's seed-to-seed spread (README, "Speed"):
  random landmarks (graphtools' ``random_landmarking``) and a 2-iteration SVD with a randomly
  initialised 10-epoch k-means both move the partitions as much as another seed does, and fall short of the
  criterion (spectral k-means ARI 0.85 and 0.88 against 0.90 to 0.92 between exact seeds); these
  landmarks agree with the exact path's (56 retina images x 3 seeds: median ARI 1.0 at matched levels), but
  they cost most of the fast path's time (1.4x less CPU than exact in all);
- the first PCA: an exact eigendecomposition of the (weighted) D x D covariance instead of an SVD;
- the kNN search: an exact kd-tree search (float64 distances without the cancellation of the reference's
  |x|^2 - 2 x.y + |y|^2, so the kernel equals graphtools' to ~1e-11, not bit for bit). Between the copies
  of a row with more copies than knn (an MRI background), the reference's distance and bandwidth are both
  that sum's round-off, one value for every pair: its kernel is exp(-1) there when the round-off is positive
  and 1 when it is not, which changes with the BLAS thread count (README, "Speed"); ours is 1;
- float32 for the landmark operator, its power and t;
- the final PCA: randomized SVD with FAST_POWER_ITER power iterations instead of 7 (the <= 25 components
  kept are well separated, and 10 oversamples make them converge fast).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import numpy as np
from scipy import linalg, sparse
from scipy.linalg import blas
from scipy.spatial import cKDTree
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
FAST_POWER_ITER = 2  # power iterations of the fast path's final PCA (sklearn's rule gives 7)
SEARCH_MARGIN = 1.6  # fast kNN: distinct neighbours queried per row, as a multiple of knn + 1
_thread_limit: int | None = None  # set by limit_threads (e.g. inside a worker process)


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
def diffusion_potential(latents, knn: int = KNN, seed: int = 0, exact: bool = False, weights=None) -> np.ndarray:
    """The (N, d) points that condensation runs on, as Multiscale PHATE computes them.

    PCA to min(N, D, 100) components; the PHATE potential (knn, decay 40, 2000 landmarks, gamma 1, t at
    the Von Neumann entropy knee); PCA to <= 25 components keeping those above 1% of explained variance.
    ``exact=True``: the reference's arithmetic (see the module doc). Otherwise the fast path, where
    ``weights`` may give each row's multiplicity (rows stand for that many identical points).
    """
    x = check_points(latents, "latents")
    n, d = x.shape
    if exact:
        if weights is not None:
            raise ValueError("exact=True runs on every row, as the reference does; weights are for the fast path")
        # the reference leaves this PCA unseeded; its solver is exact (seed unused) whenever N >= 10 D, as for
        # images, and seeding makes the randomized solver of smaller inputs reproducible
        pcs = PCA(n_components=min(n, d, N_PCA), random_state=seed).fit_transform(x)
        transitions, potential = landmark_potential(pcs, knn=knn, n_landmark=N_LANDMARK, seed=seed)
        return top_components(transitions, potential, seed=seed)
    w = check_weights(weights, n)
    pcs = weighted_pca(x, N_PCA, w)
    transitions, potential = fast_potential(pcs, w, knn=knn, n_landmark=N_LANDMARK, seed=seed)
    return fast_top_components(transitions, potential, w, seed=seed)


def phate_potential(data, knn=KNN, decay=DECAY, n_landmark=None, t="auto", seed=0, exact=False,
                    weights=None) -> np.ndarray:
    """PHATE's (N, L) diffusion potential -log(P^t + 1e-7) (gamma 1), interpolated to every point.

    Fast path: with ``weights`` (row multiplicities) and no landmarks, column j is scaled by
    sqrt(weight j), so that row distances are those over all the repeated points."""
    if exact:
        if weights is not None:
            raise ValueError("exact=True runs on every row, as the reference does; weights are for the fast path")
        transitions, potential = landmark_potential(data, knn, decay, n_landmark, t, seed)
    else:
        data = check_points(data, "data")
        transitions, potential = fast_potential(data, check_weights(weights, len(data)), knn, decay, n_landmark,
                                                t, seed)
    return potential if transitions is None else transitions @ potential


def landmark_potential(data, knn=KNN, decay=DECAY, n_landmark=None, t="auto", seed=0):
    """The potential in factored form: (transitions (N, L) sparse, potential (L, L)), where the landmarks
    are the clusters of a spectral embedding; (None, (N, N) potential) when N <= n_landmark."""
    kernel = alpha_decay_kernel(data, knn=knn, decay=decay)
    diff_op = normalize(kernel, "l1", axis=1)
    transitions = None
    if n_landmark is not None and n_landmark < len(data):
        landmark = spectral_landmarks(kernel, n_landmark, seed)
        member = sparse.csr_matrix((np.ones(len(data)), (landmark, np.arange(len(data)))))
        to_data = member @ kernel  # (L, N) kernel summed over each landmark's members
        transitions = normalize(to_data.T.tocsr(), "l1", axis=1)
        diff_op = (normalize(to_data, "l1", axis=1) @ transitions).toarray()
    else:
        diff_op = diff_op.toarray()
    if t == "auto":
        t = optimal_t(diff_op)
    return transitions, -np.log(np.linalg.matrix_power(diff_op, t) + 1e-7)


def fast_potential(data, weights, knn=KNN, decay=DECAY, n_landmark=None, t="auto", seed=0):
    """The fast path's potential in factored form (see :func:`landmark_potential`), on rows that stand for
    ``weights`` identical points each: the reference's landmarks, float32 operator, power and t."""
    n = len(data)
    kernel = weighted_kernel(data, weights, knn=knn, decay=decay)
    by_weight = sparse.diags(weights)
    if n_landmark is None or n_landmark >= n:  # the (N, N) operator lumped onto the distinct rows:
        # row i, column j sums j's copies
        diff_op = normalize(kernel @ by_weight, "l1", axis=1).toarray().astype(np.float32)
        transitions = None
    else:
        landmark = spectral_landmarks(kernel, n_landmark, seed, weights)
        member = sparse.csr_matrix((weights, (landmark, np.arange(n))))
        to_data = (member @ kernel).tocsr()  # (L, n) kernel summed over each landmark's members (copies too)
        transitions = normalize(to_data.T.tocsr(), "l1", axis=1)
        diff_op = (normalize(to_data @ by_weight, "l1", axis=1) @ transitions).toarray().astype(np.float32)
    if t == "auto":
        t = optimal_t(diff_op)
    power = np.linalg.matrix_power(diff_op, t)
    if transitions is None:  # an entry of the N-point power is split evenly over column j's copies
        root = np.sqrt(weights).astype(np.float32)
        return None, -np.log(power / weights.astype(np.float32) + np.float32(1e-7)) * root
    return transitions, -np.log(power + np.float32(1e-7))


# ----------------------------------------------------------------------------------------- pieces
def alpha_decay_kernel(data, knn=KNN, decay=DECAY, thresh=THRESH) -> sparse.csr_matrix:
    """graphtools' kNN kernel: exp(-(d_ij / bw_i)^decay) with bw_i the distance to the knn-th neighbour,
    entries < thresh zero, symmetrised as (K + K^T) / 2. Exact blocked search, never N x N at once:
    blocks of rows run in parallel threads, each with single-threaded numpy (bit-identical results)."""
    data = np.asarray(data, dtype=np.float64)
    n = len(data)
    block = kernel_block(n)
    rows_from = partial(kernel_rows, data, squared_norms(data), knn=knn, decay=decay, thresh=thresh, block=block)
    # one BLAS thread per block: OpenBLAS's own workers would fight these threads for the cores
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(cpu_threads()) as pool:
        rows, cols, vals = (np.concatenate(p) for p in zip(*pool.map(rows_from, range(0, n, block))))
    kernel = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n))
    return ((kernel + kernel.T) / 2).tocsr()


def squared_norms(data) -> np.ndarray:
    """Each row's squared norm as sklearn computes it (one BLAS dot per row), for :func:`kernel_rows`."""
    return np.array([blas.ddot(row, row) for row in data])


def kernel_block(n: int) -> int:
    """The rows per block of :func:`alpha_decay_kernel`: BLOCK_ENTRIES distances over all its threads."""
    return max(1, BLOCK_ENTRIES // (n * cpu_threads()))


def kernel_rows(data, sq, start, knn=KNN, decay=DECAY, thresh=THRESH, block=1):
    """Rows start .. start + block of :func:`alpha_decay_kernel` before symmetrising, as (rows, cols, values);
    ``sq``: :func:`squared_norms` of ``data``; the round-off is the reference's."""
    n = len(data)
    knn = min(knn, n - 2)
    factor = (-math.log(thresh)) ** (1 / decay)
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


def weighted_kernel(data, weights, knn=KNN, decay=DECAY, thresh=THRESH) -> sparse.csr_matrix:
    """The fast path's kNN kernel of rows that stand for ``weights`` identical points each; the same kernel
    as :func:`alpha_decay_kernel` on all the points, restricted to one copy of each (the kNN counts every
    copy).

    An exact kd-tree search (scipy's cKDTree, float64 distances): the embeddings after the first PCA hold
    almost all their variance in a few components, which is where a kd-tree beats a brute-force search.
    One query gets each row's SEARCH_MARGIN x (knn + 1) nearest distinct rows; the few rows whose kernel
    ball (bandwidth x thresh^(-1/decay)) reaches past them (thousands of rows in a near-constant region, whose
    distances concentrate) get exact distances to every row, by blocks of bounded memory."""
    x = np.asarray(data, dtype=np.float64)
    n = len(x)
    knn = int(min(knn, weights.sum() - 2))
    k = int(min(n, math.ceil(SEARCH_MARGIN * (knn + 1))))  # the knn + 1 nearest points lie in the first knn + 1
    factor = (-math.log(thresh)) ** (1 / decay)
    tree = cKDTree(x)
    dist, index = tree.query(x, k=k, workers=cpu_threads())
    # bandwidth: the distance to the (knn + 1)-th nearest point, self and every copy included
    position = np.argmax(np.cumsum(weights[index], axis=1) >= knn + 1, axis=1)
    bandwidth = np.maximum(dist[np.arange(n), position], np.finfo(np.float64).eps)
    radius = bandwidth * factor
    inside = dist <= radius[:, None]
    rows, cols, d = np.nonzero(inside)[0], index[inside], dist[inside]
    beyond = np.flatnonzero(inside[:, -1] & (k < n))  # their ball holds more than k distinct rows
    if len(beyond):  # (near-constant regions: balls of thousands) by blocks of exact distances, bounded memory
        keep = ~np.isin(rows, beyond)
        parts = [(rows[keep], cols[keep], d[keep])]
        block = max(1, BLOCK_ENTRIES // n)
        sq = np.einsum("ij,ij->i", x, x)
        slack = 1e-9 * sq.max()  # above the round-off of |x|^2 - 2 x.y + |y|^2
        for start in range(0, len(beyond), block):
            some = beyond[start:start + block]
            d2 = sq[some, None] - 2 * (x[some] @ x.T) + sq[None, :]  # candidates by BLAS, then exact distances
            r, c = np.nonzero(d2 <= (radius[some] ** 2 + slack)[:, None])
            exact = np.linalg.norm(x[some[r]] - x[c], axis=1)
            ok = exact <= radius[some[r]]
            parts.append((some[r[ok]], c[ok], exact[ok]))
        rows, cols, d = (np.concatenate(p) for p in zip(*parts))
    values = np.exp(-np.power(d / bandwidth[rows], decay))
    kept = values >= thresh
    kernel = sparse.csr_matrix((values[kept], (rows[kept], cols[kept])), shape=(n, n))
    return ((kernel + kernel.T) / 2).tocsr()


def weighted_pca(x, n_components, weights, variance=None) -> np.ndarray:
    """PCA of rows that stand for ``weights`` identical points each, to min(N, D, n_components) components
    (or, given ``variance``, the fewest that explain that fraction of it), by an eigendecomposition of the
    weighted D x D covariance (exact; signs arbitrary)."""
    total = weights.sum()
    k = int(min(total, x.shape[1], n_components))
    x = np.asarray(x, dtype=np.float64)
    centred = x - weights @ x / total
    values, vectors = linalg.eigh((centred * weights[:, None]).T @ centred)
    values, vectors = values[::-1], vectors[:, ::-1]
    if variance is not None:
        k = min(k, int(np.searchsorted(np.cumsum(values) / np.sum(values), variance)) + 1)
    return centred @ vectors[:, :k]


def fast_top_components(transitions, potential, weights, seed=0, n_iter=FAST_POWER_ITER) -> np.ndarray:
    """:func:`top_components` for the fast path: rows weighted by their multiplicity, randomized SVD with
    ``n_iter`` power iterations; the same rule (<= 25 components, each above 1% of their variance)."""
    n, n_cols = len(weights), potential.shape[1]
    n_components = int(min(POTENTIAL_PCS, weights.sum(), n_cols))
    potential = np.asarray(potential, dtype=np.float64)
    left = sparse.identity(n, format="csr") if transitions is None else transitions
    left_t = left.T.tocsr()
    root = np.sqrt(weights)
    mean = (weights @ left) @ potential / weights.sum()  # column means over all the points

    def matmat(q):  # sqrt(w) (X - mean) @ q
        return root[:, None] * (left @ (potential @ q)) - np.outer(root, mean @ q)

    def rmatmat(q):  # (sqrt(w) (X - mean)).T @ q
        return potential.T @ (left_t @ (root[:, None] * q)) - np.outer(mean, root @ q)

    _, s, vt = randomized_svd(matmat, rmatmat, (n, n_cols), n_components, seed, n_iter=n_iter)
    axes = vt[:n_components].T
    reduced = left @ (potential @ axes) - mean @ axes
    variance = s[:n_components] ** 2
    return reduced[:, variance / np.sum(variance) > MIN_VARIANCE]


def check_weights(weights, n) -> np.ndarray:
    """Row multiplicities as float64 (ones when None), or a ValueError naming the problem."""
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(f"weights must have one entry per row ({n}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 1) or np.any(w != np.round(w)):
        raise ValueError("weights must be row multiplicities: whole numbers >= 1")
    return w


def unique_rows(x):
    """The distinct rows of ``x`` in order of first appearance: (first index of each, index of each row's
    distinct row, multiplicities)."""
    _, first, inverse, counts = np.unique(x, axis=0, return_index=True, return_inverse=True, return_counts=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()], counts[order]


def spectral_landmarks(kernel, n_landmark, seed=0, weights=None) -> np.ndarray:
    """graphtools' landmarks: (N,) landmark of each row, numbered 0..L-1; sklearn's seeded MiniBatchKMeans
    (n_landmark clusters, its call for call) of the diffusion operator applied to :func:`spectral_embedding`.
    With ``weights`` (row multiplicities), the same on all the copies: each copy's singular-vector entry is
    its row's divided by sqrt(multiplicity), and the k-means weighs each row by its multiplicity."""
    if weights is None:
        points = RowBlocks(normalize(kernel, "l1", axis=1)) @ spectral_embedding(kernel, seed).T
    else:
        vectors = spectral_embedding(kernel, seed, weights=weights).T / np.sqrt(weights)[:, None]
        points = RowBlocks(normalize(kernel @ sparse.diags(weights), "l1", axis=1).tocsr()) @ vectors
    kmeans = MiniBatchKMeans(n_landmark, init_size=3 * n_landmark, n_init=1, batch_size=10000, random_state=seed)
    return np.unique(kmeans.fit_predict(points, sample_weight=weights), return_inverse=True)[1].ravel()


def spectral_embedding(kernel, seed=0, n_components=N_SVD, weights=None) -> np.ndarray:
    """graphtools' landmark embedding: the top right singular vectors (n_components, N) of the symmetric
    normalised kernel D^-1/2 K D^-1/2, by sklearn's seeded randomized SVD with its sign convention.
    Bit-identical to sklearn's (the landmark k-means that follows turns round-off into other landmarks);
    only the sparse products are spread over threads, by rows. With ``weights`` (row multiplicities): the
    matrix W^1/2 D^-1/2 K D^-1/2 W^1/2 (D the degrees over all copies), which has the copies' spectrum."""
    if weights is None:
        degree = np.asarray(kernel.sum(axis=1)).ravel()
        scale = sparse.diags(1 / np.sqrt(degree))
    else:
        scale = sparse.diags(np.sqrt(weights / (kernel @ weights)))
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


def randomized_svd(matmat, rmatmat, shape, n_components, seed=0, n_oversamples=10, n_iter=None):
    """sklearn's ``randomized_svd`` with its defaults (LU-normalised power iterations, 7 of them or 4 when
    n_components >= 10% of the smaller side, unless ``n_iter`` is given; gesdd), for a matrix A given by
    ``A @ Q`` and ``A.T @ Q``. Returns U, s, Vt with n_components + n_oversamples columns, unflipped signs."""
    n, m = shape
    if n < m:
        raise ValueError(f"randomized_svd expects a tall or square matrix, got shape {shape}")
    if n_iter is None:
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
    eigenvalues = eigenvalues.astype(np.float64)  # (a float32 operator's: powers up to 100 would overflow)
    entropy, power = [], eigenvalues.copy()
    for _ in range(t_max):
        prob = power / np.sum(power) + np.finfo(float).eps
        entropy.append(-np.sum(prob * np.log(prob)))
        power = power * eigenvalues
    return int(find_knee_point(np.array(entropy), np.arange(t_max)))


def cpu_threads() -> int:
    """Threads for the parallel parts: the cores this process may use (all cores where the OS cannot
    say, as on macOS), at most 8, and at most the limit of :func:`limit_threads`."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cores or 1, _thread_limit or 8))


@contextmanager
def limit_threads(n: int):
    """Within this block, the parallel parts use at most ``n`` threads, and so do the BLAS libraries."""
    global _thread_limit
    previous, _thread_limit = _thread_limit, max(1, int(n))
    try:
        with threadpool_limits(_thread_limit):
            yield
    finally:
        _thread_limit = previous


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
