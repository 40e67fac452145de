"""Shared test set-up: downloads come from the local mirror, never from the internet.

``CUTS_DATA_MIRROR`` defaults to ``<repo>/../shared/data``. Tests use the project's normal data cache
(``CUTS_DATA_DIR`` or ``data/``), so each data set is fetched and prepared once and then reused by every test
and notebook; tests of failure paths point ``CUTS_DATA_DIR`` at a tmp dir instead.
"""

import os
from pathlib import Path

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
