"""The 2023 Stage 2: a CATCH-style condensation, the kind that made ``paper_table1.csv``'s diffusion rows.

The 2023 code condensed with the lab's CATCH package (non-commercial licence, not on PyPI), not with
Multiscale PHATE. This is our own implementation of what ``../shared/spec/METHOD.md`` ("The 2023 Stage 2")
says of it, built from this library's pieces:

1. L2-normalise the embeddings (as for the 2024 Stage 2) and PCA to 50 components.
2. A first diffusion, X <- P^t X, on graphtools' kNN kernel (knn 30, decay 40; above 2,000 points through
   1,000 spectral landmarks, P^t = P_nm P_mm^(t-1) P_mn), t at the Von Neumann entropy knee (t < 50).
3. Condensation (:func:`cutslib.condensation.condense_points`, ``sized=True``): the same eps-ball kernel and
   1.025 growth as Multiscale PHATE's, but every point weighs its cluster's size, eps0 = 0.1 x std x N^(1/5)
   (granularity 1) and the merge distance is the 0.0001th percentile of pairwise distances plus 1e-7.
4. Salient levels (:func:`plateau_levels`): the first step of each plateau of the cluster count.

Where METHOD.md is silent we chose, and say so: the condensation kernel is Multiscale PHATE's
exp(-(d/eps)^40) (METHOD.md says only "fixed bandwidth"); the condensation runs on every cluster (its nearly dense
first kernels built in blocks of rows, the later ones from kd-tree ball queries) instead of on landmarks; step 0
(every pixel alone) is never a salient level; the random parts (landmark k-means, PCA) take the run's seed, as
CATCH did, but not CATCH's random stream.
Its persistent map is the 2023 rule, :func:`cutslib.condensation.persistent_map_2023`.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.preprocessing import normalize

from cutslib.condensation import Condensation, condense_points
from cutslib.potential import check_points, optimal_t, spectral_landmarks, weighted_kernel, weighted_pca

KNN = 30  # neighbours of the first diffusion's kernel
N_PCA = 50
N_LANDMARK = 1000  # landmarks of the first diffusion ...
LANDMARK_ABOVE = 2000  # ... above this many points
T_MAX = 50  # t is searched in [0, T_MAX)
GRANULARITY = 1.0
MERGE_PERCENTILE = 0.0001
MERGE_OFFSET = 1e-7


def plateau_levels(n_clusters) -> list[int]:
    """The first step of each plateau of the cluster count (a step after which the count does not change),
    one per distinct count, fine to coarse; step 0 excluded."""
    n = np.asarray(n_clusters)
    return [s for s in range(1, len(n) - 1) if n[s + 1] == n[s] and n[s - 1] != n[s]]


def first_diffusion(x, seed: int = 0, knn: int = KNN, n_landmark: int = N_LANDMARK, t="auto") -> np.ndarray:
    """X <- P^t X on the kNN kernel of ``x`` (landmarks above LANDMARK_ABOVE points), t at the entropy knee."""
    n = len(x)
    kernel = weighted_kernel(x, np.ones(n), knn=knn)
    if n <= LANDMARK_ABOVE:
        diff_op = normalize(kernel, "l1", axis=1).toarray()
        t = optimal_t(diff_op, T_MAX) if t == "auto" else t
        return np.linalg.matrix_power(diff_op, t) @ x
    landmark = spectral_landmarks(kernel, n_landmark, seed)
    member = sparse.csr_matrix((np.ones(n), (landmark, np.arange(n))))
    to_data = (member @ kernel).tocsr()  # (L, N): each landmark's kernel, summed over its members
    to_landmarks = normalize(to_data.T.tocsr(), "l1", axis=1)  # P_nm
    from_landmarks = normalize(to_data, "l1", axis=1)  # P_mn
    diff_op = (from_landmarks @ to_landmarks).toarray()  # P_mm
    t = optimal_t(diff_op, T_MAX) if t == "auto" else t
    if t == 0:
        return x
    return to_landmarks @ (np.linalg.matrix_power(diff_op, t - 1) @ (from_landmarks @ x))


def catch_condense(latents, seed: int = 0, progress: bool = False) -> Condensation:
    """The 2023 Stage 2 of one image's pixel embeddings (N, D) (see the module doc); its ``levels`` are the
    plateau levels."""
    x = check_points(latents, "latents")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"latents has {int(np.sum(norms == 0))} all-zero rows; they cannot be L2-normalised")
    x = weighted_pca(x / norms, N_PCA, np.ones(len(x)))
    points = first_diffusion(x, seed=seed)
    cond = condense_points(points, progress=progress, granularity=GRANULARITY, merge_percentile=MERGE_PERCENTILE,
                           merge_offset=MERGE_OFFSET, sized=True)
    cond.levels = plateau_levels(cond.n_clusters)
    return cond
