""""CUTS + k-means": k-means on the PHATE diffusion potential of one image's pixel embeddings.

METHOD.md: ``phate.PHATE(n_components=3, knn=100, n_landmark=500, t=2)`` fitted on the raw (not normalised)
latents, then k-means with 10 clusters on PHATE's diffusion potential. The potential is computed by the same
code as the condensation, :mod:`cutslib.potential` (PHATE's algorithm and seeds).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA

from cutslib.potential import check_points, phate_potential

KNN = 100
N_LANDMARK = 500
T = 2
N_PCA = 100  # PHATE's default: PCA to 100 dimensions before the kNN graph


def spectral_kmeans(latents, n_clusters: int = 10, seed: int = 0) -> np.ndarray:
    """(N,) int labels in [0, n_clusters): k-means on the PHATE potential (knn 100, 500 landmarks, t 2)."""
    x = check_points(latents, "latents")
    if not 1 <= n_clusters <= len(x):
        raise ValueError(f"n_clusters must be between 1 and the number of points ({len(x)}), got {n_clusters}")
    if N_PCA < min(x.shape):  # PHATE reduces with randomized PCA, seeded like the rest
        x = PCA(N_PCA, svd_solver="randomized", random_state=seed).fit(x).transform(x)
    potential = phate_potential(x, knn=KNN, n_landmark=N_LANDMARK if len(x) > N_LANDMARK else None, t=T,
                                seed=seed)
    return KMeans(n_clusters, n_init=10, random_state=seed).fit_predict(potential).astype(np.int64)
