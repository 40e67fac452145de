""""CUTS + k-means": k-means on the PHATE diffusion potential of one image's pixel embeddings.

METHOD.md: ``phate.PHATE(n_components=3, knn=100, n_landmark=500, t=2)`` fitted on the raw (not normalised)
latents, then k-means with 10 clusters on PHATE's diffusion potential. The potential is computed by the same
code as the condensation, :mod:`cutslib.potential`: ``exact=True`` reproduces PHATE bit for bit (its PCA,
spectral landmarks and seeds); the fast default differs as that module's doc says (distinct rows weighted by
their multiplicity, exact weighted PCA, float32). Its k-means runs on the distinct rows with
their multiplicities as sample weights (the same objective as on every pixel), in float32, on the principal
components that hold 99% of the potential's variance (about 20 of 500 on a trained retina image: 20x less
work, and labels that agree with k-means on all 500 (ARI 0.92) as well as two k-means seeds agree (0.92)).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from cutslib.potential import check_points, phate_potential, unique_rows, weighted_pca

KNN = 100
N_LANDMARK = 500
T = 2
N_PCA = 100  # PHATE's default: PCA to 100 dimensions before the kNN graph
KMEANS_VARIANCE = 0.99  # fast path: k-means on the potential's components holding this much variance


def spectral_kmeans(latents, n_clusters: int = 10, seed: int = 0, exact: bool = False) -> np.ndarray:
    """(N,) int labels in [0, n_clusters): k-means on the PHATE potential (knn 100, 500 landmarks, t 2).

    Fewer distinct rows than clusters give one cluster per distinct row (as k-means on every row would)."""
    x = check_points(latents, "latents")
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and the number of points ({len(x)}), got {n_clusters}")
    if exact:
        if N_PCA < min(x.shape):  # PHATE reduces with randomized PCA, seeded like the rest
            x = PCA(N_PCA, svd_solver="randomized", random_state=seed).fit(x).transform(x)
        potential = phate_potential(x, knn=KNN, n_landmark=N_LANDMARK if len(x) > N_LANDMARK else None, t=T,
                                    seed=seed, exact=True)
        return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(potential).astype(np.int64)
    first, inverse, counts = unique_rows(x)
    weights = counts.astype(np.float64)
    distinct = x[first]
    if N_PCA < min(x.shape):
        distinct = weighted_pca(distinct, N_PCA, weights)
    potential = phate_potential(distinct, knn=KNN, n_landmark=N_LANDMARK if len(distinct) > N_LANDMARK else None,
                                t=T, seed=seed, weights=weights)
    reduced = weighted_pca(potential, potential.shape[1], weights, variance=KMEANS_VARIANCE)
    kmeans = KMeans(min(n_clusters, len(distinct)), n_init=10, random_state=seed)
    with threadpool_limits(1, user_api="openmp"):  # its per-thread sums would make labels depend on cores
        labels = kmeans.fit_predict(reduced.astype(np.float32), sample_weight=weights)
    return labels[inverse].astype(np.int64)
