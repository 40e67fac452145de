"""CUTS + k-means: our spectral k-means against phate.PHATE + k-means on the same latents (about 15 s)."""

import numpy as np
import phate
import pytest
import torch
from sklearn.cluster import KMeans

from cutslib.clustering import spectral_kmeans
from cutslib.data import load
from cutslib.model import CUTSNet


@pytest.fixture(scope="module")
def latents():
    """Raw latents (2304, 128) of a 48x48 retina crop through the encoder with seeded random weights."""
    image = load("retina", progress=False).images[3, 30:78, 50:98]
    torch.manual_seed(0)
    with torch.no_grad():
        lat = CUTSNet(3).eval()(torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None])[0]
    return lat.permute(1, 2, 0).reshape(-1, 128).double().numpy()


def test_spectral_kmeans_matches_phate(latents):
    ours = spectral_kmeans(latents, n_clusters=10, seed=2, exact=True)
    op = phate.PHATE(n_components=3, knn=100, n_landmark=500, t=2, random_state=2, verbose=False).fit(latents)
    ref = KMeans(10, n_init=10, random_state=2).fit_predict(op.diff_potential)
    assert ours.shape == (len(latents),) and ours.dtype == np.int64
    assert np.array_equal(ours, ref)
    assert len(np.unique(ours)) == 10


def test_spectral_kmeans_bad_input(latents):
    with pytest.raises(ValueError, match="n_clusters"):
        spectral_kmeans(latents[:5], n_clusters=10)
    bad = latents[:50].copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        spectral_kmeans(bad)
    with pytest.raises(ValueError, match="2-D"):
        spectral_kmeans(latents[0])


def test_fast_spectral_kmeans_on_repeated_rows(latents):
    rows = latents.copy()
    rows[:1000] = rows[0]  # copies share a label; fewer distinct rows than clusters give one each
    labels = spectral_kmeans(rows, seed=0, exact=False)
    assert len(np.unique(labels[:1000])) == 1
    few = np.repeat(latents[:4], 5, axis=0)
    assert len(np.unique(spectral_kmeans(few, n_clusters=10, exact=False))) == 4
