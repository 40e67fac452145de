"""Shared test set-up: downloads come from the local mirror, never from the internet.

``CUTS_DATA_MIRROR`` defaults to ``<repo>/../shared/data``. Tests use the project's normal data cache
(``CUTS_DATA_DIR`` or ``data/``), so each data set is fetched and prepared once and then reused by every test
and notebook; tests of failure paths point ``CUTS_DATA_DIR`` at a tmp dir instead.
"""

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MIRROR = (REPO.parent / "shared" / "data").resolve()
os.environ.setdefault("CUTS_DATA_MIRROR", str(SHARED_MIRROR))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The mirror as a folder: ``CUTS_DATA_MIRROR`` if it is one, else ``<repo>/../shared/data``."""
    setting = os.environ["CUTS_DATA_MIRROR"]
    path = SHARED_MIRROR if setting.startswith(("http://", "https://")) else Path(setting)
    assert path.is_dir(), f"CUTS_DATA_MIRROR={path} is not a folder; the tests need the data mirror"
    return path


@pytest.fixture(scope="session")
def retina_embeddings():
    """L2-normalised embeddings (N, 128) of a 48x48 and a 64x64 retina crop, random-weight encoder."""
    import torch

    from cutslib.data import load
    from cutslib.model import CUTSNet

    images = load("retina", progress=False).images
    torch.manual_seed(0)
    net = CUTSNet(3).eval()
    crops = {48: images[0, 40:88, 40:88], 64: images[5, 32:96, 32:96]}
    out = {}
    with torch.no_grad():
        for size, crop in crops.items():
            lat = net(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None])[0]
            lat = lat.permute(1, 2, 0).reshape(-1, 128).double().numpy()
            out[size] = lat / np.linalg.norm(lat, axis=1, keepdims=True)
    return out
